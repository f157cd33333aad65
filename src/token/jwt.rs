//! RFC 9068: JWT profile for OAuth 2.0 access tokens.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::keys::{b64url, random_bytes, SigningKey};

/// Claims a client's static claims may not name: those Writ sets itself
/// (RFC 9068 §2.2, RFC 7519 §4.1, the Auth0 profile) and those of RFC 7662.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "azp",
    "gty",
    "typ",
    "cnf",
    "act",
    "may_act",
    "auth_time",
    "acr",
    "amr",
    "active",
    "token_type",
    "username",
];

/// RFC 9068 §2.2 claims, the Auth0 profile's, and a client's static claims.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    /// §2.2: for client_credentials, the client itself.
    pub sub: &'a str,
    pub client_id: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub scope: &'a str,
    /// Auth0 profile: `client-credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gty: Option<&'a str>,
    /// Auth0 profile: the client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// A fresh token identifier: 128 random bits.
pub fn new_jti() -> String {
    b64url(&random_bytes::<16>())
}

/// Signs the claims as a compact JWS with the key's `at+jwt` header.
pub fn mint(key: &SigningKey, claims: &Claims<'_>) -> Result<String, crate::keys::KeyError> {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    let mut token = String::with_capacity(key.header_b64.len() + payload.len() * 4 / 3 + 360);
    token.push_str(&key.header_b64);
    token.push('.');
    token.push_str(&b64url(&payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64url(&signature));
    Ok(token)
}

/// The claims of a token this server issued, once its signature checked out.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Verified {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default)]
    pub scope: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: String,
    typ: Option<String>,
}

/// Verifies one of our own access tokens: an `at+jwt` header (RFC 9068 §4)
/// naming a key we publish, that key's algorithm, a valid signature, our
/// issuer, and not yet expired. Anything else is simply not a valid token.
pub fn verify<'k>(
    token: &str,
    key_for: impl Fn(&str) -> Option<&'k SigningKey>,
    issuer: &str,
    now: i64,
) -> Option<Verified> {
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    let header: Header = serde_json::from_slice(&b64.decode(header).ok()?).ok()?;
    let key = key_for(&header.kid)?;
    if header.alg != key.algorithm.as_str()
        || !header.typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return None;
    }
    if !key.verify(signed.as_bytes(), &b64.decode(signature).ok()?) {
        return None;
    }
    let claims: Verified = serde_json::from_slice(&b64.decode(payload).ok()?).ok()?;
    (claims.iss == issuer && claims.exp > now).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Algorithm;
    use base64::Engine;

    #[test]
    fn rfc9068_2_1_header_has_typ_at_jwt_and_kid() {
        let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        let claims = Claims {
            iss: "https://i",
            sub: "c",
            client_id: "c",
            aud: "https://a",
            iat: 10,
            exp: 70,
            jti: "j",
            scope: "",
            gty: None,
            azp: None,
            extra: None,
        };
        let token = mint(&key, &claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| {
            serde_json::from_slice::<serde_json::Value>(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .unwrap(),
            )
            .unwrap()
        };
        let header = dec(parts[0]);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key.kid.as_str());
        let body = dec(parts[1]);
        assert_eq!(body["exp"], 70);
        assert!(body.get("scope").is_none(), "empty scope is omitted");
    }

    #[test]
    fn rfc9068_4_verify_checks_key_signature_issuer_and_expiry() {
        let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let (other, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let claims = Claims {
            iss: "https://i",
            sub: "c",
            client_id: "c",
            aud: "a",
            iat: 10,
            exp: 70,
            jti: "j",
            scope: "read",
            gty: None,
            azp: None,
            extra: None,
        };
        let token = mint(&key, &claims).unwrap();
        let find = |kid: &str| (kid == key.kid).then_some(&key);
        let ok = verify(&token, find, "https://i", 69).unwrap();
        assert_eq!((ok.sub.as_str(), ok.scope.as_str()), ("c", "read"));
        assert!(verify(&token, find, "https://i", 70).is_none(), "expired");
        assert!(verify(&token, find, "https://x", 10).is_none(), "issuer");
        assert!(
            verify(&token, |_| Some(&other), "https://i", 10).is_none(),
            "key"
        );
        let mut forged = token.clone();
        forged.replace_range(token.len() - 4.., "AAAA");
        assert!(
            verify(&forged, find, "https://i", 10).is_none(),
            "signature"
        );
        for junk in ["", "a.b", "a.b.c", "....", "x.y.z.w"] {
            assert!(verify(junk, find, "https://i", 10).is_none());
        }
    }
}
