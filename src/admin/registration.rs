//! RFC 7591 dynamic client registration and RFC 7592 management, for
//! machine clients: the metadata Writ understands, checked by the same
//! rules as every other way of creating a client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clients::signs;
use super::{Admin, AdminError, ClientChanges, NewClient};
use crate::keys::{b64url, hashes_equal, random_bytes, AssertionAlgorithm, ClientKeys};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::store::ClientRecord;

/// Prefix of registration access tokens, so secret scanners can spot one.
pub const REGISTRATION_TOKEN_PREFIX: &str = "writ_rat_";

/// RFC 7591 §2 client metadata as Writ reads it; anything else a client
/// sends is ignored, as §2 requires.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    pub client_name: Option<String>,
    pub scope: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    /// RFC 7591 §2: the client's public keys, a JWK Set, for `private_key_jwt`.
    pub jwks: Option<Value>,
    /// Or the URL of that JWK Set (not both, RFC 7591 §2).
    pub jwks_uri: Option<String>,
    /// OpenID Connect Dynamic Client Registration 1.0 §2: the algorithm of
    /// the client's assertions. Checked, not stored: Writ accepts any
    /// algorithm the registered keys allow.
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub response_types: Option<Vec<String>>,
    /// RFC 7592 §2.2: an update names the client, and may repeat its secret.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 7591 §3.2.1 / RFC 7592 §3: the client's metadata as registered.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire (rotate it through the admin API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    pub client_name: String,
    pub scope: String,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

impl Registered {
    fn of(c: &ClientRecord) -> Self {
        Self {
            client_id: c.id.clone(),
            client_secret: None,
            client_id_issued_at: c.created_at,
            // RFC 7591 §3.2.1: only with a secret.
            client_secret_expires_at: (Kind::of(c) == Kind::Secret).then_some(0),
            registration_access_token: None,
            client_name: c.name.clone(),
            scope: c.scopes.join(" "),
            grant_types: c.grant_types.clone(),
            token_endpoint_auth_method: Kind::of(c).auth_method(),
            jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: c.jwks_uri.clone(),
        }
    }
}

/// How a registered client authenticates, by its
/// `token_endpoint_auth_method` (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `client_secret_basic` or `client_secret_post`: it gets a secret.
    Secret,
    /// `none`: a public client.
    Public,
    /// `private_key_jwt`, with `jwks` or `jwks_uri`.
    Keys,
}

impl Kind {
    fn of(c: &ClientRecord) -> Self {
        match (c.public, signs(c)) {
            (true, _) => Self::Public,
            (false, true) => Self::Keys,
            (false, false) => Self::Secret,
        }
    }

    /// The `token_endpoint_auth_method` an answer names.
    fn auth_method(self) -> &'static str {
        match self {
            Self::Secret => "client_secret_basic",
            Self::Public => "none",
            Self::Keys => "private_key_jwt",
        }
    }
}

/// RFC 7591 §3.2.2 `invalid_client_metadata`.
fn invalid(message: impl Into<String>) -> AdminError {
    AdminError::Malformed(message.into())
}

/// Only what a machine client of the client_credentials grant can be.
fn check(m: &Metadata) -> Result<Kind, AdminError> {
    if let Some(g) = &m.grant_types {
        if g.iter().any(|g| g != GRANT_TYPE) {
            return Err(invalid(format!(
                "grant_types: Writ registers clients of the {GRANT_TYPE} grant only"
            )));
        }
    }
    if m.response_types.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(invalid(
            "response_types: a client_credentials client has none",
        ));
    }
    let kind = match m.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") | Some("client_secret_post") => Kind::Secret,
        Some("none") => Kind::Public,
        Some("private_key_jwt") => Kind::Keys,
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method '{other}' is not supported: use client_secret_basic, client_secret_post, private_key_jwt or none"
            )))
        }
    };
    // RFC 7591 §2: `jwks` and `jwks_uri` MUST NOT both be present; keys
    // are what a private_key_jwt client authenticates with, and nothing
    // else has any use for them.
    match (kind, m.jwks.is_some(), m.jwks_uri.is_some()) {
        (Kind::Keys, true, true) => {
            return Err(invalid(
                "jwks and jwks_uri must not both be present (RFC 7591 §2)",
            ))
        }
        (Kind::Keys, false, false) => {
            return Err(invalid(
                "token_endpoint_auth_method private_key_jwt needs jwks or jwks_uri",
            ))
        }
        (Kind::Keys, _, _) | (_, false, false) => {}
        _ => {
            return Err(invalid(
                "jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt",
            ))
        }
    }
    if let Some(alg) = &m.token_endpoint_auth_signing_alg {
        check_signing_alg(kind, alg, m.jwks.as_ref())?;
    }
    Ok(kind)
}

/// OpenID Connect Dynamic Client Registration 1.0 §2
/// `token_endpoint_auth_signing_alg`: only for private_key_jwt, never
/// `none` (it says so), and one Writ verifies and, with inline keys, that
/// one of them allows: otherwise every assertion the client signs would be
/// refused.
fn check_signing_alg(kind: Kind, alg: &str, jwks: Option<&Value>) -> Result<(), AdminError> {
    if kind != Kind::Keys {
        return Err(invalid(
            "token_endpoint_auth_signing_alg is for token_endpoint_auth_method private_key_jwt",
        ));
    }
    let algorithm = alg.parse::<AssertionAlgorithm>().map_err(|()| {
        invalid(format!(
            "token_endpoint_auth_signing_alg '{alg}' is not one Writ verifies: ES256, RS256, PS256 or EdDSA"
        ))
    })?;
    if let Some(keys) = jwks.and_then(|j| ClientKeys::parse(&j.to_string()).ok()) {
        if !keys.algorithms().contains(&algorithm) {
            return Err(invalid(format!(
                "token_endpoint_auth_signing_alg '{alg}' fits none of the keys in jwks"
            )));
        }
    }
    Ok(())
}

fn new_registration_token() -> String {
    format!(
        "{REGISTRATION_TOKEN_PREFIX}{}",
        b64url(&random_bytes::<32>())
    )
}

impl Admin<'_> {
    /// RFC 7591 §3: registers a client from its metadata; the answer holds
    /// its secret and its registration access token, once.
    pub async fn register(&self, m: Metadata, now: i64) -> Result<Registered, AdminError> {
        let kind = check(&m)?;
        let created = self
            .create_client(
                NewClient {
                    name: m.client_name.unwrap_or_else(|| "registered client".into()),
                    scope: m.scope.unwrap_or_default(),
                    default_scope: None,
                    public: kind == Kind::Public,
                    lifetime: None,
                    grant_types: vec![GRANT_TYPE.into()],
                    format: None,
                    auth_methods: Vec::new(),
                    jwks: m.jwks.as_ref().map(Value::to_string),
                    jwks_uri: m.jwks_uri,
                    trust: Vec::new(),
                },
                now,
            )
            .await?;
        let token = new_registration_token();
        self.store
            .set_registration_token(
                &created.client.id,
                &self.master.secret_hasher().hash(&token),
            )
            .await?;
        let mut shown = Registered::of(&created.client);
        shown.client_secret = created.secret;
        shown.registration_access_token = Some(token);
        Ok(shown)
    }

    /// RFC 7592 §2: does `token` manage client `id`? Constant time.
    pub async fn registration_token_matches(
        &self,
        id: &str,
        token: &str,
    ) -> Result<bool, AdminError> {
        let Some(stored) = self.store.registration_token(id).await? else {
            return Ok(false);
        };
        Ok(hashes_equal(
            &stored,
            &self.master.secret_hasher().hash(token),
        ))
    }

    /// RFC 7592 §2.1.
    pub async fn registration(&self, id: &str) -> Result<Registered, AdminError> {
        Ok(Registered::of(&self.store.client(id).await?))
    }

    /// RFC 7592 §2.2: the metadata replaces what was registered.
    pub async fn update_registration(
        &self,
        id: &str,
        m: Metadata,
    ) -> Result<Registered, AdminError> {
        if m.client_id.as_deref() != Some(id) {
            return Err(invalid("client_id must be the client's own"));
        }
        let current = self.store.client(id).await?;
        let kind = check(&m)?;
        if kind != Kind::of(&current) {
            return Err(invalid(
                "token_endpoint_auth_method cannot change between a secret, keys and none",
            ));
        }
        if let Some(secret) = &m.client_secret {
            let hash = self.master.secret_hasher().hash(secret);
            let matches = self
                .store
                .secrets(id)
                .await?
                .iter()
                .any(|s| hashes_equal(&s.hash, &hash));
            if !matches {
                return Err(invalid("client_secret is not the client's"));
            }
        }
        // The keys, like the rest, are replaced by what the update names.
        let changes = ClientChanges {
            name: m.client_name,
            scope: Some(m.scope.unwrap_or_default()),
            jwks: m.jwks.as_ref().map(Value::to_string),
            jwks_uri: m.jwks_uri,
            ..Default::default()
        };
        Ok(Registered::of(&self.update_client(id, changes).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7591_2_only_client_credentials_machine_clients() {
        assert_eq!(check(&Metadata::default()).unwrap(), Kind::Secret);
        let public = Metadata {
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        };
        assert_eq!(check(&public).unwrap(), Kind::Public);
        for bad in [
            Metadata {
                grant_types: Some(vec!["authorization_code".into()]),
                ..Default::default()
            },
            Metadata {
                response_types: Some(vec!["code".into()]),
                ..Default::default()
            },
            Metadata {
                token_endpoint_auth_method: Some("tls_client_auth".into()),
                ..Default::default()
            },
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc7591_2_private_key_jwt_has_jwks_or_jwks_uri_and_a_verifiable_alg() {
        let es256 = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let keys = |jwks: Option<Value>, uri: Option<&str>, alg: Option<&str>| Metadata {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks,
            jwks_uri: uri.map(Into::into),
            token_endpoint_auth_signing_alg: alg.map(Into::into),
            ..Default::default()
        };
        let uri = Some("https://app.example.com/jwks");
        assert_eq!(
            check(&keys(Some(es256.clone()), None, None)).unwrap(),
            Kind::Keys
        );
        assert_eq!(check(&keys(None, uri, Some("PS256"))).unwrap(), Kind::Keys);
        assert!(check(&keys(Some(es256.clone()), None, Some("ES256"))).is_ok());
        for bad in [
            keys(None, None, None),
            keys(Some(es256.clone()), uri, None),
            keys(Some(es256.clone()), None, Some("RS256")),
            keys(None, uri, Some("HS256")),
            keys(None, uri, Some("none")),
            Metadata {
                jwks_uri: uri.map(Into::into),
                ..Default::default()
            },
            Metadata {
                token_endpoint_auth_signing_alg: Some("ES256".into()),
                ..Default::default()
            },
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registration_tokens_are_256_random_bits_with_a_prefix() {
        let (a, b) = (new_registration_token(), new_registration_token());
        assert!(a.starts_with(REGISTRATION_TOKEN_PREFIX) && a.len() == 9 + 43);
        assert_ne!(a, b);
    }
}
