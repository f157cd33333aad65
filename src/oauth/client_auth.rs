//! Client authentication at the token endpoint (RFC 6749 §2.3): exactly one of
//! `client_secret_basic`, `client_secret_post` or `none` (a public client).

use base64::Engine;

use super::OAuthError;
use crate::keys::SecretHasher;
use crate::registry::{Client, StoredSecret};

/// A client that proved who it is, and the secret it used (none if public).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated<'r> {
    pub client: &'r Client,
    pub secret: Option<&'r StoredSecret>,
}

/// The credentials one request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// RFC 6749 §2.3.1, the Authorization header.
    Basic { id: String, secret: String },
    /// RFC 6749 §2.3.1, `client_id` and `client_secret` in the body.
    Post { id: String, secret: String },
    /// A public client: `client_id` alone (RFC 6749 §2.1).
    None { id: String },
}

impl ClientCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { id, .. } | Self::Post { id, .. } | Self::None { id } => id,
        }
    }

    fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::None { .. } => None,
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }

    /// RFC 6749 §2.3: "The client MUST NOT use more than one authentication
    /// method in each request." A `client_id` in the body beside Basic is
    /// tolerated only when it names the same client.
    pub fn extract(
        authorization: Option<&str>,
        body_id: Option<String>,
        body_secret: Option<String>,
    ) -> Result<Self, OAuthError> {
        if let Some(header) = authorization {
            let (id, secret) = decode_basic(header)?;
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "more than one client authentication method was used",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Authorization header",
                ));
            }
            return Ok(Self::Basic { id, secret });
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Self::Post { id, secret }),
            (Some(id), None) => Ok(Self::None { id }),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret was sent without client_id",
            )),
            (None, None) => Err(OAuthError::client_authentication_failed(
                "no client authentication included",
            )),
        }
    }

    /// Checks the credentials against the client they name (`None`: an id
    /// nobody registered). Every failure looks the same to the caller, and a
    /// secret is hashed even for an unknown client so the answer takes as
    /// long either way.
    pub fn authenticate<'r>(
        &self,
        client: Option<&'r Client>,
        hasher: &SecretHasher,
        now: i64,
    ) -> Result<Authenticated<'r>, OAuthError> {
        let presented = self.secret().map(|s| hasher.hash(s));
        let fail = |detail| {
            let mut e = OAuthError::client_authentication_failed(detail);
            e.basic_challenge = self.is_basic();
            e
        };
        let client = client.ok_or_else(|| fail("unknown client"))?;
        let secret = match (&presented, client.public) {
            (Some(_), true) => return Err(fail("public client sent a secret")),
            (None, false) => return Err(fail("confidential client sent no secret")),
            (None, true) => None,
            (Some(hash), false) => Some(
                client
                    .matching_secret(hash, now)
                    .ok_or_else(|| fail("wrong secret"))?,
            ),
        };
        if !client.enabled {
            return Err(fail("client is disabled"));
        }
        Ok(Authenticated { client, secret })
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded, joined by a colon,
/// then base64-encoded (RFC 7617).
fn decode_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed = || {
        let mut e = OAuthError::new(
            super::ErrorCode::InvalidClient,
            "malformed Basic authorization header",
        );
        e.basic_challenge = true;
        e
    };
    let (scheme, rest) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        let mut e = OAuthError::client_authentication_failed("unsupported authorization scheme");
        e.basic_challenge = true;
        return Err(e);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| malformed())?;
    let raw = String::from_utf8(raw).map_err(|_| malformed())?;
    let (id, secret) = raw.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() || secret.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

fn form_decode(s: &str) -> Option<String> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn rfc6749_2_3_1_basic_parts_are_form_urldecoded() {
        let creds =
            ClientCredentials::extract(Some(&basic("my%3Aid", "a+b%25c")), None, None).unwrap();
        assert_eq!(
            creds,
            ClientCredentials::Basic {
                id: "my:id".into(),
                secret: "a b%c".into()
            }
        );
    }

    #[test]
    fn rfc6749_2_3_rejects_two_credential_sets() {
        let err =
            ClientCredentials::extract(Some(&basic("a", "s")), None, Some("s".into())).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let err =
            ClientCredentials::extract(Some(&basic("a", "s")), Some("b".into()), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_2_3_basic_with_same_body_client_id_is_one_method() {
        let creds =
            ClientCredentials::extract(Some(&basic("a", "s")), Some("a".into()), None).unwrap();
        assert!(creds.is_basic());
    }

    #[test]
    fn rfc6749_2_3_1_post_and_none() {
        assert_eq!(
            ClientCredentials::extract(None, Some("a".into()), Some("s".into())).unwrap(),
            ClientCredentials::Post {
                id: "a".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            ClientCredentials::extract(None, Some("a".into()), None).unwrap(),
            ClientCredentials::None { id: "a".into() }
        );
    }

    #[test]
    fn rfc6749_5_2_missing_authentication_is_invalid_client() {
        let err = ClientCredentials::extract(None, None, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
        assert!(!err.basic_challenge);
    }

    #[test]
    fn rfc6749_5_2_malformed_basic_challenges() {
        for h in [
            "Basic !!!",
            "Basic",
            "Bearer abc",
            &basic("", "s"),
            "Basic Zm9v",
        ] {
            let err = ClientCredentials::extract(Some(h), None, None).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClient, "{h}");
            assert!(err.basic_challenge, "{h}");
        }
    }
}
