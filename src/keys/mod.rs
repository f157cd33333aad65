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

/// `N` random bytes from aws-lc's generator, drawn ahead in blocks of
/// `RANDOM_BLOCK`: each call into it costs a draw from the CPU's RDRAND and
/// an AES key schedule (2.5k instructions for the 42 bytes of an opaque
/// token, as many for a JWT's `jti`), where a block costs that once for a
/// hundred tokens. Each thread has its own block; bytes handed out are wiped
/// from it, so none is handed out twice or kept. (Writ never forks, which
/// would copy a block into the child.)
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if N > RANDOM_BLOCK / 4 {
        aws_lc_rs::rand::fill(&mut out).expect("the system random generator failed");
        return out;
    }
    RANDOM.with_borrow_mut(|block| {
        if block.taken + N > RANDOM_BLOCK {
            aws_lc_rs::rand::fill(&mut block.bytes).expect("the system random generator failed");
            block.taken = 0;
        }
        let drawn = &mut block.bytes[block.taken..block.taken + N];
        out.copy_from_slice(drawn);
        drawn.fill(0);
        block.taken += N;
    });
    out
}

const RANDOM_BLOCK: usize = 4096;

struct RandomBlock {
    bytes: [u8; RANDOM_BLOCK],
    /// Bytes handed out (and wiped) from the front.
    taken: usize,
}

thread_local! {
    static RANDOM: std::cell::RefCell<RandomBlock> = const {
        std::cell::RefCell::new(RandomBlock {
            bytes: [0; RANDOM_BLOCK],
            taken: RANDOM_BLOCK,
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_never_handed_out_twice_and_not_kept() {
        // Across several refills of the block: no draw repeats.
        let draws: std::collections::HashSet<[u8; 16]> =
            (0..3 * RANDOM_BLOCK / 16).map(|_| random_bytes()).collect();
        assert_eq!(draws.len(), 3 * RANDOM_BLOCK / 16);
        let drawn: [u8; 42] = random_bytes();
        assert_ne!(drawn, [0; 42]);
        RANDOM.with_borrow(|block| {
            assert!(block.bytes[..block.taken].iter().all(|&b| b == 0));
            assert!(block.bytes[block.taken..].iter().any(|&b| b != 0));
        });
        // More than the block holds comes straight from the generator.
        let big: [u8; RANDOM_BLOCK] = random_bytes();
        assert!(big.iter().any(|&b| b != 0));
    }
}
