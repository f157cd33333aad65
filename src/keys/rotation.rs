//! The signing-key lifecycle: *next* (published before it ever signs, so
//! resource servers that cache the JWKS already know it), *active* (signs),
//! *retiring* (published, not signing, until its tokens expire), gone.

use super::{MasterKey, SigningKey};
use crate::store::{KeyRecord, KeyState, Store, StoreError};
use crate::types::Algorithm;

/// Slack for clocks of resource servers that run a little behind.
const CLOCK_SKEW: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not generate a {0} key")]
    Generate(Algorithm),
    #[error("the next {0} key {1} cannot be opened with this master key (corrupted, or sealed under another key): it is not activated")]
    Unopenable(Algorithm, String),
}

/// Makes sure each algorithm in `needed` has an active and a next key: ES256
/// on first start, others when an API first asks for them. Keys are made
/// outside the store's lock (an RSA key takes a while) and inserted only
/// where, under it, they are still missing: nodes starting together make one
/// active and one next key per algorithm between them.
pub async fn ensure_signing_keys(
    store: &Store,
    master: &MasterKey,
    needed: &[Algorithm],
    now: i64,
) -> Result<Vec<String>, RotationError> {
    let keys = store.keys().await?;
    let mut candidates = Vec::new();
    for &alg in needed {
        let has = |state| {
            keys.iter()
                .any(|k| k.algorithm == alg && k.state(now) == state)
        };
        if !has(KeyState::Active) {
            candidates.push(generate(master, alg, now, Some(now))?);
        }
        if !has(KeyState::Next) {
            candidates.push(generate(master, alg, now, None)?);
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    Ok(store.insert_missing_keys(&candidates, now).await?)
}

/// One rotation for each algorithm in use (or only `only`): next → active,
/// active → retiring, and a new next. Returns the newly active key ids.
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
        .filter(|k| k.state(now) == KeyState::Active)
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
    let mut activated = Vec::new();
    for alg in algorithms {
        activated.push(rotate_one(store, master, &keys, alg, now, publish_until).await?);
    }
    Ok(activated)
}

/// Rotates the algorithms whose active key is older than `every` seconds.
/// Several nodes may try at once; the store lets only one succeed.
pub async fn rotate_due(
    store: &Store,
    master: &MasterKey,
    every: i64,
    server_default_lifetime: u64,
    now: i64,
) -> Result<Vec<String>, RotationError> {
    let keys = store.keys().await?;
    let due: Vec<Algorithm> = keys
        .iter()
        .filter(|k| k.state(now) == KeyState::Active)
        .filter(|k| k.activated_at.unwrap_or(k.created_at) + every <= now)
        .map(|k| k.algorithm)
        .collect();
    let mut activated = Vec::new();
    if due.is_empty() {
        return Ok(activated);
    }
    let publish_until = now + longest_lifetime(store, server_default_lifetime).await? + CLOCK_SKEW;
    for alg in due {
        match rotate_one(store, master, &keys, alg, now, publish_until).await {
            Ok(kid) => activated.push(kid),
            Err(RotationError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(activated)
}

async fn rotate_one(
    store: &Store,
    master: &MasterKey,
    keys: &[KeyRecord],
    alg: Algorithm,
    now: i64,
    publish_until: i64,
) -> Result<String, RotationError> {
    let find = |state| {
        keys.iter()
            .find(|k| k.algorithm == alg && k.state(now) == state)
    };
    let retiring = find(KeyState::Active).map(|k| k.kid.as_str());
    let promote = match find(KeyState::Next) {
        // Never activate a key nobody could sign with.
        Some(k) if opens(master, k) => k.clone(),
        Some(k) => return Err(RotationError::Unopenable(alg, k.kid.clone())),
        None => generate(master, alg, now, None)?,
    };
    let next = generate(master, alg, now, None)?;
    store
        .rotate_keys(retiring, &promote, &next, now, publish_until)
        .await?;
    Ok(promote.kid)
}

/// The longest lifetime any token could have been issued with: the given
/// default, the longest default any server opened the database with (a
/// rotation from the CLI does not know the servers' configuration), and
/// every client's and API's own.
async fn longest_lifetime(store: &Store, server_default: u64) -> Result<i64, StoreError> {
    let recorded = store.longest_token_lifetime().await?.unwrap_or(0);
    let configured = store.longest_configured_lifetime().await?;
    let longest = server_default.max(recorded).max(configured);
    Ok(longest.min(i64::MAX as u64 / 2) as i64)
}

/// Decrypts and parses as the key its row names.
fn opens(master: &MasterKey, k: &KeyRecord) -> bool {
    master
        .open(k.kid.as_bytes(), &k.private_key)
        .ok()
        .and_then(|pkcs8| SigningKey::from_pkcs8(k.algorithm, &pkcs8).ok())
        .is_some_and(|key| key.kid == k.kid)
}

fn generate(
    master: &MasterKey,
    algorithm: Algorithm,
    now: i64,
    activated_at: Option<i64>,
) -> Result<KeyRecord, RotationError> {
    let (key, pkcs8) =
        SigningKey::generate(algorithm).map_err(|_| RotationError::Generate(algorithm))?;
    Ok(KeyRecord {
        private_key: master.seal(key.kid.as_bytes(), &pkcs8),
        kid: key.kid,
        algorithm,
        created_at: now,
        activated_at,
        retired_at: None,
        publish_until: None,
    })
}
