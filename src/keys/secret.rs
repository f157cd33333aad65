use hmac::{Hmac, Mac};
use sha2::Sha256;
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
///
/// RustCrypto's HMAC rather than aws-lc's, with the key's inner and outer
/// states computed once: a copy of them is two SHA-256 states, where each
/// of aws-lc-rs's `hmac::sign` calls set up and copied a whole `HMAC_CTX`.
/// 107 ns a hash instead of 206-229 ns here (SHA extensions in both), and
/// every token request hashes its client's secret (an opaque token, itself
/// too). The tags are the same bytes: HMAC-SHA-256 either way.
#[derive(Clone)]
pub struct SecretHasher(Hmac<Sha256>);

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher(..)")
    }
}

impl SecretHasher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(<Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length"))
    }

    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
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

    /// Hashes already stored (secrets, opaque tokens) must still match:
    /// the same HMAC-SHA-256 tags as aws-lc's, which made them.
    #[test]
    fn rfc2104_hash_is_the_hmac_sha256_already_stored() {
        use aws_lc_rs::hmac;
        for n in [0usize, 1, 31, 55, 56, 64, 65, 200] {
            let key: [u8; 32] = random_bytes();
            let secret: String = b64url(&vec![0x5a; n]).chars().take(n).collect();
            let stored = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), secret.as_bytes());
            assert_eq!(
                &SecretHasher::new(&key).hash(&secret)[..],
                stored.as_ref(),
                "{n}"
            );
        }
    }
}
