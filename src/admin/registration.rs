//! RFC 7591 dynamic client registration and RFC 7592 management, for
//! machine clients: the metadata Writ understands, checked by the same
//! rules as every other way of creating a client.

use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, ClientChanges, NewClient};
use crate::keys::{b64url, hashes_equal, random_bytes};
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
}

impl Registered {
    fn of(c: &ClientRecord) -> Self {
        Self {
            client_id: c.id.clone(),
            client_secret: None,
            client_id_issued_at: c.created_at,
            client_secret_expires_at: (!c.public).then_some(0),
            registration_access_token: None,
            client_name: c.name.clone(),
            scope: c.scopes.join(" "),
            grant_types: c.grant_types.clone(),
            token_endpoint_auth_method: if c.public {
                "none"
            } else {
                "client_secret_basic"
            },
        }
    }
}

/// RFC 7591 §3.2.2 `invalid_client_metadata`.
fn invalid(message: impl Into<String>) -> AdminError {
    AdminError::Malformed(message.into())
}

/// Only what a machine client of the client_credentials grant can be.
fn check(m: &Metadata) -> Result<bool, AdminError> {
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
    match m.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") | Some("client_secret_post") => Ok(false),
        Some("none") => Ok(true),
        Some(other) => Err(invalid(format!(
            "token_endpoint_auth_method '{other}' is not supported: use client_secret_basic, client_secret_post or none"
        ))),
    }
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
        let public = check(&m)?;
        let created = self
            .create_client(
                NewClient {
                    name: m.client_name.unwrap_or_else(|| "registered client".into()),
                    scope: m.scope.unwrap_or_default(),
                    default_scope: None,
                    public,
                    lifetime: None,
                    grant_types: vec![GRANT_TYPE.into()],
                    format: None,
                    auth_methods: Vec::new(),
                    jwks: None,
                    jwks_uri: None,
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
        if check(&m)? != current.public {
            return Err(invalid(
                "token_endpoint_auth_method cannot change between a public and a confidential client",
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
        let changes = ClientChanges {
            name: m.client_name,
            scope: Some(m.scope.unwrap_or_default()),
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
        assert!(!check(&Metadata::default()).unwrap());
        let public = Metadata {
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        };
        assert!(check(&public).unwrap());
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
    fn registration_tokens_are_256_random_bits_with_a_prefix() {
        let (a, b) = (new_registration_token(), new_registration_token());
        assert!(a.starts_with(REGISTRATION_TOKEN_PREFIX) && a.len() == 9 + 43);
        assert_ne!(a, b);
    }
}
