use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::json;

use super::b64url;
use crate::types::Algorithm;

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A private signing key with its public JWK and the encoded JWS header it
/// signs under (computed once, not per token).
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pair: Pair,
    /// The public key, parsed once: verifying a token then skips decoding
    /// and validating the key every time (for P-256, a point check).
    verifier: signature::ParsedPublicKey,
    rng: SystemRandom,
    /// The public JWK (RFC 7517), with `kid`, `alg` and `use`.
    pub jwk: serde_json::Value,
    /// base64url of `{"alg":…,"typ":"at+jwt","kid":…}` (RFC 9068 §2.1).
    pub header_b64: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} {})", self.algorithm, self.kid)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid {0} private key")]
pub struct KeyError(pub Algorithm);

impl SigningKey {
    /// A fresh key and its PKCS#8 encoding, to be stored encrypted.
    pub fn generate(algorithm: Algorithm) -> Result<(Self, Vec<u8>), KeyError> {
        let err = |_| KeyError(algorithm);
        let pkcs8 = match algorithm {
            Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(err)?
                .as_ref()
                .to_vec(),
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(err)?
                .as_ref()
                .to_vec(),
            Algorithm::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(err)?
                .as_ref()
                .to_vec(),
        };
        Ok((Self::from_pkcs8(algorithm, &pkcs8)?, pkcs8))
    }

    pub fn from_pkcs8(algorithm: Algorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let err = |_| KeyError(algorithm);
        let (pair, public) = match algorithm {
            Algorithm::ES256 => {
                let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(err)?;
                // Uncompressed point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                if point.len() != 65 {
                    return Err(KeyError(algorithm));
                }
                let (x, y) = (b64url(&point[1..33]), b64url(&point[33..]));
                let thumb = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                (
                    Pair::Es256(k),
                    (thumb, json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})),
                )
            }
            Algorithm::EdDSA => {
                let k = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(err)?;
                let x = b64url(k.public_key().as_ref());
                let thumb = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                (
                    Pair::EdDsa(k),
                    (thumb, json!({"kty": "OKP", "crv": "Ed25519", "x": x})),
                )
            }
            Algorithm::RS256 => {
                let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(err)?;
                let n = b64url(k.public_key().modulus().big_endian_without_leading_zero());
                let e = b64url(k.public_key().exponent().big_endian_without_leading_zero());
                let thumb = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                (
                    Pair::Rs256(k),
                    (thumb, json!({"kty": "RSA", "n": n, "e": e})),
                )
            }
        };
        let verifier = match &pair {
            Pair::Es256(k) => signature::ParsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                k.public_key().as_ref(),
            ),
            Pair::EdDsa(k) => {
                signature::ParsedPublicKey::new(&signature::ED25519, k.public_key().as_ref())
            }
            Pair::Rs256(k) => signature::ParsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref(),
            ),
        }
        .map_err(|_| KeyError(algorithm))?;
        let (thumbprint_input, mut jwk) = public;
        // RFC 7638 thumbprint as the key id: stable, and derived from the key.
        let kid = b64url(&super::sha256(thumbprint_input.as_bytes()));
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(algorithm.as_str());
        let header = json!({"alg": algorithm.as_str(), "typ": "at+jwt", "kid": kid});
        Ok(Self {
            header_b64: b64url(header.to_string().as_bytes()),
            kid,
            algorithm,
            pair,
            verifier,
            rng: SystemRandom::new(),
            jwk,
        })
    }

    /// Checks a JWS signature made by this key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.verifier.verify_sig(message, sig).is_ok()
    }

    /// The JWS signature over `message` (RFC 7515 §5.1).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let err = |_| KeyError(self.algorithm);
        match &self.pair {
            Pair::Es256(k) => Ok(k.sign(&self.rng, message).map_err(err)?.as_ref().to_vec()),
            Pair::EdDsa(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(err)?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::UnparsedPublicKey;

    #[test]
    fn every_algorithm_round_trips_through_pkcs8_and_verifies() {
        for alg in Algorithm::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(key.kid, again.kid, "{alg}");
            let sig = again.sign(b"message").unwrap();
            let public = match &key.pair {
                Pair::Es256(k) => UnparsedPublicKey::new(
                    &signature::ECDSA_P256_SHA256_FIXED,
                    k.public_key().as_ref().to_vec(),
                ),
                Pair::EdDsa(k) => {
                    UnparsedPublicKey::new(&signature::ED25519, k.public_key().as_ref().to_vec())
                }
                Pair::Rs256(k) => UnparsedPublicKey::new(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    k.public_key().as_ref().to_vec(),
                ),
            };
            public.verify(b"message", &sig).unwrap();
            assert_eq!(key.jwk["alg"], alg.as_str());
        }
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(SigningKey::from_pkcs8(Algorithm::ES256, b"nonsense").is_err());
    }
}
