//! RFC 9068: JWT profile for OAuth 2.0 access tokens.

use base64::Engine;
use serde::Deserialize;

use super::{json_member, json_value};

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
#[derive(Debug)]
pub struct Claims<'a> {
    pub iss: &'a str,
    /// §2.2: for client_credentials, the client itself.
    pub sub: &'a str,
    pub client_id: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    /// Left out when empty.
    pub scope: &'a str,
    /// Auth0 profile: `client-credentials`.
    pub gty: Option<&'a str>,
    /// Auth0 profile: the client id.
    pub azp: Option<&'a str>,
    /// The client's static claims, after the others.
    pub extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl Claims<'_> {
    /// One JSON object, the client's static claims last. Written by hand,
    /// as `TokenResponse::to_json` is: the names are constants, and only the
    /// values go through serde_json (which escapes strings). Through serde's
    /// map serializer, each name was escaped byte by byte too, and the
    /// claims cost 2.9k instructions a token.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(b"{\"iss\":");
        json_value(&mut out, self.iss);
        json_member(&mut out, "sub", self.sub);
        json_member(&mut out, "client_id", self.client_id);
        json_member(&mut out, "aud", self.aud);
        json_member(&mut out, "iat", &self.iat);
        json_member(&mut out, "exp", &self.exp);
        json_member(&mut out, "jti", self.jti);
        if !self.scope.is_empty() {
            json_member(&mut out, "scope", self.scope);
        }
        if let Some(gty) = self.gty {
            json_member(&mut out, "gty", gty);
        }
        if let Some(azp) = self.azp {
            json_member(&mut out, "azp", azp);
        }
        for (name, value) in self.extra.into_iter().flatten() {
            out.push(b',');
            json_value(&mut out, name.as_str());
            out.push(b':');
            json_value(&mut out, value);
        }
        out.push(b'}');
        out
    }
}

/// A fresh token identifier: 128 random bits.
pub fn new_jti() -> String {
    b64url(&random_bytes::<16>())
}

/// Signs the claims as a compact JWS with the key's `at+jwt` header.
pub fn mint(key: &SigningKey, claims: &Claims<'_>) -> Result<String, crate::keys::KeyError> {
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = claims.to_json();
    // One buffer for the whole token: the header, the payload and the
    // signature are encoded straight into it.
    let mut token = String::with_capacity(key.header_b64.len() + payload.len() * 4 / 3 + 360);
    token.push_str(&key.header_b64);
    token.push('.');
    b64.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    b64.encode_string(&signature, &mut token);
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

    /// Claims for client `c` of issuer `https://i`, issued at 10 for 60 s.
    fn claims<'a>(aud: &'a str, scope: &'a str) -> Claims<'a> {
        Claims {
            iss: "https://i",
            sub: "c",
            client_id: "c",
            aud,
            iat: 10,
            exp: 70,
            jti: "j",
            scope,
            gty: None,
            azp: None,
            extra: None,
        }
    }

    #[test]
    fn rfc9068_2_1_header_has_typ_at_jwt_and_kid() {
        let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        let claims = claims("https://a", "");
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
    fn rfc9068_2_2_claims_are_one_object_with_static_claims_last() {
        let extra = serde_json::json!({"tier": "gold", "n": 2});
        let claims = Claims {
            gty: Some("client-credentials"),
            azp: Some("c"),
            extra: extra.as_object(),
            ..claims("https://a", "read")
        };
        let json = |c: &Claims<'_>| String::from_utf8(c.to_json()).unwrap();
        assert_eq!(
            json(&claims),
            r#"{"iss":"https://i","sub":"c","client_id":"c","aud":"https://a","iat":10,"exp":70,"jti":"j","scope":"read","gty":"client-credentials","azp":"c","tier":"gold","n":2}"#
        );
        let bare = Claims {
            scope: "",
            gty: None,
            azp: None,
            extra: None,
            ..claims
        };
        assert_eq!(
            json(&bare),
            r#"{"iss":"https://i","sub":"c","client_id":"c","aud":"https://a","iat":10,"exp":70,"jti":"j"}"#
        );
    }

    #[test]
    fn rfc7519_7_1_claims_are_escaped_json() {
        let extra = serde_json::json!({"q\"uote": "a\\b\u{1}", "nested": {"x": [1, "é"]}});
        let claims = Claims {
            iss: "https://i/\"x\"",
            aud: "urn:a\nb",
            extra: extra.as_object(),
            ..claims("a", "read \u{7f} ü")
        };
        let parsed: serde_json::Value = serde_json::from_slice(&claims.to_json()).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "iss": "https://i/\"x\"", "sub": "c", "client_id": "c", "aud": "urn:a\nb",
                "iat": 10, "exp": 70, "jti": "j", "scope": "read \u{7f} ü",
                "q\"uote": "a\\b\u{1}", "nested": {"x": [1, "é"]}
            })
        );
    }

    #[test]
    fn rfc9068_4_verify_checks_key_signature_issuer_and_expiry() {
        let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let (other, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let claims = claims("a", "read");
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
