use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf;
use base64::Engine;

use super::{random_bytes, SecretHasher};

/// The root secret: 32 bytes from `WRIT_MASTER_KEY` (base64) or a key file.
/// Two keys are derived from it with HKDF (RFC 5869): one encrypts private
/// keys at rest, one keys the HMAC under which client secrets are stored.
pub struct MasterKey {
    kek: LessSafeKey,
    secret_hmac: [u8; 32],
    token_hmac: [u8; 32],
    verifier: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("WRIT_MASTER_KEY must be 32 bytes encoded in base64")]
    BadEnv,
    #[error("the master key file {0} is not 32 bytes of base64")]
    BadFile(String),
    #[error("cannot read or create the master key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("a private key could not be decrypted: wrong master key or corrupted key row")]
    Decrypt,
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"writ").extract(bytes);
        let derive = |info: &'static [u8]| {
            let mut out = [0u8; 32];
            prk.expand(&[info], Len32)
                .and_then(|okm| okm.fill(&mut out))
                .expect("HKDF output of 32 bytes is always possible");
            out
        };
        let kek = derive(b"writ key-encryption-key v1");
        Self {
            kek: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &kek).expect("32-byte AES key")),
            secret_hmac: derive(b"writ client-secret-hmac v1"),
            token_hmac: derive(b"writ opaque-token-hmac v1"),
            verifier: derive(b"writ master-key verifier v1"),
        }
    }

    pub fn from_base64(text: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()))
            .ok()?;
        let bytes: [u8; 32] = raw.try_into().ok()?;
        Some(Self::from_bytes(&bytes))
    }

    /// `WRIT_MASTER_KEY` when given, else the file at `path`, created with
    /// mode 0600 on first use.
    pub fn load(env: Option<&str>, path: &Path) -> Result<Self, MasterKeyError> {
        match Self::load_existing(env, path)? {
            Some(key) => Ok(key),
            None => Self::create_file(path),
        }
    }

    /// `WRIT_MASTER_KEY` when given, else the file at `path`; `None` when
    /// there is no such file (yet).
    pub fn load_existing(env: Option<&str>, path: &Path) -> Result<Option<Self>, MasterKeyError> {
        if let Some(text) = env {
            return Self::from_base64(text)
                .map(Some)
                .ok_or(MasterKeyError::BadEnv);
        }
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text)
                .map(Some)
                .ok_or(MasterKeyError::BadFile(shown)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MasterKeyError::Io(shown, e)),
        }
    }

    /// A new random key, written to `path` with mode 0600 (never over an
    /// existing file).
    pub fn create_file(path: &Path) -> Result<Self, MasterKeyError> {
        let bytes: [u8; 32] = random_bytes();
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        write_private(path, text.as_bytes())
            .map_err(|e| MasterKeyError::Io(path.display().to_string(), e))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// A value derived from the key under its own label: stored in the
    /// database, it tells whether a key is the one the data is sealed
    /// under, and reveals nothing of the other derived keys.
    pub fn verifier(&self) -> [u8; 32] {
        self.verifier
    }

    /// Compares a stored verifier in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        super::hashes_equal(&self.verifier, stored)
    }

    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher::new(&self.secret_hmac)
    }

    /// Keys the hash under which opaque access tokens are stored.
    pub fn token_hasher(&self) -> SecretHasher {
        SecretHasher::new(&self.token_hmac)
    }

    /// AES-256-GCM with a random nonce, bound to `context` (the key id) so a
    /// row's ciphertext cannot be moved to another row.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
        let mut out = plaintext.to_vec();
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut out,
            )
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&out);
        sealed
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Decrypt)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .kek
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_key_opens_only_with_same_key_and_context() {
        let a = MasterKey::from_bytes(&[1; 32]);
        let b = MasterKey::from_bytes(&[2; 32]);
        let sealed = a.seal(b"kid-1", b"private");
        assert_eq!(a.open(b"kid-1", &sealed).unwrap(), b"private");
        assert!(a.open(b"kid-2", &sealed).is_err());
        assert!(b.open(b"kid-1", &sealed).is_err());
        assert!(a.open(b"kid-1", &sealed[..5]).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.db.key");
        let first = MasterKey::load(None, &path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = MasterKey::load(None, &path).unwrap();
        let sealed = first.seal(b"k", b"x");
        assert_eq!(again.open(b"k", &sealed).unwrap(), b"x");
    }

    #[test]
    fn the_verifier_tells_keys_apart() {
        let a = MasterKey::from_bytes(&[1; 32]);
        let b = MasterKey::from_bytes(&[2; 32]);
        assert!(a.matches(&a.verifier()));
        assert!(!b.matches(&a.verifier()));
        assert!(!a.matches(&a.verifier()[..31]));
        assert_ne!(a.verifier(), a.secret_hmac, "its own label");
    }

    #[test]
    fn a_missing_key_file_is_not_made_by_load_existing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.db.key");
        assert!(MasterKey::load_existing(None, &path).unwrap().is_none());
        assert!(!path.exists());
    }

    #[test]
    fn bad_env_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(MasterKey::load(Some("c2hvcnQ="), &path).is_err());
        assert!(!path.exists());
    }
}
