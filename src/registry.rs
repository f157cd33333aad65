//! What the hot path reads, kept in memory and fresh by the change log.
//!
//! - APIs and signing keys are few: an immutable `Snapshot`, swapped whole
//!   (without a lock) when one of them changes.
//! - Clients may be a million: a bounded cache, loaded on demand. An id the
//!   node does not hold is looked up in the store before it is refused, so a
//!   client created by the CLI or on another node is usable by the very
//!   next request; concurrent lookups of one id share one query, and ids
//!   nobody registered are remembered for a while, so random ids do not
//!   become a flood of queries.
//! - Every registry write records what it touched (`store::Change`); the
//!   refresh task applies only those entries, so a change costs the same
//!   with ten clients or a million. A node that fell behind the log's
//!   retention starts afresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use crate::keys::{hashes_equal, ClientKeys, MasterKey, SigningKey};
use crate::store::{
    ApiRecord, Change, ClientEntry, Grouped, KeyRecord, KeyState, Snapshot as Rows, Store,
    StoreError, TrustRuleRecord,
};
use crate::types::{Algorithm, AuthMethod, TokenFormat};

/// The maps of APIs, signing keys and a client's grants, which every token
/// request looks in: foldhash (randomly seeded) rather than SipHash, which
/// was 1k instructions a request. Their keys are written by administrators;
/// a request only looks up. The client cache keeps SipHash: a request's
/// client id, any string a caller sends, is hashed into it (a miss waits in
/// moka's map of loads, and feeds its admission sketch).
type Fast = foldhash::fast::RandomState;

/// Ids nobody registered are remembered this long (or until the change
/// log says one was created), at most this many.
const UNKNOWN_FOR: Duration = Duration::from_secs(60);
const UNKNOWN_CAPACITY: u64 = 100_000;
/// Groups of ids asked of the store at once, whether they are registered.
const REGISTERED_READERS: usize = 2;
/// Changes read from the log at a time.
const CHANGE_BATCH: i64 = 10_000;

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
    pub grants: HashMap<String, Vec<String>, Fast>,
    /// For the per-client metrics: tokens issued and failed
    /// authentications while this node has held the client.
    issued: AtomicU64,
    failures: AtomicU64,
    /// `issued` and `failures` when the live view last took the counts
    /// (`take_client_windows`): written by it alone, so the request path
    /// keeps one increment per count.
    taken_issued: AtomicU64,
    taken_failures: AtomicU64,
    /// How it may authenticate.
    pub auth_methods: Vec<AuthMethod>,
    /// Its public keys for `private_key_jwt`, parsed when it was loaded.
    pub keys: Option<ClientKeys>,
    /// Or where they are fetched from.
    pub jwks_uri: Option<String>,
    /// External issuers whose tokens authenticate it (workload identity).
    pub trust: Vec<TrustRuleRecord>,
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
    pub fn from_entry(entry: ClientEntry) -> Self {
        let c = entry.client;
        // Checked when registered; a set that no longer parses (edited in
        // the database) leaves the client without keys, so it is refused.
        let keys = c.jwks.as_deref().and_then(|text| match ClientKeys::parse(text) {
            Ok(keys) => Some(keys),
            Err(e) => {
                tracing::error!(client_id = %c.id, error = %e, "a client's registered keys cannot be used");
                None
            }
        });
        let default_scope = c.default_scope.unwrap_or_else(|| {
            c.scopes
                .iter()
                .filter(|s| !s.ends_with('*'))
                .cloned()
                .collect()
        });
        Self {
            id: c.id,
            name: c.name,
            public: c.public,
            scopes: c.scopes,
            default_scope,
            lifetime: c.lifetime,
            grant_types: c.grant_types,
            enabled: c.enabled,
            token_format: c.token_format,
            claims: c.claims,
            secrets: entry
                .secrets
                .into_iter()
                .map(|s| StoredSecret {
                    id: s.id,
                    hash: s.hash,
                    expires_at: s.expires_at,
                    last_reported: AtomicI64::new(s.last_used_at.unwrap_or(i64::MIN / 2)),
                })
                .collect(),
            grants: entry
                .grants
                .into_iter()
                .map(|g| (g.api, g.scopes))
                .collect(),
            issued: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            taken_issued: AtomicU64::new(0),
            taken_failures: AtomicU64::new(0),
            auth_methods: c.auth_methods,
            keys,
            jwks_uri: c.jwks_uri,
            trust: entry.trust,
        }
    }

    /// May it authenticate this way?
    pub fn may_authenticate_with(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }

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

    pub fn count_issued(&self) {
        self.issued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
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

/// The APIs and signing keys, immutable; rebuilt whole when one changes.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The store's revision when it was read.
    pub revision: i64,
    apis: HashMap<String, Api, Fast>,
    signers: HashMap<Algorithm, Arc<SigningKey>, Fast>,
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

impl Snapshot {
    /// Builds a snapshot, reusing already-decrypted keys from `previous`.
    /// Keys that cannot be opened are left out and listed in `key_errors`.
    pub fn build(rows: Rows, master: &MasterKey, now: i64, previous: Option<&Snapshot>) -> Self {
        let apis = rows
            .apis
            .into_iter()
            .map(|a| (a.identifier.clone(), a))
            .collect();
        let mut signers = HashMap::default();
        let mut published = Vec::new();
        let mut next_expiry: Option<i64> = None;
        let mut key_errors = Vec::new();
        for k in rows.keys {
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
            revision: rows.revision,
            apis,
            signers,
            published,
            jwks: serde_json::to_vec(&jwks).expect("JSON").into(),
            next_expiry,
            key_errors,
        }
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

    /// Every scope some API defines, for the RFC 8414 metadata.
    pub fn api_scopes(&self) -> Vec<String> {
        let mut all: Vec<String> = self.apis.values().flat_map(|a| a.scopes.clone()).collect();
        all.sort();
        all.dedup();
        all
    }

    fn key_error_kids(&self) -> Vec<&str> {
        self.key_errors.iter().map(|e| e.kid()).collect()
    }
}

/// What a refresh did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Change-log entries applied.
    pub changes: usize,
    /// The API and key snapshot was rebuilt.
    pub rebuilt: bool,
    /// The log no longer reached back: everything was dropped and re-read.
    pub reset: bool,
}

/// Why a client could not be loaded: an id nobody registered, or the store.
#[derive(Debug, Clone)]
enum Load {
    Unknown,
    Store(Arc<StoreError>),
}

pub struct Registry {
    snapshot: ArcSwap<Snapshot>,
    clients: moka::future::Cache<String, Arc<Client>>,
    unknown: moka::sync::Cache<String, ()>,
    /// Whether ids are registered clients, asked of the store in groups.
    registered: Grouped<String, bool>,
    store: Store,
    master: Arc<MasterKey>,
    /// The newest revision whose changes this node has applied.
    applied: AtomicI64,
    /// One snapshot rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("applied", &self.applied.load(Ordering::Relaxed))
            .field("clients", &self.clients.entry_count())
            .finish()
    }
}

impl Registry {
    /// Reads the APIs and keys; clients come as they are asked for.
    pub async fn open(
        store: Store,
        master: Arc<MasterKey>,
        capacity: u64,
        now: i64,
    ) -> Result<Self, StoreError> {
        let rows = store.snapshot().await?;
        let applied = rows.revision;
        let snapshot = Snapshot::build(rows, &master, now, None);
        Ok(Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            clients: moka::future::Cache::builder()
                .max_capacity(capacity.max(1))
                .build(),
            unknown: moka::sync::Cache::builder()
                .max_capacity(UNKNOWN_CAPACITY)
                .time_to_live(UNKNOWN_FOR)
                .build(),
            registered: {
                let store = store.clone();
                Grouped::spawn(REGISTERED_READERS, 200, move |ids: Vec<String>| {
                    let store = store.clone();
                    async move { store.known_clients(&ids).await }
                })
            },
            store,
            master,
            applied: AtomicI64::new(applied),
            rebuilding: tokio::sync::Mutex::new(()),
        })
    }

    /// The APIs and keys, as of now; no lock, no query.
    pub fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// A client by id: from memory, else from the store (read-your-writes);
    /// `None` for an id nobody registered.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(c) = self.clients.get(id).await {
            crate::metrics::registry_lookup(true);
            return Ok(Some(c));
        }
        crate::metrics::registry_lookup(false);
        if self.unknown.contains_key(id) {
            return Ok(None);
        }
        // Boxed: the load's state (a shared query, the store's) is kilobytes,
        // which every request's future would otherwise carry, and move.
        Box::pin(self.load_client(id)).await
    }

    /// A client the cache does not hold, from the store.
    async fn load_client(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        let before = self.applied();
        let store = &self.store;
        let loaded = self
            .clients
            .try_get_with_by_ref(id, async {
                crate::metrics::registry_store_read();
                // Is it registered? Asked together with the other misses
                // of the moment: a flood of unknown ids costs the store a
                // query per round trip, not one each.
                match self.registered.submit(id.to_owned()).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Load::Unknown),
                    Err(e) => return Err(Load::Store(e)),
                }
                match store.registered_client_entry(id).await {
                    Ok(Some(entry)) => Ok(Arc::new(Client::from_entry(entry))),
                    Ok(None) => Err(Load::Unknown),
                    Err(e) => Err(Load::Store(Arc::new(e))),
                }
            })
            .await;
        // A change applied while the query ran may be newer than what it
        // read: then keep nothing from it, and the next request reads again.
        let raced = self.applied() != before;
        match loaded {
            Ok(client) => {
                if raced {
                    self.clients.invalidate(id).await;
                }
                Ok(Some(client))
            }
            Err(e) => match &*e {
                Load::Unknown => {
                    if !raced {
                        self.unknown.insert(id.to_owned(), ());
                    }
                    Ok(None)
                }
                Load::Store(e) => Err(StoreError::Shared(e.clone())),
            },
        }
    }

    /// Calls `each` with the counts of every client held that has any.
    pub fn client_counts(&self, mut each: impl FnMut(crate::metrics::ClientCounts<'_>)) {
        for (id, c) in self.clients.iter() {
            let (issued, failures) = (
                c.issued.load(Ordering::Relaxed),
                c.failures.load(Ordering::Relaxed),
            );
            if issued > 0 || failures > 0 {
                each(crate::metrics::ClientCounts {
                    client_id: &id,
                    issued,
                    failures,
                });
            }
        }
    }

    /// Calls `each` with the counts of every client held that has any
    /// since the last call, and starts them again from zero.
    pub fn take_client_windows(&self, mut each: impl FnMut(crate::metrics::ClientCounts<'_>)) {
        for (id, c) in self.clients.iter() {
            let (issued, failures) = (
                c.issued.load(Ordering::Relaxed),
                c.failures.load(Ordering::Relaxed),
            );
            // fetch_max: two takers at once never count a request twice.
            let issued_since =
                issued.saturating_sub(c.taken_issued.fetch_max(issued, Ordering::Relaxed));
            let failures_since =
                failures.saturating_sub(c.taken_failures.fetch_max(failures, Ordering::Relaxed));
            if issued_since > 0 || failures_since > 0 {
                each(crate::metrics::ClientCounts {
                    client_id: &id,
                    issued: issued_since,
                    failures: failures_since,
                });
            }
        }
    }

    /// Read-your-writes for a target: an API this node does not hold, or a
    /// grant its cached client lacks, is looked for in the store before a
    /// request is refused. Returns the client as now known.
    pub async fn refresh_for_target(
        &self,
        client: &Arc<Client>,
        audience: &str,
        now: i64,
    ) -> Result<Arc<Client>, StoreError> {
        // Not remembered when absent, unlike unknown client ids: the caller
        // has authenticated, and spends its own rate budget on each try.
        // The snapshot is re-read only if the store has moved since.
        let snapshot = self.snapshot();
        let stale = match snapshot.api(audience) {
            None => true,
            Some(api) => snapshot.signer(api.algorithm).is_none(),
        };
        if stale && self.store.revision().await? > snapshot.revision {
            self.rebuild(now).await?;
        }
        if client.grants.contains_key(audience) {
            return Ok(client.clone());
        }
        self.clients.invalidate(&client.id).await;
        Ok(self
            .client(&client.id)
            .await?
            .unwrap_or_else(|| client.clone()))
    }

    /// Applies what the change log recorded since the last call: forgets
    /// changed clients, rebuilds the snapshot when an API or key changed
    /// (or a retiring key's publication ended), starts afresh when the log
    /// no longer reaches back.
    pub async fn apply_changes(&self, now: i64) -> Result<Applied, StoreError> {
        let mut applied = Applied::default();
        let mut rebuild = self.snapshot().next_expiry.is_some_and(|t| t <= now);
        let current = self.store.revision().await?;
        loop {
            let from = self.applied();
            let Some(changes) = self.store.changes_since(from, CHANGE_BATCH).await? else {
                return self.start_afresh(current, now, applied).await;
            };
            // Every write bumps the revision by one and records at least one
            // entry: a gap means entries were pruned or never written.
            let mut expected = from + 1;
            for record in &changes {
                if record.revision > expected {
                    return self.start_afresh(current, now, applied).await;
                }
                expected = record.revision + 1;
            }
            for record in &changes {
                match record.change() {
                    Some(Change::Client(id)) => {
                        self.clients.invalidate(id).await;
                        self.forget_unknown(id);
                    }
                    Some(Change::ClientCreated(id)) => self.forget_unknown(id),
                    Some(Change::ClientsCreated) => self.unknown.invalidate_all(),
                    Some(Change::Api(_) | Change::Keys) => {
                        rebuild = true;
                        self.unknown.invalidate_all();
                    }
                    None => {}
                }
            }
            applied.changes += changes.len();
            if let Some(last) = changes.last() {
                self.applied.store(last.revision, Ordering::Release);
            }
            if (changes.len() as i64) < CHANGE_BATCH {
                break;
            }
        }
        // A revision with no entry (a writer that records none): what it
        // changed is unknown, so nothing held can be trusted.
        if self.applied() < current {
            return self.start_afresh(current, now, applied).await;
        }
        if rebuild {
            self.rebuild(now).await?;
            applied.rebuilt = true;
        }
        Ok(applied)
    }

    /// Drops every client held and re-reads the APIs and keys.
    async fn start_afresh(
        &self,
        current: i64,
        now: i64,
        applied: Applied,
    ) -> Result<Applied, StoreError> {
        self.clients.invalidate_all();
        self.unknown.invalidate_all();
        self.rebuild(now).await?;
        self.applied.fetch_max(current, Ordering::AcqRel);
        Ok(Applied {
            reset: true,
            rebuilt: true,
            ..applied
        })
    }

    /// Re-reads the APIs and keys now (one rebuild at a time).
    pub async fn rebuild(&self, now: i64) -> Result<(), StoreError> {
        let _one = self.rebuilding.lock().await;
        let rows = self.store.snapshot().await?;
        let current = self.snapshot();
        let next = Snapshot::build(rows, &self.master, now, Some(&current));
        // Said once, when the set of unusable keys changes.
        if next.key_error_kids() != current.key_error_kids() {
            for e in &next.key_errors {
                tracing::error!(error = %e, "a signing key cannot be used; tokens it would sign get 503");
            }
        }
        self.snapshot.store(Arc::new(next));
        metrics::counter!("writ_registry_reloads_total").increment(1);
        Ok(())
    }

    /// An id remembered as unknown that may now exist.
    fn forget_unknown(&self, id: &str) {
        self.unknown.invalidate(id);
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
        let rows = Rows {
            keys: vec![good.clone(), foreign.clone(), swapped.clone()],
            ..Rows::default()
        };
        let registry = Snapshot::build(rows, &master, 2, None);
        assert_eq!(registry.signer(Algorithm::ES256).unwrap().kid, good.kid);
        assert!(registry.signer(Algorithm::EdDSA).is_none());
        assert!(registry.signer(Algorithm::RS256).is_none());
        assert!(registry.published_key(&foreign.kid).is_none());
        let reported: Vec<String> = registry.key_errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(reported.len(), 2, "{reported:?}");
        assert!(reported[0].contains(&foreign.kid) && reported[1].contains(&swapped.kid));
    }
}
