use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

use super::{b64url, random_bytes};

/// Prefix of every client secret, so secret scanners can recognise a leaked one.
pub const SECRET_PREFIX: &str = "writ_sk_";

/// A new client secret: 256 random bits.
pub fn generate_secret() -> String {
    format!("{SECRET_PREFIX}{}", b64url(&random_bytes::<32>()))
}

/// Client secrets are stored as HMAC-SHA-256 under a server key, as fosite
/// stores token signatures: with 256-bit random secrets no slow hash is needed,
/// and checking one costs a microsecond rather than bcrypt's tens of milliseconds.
#[derive(Clone)]
pub struct SecretHasher(hmac::Key);

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher(..)")
    }
}

impl SecretHasher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.0, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Constant-time equality of two stored hashes.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_unique() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_depends_on_server_key() {
        let s = generate_secret();
        let h1 = SecretHasher::new(&[1; 32]).hash(&s);
        let h2 = SecretHasher::new(&[2; 32]).hash(&s);
        assert_ne!(h1, h2);
        assert!(hashes_equal(&h1, &SecretHasher::new(&[1; 32]).hash(&s)));
    }
}
