//! Clients: the services that ask for tokens, and their secrets.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{positive_lifetime, Admin, AdminError, Field, FormatSetting, Invalid};
use crate::keys::{generate_secret, random_bytes};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::oauth::policy::{allowed, parse_scope_patterns};
use crate::store::{ClientRecord, GrantRecord, SecretRecord};
use crate::token::jwt::RESERVED_CLAIMS;
use crate::types::TokenFormat;

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
}

/// Settings to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub format: Option<FormatSetting>,
    /// Static claims as JSON text, an object (`{}` removes them). Text,
    /// so that a message can quote what was given.
    pub claims: Option<String>,
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
        };
        let secret = (!new.public).then(generate_secret);
        let hash = secret
            .as_deref()
            .map(|s| self.master.secret_hasher().hash(s));
        self.store
            .create_client(&record, hash.as_ref().map(|h| &h[..]))
            .await?;
        self.audit("client.created", &record.id);
        Ok(CreatedClient {
            client: record,
            secret,
        })
    }

    pub async fn clients(&self) -> Result<Vec<ClientRecord>, AdminError> {
        Ok(self.store.clients().await?)
    }

    pub async fn client(&self, id: &str) -> Result<ClientDetails, AdminError> {
        let client = self.store.client(id).await?;
        let grants = self.grants(Some(id)).await?;
        let secrets = self.store.secrets(id).await?;
        Ok(ClientDetails {
            client,
            grants,
            secrets,
        })
    }

    /// A disabled client's token requests are refused until it is enabled.
    pub async fn set_client_enabled(&self, id: &str, enabled: bool) -> Result<(), AdminError> {
        self.store.set_client_enabled(id, enabled).await?;
        let event = if enabled {
            "client.enabled"
        } else {
            "client.disabled"
        };
        self.audit(event, id);
        Ok(())
    }

    /// Deletes the client and its grants.
    pub async fn delete_client(&self, id: &str) -> Result<(), AdminError> {
        self.store.delete_client(id).await?;
        self.audit("client.deleted", id);
        Ok(())
    }

    pub async fn update_client(
        &self,
        id: &str,
        changes: ClientChanges,
    ) -> Result<ClientRecord, AdminError> {
        // Validate everything before changing anything.
        let claims = changes.claims.as_deref().map(static_claims).transpose()?;
        if let Some(FormatSetting(format)) = changes.format {
            self.store.set_client_format(id, format).await?;
        }
        if let Some(claims) = claims {
            let claims = (!claims.is_empty()).then_some(&claims);
            self.store.set_client_claims(id, claims).await?;
        }
        self.audit("client.updated", id);
        Ok(self.store.client(id).await?)
    }

    /// Adds a new secret; the client's other secrets keep working for
    /// `overlap` (whole seconds), or stop at once when it is zero.
    pub async fn rotate_secret(
        &self,
        id: &str,
        overlap: Duration,
        now: i64,
    ) -> Result<RotatedSecret, AdminError> {
        let secret = generate_secret();
        let hash = self.master.secret_hasher().hash(&secret);
        // Capped far below i64::MAX so that `now + overlap` cannot overflow.
        let overlap = overlap.as_secs().min(i64::MAX as u64 / 4) as i64;
        self.store.rotate_secret(id, &hash, now, overlap).await?;
        self.audit("client.secret_rotated", id);
        Ok(RotatedSecret {
            secret,
            overlap: Duration::from_secs(overlap as u64),
            previous_secrets_expire_at: (overlap > 0).then_some(now + overlap),
        })
    }

    /// Revokes one secret at once.
    pub async fn revoke_secret(&self, id: &str, secret_id: i64) -> Result<(), AdminError> {
        self.store.revoke_secret(id, secret_id).await?;
        self.audit("client.secret_revoked", id);
        Ok(())
    }
}

/// 128 random bits, in hex.
fn new_client_id() -> String {
    random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn client_name(name: String) -> Result<String, Invalid> {
    if name.trim().is_empty() {
        return Err(Invalid::of_field(Field::Name, "must not be empty"));
    }
    Ok(name)
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
    fn client_ids_are_128_random_bits_in_hex() {
        let (a, b) = (new_client_id(), new_client_id());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
