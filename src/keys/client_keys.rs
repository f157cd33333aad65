//! A client's public keys (a JWK Set, RFC 7517 §5), registered for
//! `private_key_jwt` (RFC 7523 §2.2): parsed once, when the client is
//! registered or loaded, into keys that verify JWS signatures (RFC 7515)
//! with aws-lc-rs. Only asymmetric algorithms exist here: `none` and the
//! HMACs (`HS*`) are not JWS algorithms a client key can have, so an
//! assertion naming them finds no key.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{
    ParsedPublicKey, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
};
use base64::Engine;
use serde_json::{Map, Value};

/// The most keys one client may register, and the longest JWK Set text.
pub const MAX_KEYS: usize = 20;
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// RSA moduli shorter than this are refused (RFC 7518 §3.3: 2048 or larger).
const MIN_RSA_BITS: usize = 2048;
/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2,
/// §6.3.2, §6.4.1; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// JWS algorithms a client may sign its assertions with (RFC 7518 §3,
/// RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssertionAlgorithm {
    ES256,
    RS256,
    PS256,
    EdDSA,
}

impl AssertionAlgorithm {
    pub const ALL: [Self; 4] = [Self::ES256, Self::RS256, Self::PS256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for AssertionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssertionAlgorithm {
    type Err = ();
    /// Exactly as RFC 7518 spells them: `none`, `HS256` or `es256` are not here.
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or(())
    }
}

/// One public key, usable with one algorithm.
pub struct ClientKey {
    pub kid: Option<String>,
    pub algorithm: AssertionAlgorithm,
    key: ParsedPublicKey,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({} {:?})", self.algorithm, self.kid)
    }
}

impl ClientKey {
    /// RFC 7515 §5.2: the signature over `header.payload` (as sent).
    pub fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(signing_input, signature).is_ok()
    }
}

/// A client's usable keys; an RSA key without `alg` appears once for RS256
/// and once for PS256.
#[derive(Debug)]
pub struct ClientKeys {
    keys: Vec<ClientKey>,
}

/// Why a JWK Set cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(pub String);

fn b64(member: &str, value: Option<&Value>, which: &str) -> Result<Vec<u8>, JwksError> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| JwksError(format!("{which} has no '{member}'")))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwksError(format!("{which}: '{member}' is not base64url")))
}

impl ClientKeys {
    /// Parses a JWK Set: a JSON object whose `keys` hold at least one
    /// public signing key of a supported algorithm. A private or symmetric
    /// key anywhere in it refuses the whole set (it was meant to stay with
    /// the client); keys for encryption, or of algorithms Writ does not
    /// verify, are left out.
    pub fn parse(text: &str) -> Result<Self, JwksError> {
        Self::parse_set(text, KeyUse::Sig).map(|(keys, _)| keys)
    }

    /// Parses a SPIFFE bundle (SPIFFE Trust Domain and Bundle §4): a JWK
    /// Set whose JWT-SVID keys have `"use": "jwt-svid"` and no `alg` (the
    /// key type decides it); keys for X.509-SVIDs are left out. Also
    /// returns the bundle's `spiffe_refresh_hint` (seconds), if it has one.
    pub fn parse_spiffe_bundle(text: &str) -> Result<(Self, Option<i64>), JwksError> {
        Self::parse_set(text, KeyUse::JwtSvid)
    }

    fn parse_set(text: &str, wanted: KeyUse) -> Result<(Self, Option<i64>), JwksError> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(JwksError(format!(
                "the JWK Set is larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
        let set: Value = serde_json::from_str(text)
            .map_err(|e| JwksError(format!("the JWK Set is not JSON: {e}")))?;
        let Some(keys) = set.get("keys").and_then(Value::as_array) else {
            return Err(JwksError(
                "a JWK Set is a JSON object with a \"keys\" array (RFC 7517 §5)".into(),
            ));
        };
        if keys.len() > MAX_KEYS {
            return Err(JwksError(format!("more than {MAX_KEYS} keys")));
        }
        let mut parsed = Vec::new();
        for (i, jwk) in keys.iter().enumerate() {
            let Some(jwk) = jwk.as_object() else {
                return Err(JwksError(format!("key {} is not a JSON object", i + 1)));
            };
            let which = match jwk.get("kid").and_then(Value::as_str) {
                Some(kid) => format!("key {} ('{kid}')", i + 1),
                None => format!("key {}", i + 1),
            };
            if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
                return Err(JwksError(format!(
                    "{which} has the private member '{member}': register only public keys; the private key stays with the client"
                )));
            }
            parsed.extend(parse_key(jwk, &which, wanted)?);
        }
        if parsed.is_empty() {
            return Err(JwksError(format!(
                "no public {} key of a supported algorithm (ES256, RS256, PS256, EdDSA)",
                wanted.as_str()
            )));
        }
        // SPIFFE Trust Domain and Bundle §4.1.2: seconds, a whole number.
        let refresh_hint = set.get("spiffe_refresh_hint").and_then(Value::as_i64);
        Ok((Self { keys: parsed }, refresh_hint))
    }

    /// The keys that may have signed with `algorithm`: the one `kid` names
    /// if the header names one, else every key of that algorithm.
    pub fn candidates<'a>(
        &'a self,
        algorithm: AssertionAlgorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a ClientKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.algorithm == algorithm && (kid.is_none() || k.kid.as_deref() == kid))
    }

    /// Is there a key with this id, of any algorithm?
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The algorithms the keys allow, sorted, each once.
    pub fn algorithms(&self) -> Vec<AssertionAlgorithm> {
        let mut algs: Vec<_> = self.keys.iter().map(|k| k.algorithm).collect();
        algs.sort();
        algs.dedup();
        algs
    }

    pub fn keys(&self) -> &[ClientKey] {
        &self.keys
    }
}

/// The `use` (RFC 7517 §4.2) of the keys wanted from a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyUse {
    /// A client's or an issuer's keys: `sig`, or no `use`.
    Sig,
    /// A SPIFFE bundle's keys for JWT-SVIDs: `jwt-svid`, exactly (SPIFFE
    /// JWT-SVID §6; the bundle's `x509-svid` keys are CA certificates).
    JwtSvid,
}

impl KeyUse {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sig => "signing",
            Self::JwtSvid => "jwt-svid",
        }
    }

    fn admits(self, declared: Option<&str>) -> bool {
        match self {
            Self::Sig => declared.is_none_or(|u| u == "sig"),
            Self::JwtSvid => declared == Some("jwt-svid"),
        }
    }
}

type MakeKey = dyn Fn(AssertionAlgorithm) -> Result<ParsedPublicKey, aws_lc_rs::error::KeyRejected>;

/// One JWK: `Ok(vec![])` for a key left out (not for signatures, or of a
/// type or algorithm Writ does not verify), an error for one that is
/// malformed.
fn parse_key(
    jwk: &Map<String, Value>,
    which: &str,
    wanted: KeyUse,
) -> Result<Vec<ClientKey>, JwksError> {
    let text = |m: &str| jwk.get(m).and_then(Value::as_str);
    if !wanted.admits(text("use")) {
        return Ok(vec![]);
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array) {
        if !ops.iter().any(|o| o == "verify") {
            return Ok(vec![]);
        }
    }
    let alg = match text("alg") {
        None => None,
        Some(a) => match a.parse::<AssertionAlgorithm>() {
            Ok(a) => Some(a),
            Err(()) => return Ok(vec![]),
        },
    };
    let kid = text("kid").map(str::to_owned);
    let wrong_alg = |kty: &str| {
        JwksError(format!(
            "{which}: 'alg' {} does not fit a key of type {kty}",
            alg.map_or("", |a| a.as_str())
        ))
    };
    let malformed = |what: &str| JwksError(format!("{which}: {what}"));
    let (algorithms, key): (Vec<AssertionAlgorithm>, Box<MakeKey>) = match text("kty") {
        Some("EC") => {
            if text("crv") != Some("P-256") {
                return Ok(vec![]);
            }
            if alg.is_some_and(|a| a != AssertionAlgorithm::ES256) {
                return Err(wrong_alg("EC P-256"));
            }
            let x = b64("x", jwk.get("x"), which)?;
            let y = b64("y", jwk.get("y"), which)?;
            if x.len() != 32 || y.len() != 32 {
                return Err(malformed("'x' and 'y' of a P-256 key are 32 bytes each"));
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (
                vec![AssertionAlgorithm::ES256],
                Box::new(move |_| ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)),
            )
        }
        Some("OKP") => {
            if text("crv") != Some("Ed25519") {
                return Ok(vec![]);
            }
            if alg.is_some_and(|a| a != AssertionAlgorithm::EdDSA) {
                return Err(wrong_alg("OKP Ed25519"));
            }
            let x = b64("x", jwk.get("x"), which)?;
            if x.len() != 32 {
                return Err(malformed("'x' of an Ed25519 key is 32 bytes"));
            }
            (
                vec![AssertionAlgorithm::EdDSA],
                Box::new(move |_| ParsedPublicKey::new(&ED25519, &x)),
            )
        }
        Some("RSA") => {
            let rsa = [AssertionAlgorithm::RS256, AssertionAlgorithm::PS256];
            let algorithms = match alg {
                None => rsa.to_vec(),
                Some(a) if rsa.contains(&a) => vec![a],
                Some(_) => return Err(wrong_alg("RSA")),
            };
            let strip = |b: Vec<u8>| {
                let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                b[start..].to_vec()
            };
            let n = strip(b64("n", jwk.get("n"), which)?);
            let e = strip(b64("e", jwk.get("e"), which)?);
            let bits = n.first().map_or(0, |top| {
                (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
            });
            if bits < MIN_RSA_BITS {
                return Err(malformed(&format!(
                    "an RSA key of {bits} bits is too short (at least {MIN_RSA_BITS})"
                )));
            }
            (
                algorithms,
                Box::new(move |a| {
                    let params = match a {
                        AssertionAlgorithm::PS256 => &RSA_PSS_2048_8192_SHA256,
                        _ => &RSA_PKCS1_2048_8192_SHA256,
                    };
                    RsaPublicKeyComponents { n: &n, e: &e }.to_parsed_public_key(params)
                }),
            )
        }
        Some("oct") => {
            return Err(malformed(
                "a symmetric key (kty oct) is a shared secret, not a public key",
            ))
        }
        _ => return Ok(vec![]),
    };
    algorithms
        .into_iter()
        .map(|a| {
            let key = key(a).map_err(|e: aws_lc_rs::error::KeyRejected| {
                malformed(&format!("not a valid public key ({e})"))
            })?;
            Ok(ClientKey {
                kid: kid.clone(),
                algorithm: a,
                key,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::b64url;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn es256_jwk() -> Value {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..])})
    }

    #[test]
    fn a_public_ec_key_parses() {
        let keys =
            ClientKeys::parse(&serde_json::json!({"keys": [es256_jwk()]}).to_string()).unwrap();
        assert_eq!(keys.algorithms(), [AssertionAlgorithm::ES256]);
        assert!(keys.has_kid("k1"));
    }

    #[test]
    fn a_private_key_is_refused() {
        let mut jwk = es256_jwk();
        jwk["d"] = Value::from(b64url(&[1; 32]));
        let err = ClientKeys::parse(&serde_json::json!({"keys": [jwk]}).to_string()).unwrap_err();
        assert!(err.0.contains("private member 'd'"), "{err}");
    }

    #[test]
    fn a_symmetric_key_is_refused() {
        let jwk = serde_json::json!({"kty": "oct", "k": b64url(b"secret")});
        assert!(ClientKeys::parse(&serde_json::json!({"keys": [jwk]}).to_string()).is_err());
    }

    #[test]
    fn a_set_without_a_usable_signing_key_is_refused() {
        let mut enc = es256_jwk();
        enc["use"] = "enc".into();
        let mut p384 = es256_jwk();
        p384["crv"] = "P-384".into();
        for keys in [vec![], vec![enc], vec![p384]] {
            let text = serde_json::json!({ "keys": keys }).to_string();
            assert!(ClientKeys::parse(&text)
                .unwrap_err()
                .0
                .contains("no public signing key"));
        }
        assert!(ClientKeys::parse("[]").is_err());
        assert!(ClientKeys::parse("not json").is_err());
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_is_refused() {
        let mut jwk = es256_jwk();
        jwk["alg"] = "RS256".into();
        assert!(ClientKeys::parse(&serde_json::json!({"keys": [jwk]}).to_string()).is_err());
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let mut jwk = es256_jwk();
        jwk["y"] = b64url(&[7; 32]).into();
        let err = ClientKeys::parse(&serde_json::json!({"keys": [jwk]}).to_string()).unwrap_err();
        assert!(err.0.contains("not a valid public key"), "{err}");
    }

    #[test]
    fn spiffe_bundle_4_only_jwt_svid_keys_are_taken_with_the_refresh_hint() {
        let mut svid = es256_jwk();
        svid["use"] = "jwt-svid".into();
        let mut ca = es256_jwk();
        ca["kid"] = "ca".into();
        ca["use"] = "x509-svid".into();
        let mut sig = es256_jwk();
        sig["kid"] = "sig".into();
        let bundle = serde_json::json!({"keys": [svid, ca, sig],
            "spiffe_sequence": 7, "spiffe_refresh_hint": 120});
        let (keys, hint) = ClientKeys::parse_spiffe_bundle(&bundle.to_string()).unwrap();
        assert!(keys.has_kid("k1"));
        assert!(!keys.has_kid("ca") && !keys.has_kid("sig"));
        assert_eq!(hint, Some(120));
        // A bundle with X.509 authorities only has nothing to check a JWT-SVID with.
        let only_ca = serde_json::json!({"keys": [bundle["keys"][1].clone()]});
        let err = ClientKeys::parse_spiffe_bundle(&only_ca.to_string()).unwrap_err();
        assert!(err.0.contains("no public jwt-svid key"), "{err}");
        // And a client's set does not take a bundle's keys.
        let svid_only = serde_json::json!({"keys": [bundle["keys"][0].clone()]});
        assert!(ClientKeys::parse(&svid_only.to_string()).is_err());
    }

    #[test]
    fn none_and_hmac_are_no_algorithms_of_a_client_key() {
        for alg in ["none", "HS256", "HS384", "HS512", "es256", ""] {
            assert!(alg.parse::<AssertionAlgorithm>().is_err(), "{alg}");
        }
    }
}
