//! RFC 9068: JWT profile for OAuth 2.0 access tokens.

use serde::Serialize;

use crate::keys::{b64url, random_bytes, SigningKey};

/// RFC 9068 §2.2 claims.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;
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
}
