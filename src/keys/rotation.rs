//! Creating and rotating signing keys in the store.

use super::{Algorithm, MasterKey, SigningKey};
use crate::store::{KeyRecord, Store, StoreError};

/// Slack for clocks of resource servers that run a little behind.
const CLOCK_SKEW: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not generate a {0} key")]
    Generate(Algorithm),
}

/// Generates a signing key for each algorithm in `needed` that has none yet:
/// ES256 on first start, and others when an API first asks for them.
pub async fn ensure_signing_keys(
    store: &Store,
    master: &MasterKey,
    needed: &[Algorithm],
    now: i64,
) -> Result<Vec<String>, RotationError> {
    let keys = store.keys().await?;
    let mut created = Vec::new();
    for &alg in needed {
        if !keys
            .iter()
            .any(|k| k.algorithm == alg && k.retired_at.is_none())
        {
            created.push(add(store, master, alg, now, now).await?);
        }
    }
    Ok(created)
}

/// Replaces the active key of each algorithm in use (or only `only`). The
/// replaced keys stop signing at once and stay in the JWKS until every token
/// they may have signed has expired.
pub async fn rotate(
    store: &Store,
    master: &MasterKey,
    only: Option<Algorithm>,
    server_default_lifetime: u64,
    now: i64,
) -> Result<Vec<String>, RotationError> {
    let keys = store.keys().await?;
    let mut algorithms: Vec<Algorithm> = keys
        .iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.algorithm)
        .filter(|a| only.is_none_or(|o| o == *a))
        .collect();
    if let Some(o) = only {
        if algorithms.is_empty() {
            algorithms.push(o);
        }
    }
    algorithms.sort();
    algorithms.dedup();
    let publish_until = now + longest_lifetime(store, server_default_lifetime).await? + CLOCK_SKEW;
    let mut created = Vec::new();
    for alg in algorithms {
        created.push(add(store, master, alg, now, publish_until).await?);
    }
    Ok(created)
}

/// The longest lifetime any token could have been issued with.
async fn longest_lifetime(store: &Store, server_default: u64) -> Result<i64, StoreError> {
    let mut longest = server_default;
    for c in store.clients().await? {
        longest = longest.max(c.lifetime.unwrap_or(0));
    }
    for a in store.apis().await? {
        longest = longest.max(a.lifetime.unwrap_or(0));
    }
    Ok(longest.min(i64::MAX as u64 / 2) as i64)
}

async fn add(
    store: &Store,
    master: &MasterKey,
    algorithm: Algorithm,
    now: i64,
    publish_until: i64,
) -> Result<String, RotationError> {
    let (key, pkcs8) =
        SigningKey::generate(algorithm).map_err(|_| RotationError::Generate(algorithm))?;
    let record = KeyRecord {
        kid: key.kid.clone(),
        algorithm,
        private_key: master.seal(key.kid.as_bytes(), &pkcs8),
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    store.add_key(&record, publish_until).await?;
    Ok(key.kid)
}
