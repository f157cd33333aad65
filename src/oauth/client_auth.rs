//! Client authentication at the token endpoint (RFC 6749 §2.3): exactly one of
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523
//! §2.2; a SPIFFE JWT-SVID, draft-ietf-oauth-spiffe-client-auth, counts as
//! this method too) or `none` (a public client).

use base64::Engine;

use super::assertion::{self, Audience, Verified, ASSERTION_TYPE};
use super::{spiffe, OAuthError};
use crate::keys::{ClientKeys, SecretHasher};
use crate::registry::{Client, StoredSecret};
use crate::types::AuthMethod;

/// A client that proved who it is, and the secret it used (none if public),
/// or the assertion it signed, whose `jti` the caller must now record as
/// used (refusing the request if it was used before).
#[derive(Debug, Clone)]
pub struct Authenticated<'r> {
    pub client: &'r Client,
    pub secret: Option<&'r StoredSecret>,
    pub assertion: Option<Verified>,
}

/// The keys a client assertion is checked with, found by the caller (who
/// may have fetched them).
#[derive(Debug, Clone, Copy)]
pub enum AssertionKeys<'k> {
    /// The client's own: registered inline, or fetched from its `jwks_uri`.
    Own(&'k ClientKeys),
    /// Those of an external issuer the client trusts (workload identity):
    /// the assertion is that issuer's token.
    Issuer {
        issuer: &'k str,
        keys: &'k ClientKeys,
    },
    /// Those of the SPIFFE trust domain the SVID's `sub` names, from the
    /// bundle endpoint configured for it.
    TrustDomain {
        trust_domain: &'k str,
        keys: &'k ClientKeys,
    },
    /// None could be had, and why.
    Unavailable(&'static str),
}

/// Which kind of JWT a `client_assertion` is, by its `client_assertion_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    /// RFC 7523 §2.2: signed by the client, or by an issuer it trusts.
    JwtBearer,
    /// draft-ietf-oauth-spiffe-client-auth: a SPIFFE JWT-SVID.
    Spiffe,
}

/// The credentials a request body may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// RFC 7521 §4.2.
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
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
    /// RFC 7523 §2.2: a JWT the client signed; the id is `client_id`, or
    /// else the assertion's `sub` (still to be verified). `named`: the
    /// request sent `client_id`, which an external issuer's token needs.
    Assertion {
        id: String,
        assertion: String,
        named: bool,
        kind: AssertionKind,
    },
}

impl ClientCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { id, .. }
            | Self::Post { id, .. }
            | Self::None { id }
            | Self::Assertion { id, .. } => id,
        }
    }

    fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::None { .. } | Self::Assertion { .. } => None,
        }
    }

    /// The method these credentials use (RFC 7591 §2).
    pub fn method(&self) -> AuthMethod {
        match self {
            Self::Basic { .. } => AuthMethod::ClientSecretBasic,
            Self::Post { .. } => AuthMethod::ClientSecretPost,
            Self::None { .. } => AuthMethod::None,
            Self::Assertion { .. } => AuthMethod::PrivateKeyJwt,
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }

    /// RFC 6749 §2.3: "The client MUST NOT use more than one authentication
    /// method in each request." A `client_id` in the body beside Basic is
    /// tolerated only when it names the same client.
    pub fn extract(authorization: Option<&str>, body: BodyCredentials) -> Result<Self, OAuthError> {
        let BodyCredentials {
            client_id: body_id,
            client_secret: body_secret,
            client_assertion_type,
            client_assertion,
        } = body;
        if client_assertion_type.is_some() || client_assertion.is_some() {
            if authorization.is_some() || body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "more than one client authentication method was used",
                ));
            }
            return Self::assertion(body_id, client_assertion_type, client_assertion);
        }
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

    /// RFC 7521 §4.2: `client_assertion_type` and `client_assertion`
    /// together; `client_id` optional (RFC 7523 §3: the `sub` names the
    /// client, and is checked against it once the signature is).
    fn assertion(
        body_id: Option<String>,
        assertion_type: Option<String>,
        assertion: Option<String>,
    ) -> Result<Self, OAuthError> {
        let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client_assertion_type and client_assertion are sent together",
            ));
        };
        let kind = match assertion_type.as_str() {
            ASSERTION_TYPE => AssertionKind::JwtBearer,
            spiffe::ASSERTION_TYPE => AssertionKind::Spiffe,
            _ => {
                return Err(OAuthError::client_authentication_failed(
                    "unsupported client_assertion_type",
                ))
            }
        };
        let named = body_id.is_some();
        let id = body_id
            .or_else(|| assertion::unverified_subject(&assertion))
            .ok_or_else(|| {
                OAuthError::client_authentication_failed("the client assertion names no client")
            })?;
        Ok(Self::Assertion {
            id,
            assertion,
            named,
            kind,
        })
    }

    /// Checks the credentials against the client they name (`None`: an id
    /// nobody registered). Every failure looks the same to the caller, and a
    /// secret is hashed even for an unknown client so the answer takes as
    /// long either way.
    pub fn authenticate<'r>(
        &self,
        client: Option<&'r Client>,
        hasher: &SecretHasher,
        audience: &Audience,
        keys: AssertionKeys<'_>,
        now: i64,
    ) -> Result<Authenticated<'r>, OAuthError> {
        let presented = self.secret().map(|s| hasher.hash(s));
        let fail = |detail| {
            let mut e = OAuthError::client_authentication_failed(detail);
            e.basic_challenge = self.is_basic();
            e
        };
        let client = client.ok_or_else(|| fail("unknown client"))?;
        if let Self::Assertion {
            assertion,
            named,
            kind,
            ..
        } = self
        {
            if !client.may_authenticate_with(AuthMethod::PrivateKeyJwt) {
                return Err(fail("the client may not authenticate with private_key_jwt"));
            }
            let verified = match (kind, keys) {
                (_, AssertionKeys::Unavailable(why)) => return Err(fail(why)),
                // An SVID names a workload, not a client: the request must.
                (AssertionKind::Spiffe, _) if !named => {
                    return Err(fail("a JWT-SVID needs client_id in the request"))
                }
                (AssertionKind::Spiffe, AssertionKeys::TrustDomain { trust_domain, keys }) => {
                    spiffe::verify(assertion, keys, trust_domain, &client.trust, audience, now)
                }
                (AssertionKind::Spiffe, _) | (_, AssertionKeys::TrustDomain { .. }) => {
                    return Err(fail(
                        "a JWT-SVID is checked only with a trust domain's keys",
                    ))
                }
                (_, AssertionKeys::Own(keys)) => {
                    assertion::verify(assertion, &client.id, keys, audience, now)
                }
                // The token names no client: the request must.
                (_, AssertionKeys::Issuer { .. }) if !named => {
                    return Err(fail(
                        "a token of a trusted issuer needs client_id in the request",
                    ))
                }
                (_, AssertionKeys::Issuer { issuer, keys }) => assertion::verify_external(
                    assertion,
                    keys,
                    &client.trust,
                    issuer,
                    &audience.issuer,
                    now,
                ),
            }
            .map_err(|refused| fail(refused.0))?;
            if !client.enabled {
                return Err(fail("client is disabled"));
            }
            return Ok(Authenticated {
                client,
                secret: None,
                assertion: Some(verified),
            });
        }
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
        if !client.may_authenticate_with(self.method()) {
            return Err(fail("the client may not authenticate with this method"));
        }
        if !client.enabled {
            return Err(fail("client is disabled"));
        }
        Ok(Authenticated {
            client,
            secret,
            assertion: None,
        })
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
    let mut raw = String::from_utf8(raw).map_err(|_| malformed())?;
    // The id keeps the decoded buffer, cut at the colon: one copy fewer.
    let colon = raw.bytes().position(|b| b == b':').ok_or_else(malformed)?;
    let secret = form_decode(&raw[colon + 1..]).ok_or_else(malformed)?;
    raw.truncate(colon);
    let id = if is_encoded(&raw) {
        form_decode(&raw).ok_or_else(malformed)?
    } else {
        raw // its spare capacity still holds the secret, dropped with it
    };
    if id.is_empty() || secret.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

fn is_encoded(s: &str) -> bool {
    s.bytes().any(|b| b == b'+' || b == b'%')
}

fn form_decode(s: &str) -> Option<String> {
    // Most ids and secrets have nothing encoded: a copy, no decoding.
    if !is_encoded(s) {
        return Some(s.to_owned());
    }
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

    fn extract(
        header: Option<&str>,
        client_id: Option<String>,
        client_secret: Option<String>,
    ) -> Result<ClientCredentials, OAuthError> {
        ClientCredentials::extract(
            header,
            BodyCredentials {
                client_id,
                client_secret,
                ..Default::default()
            },
        )
    }

    fn with_assertion(
        client_id: Option<&str>,
        kind: Option<&str>,
        jwt: Option<&str>,
    ) -> BodyCredentials {
        BodyCredentials {
            client_id: client_id.map(Into::into),
            client_assertion_type: kind.map(Into::into),
            client_assertion: jwt.map(Into::into),
            ..Default::default()
        }
    }

    /// An unsigned JWT whose `sub` is `sub` (enough for extraction).
    fn jwt_with_sub(sub: &str) -> String {
        let part = |v: serde_json::Value| crate::keys::b64url(v.to_string().as_bytes());
        format!(
            "{}.{}.sig",
            part(serde_json::json!({"alg": "ES256"})),
            part(serde_json::json!({"sub": sub}))
        )
    }

    #[test]
    fn rfc7521_4_2_an_assertion_names_its_client_by_client_id_or_sub() {
        let jwt = jwt_with_sub("c1");
        let creds = ClientCredentials::extract(
            None,
            with_assertion(None, Some(ASSERTION_TYPE), Some(&jwt)),
        )
        .unwrap();
        assert_eq!(
            creds,
            ClientCredentials::Assertion {
                id: "c1".into(),
                assertion: jwt.clone(),
                named: false,
                kind: AssertionKind::JwtBearer,
            }
        );
        assert_eq!(creds.method(), AuthMethod::PrivateKeyJwt);
        // `client_id` wins for the lookup; the verified `sub` must then match it.
        let creds = ClientCredentials::extract(
            None,
            with_assertion(Some("c2"), Some(ASSERTION_TYPE), Some(&jwt)),
        )
        .unwrap();
        assert_eq!(creds.client_id(), "c2");
        let err = ClientCredentials::extract(
            None,
            with_assertion(None, Some(ASSERTION_TYPE), Some("junk")),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn rfc7521_4_2_type_and_assertion_come_together_and_the_type_is_jwt_bearer() {
        let jwt = jwt_with_sub("c1");
        for body in [
            with_assertion(None, Some(ASSERTION_TYPE), None),
            with_assertion(None, None, Some(&jwt)),
        ] {
            assert_eq!(
                ClientCredentials::extract(None, body).unwrap_err().code,
                ErrorCode::InvalidRequest
            );
        }
        let saml = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer";
        let err = ClientCredentials::extract(None, with_assertion(None, Some(saml), Some(&jwt)))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn draft_spiffe_client_auth_a_jwt_svid_is_its_own_assertion_type() {
        let svid = jwt_with_sub("spiffe://example.org/billing");
        let creds = ClientCredentials::extract(
            None,
            with_assertion(Some("c1"), Some(spiffe::ASSERTION_TYPE), Some(&svid)),
        )
        .unwrap();
        assert_eq!(
            creds,
            ClientCredentials::Assertion {
                id: "c1".into(),
                assertion: svid,
                named: true,
                kind: AssertionKind::Spiffe,
            }
        );
        assert_eq!(creds.method(), AuthMethod::PrivateKeyJwt);
    }

    #[test]
    fn rfc6749_2_3_an_assertion_with_a_secret_or_basic_is_two_methods() {
        let jwt = jwt_with_sub("c1");
        let mut body = with_assertion(None, Some(ASSERTION_TYPE), Some(&jwt));
        let err = ClientCredentials::extract(Some(&basic("c1", "s")), body.clone()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        body.client_secret = Some("s".into());
        let err = ClientCredentials::extract(None, body).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn rfc6749_2_3_1_basic_parts_are_form_urldecoded() {
        let creds = extract(Some(&basic("my%3Aid", "a+b%25c")), None, None).unwrap();
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
        let err = extract(Some(&basic("a", "s")), None, Some("s".into())).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let err = extract(Some(&basic("a", "s")), Some("b".into()), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn rfc6749_2_3_basic_with_same_body_client_id_is_one_method() {
        let creds = extract(Some(&basic("a", "s")), Some("a".into()), None).unwrap();
        assert!(creds.is_basic());
    }

    #[test]
    fn rfc6749_2_3_1_post_and_none() {
        assert_eq!(
            extract(None, Some("a".into()), Some("s".into())).unwrap(),
            ClientCredentials::Post {
                id: "a".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            extract(None, Some("a".into()), None).unwrap(),
            ClientCredentials::None { id: "a".into() }
        );
    }

    #[test]
    fn rfc6749_5_2_missing_authentication_is_invalid_client() {
        let err = extract(None, None, None).unwrap_err();
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
            let err = extract(Some(h), None, None).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidClient, "{h}");
            assert!(err.basic_challenge, "{h}");
        }
    }
}
