//! Clients: the services that ask for tokens, and their secrets.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{positive_lifetime, Admin, AdminError, Field, FormatSetting, Invalid, MAX_LIFETIME};
use crate::keys::{generate_secret, random_bytes, ClientKeys};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::oauth::policy::{allowed, parse_scope_patterns};
use crate::oauth::spiffe;
use crate::registry::INTROSPECT_SCOPE;
use crate::store::{ClientRecord, GrantRecord, SecretRecord, TrustRuleRecord};
use crate::token::jwt::RESERVED_CLAIMS;
use crate::types::{AuthMethod, TokenFormat};

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    /// Allowed scopes, space-delimited; a trailing `*` is a wildcard.
    pub scope: String,
    /// Scope given when a request names none, space-delimited.
    pub default_scope: Option<String>,
    /// No secret: the client authenticates with its id alone.
    pub public: bool,
    pub lifetime: Option<u64>,
    pub grant_types: Vec<String>,
    pub format: Option<TokenFormat>,
    /// How it may authenticate; empty: what its kind allows (see
    /// `AuthMethod::defaults`).
    pub auth_methods: Vec<AuthMethod>,
    /// Its public keys (a JWK Set, JSON text) for `private_key_jwt`: it
    /// then gets no secret.
    pub jwks: Option<String>,
    /// Or the URL of that JWK Set, fetched by the server (not with `jwks`).
    pub jwks_uri: Option<String>,
    /// External issuers whose tokens authenticate it (workload identity):
    /// it then gets no secret.
    pub trust: Vec<NewTrustRule>,
}

/// A trust rule to add: tokens of `issuer` whose `sub` matches `subject`
/// (exactly, or a pattern with `*`) and whose claims meet `claims`
/// authenticate the client, if their `aud` is `audience` (default: Writ's
/// issuer identifier).
#[derive(Debug, Clone, Default)]
pub struct NewTrustRule {
    pub issuer: String,
    pub subject: Option<String>,
    pub audience: Option<String>,
    /// Claim name (or JSON pointer, `/kubernetes.io/namespace`) → value or pattern.
    pub claims: Vec<(String, String)>,
}

/// Settings to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    /// Allowed scopes, space-delimited; the default scope must stay within them.
    pub scope: Option<String>,
    /// Space-delimited; empty removes it (requests without `scope` then
    /// get the client's literal scopes).
    pub default_scope: Option<String>,
    pub lifetime: Option<u64>,
    pub grant_types: Option<Vec<String>>,
    pub format: Option<FormatSetting>,
    /// Static claims as JSON text, an object (`{}` removes them). Text,
    /// so that a message can quote what was given.
    pub claims: Option<String>,
    /// Limits how it may authenticate; empty: back to what its kind allows.
    pub auth_methods: Option<Vec<AuthMethod>>,
    /// Replaces its public keys (only a client that has keys).
    pub jwks: Option<String>,
    /// Replaces its public keys with the URL they are fetched from (only a
    /// client that has keys); its inline keys are then dropped.
    pub jwks_uri: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CreatedClient {
    pub client: ClientRecord,
    /// In plain text only now; the store keeps its hash.
    pub secret: Option<String>,
}

/// A client with its grants and (hashes never included) secrets.
#[derive(Debug, Clone)]
pub struct ClientDetails {
    pub client: ClientRecord,
    pub grants: Vec<GrantRecord>,
    pub secrets: Vec<SecretRecord>,
    pub trust: Vec<TrustRuleRecord>,
}

#[derive(Debug, Clone)]
pub struct RotatedSecret {
    /// In plain text only now.
    pub secret: String,
    /// How long the previous secrets keep working, in whole seconds; zero:
    /// they were revoked.
    pub overlap: Duration,
    pub previous_secrets_expire_at: Option<i64>,
}

impl Admin<'_> {
    pub async fn create_client(
        &self,
        new: NewClient,
        now: i64,
    ) -> Result<CreatedClient, AdminError> {
        let name = client_name(new.name)?;
        let scopes =
            parse_scope_patterns(&new.scope).map_err(|e| Invalid::sentence(Field::Scope, e))?;
        let default_scope = new
            .default_scope
            .map(|d| default_scope(&d, &scopes))
            .transpose()?;
        let grant_types = grant_types(new.grant_types)?;
        let jwks = new.jwks.as_deref().map(client_jwks).transpose()?;
        let jwks_uri = new.jwks_uri.as_deref().map(jwks_uri).transpose()?;
        if jwks.is_some() && jwks_uri.is_some() {
            return Err(Invalid::sentence(
                Field::JwksUri,
                "a client has its keys inline (jwks) or at a URL (jwks_uri), not both (RFC 7591 §2)",
            )
            .into());
        }
        if (jwks.is_some() || jwks_uri.is_some()) && new.public {
            return Err(Invalid::sentence(
                Field::Jwks,
                "a public client has no keys: it authenticates with its client_id alone",
            )
            .into());
        }
        let trust = new
            .trust
            .into_iter()
            .map(|r| trust_rule(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        if !trust.is_empty() && new.public {
            return Err(Invalid::sentence(
                Field::Trust,
                "a public client trusts no issuer: it authenticates with its client_id alone",
            )
            .into());
        }
        let has_keys = jwks.is_some() || jwks_uri.is_some() || !trust.is_empty();
        let auth_methods = auth_methods(new.auth_methods, new.public, has_keys)?;
        let record = ClientRecord {
            id: new_client_id(),
            name,
            public: new.public,
            scopes,
            default_scope,
            lifetime: positive_lifetime(Field::Lifetime, new.lifetime)?,
            grant_types,
            enabled: true,
            created_at: now,
            token_format: new.format,
            claims: None,
            auth_methods,
            jwks,
            jwks_uri,
        };
        public_clients_do_not_introspect(&record)?;
        // A client with keys proves itself with them: no secret to leak.
        let secret = (!new.public && !has_keys).then(generate_secret);
        let hash = secret
            .as_deref()
            .map(|s| self.master.secret_hasher().hash(s));
        self.store
            .create_client(&record, hash.as_ref().map(|h| &h[..]))
            .await?;
        for mut rule in trust {
            rule.client_id = record.id.clone();
            self.store.add_trust_rule(&rule).await?;
        }
        self.audit("client.created", &record.id).await;
        Ok(CreatedClient {
            client: record,
            secret,
        })
    }

    /// One page of clients, oldest first, after the client `after`.
    pub async fn clients_page(
        &self,
        after: Option<&str>,
        name_prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, AdminError> {
        Ok(self.store.clients_page(after, name_prefix, limit).await?)
    }

    pub async fn client(&self, id: &str) -> Result<ClientDetails, AdminError> {
        let client = self.store.client(id).await?;
        let grants = self.grants(Some(id)).await?;
        let secrets = self.store.secrets(id).await?;
        let trust = self.store.trust_rules(id).await?;
        Ok(ClientDetails {
            client,
            grants,
            secrets,
            trust,
        })
    }

    /// Adds a trust rule to a client that authenticates with signed JWTs
    /// (one made with keys or trust rules, never one with a secret);
    /// returns the rule's id.
    pub async fn add_trust_rule(
        &self,
        id: &str,
        rule: NewTrustRule,
        now: i64,
    ) -> Result<i64, AdminError> {
        let c = self.store.client(id).await?;
        if !signs(&c) {
            return Err(Invalid::sentence(
                Field::Trust,
                "only a client without a secret (made with --jwks, --jwks-uri or --trust-issuer) can trust an issuer",
            )
            .into());
        }
        let mut rule = trust_rule(rule, now)?;
        rule.client_id = id.to_owned();
        let rule_id = self.store.add_trust_rule(&rule).await?;
        self.audit("client.trust_added", id).await;
        Ok(rule_id)
    }

    pub async fn remove_trust_rule(&self, id: &str, rule_id: i64) -> Result<(), AdminError> {
        self.store.client(id).await?;
        self.store.remove_trust_rule(id, rule_id).await?;
        self.audit("client.trust_removed", id).await;
        Ok(())
    }

    /// A disabled client's token requests are refused until it is enabled.
    pub async fn set_client_enabled(&self, id: &str, enabled: bool) -> Result<(), AdminError> {
        self.store.set_client_enabled(id, enabled).await?;
        let event = if enabled {
            "client.enabled"
        } else {
            "client.disabled"
        };
        self.audit(event, id).await;
        Ok(())
    }

    /// Deletes the client and its grants.
    pub async fn delete_client(&self, id: &str) -> Result<(), AdminError> {
        self.store.delete_client(id).await?;
        self.audit("client.deleted", id).await;
        Ok(())
    }

    /// Applies every change, checks the client as a whole (the default
    /// scope still within the allowed ones, and so on), then writes it in
    /// one change; nothing is written when a rule is broken.
    pub async fn update_client(
        &self,
        id: &str,
        changes: ClientChanges,
    ) -> Result<ClientRecord, AdminError> {
        let mut c = self.store.client(id).await?;
        if let Some(name) = changes.name {
            c.name = client_name(name)?;
        }
        if let Some(scope) = changes.scope {
            c.scopes =
                parse_scope_patterns(&scope).map_err(|e| Invalid::sentence(Field::Scope, e))?;
        }
        c.default_scope = match changes.default_scope {
            Some(d) if d.trim().is_empty() => None,
            Some(d) => Some(default_scope(&d, &c.scopes)?),
            // Unchanged, but it must still fit a changed scope.
            None => c
                .default_scope
                .map(|d| default_scope(&d.join(" "), &c.scopes))
                .transpose()?,
        };
        if let Some(lifetime) = changes.lifetime {
            c.lifetime = positive_lifetime(Field::Lifetime, Some(lifetime))?;
        }
        if let Some(g) = changes.grant_types {
            c.grant_types = grant_types(g)?;
        }
        if let Some(FormatSetting(format)) = changes.format {
            c.token_format = format;
        }
        if let Some(claims) = changes.claims.as_deref() {
            let claims = static_claims(claims)?;
            c.claims = (!claims.is_empty()).then_some(claims);
        }
        let had_keys = signs(&c);
        let replaces = |field| {
            if had_keys {
                Ok(())
            } else {
                Err(Invalid::sentence(
                    field,
                    "only a client registered with keys (--jwks or --jwks-uri) can have them replaced; this one has a secret or none",
                ))
            }
        };
        match (changes.jwks.as_deref(), changes.jwks_uri.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(Invalid::sentence(
                    Field::JwksUri,
                    "a client has its keys inline (jwks) or at a URL (jwks_uri), not both (RFC 7591 §2)",
                )
                .into())
            }
            (Some(jwks), None) => {
                replaces(Field::Jwks)?;
                c.jwks = Some(client_jwks(jwks)?);
                c.jwks_uri = None;
            }
            (None, Some(uri)) => {
                replaces(Field::JwksUri)?;
                c.jwks_uri = Some(jwks_uri(uri)?);
                c.jwks = None;
            }
            (None, None) => {}
        }
        if let Some(methods) = changes.auth_methods {
            c.auth_methods = auth_methods(methods, c.public, signs(&c))?;
        }
        public_clients_do_not_introspect(&c)?;
        self.store.update_client(&c).await?;
        self.audit("client.updated", id).await;
        Ok(c)
    }

    /// Adds a new secret; the client's other secrets keep working for
    /// `overlap` (whole seconds), or stop at once when it is zero.
    pub async fn rotate_secret(
        &self,
        id: &str,
        overlap: Duration,
        now: i64,
    ) -> Result<RotatedSecret, AdminError> {
        if signs(&self.store.client(id).await?) {
            return Err(AdminError::Conflict(format!(
                "client '{id}' authenticates with its keys (private_key_jwt) and has no secret"
            )));
        }
        let secret = generate_secret();
        let hash = self.master.secret_hasher().hash(&secret);
        if overlap.as_secs() > MAX_LIFETIME {
            return Err(Invalid::of_field(
                Field::Overlap,
                format!("must be at most {MAX_LIFETIME} seconds (366 days)"),
            )
            .into());
        }
        let overlap = overlap.as_secs() as i64;
        self.store.rotate_secret(id, &hash, now, overlap).await?;
        self.audit("client.secret_rotated", id).await;
        Ok(RotatedSecret {
            secret,
            overlap: Duration::from_secs(overlap as u64),
            previous_secrets_expire_at: (overlap > 0).then_some(now + overlap),
        })
    }

    /// Revokes one secret at once. Returns how many live secrets the
    /// client has left: none means it can get no token until a new one is
    /// made, which the front door should say.
    pub async fn revoke_secret(
        &self,
        id: &str,
        secret_id: i64,
        now: i64,
    ) -> Result<usize, AdminError> {
        // "No such client" rather than "the client has no secret 1".
        self.store.client(id).await?;
        self.store.revoke_secret(id, secret_id).await?;
        self.audit("client.secret_revoked", id).await;
        let left = self.store.secrets(id).await?;
        Ok(left
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .count())
    }
}

/// 128 random bits, in hex.
pub(super) fn new_client_id() -> String {
    random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// RFC 7662 §2.1: the introspection endpoint requires authentication. A
/// public client authenticates with its id alone, so it must not hold the
/// scope that lets a client introspect and revoke every token.
pub(super) fn public_clients_do_not_introspect(c: &ClientRecord) -> Result<(), Invalid> {
    if c.public && c.scopes.iter().any(|s| s == INTROSPECT_SCOPE) {
        return Err(Invalid::sentence(
            Field::Scope,
            format!(
                "a public client cannot hold '{INTROSPECT_SCOPE}': introspection requires a client that authenticates (RFC 7662 §2.1)"
            ),
        ));
    }
    Ok(())
}

pub(super) fn client_name(name: String) -> Result<String, Invalid> {
    super::name(name)
}

/// The default scope is given as it is, so it must be literal scopes, each
/// covered by the client's allowed scopes.
fn default_scope(text: &str, allowed_scopes: &[String]) -> Result<Vec<String>, Invalid> {
    let scopes =
        parse_scope_patterns(text).map_err(|e| Invalid::sentence(Field::DefaultScope, e))?;
    if let Some(bad) = scopes.iter().find(|s| s.contains('*')) {
        return Err(Invalid::sentence(
            Field::DefaultScope,
            format!("default scope '{bad}' must not be a pattern"),
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| !allowed(allowed_scopes, s)) {
        return Err(Invalid::sentence(
            Field::DefaultScope,
            format!("default scope '{bad}' is not among the client's scopes"),
        ));
    }
    Ok(scopes)
}

/// Writ implements one grant type.
fn grant_types(mut grant_types: Vec<String>) -> Result<Vec<String>, Invalid> {
    grant_types.dedup();
    if let Some(bad) = grant_types.iter().find(|g| *g != GRANT_TYPE) {
        return Err(Invalid::sentence(
            Field::GrantTypes,
            format!("unknown grant type '{bad}': Writ supports {GRANT_TYPE}"),
        ));
    }
    Ok(grant_types)
}

/// A JWK Set to register: it must parse and hold at least one public
/// signing key of an algorithm Writ verifies, and no private key. Stored
/// as given, minus insignificant whitespace.
fn client_jwks(text: &str) -> Result<String, Invalid> {
    ClientKeys::parse(text).map_err(|e| Invalid::sentence(Field::Jwks, format!("JWK Set: {e}")))?;
    let value: Value = serde_json::from_str(text).expect("parsed above");
    Ok(value.to_string())
}

/// Does the client authenticate with signed JWTs rather than a secret?
/// Its keys are inline, at a URL, or (with trust rules alone) an external
/// issuer's; such a client was made without a secret.
pub(super) fn signs(c: &ClientRecord) -> bool {
    c.jwks.is_some()
        || c.jwks_uri.is_some()
        || (!c.public && c.auth_methods == [AuthMethod::PrivateKeyJwt])
}

/// The longest URL accepted for keys or an issuer.
const MAX_URL_BYTES: usize = 2048;

/// A URL Writ fetches keys from, as an administrator registers it: `https`
/// (the keys' integrity rests on TLS); plain `http` only on the loopback
/// interface, which the server fetches from only when
/// `allow_insecure_jwks_localhost` is on (for tests and local development).
pub(super) fn fetch_url(field: Field, text: &str) -> Result<String, Invalid> {
    let bad = |why: &str| Invalid::sentence(field, format!("'{text}' {why}"));
    if text.len() > MAX_URL_BYTES {
        return Err(bad("is too long"));
    }
    let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if crate::keys::remote::is_loopback(&url) => {}
        _ => {
            return Err(bad(
                "must be an https URL (http only for 127.0.0.1 or localhost)",
            ))
        }
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must have no fragment and no credentials"));
    }
    Ok(text.to_owned())
}

/// Claims a condition may not name: the issuer, audience and times are
/// checked by every token's rules already.
const CHECKED_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

/// A trust rule as stored, checked: the issuer a fetchable URL (its keys
/// come from its discovery document); at least a subject or a claim
/// condition, since a rule with neither would trust every token the issuer
/// signs (for GitHub's issuer: every repository's workflows); no pattern
/// that starts with `*`, for the same reason.
fn trust_rule(rule: NewTrustRule, now: i64) -> Result<TrustRuleRecord, Invalid> {
    if rule.issuer.starts_with(spiffe::SCHEME) {
        return spiffe_trust_rule(rule, now);
    }
    let issuer = fetch_url(Field::Trust, &rule.issuer)?;
    if url::Url::parse(&issuer).is_ok_and(|u| u.query().is_some()) {
        return Err(Invalid::sentence(
            Field::Trust,
            format!("issuer '{issuer}' must have no query (OpenID Connect Discovery §4)"),
        ));
    }
    let pattern = |what: &str, p: &str| {
        if p.is_empty() || p.starts_with('*') || p.len() > 1024 {
            Err(Invalid::sentence(
                Field::Trust,
                format!("{what} '{p}' must start with literal text (a leading '*' would match whatever the issuer signs) and be at most 1024 bytes"),
            ))
        } else {
            Ok(p.to_owned())
        }
    };
    let subject = rule
        .subject
        .as_deref()
        .map(|s| pattern("subject", s))
        .transpose()?;
    let mut claims = Map::new();
    for (name, value) in rule.claims {
        if name.is_empty() || CHECKED_CLAIMS.contains(&name.as_str()) || name == "/" {
            return Err(Invalid::sentence(
                Field::Trust,
                format!("'{name}' cannot be a condition: name another claim (iss, aud and the times are checked anyway)"),
            ));
        }
        let value = pattern(&format!("claim '{name}'"), &value)?;
        claims.insert(name, Value::String(value));
    }
    if subject.is_none() && claims.is_empty() {
        return Err(Invalid::sentence(
            Field::Trust,
            "a trust rule needs a subject or a claim condition: without one it would trust every token the issuer signs",
        ));
    }
    let audience = match rule.audience {
        Some(a) if a.trim().is_empty() => {
            return Err(Invalid::sentence(
                Field::Trust,
                "the audience must not be empty",
            ))
        }
        a => a,
    };
    Ok(TrustRuleRecord {
        id: 0,
        client_id: String::new(),
        issuer,
        subject,
        audience,
        claims,
        created_at: now,
    })
}

/// A trust rule for SPIFFE JWT-SVIDs (draft-ietf-oauth-spiffe-client-auth):
/// the issuer is a trust domain ID, `spiffe://example.org`, whose bundle
/// endpoint the configuration names (`[spiffe] bundles`); the subject, a
/// SPIFFE ID of that trust domain, exactly or with `*` after at least one
/// literal path character, is required (without it every workload of the
/// trust domain would be the client). No audience: the draft wants Writ's
/// issuer identifier as an SVID's sole `aud`.
fn spiffe_trust_rule(rule: NewTrustRule, now: i64) -> Result<TrustRuleRecord, Invalid> {
    let bad = |why: String| Invalid::sentence(Field::Trust, why);
    let issuer = rule.issuer;
    let domain = issuer.strip_prefix(spiffe::SCHEME).unwrap_or_default();
    if !spiffe::is_trust_domain(domain) {
        return Err(bad(format!(
            "'{issuer}' is not a SPIFFE trust domain ID (spiffe:// and a lowercase trust domain name, no path)"
        )));
    }
    if rule.audience.is_some() {
        return Err(bad(
            "a SPIFFE trust rule takes no audience: a JWT-SVID's aud must be Writ's issuer identifier".into(),
        ));
    }
    let Some(subject) = rule.subject else {
        return Err(bad(format!(
            "a SPIFFE trust rule needs --trust-subject: a SPIFFE ID of {domain}, exactly or as a pattern (spiffe://{domain}/ns/prod/*)"
        )));
    };
    let prefix = format!("{issuer}/");
    let literal = subject.split('*').next().unwrap_or_default();
    // The text before any `*` must itself read as the start of a SPIFFE ID
    // of this trust domain, with something of the path given.
    let literal_ok = literal.len() > prefix.len()
        && literal.starts_with(&prefix)
        && spiffe::trust_domain_of(literal.trim_end_matches('/')) == Some(domain);
    let whole_ok = subject.contains('*') || spiffe::trust_domain_of(&subject) == Some(domain);
    if !literal_ok || !whole_ok || subject.len() > 1024 {
        return Err(bad(format!(
            "subject '{subject}' must be a SPIFFE ID of {domain} (spiffe://{domain}/path), a '*' allowed only after some of the path"
        )));
    }
    let mut claims = Map::new();
    for (name, value) in rule.claims {
        if name.is_empty()
            || CHECKED_CLAIMS.contains(&name.as_str())
            || name == "/"
            || name == "sub"
        {
            return Err(bad(format!(
                "'{name}' cannot be a condition of a SPIFFE trust rule"
            )));
        }
        if value.is_empty() || value.starts_with('*') || value.len() > 1024 {
            return Err(bad(format!(
                "claim '{name}' '{value}' must start with literal text and be at most 1024 bytes"
            )));
        }
        claims.insert(name, Value::String(value));
    }
    Ok(TrustRuleRecord {
        id: 0,
        client_id: String::new(),
        issuer,
        subject: Some(subject),
        audience: None,
        claims,
        created_at: now,
    })
}

fn jwks_uri(text: &str) -> Result<String, Invalid> {
    fetch_url(Field::JwksUri, text)
}

/// The methods a client may authenticate with, each one its kind can use:
/// `none` is a public client's alone; a client with keys signs; any other
/// uses its secret (in the header, the body, or either).
fn auth_methods(
    mut methods: Vec<AuthMethod>,
    public: bool,
    has_keys: bool,
) -> Result<Vec<AuthMethod>, Invalid> {
    methods.sort();
    methods.dedup();
    if methods.is_empty() {
        return Ok(AuthMethod::defaults(public, has_keys));
    }
    let allowed = if public || has_keys {
        AuthMethod::defaults(public, has_keys)
    } else {
        vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]
    };
    if let Some(bad) = methods.iter().find(|m| !allowed.contains(m)) {
        let kind = if public {
            "a public client (no secret, no keys)"
        } else if has_keys {
            "a client with keys (--jwks)"
        } else {
            "a client with a secret"
        };
        return Err(Invalid::sentence(
            Field::AuthMethods,
            format!(
                "{kind} cannot use {bad}; it may use {}",
                allowed
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(methods)
}

/// A JSON object of extra claims, none of them a name Writ sets itself.
fn static_claims(text: &str) -> Result<Map<String, Value>, Invalid> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err(Invalid::of_field(
            Field::Claims,
            format!("must be a JSON object, got: {text}"),
        ));
    };
    if let Some(name) = map.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err(Invalid::sentence(
            Field::Claims,
            format!("claim '{name}' is reserved: Writ sets it itself"),
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spiffe_rule(issuer: &str, subject: Option<&str>) -> Result<TrustRuleRecord, Invalid> {
        trust_rule(
            NewTrustRule {
                issuer: issuer.into(),
                subject: subject.map(Into::into),
                audience: None,
                claims: vec![],
            },
            0,
        )
    }

    #[test]
    fn spiffe_trust_rules_name_a_trust_domain_and_its_workloads() {
        let td = "spiffe://example.org";
        for ok in [
            "spiffe://example.org/ns/prod/sa/billing",
            "spiffe://example.org/ns/prod/*",
            "spiffe://example.org/n*",
        ] {
            let rule = spiffe_rule(td, Some(ok)).unwrap();
            assert_eq!(rule.issuer, td);
            assert_eq!(rule.subject.as_deref(), Some(ok));
        }
        for bad in [
            None,
            Some("spiffe://example.org/*"),
            Some("spiffe://example.org"),
            Some("spiffe://other.org/billing"),
            Some("spiffe://example.org.evil/billing"),
            Some("spiffe://example.org/a//b"),
            Some("*"),
        ] {
            assert!(spiffe_rule(td, bad).is_err(), "{bad:?}");
        }
        for issuer in [
            "spiffe://example.org/path",
            "spiffe://Example.org",
            "spiffe://",
        ] {
            assert!(
                spiffe_rule(issuer, Some("spiffe://example.org/x")).is_err(),
                "{issuer}"
            );
        }
        let with_audience = trust_rule(
            NewTrustRule {
                issuer: td.into(),
                subject: Some("spiffe://example.org/x".into()),
                audience: Some("https://elsewhere".into()),
                claims: vec![],
            },
            0,
        );
        assert!(with_audience.is_err());
    }

    #[test]
    fn name_must_not_be_empty() {
        assert_eq!(client_name(" \t".into()).unwrap_err().field, Field::Name);
        assert_eq!(
            client_name(String::new()).unwrap_err().to_string(),
            "name must not be empty"
        );
        assert_eq!(client_name("billing".into()).unwrap(), "billing");
    }

    #[test]
    fn default_scope_must_be_literal() {
        let allowed = vec!["market:*".to_owned()];
        let err = default_scope("market:*", &allowed).unwrap_err();
        assert_eq!(err.field, Field::DefaultScope);
        assert_eq!(
            err.to_string(),
            "default scope 'market:*' must not be a pattern"
        );
    }

    #[test]
    fn default_scope_must_be_among_the_clients_scopes() {
        let allowed = vec!["market:*".to_owned(), "read".to_owned()];
        assert_eq!(
            default_scope("market:eu read", &allowed).unwrap(),
            ["market:eu", "read"]
        );
        let err = default_scope("write", &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "default scope 'write' is not among the client's scopes"
        );
        // `market:` alone is not covered by `market:*`.
        assert!(default_scope("market:", &allowed).is_err());
    }

    #[test]
    fn default_scope_must_be_well_formed() {
        let err = default_scope("a*b", &["a*".to_owned()]).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed scope 'a*b'"),
            "{err}"
        );
    }

    #[test]
    fn grant_type_must_be_client_credentials() {
        let ok = grant_types(vec![GRANT_TYPE.into(), GRANT_TYPE.into()]).unwrap();
        assert_eq!(ok, [GRANT_TYPE]);
        let err = grant_types(vec![GRANT_TYPE.into(), "password".into()]).unwrap_err();
        assert_eq!(err.field, Field::GrantTypes);
        assert_eq!(
            err.to_string(),
            "unknown grant type 'password': Writ supports client_credentials"
        );
    }

    #[test]
    fn static_claims_must_be_a_json_object() {
        for text in ["[1, 2]", "not json", "\"s\"", ""] {
            let err = static_claims(text).unwrap_err();
            assert_eq!(err.field, Field::Claims);
            assert_eq!(
                err.to_string(),
                format!("claims must be a JSON object, got: {text}")
            );
        }
        assert!(static_claims("{}").unwrap().is_empty());
        assert_eq!(
            static_claims(r#"{"tenant": "t1"}"#).unwrap()["tenant"],
            "t1"
        );
    }

    #[test]
    fn static_claims_must_not_use_reserved_names() {
        for name in ["iss", "sub", "aud", "exp", "scope"] {
            let err = static_claims(&format!(r#"{{"{name}": 1}}"#)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("claim '{name}' is reserved: Writ sets it itself")
            );
        }
    }

    #[test]
    fn rfc7662_2_1_a_public_client_cannot_hold_writ_introspect() {
        let mut c = ClientRecord {
            id: "c".into(),
            name: "c".into(),
            public: true,
            scopes: vec!["read".into(), INTROSPECT_SCOPE.into()],
            default_scope: None,
            lifetime: None,
            grant_types: vec![GRANT_TYPE.into()],
            enabled: true,
            created_at: 0,
            token_format: None,
            claims: None,
            auth_methods: vec![AuthMethod::None],
            jwks: None,
            jwks_uri: None,
        };
        let err = public_clients_do_not_introspect(&c).unwrap_err();
        assert_eq!(err.field, Field::Scope);
        assert!(err.to_string().contains("RFC 7662"), "{err}");
        c.public = false;
        assert!(public_clients_do_not_introspect(&c).is_ok());
    }

    #[test]
    fn rfc7591_2_auth_methods_fit_the_kind_of_client() {
        use AuthMethod::*;
        assert_eq!(
            auth_methods(vec![], false, false).unwrap(),
            [ClientSecretBasic, ClientSecretPost]
        );
        assert_eq!(auth_methods(vec![], true, false).unwrap(), [None]);
        assert_eq!(auth_methods(vec![], false, true).unwrap(), [PrivateKeyJwt]);
        assert_eq!(
            auth_methods(vec![ClientSecretPost], false, false).unwrap(),
            [ClientSecretPost]
        );
        for (methods, public, keys) in [
            (vec![None], false, false),
            (vec![PrivateKeyJwt], false, false),
            (vec![ClientSecretBasic], true, false),
            (vec![ClientSecretBasic], false, true),
            (vec![None], false, true),
        ] {
            let err = auth_methods(methods.clone(), public, keys).unwrap_err();
            assert_eq!(err.field, Field::AuthMethods, "{methods:?}");
        }
    }

    #[test]
    fn a_jwks_must_hold_a_public_signing_key_and_no_private_one() {
        let err = client_jwks(r#"{"keys": []}"#).unwrap_err();
        assert_eq!(err.field, Field::Jwks);
        let private = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#;
        let err = client_jwks(private).unwrap_err();
        assert!(err.to_string().contains("private member 'd'"), "{err}");
        let public = r#"{"keys": [ {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"} ]}"#;
        assert_eq!(
            client_jwks(public).unwrap(),
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#
        );
    }

    #[test]
    fn client_ids_are_128_random_bits_in_hex() {
        let (a, b) = (new_client_id(), new_client_id());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
