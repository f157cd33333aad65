//! Key material: the master key and what is derived from it, client secrets,
//! and the signing keys behind the JWKS.

pub mod client_keys;
mod master;
pub mod remote;
pub mod rotation;
mod secret;
mod signing;

pub use client_keys::{AssertionAlgorithm, ClientKey, ClientKeys, JwksError};
pub use master::{MasterKey, MasterKeyError};
pub use secret::{generate_secret, hashes_equal, SecretHasher, SECRET_PREFIX};
pub use signing::{KeyError, SigningKey};

use base64::Engine;

/// base64url without padding (RFC 7515 §2), used for JWS and JWK members.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `n` random bytes from aws-lc's generator, drawn for each call. Not drawn
/// ahead into a buffer, though each call costs an RDRAND and an AES key
/// schedule (2.5k instructions): aws-lc mixes fresh CPU randomness into
/// every call so that two copies of a snapshotted virtual machine (as
/// Firecracker clones them) do not hand out the same bytes, and a buffer
/// drawn before the snapshot would be handed out twice, as the same token.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator failed");
    buf
}
