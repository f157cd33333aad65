//! The in-memory snapshot of clients, APIs, grants and keys.
//!
//! These are few, read on every token request and rarely changed, so the hot
//! path reads an immutable `Registry` (swapped whole when the store's revision
//! moves) and never touches the database or takes a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::keys::{hashes_equal, MasterKey, SigningKey};
use crate::store::{ApiRecord, KeyRecord, KeyState, Snapshot};
use crate::types::{Algorithm, TokenFormat};

/// `last_used_at` is written at most this often per secret.
pub const USAGE_INTERVAL: i64 = 60;

#[derive(Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub public: bool,
    /// Allowed scopes; may hold trailing-`*` patterns.
    pub scopes: Vec<String>,
    /// What a request without `scope` receives: the configured default scope,
    /// else the client's literal (non-pattern) scopes.
    pub default_scope: Vec<String>,
    pub lifetime: Option<u64>,
    pub grant_types: Vec<String>,
    pub enabled: bool,
    pub token_format: Option<TokenFormat>,
    /// Static claims added to its tokens and introspection answers.
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    secrets: Vec<StoredSecret>,
    /// API identifier → scopes granted for it.
    pub grants: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
pub struct StoredSecret {
    pub id: i64,
    hash: Vec<u8>,
    expires_at: Option<i64>,
    /// When use was last reported for writing to the store.
    last_reported: AtomicI64,
}

impl StoredSecret {
    /// True at most once per `USAGE_INTERVAL`: the caller then records the
    /// use off the hot path.
    pub fn should_report_use(&self, now: i64) -> bool {
        let last = self.last_reported.load(Ordering::Relaxed);
        now - last >= USAGE_INTERVAL
            && self
                .last_reported
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Client {
    /// Compares against every live secret in constant time, without stopping
    /// at the first match; returns the one that matched.
    pub fn matching_secret(&self, presented: &[u8; 32], now: i64) -> Option<&StoredSecret> {
        let mut found = None;
        for s in &self.secrets {
            let live = s.expires_at.is_none_or(|e| e > now);
            if hashes_equal(&s.hash, presented) & live {
                found = Some(s);
            }
        }
        found
    }

    /// May this client introspect and revoke tokens of other clients?
    pub fn may_introspect_any(&self) -> bool {
        self.scopes.iter().any(|s| s == INTROSPECT_SCOPE)
    }

    pub fn may_use_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

pub type Api = ApiRecord;

/// The scope that lets a client (a resource server) introspect and revoke
/// tokens issued to other clients.
pub const INTROSPECT_SCOPE: &str = "writ:introspect";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("signing key {kid}: {reason}")]
    Key { kid: String, reason: String },
}

impl RegistryError {
    /// The key the error is about.
    pub fn kid(&self) -> &str {
        match self {
            Self::Key { kid, .. } => kid,
        }
    }
}

/// Decrypts a key row and checks it is the key its id names.
fn open_key(master: &MasterKey, k: &KeyRecord) -> Result<SigningKey, RegistryError> {
    let bad = |reason: String| RegistryError::Key {
        kid: k.kid.clone(),
        reason,
    };
    let pkcs8 = master
        .open(k.kid.as_bytes(), &k.private_key)
        .map_err(|e| bad(e.to_string()))?;
    let key = SigningKey::from_pkcs8(k.algorithm, &pkcs8).map_err(|e| bad(e.to_string()))?;
    // A row whose key does not hash to its kid was tampered with.
    if key.kid != k.kid {
        return Err(bad("the key does not match its id".into()));
    }
    Ok(key)
}

#[derive(Debug, Default)]
pub struct Registry {
    pub revision: i64,
    clients: HashMap<String, Client>,
    apis: HashMap<String, Api>,
    signers: HashMap<Algorithm, Arc<SigningKey>>,
    /// Every key a resource server may still meet, active or retiring.
    published: Vec<Arc<SigningKey>>,
    /// The JWKS document (RFC 7517 §5), serialised once per snapshot.
    pub jwks: Arc<[u8]>,
    /// When a retiring key leaves the JWKS, the snapshot must be rebuilt.
    pub next_expiry: Option<i64>,
    /// Key rows that could not be opened: corrupted, or sealed under
    /// another master key. At start this stops the server.
    pub key_errors: Vec<RegistryError>,
}

impl Registry {
    /// Builds a snapshot, reusing already-decrypted keys from `previous`.
    /// Keys that cannot be opened are left out and listed in `key_errors`.
    pub fn build(
        snapshot: Snapshot,
        master: &MasterKey,
        now: i64,
        previous: Option<&Registry>,
    ) -> Self {
        let mut clients: HashMap<String, Client> = snapshot
            .clients
            .into_iter()
            .map(|c| {
                let default_scope = c.default_scope.unwrap_or_else(|| {
                    c.scopes
                        .iter()
                        .filter(|s| !s.ends_with('*'))
                        .cloned()
                        .collect()
                });
                let client = Client {
                    id: c.id.clone(),
                    name: c.name,
                    public: c.public,
                    scopes: c.scopes,
                    default_scope,
                    lifetime: c.lifetime,
                    grant_types: c.grant_types,
                    enabled: c.enabled,
                    token_format: c.token_format,
                    claims: c.claims,
                    secrets: Vec::new(),
                    grants: HashMap::new(),
                };
                (c.id, client)
            })
            .collect();
        for s in snapshot.secrets {
            if let Some(c) = clients.get_mut(&s.client_id) {
                c.secrets.push(StoredSecret {
                    id: s.id,
                    hash: s.hash,
                    expires_at: s.expires_at,
                    last_reported: AtomicI64::new(s.last_used_at.unwrap_or(i64::MIN / 2)),
                });
            }
        }
        for g in snapshot.grants {
            if let Some(c) = clients.get_mut(&g.client_id) {
                c.grants.insert(g.api, g.scopes);
            }
        }
        let apis = snapshot
            .apis
            .into_iter()
            .map(|a| (a.identifier.clone(), a))
            .collect();

        let mut signers = HashMap::new();
        let mut published = Vec::new();
        let mut next_expiry: Option<i64> = None;
        let mut key_errors = Vec::new();
        for k in snapshot.keys {
            let state = k.state(now);
            if state == KeyState::Expired {
                continue;
            }
            if let Some(until) = k.publish_until {
                next_expiry = Some(next_expiry.map_or(until, |n| n.min(until)));
            }
            let reused = previous.and_then(|p| p.published.iter().find(|s| s.kid == k.kid));
            let key = match reused {
                Some(key) => key.clone(),
                None => match open_key(master, &k) {
                    Ok(key) => Arc::new(key),
                    // One bad row must not take down clients, APIs and the
                    // other keys: it is left out (and reported), so requests
                    // it would have signed get 503, never another key's token.
                    Err(e) => {
                        key_errors.push(e);
                        continue;
                    }
                },
            };
            if state == KeyState::Active {
                signers.insert(k.algorithm, key.clone());
            }
            published.push(key);
        }
        let jwks = serde_json::json!({
            "keys": published.iter().map(|k| &k.jwk).collect::<Vec<_>>()
        });
        Self {
            revision: snapshot.revision,
            clients,
            apis,
            signers,
            published,
            jwks: serde_json::to_vec(&jwks).expect("JSON").into(),
            next_expiry,
            key_errors,
        }
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    pub fn api(&self, identifier: &str) -> Option<&Api> {
        self.apis.get(identifier)
    }

    pub fn signer(&self, algorithm: Algorithm) -> Option<&Arc<SigningKey>> {
        self.signers.get(&algorithm)
    }

    /// Any key still published (next, active or retiring), by id.
    pub fn published_key(&self, kid: &str) -> Option<&SigningKey> {
        self.published
            .iter()
            .find(|k| k.kid == kid)
            .map(|k| k.as_ref())
    }

    pub fn has_clients(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Every scope some API defines, for the RFC 8414 metadata.
    pub fn api_scopes(&self) -> Vec<String> {
        let mut all: Vec<String> = self.apis.values().flat_map(|a| a.scopes.clone()).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_row(master: &MasterKey, algorithm: Algorithm) -> KeyRecord {
        let (key, pkcs8) = SigningKey::generate(algorithm).unwrap();
        KeyRecord {
            private_key: master.seal(key.kid.as_bytes(), &pkcs8),
            kid: key.kid,
            algorithm,
            created_at: 1,
            activated_at: Some(1),
            retired_at: None,
            publish_until: None,
        }
    }

    #[test]
    fn a_key_row_that_cannot_be_opened_is_left_out_and_reported() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let good = key_row(&master, Algorithm::ES256);
        // Sealed under another master key, and a row whose bytes are not its kid's.
        let foreign = key_row(&MasterKey::from_bytes(&[8; 32]), Algorithm::EdDSA);
        let mut swapped = key_row(&master, Algorithm::RS256);
        swapped.private_key = good.private_key.clone();
        let snapshot = Snapshot {
            keys: vec![good.clone(), foreign.clone(), swapped.clone()],
            ..Snapshot::default()
        };
        let registry = Registry::build(snapshot, &master, 2, None);
        assert_eq!(registry.signer(Algorithm::ES256).unwrap().kid, good.kid);
        assert!(registry.signer(Algorithm::EdDSA).is_none());
        assert!(registry.signer(Algorithm::RS256).is_none());
        assert!(registry.published_key(&foreign.kid).is_none());
        let reported: Vec<String> = registry.key_errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(reported.len(), 2, "{reported:?}");
        assert!(reported[0].contains(&foreign.kid) && reported[1].contains(&swapped.kid));
    }
}
