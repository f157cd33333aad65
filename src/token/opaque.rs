//! Opaque access tokens, written with group commit so issuing one does not
//! cost a transaction.
//!
//! A token is `writ_at_` + base64url(selector ‖ secret): a 16-byte selector
//! and 256 random bits of secret. The selector is the millisecond the token
//! expires (`store::selector_prefix`) and 80 random bits: in that order,
//! inserts append to the table's B-tree rather than dirtying a random page
//! each, and the expired tokens are one range of it to purge. The store
//! keeps the selector and an HMAC of the whole token, never the token.

use std::sync::Arc;

use base64::Engine;

use crate::keys::random_bytes;
use crate::store::{selector_prefix, Grouped, Store, StoreError, TokenRecord};

/// Prefix of every opaque token, so secret scanners can spot a leaked one and
/// the reader can tell it from a JWT without a lookup.
pub const PREFIX: &str = "writ_at_";
pub const SELECTOR: usize = 16;
const SECRET: usize = 32;

/// A fresh opaque token and its selector, expiring at `expires_millis`
/// (Unix milliseconds, within the second of its `expires_at`).
pub fn generate(expires_millis: i64) -> (String, [u8; SELECTOR]) {
    let mut raw = [0u8; SELECTOR + SECRET];
    raw[..6].copy_from_slice(&selector_prefix(expires_millis));
    raw[6..].copy_from_slice(&random_bytes::<{ SELECTOR + SECRET - 6 }>());
    let mut selector = [0u8; SELECTOR];
    selector.copy_from_slice(&raw[..SELECTOR]);
    // Encoded straight after the prefix: `format!` of an encoded copy cost
    // two allocations and the formatting machinery.
    let mut token = String::with_capacity(PREFIX.len() + (SELECTOR + SECRET) * 4 / 3);
    token.push_str(PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(raw, &mut token);
    (token, selector)
}

/// The selector of something shaped like one of our opaque tokens.
pub fn selector(token: &str) -> Option<[u8; SELECTOR]> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.strip_prefix(PREFIX)?)
        .ok()?;
    if raw.len() != SELECTOR + SECRET {
        return None;
    }
    let mut selector = [0u8; SELECTOR];
    selector.copy_from_slice(&raw[..SELECTOR]);
    Some(selector)
}

/// Queues tokens for the database (group commit, `store::Grouped`):
/// every token is durable before its response is sent, and under load one
/// commit serves many requests.
#[derive(Clone)]
pub struct TokenWriter(Grouped<TokenRecord, ()>);

impl TokenWriter {
    /// `max_batch = 1` gives one transaction per token (for comparison).
    pub fn spawn(store: Store, writers: usize, max_batch: usize) -> Self {
        Self(Grouped::spawn(writers, max_batch, move |records| {
            let store = store.clone();
            async move {
                let count = records.len();
                store.insert_tokens(records).await?;
                Ok(vec![(); count])
            }
        }))
    }

    /// Resolves once the token is committed; queued at the call
    /// (`Grouped::submit`).
    pub fn persist(
        &self,
        record: TokenRecord,
    ) -> impl std::future::Future<Output = Result<(), Arc<StoreError>>> + Send + '_ {
        self.0.submit(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_in_order_of_expiry_and_recoverable() {
        let (a, sa) = generate(1_800_000_000_000);
        let (b, sb) = generate(1_800_000_000_001);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_eq!(selector(&a), Some(sa));
        assert_eq!(selector(&b), Some(sb));
        assert!(sa < sb, "tokens that expire later sort later");
        assert!(sa[0] >= 0x80, "after every selector from the issue time");
        assert_eq!(selector("writ_at_short"), None);
        assert_eq!(selector("eyJ.a.b"), None);
        assert_eq!(selector(&a[..a.len() - 1]), None);
    }
}
