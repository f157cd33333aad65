//! `writ serve`: open the store, make sure keys exist, build the registry,
//! keep it fresh, and serve HTTP until told to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, LimitsConfig, Tls};
use crate::http::connections::ConnectionLimit;
use crate::http::{router, AppState, Shared};
use crate::keys::rotation::{ensure_signing_keys, rotate_due, RotationError};
use crate::keys::{MasterKey, MasterKeyError};
use crate::oauth::client_credentials::GrantPolicy;
use crate::registry::{Registry, RegistryError};
use crate::store::{Backend, Location, Store, StoreError};
use crate::token::opaque::TokenWriter;
use crate::types::Algorithm;

/// How often the store's revision is checked. Changes made by the CLI or
/// another node reach the hot path within this interval plus a rebuild
/// (on PostgreSQL, NOTIFY usually brings them sooner).
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(250);
/// How long in-flight HTTPS requests may take to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often the TLS certificate and key files are checked for changes.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(2);
/// How often expired tokens and revocations are purged, in bounded batches.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
const PURGE_BATCH: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    Keys(#[from] RotationError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("WRIT_MASTER_KEY must be set with PostgreSQL: every node and the CLI must share it")]
    NoSharedMasterKey,
    #[error("cannot load the TLS certificate or key: {0}")]
    Tls(std::io::Error),
}

/// The master key file sits beside the database: `writ.db` → `writ.db.key`.
pub fn key_file_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Opens the database and the master key, as both `serve` and the CLI do.
pub async fn open(config: &Config) -> Result<(Store, MasterKey), StartError> {
    let location = Location::parse(&config.database)?;
    // Check the key before touching the database, so a misconfigured node
    // fails without side effects.
    let master = match &location {
        Location::Sqlite(path) => {
            MasterKey::load(config.master_key.as_deref(), &key_file_for(path))?
        }
        Location::Postgres(_) => {
            let text = config
                .master_key
                .as_deref()
                .ok_or(StartError::NoSharedMasterKey)?;
            MasterKey::from_base64(text).ok_or(MasterKeyError::BadEnv)?
        }
    };
    let store = Store::open(&location).await?;
    Ok((store, master))
}

/// A server that is running; dropping it does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub issuer: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.handle.await.unwrap_or(Ok(()))
    }

    /// Waits until the server stops by itself or on a signal.
    pub async fn wait(self) -> std::io::Result<()> {
        self.handle.await.unwrap_or(Ok(()))
    }

    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, StartError> {
    let (store, master) = open(&config).await?;
    let master = Arc::new(master);
    let now = clock.now();

    let mut needed = vec![Algorithm::ES256];
    needed.extend(store.apis().await?.iter().map(|a| a.algorithm));
    needed.sort();
    needed.dedup();
    for kid in ensure_signing_keys(&store, &master, &needed, now).await? {
        tracing::info!(kid, "generated a signing key");
    }
    let mut registry = Registry::build(store.snapshot().await?, &master, now, None);
    // At start a key that cannot be opened is an error to fix, not to serve around.
    if !registry.key_errors.is_empty() {
        return Err(registry.key_errors.swap_remove(0).into());
    }
    let has_clients = registry.has_clients();
    let registry = Arc::new(ArcSwap::from_pointee(registry));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));

    let (stop, mut stopped) = watch::channel(false);
    let (secret_use, used) = mpsc::channel(4096);
    // SQLite has one writer at a time; PostgreSQL commits batches in parallel.
    let writers = match store.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let state = AppState::new(Shared {
        registry: registry.clone(),
        clock: clock.clone(),
        hasher: master.secret_hasher(),
        token_hasher: master.token_hasher(),
        issuer: issuer.clone().into(),
        policy: Arc::new(GrantPolicy {
            enabled: config.client_credentials_enabled,
            default_lifetime: config.token_lifetime,
            default_audience: config.default_audience.clone().unwrap_or(issuer.clone()),
        }),
        writer: TokenWriter::spawn(store.clone(), writers, config.opaque_max_batch),
        store: store.clone(),
        secret_use,
        limits: crate::http::limits::Limits::new(config.limits.clone()),
        metrics: crate::metrics::install(),
        per_client: Default::default(),
    });

    tokio::spawn(prune_limits(state.clone(), stop.subscribe()));
    let changed = Arc::new(Notify::new());
    tokio::spawn(listen_for_changes(
        store.clone(),
        changed.clone(),
        stop.subscribe(),
    ));
    tokio::spawn(refresh(
        store.clone(),
        master.clone(),
        registry,
        clock.clone(),
        changed,
        stop.subscribe(),
    ));
    tokio::spawn(record_secret_use(store.clone(), used));
    tokio::spawn(maintain(
        store.clone(),
        master,
        clock,
        config.clone(),
        stop.subscribe(),
    ));
    let app = router(state);
    // Both plain HTTP and HTTPS go through axum-server, which exposes hyper's
    // limits: how long a client may take to send its headers, how large they
    // may be, and (with our acceptor) how many connections may be open.
    let listener = listener
        .into_std()
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let handle = axum_server::Handle::new();
    let on_stop = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|s| *s).await;
        on_stop.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let limits = &config.limits;
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let handle = match &config.tls {
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map_err(|e| StartError::Bind(config.listen, e))?
                .acceptor(ConnectionLimit::new(DefaultAcceptor, connections));
            apply_limits(server.http_builder(), limits);
            tokio::spawn(async move {
                let result = server.handle(handle).serve(service).await;
                store.close().await;
                result
            })
        }
        Some(tls) => {
            // One crypto provider for the whole process, whatever else links rustls.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let rustls = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(StartError::Tls)?;
            tokio::spawn(reload_certificate(
                rustls.clone(),
                tls.clone(),
                stop.subscribe(),
            ));
            let mut server = axum_server::from_tcp(listener)
                .map_err(|e| StartError::Bind(config.listen, e))?
                .acceptor(ConnectionLimit::new(
                    RustlsAcceptor::new(rustls),
                    connections,
                ));
            apply_limits(server.http_builder(), limits);
            tokio::spawn(async move {
                let result = server.handle(handle).serve(service).await;
                store.close().await;
                result
            })
        }
    };

    tracing::info!("listening on {scheme}://{addr}");
    if !has_clients {
        let db = if config.database == crate::config::DEFAULT_DATABASE {
            String::new()
        } else {
            format!(" --database {}", config.database)
        };
        // The program as it was invoked (e.g. target/release/writ), so the
        // line can be pasted as it is.
        let program = std::env::args()
            .next()
            .filter(|a| Path::new(a).file_stem().is_some_and(|s| s == "writ"))
            .unwrap_or_else(|| "writ".into());
        tracing::info!(
            "no client exists yet; create one with: {program} client create --name my-service{db}"
        );
    }
    tracing::info!(issuer = %issuer, database = %redact(&config.database), "ready");
    Ok(RunningServer {
        addr,
        issuer,
        stop,
        handle,
    })
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Slow or oversized request heads are cut off by hyper itself.
fn apply_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &LimitsConfig,
) {
    builder
        .http1()
        .header_read_timeout(limits.request_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256);
}

/// Reloads the certificate when its files change (a renewal), so new
/// connections get the new one without a restart; a bad pair is logged and
/// the old certificate kept.
async fn reload_certificate(rustls: RustlsConfig, tls: Tls, mut stop: watch::Receiver<bool>) {
    let stamp = |tls: &Tls| {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (m(&tls.cert), m(&tls.key))
    };
    let mut seen = stamp(&tls);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CERTIFICATE_CHECK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = stamp(&tls);
        if now == seen {
            continue;
        }
        match rustls.reload_from_pem_file(&tls.cert, &tls.key).await {
            Ok(()) => {
                seen = now;
                tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
            }
            // Perhaps caught between writing the two files: try again next time.
            Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded"),
        }
    }
}

/// PostgreSQL: wake the refresher as soon as any node or the CLI commits a
/// registry change. SQLite has no notifications; the refresher polls.
async fn listen_for_changes(store: Store, changed: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    if store.backend() != Backend::Postgres {
        return;
    }
    loop {
        let mut changes = match store.listen().await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "LISTEN failed; relying on the periodic check");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        loop {
            tokio::select! {
                r = changes.next() => match r {
                    Ok(()) => changed.notify_one(),
                    Err(_) => break,
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Rebuilds the registry when the store's revision moves (a write by this or
/// any other process) or when a key's publication window ends.
async fn refresh(
    store: Store,
    master: Arc<MasterKey>,
    registry: Arc<ArcSwap<Registry>>,
    clock: Arc<dyn Clock>,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
            _ = changed.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let current = registry.load();
        let now = clock.now();
        let due = current.next_expiry.is_some_and(|t| t <= now);
        let result = match store.revision().await {
            Ok(rev) if rev == current.revision && !due => Ok(None),
            Ok(_) => match store.snapshot().await {
                Ok(snapshot) => {
                    let next = Registry::build(snapshot, &master, now, Some(&current));
                    // Said once, when the set of unusable keys changes.
                    let kids = |r: &Registry| {
                        r.key_errors
                            .iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                    };
                    if kids(&next) != kids(&current) {
                        for e in &next.key_errors {
                            tracing::error!(error = %e, "a signing key cannot be used; tokens it would sign get 503");
                        }
                    }
                    Ok(Some(next))
                }
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(next) => {
                if failing {
                    tracing::info!("database reachable again; registry refresh recovered");
                }
                failing = false;
                if let Some(next) = next {
                    tracing::debug!(revision = next.revision, "registry rebuilt");
                    metrics::counter!("writ_registry_reloads_total").increment(1);
                    registry.store(Arc::new(next));
                }
            }
            // Keep serving the last good snapshot; say so once per outage.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "registry refresh failed; serving the last snapshot");
            }
            Err(_) => {}
        }
    }
}

/// Forgets idle rate-limit and failure state, so memory stays bounded.
async fn prune_limits(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PURGE_INTERVAL) => state.limits.prune(),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Writes secrets' `last_used_at` in batches, off the request path.
async fn record_secret_use(store: Store, mut used: mpsc::Receiver<(i64, i64)>) {
    let mut batch = Vec::new();
    while used.recv_many(&mut batch, 256).await > 0 {
        if let Err(e) = store.touch_secrets(&batch).await {
            tracing::warn!(error = %e, "could not record secret use");
        }
        batch.clear();
    }
}

/// Periodic work: purge expired tokens in bounded batches; rotate keys on
/// schedule when `[keys] rotate_every` is set.
async fn maintain(
    store: Store,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    config: Config,
    mut stop: watch::Receiver<bool>,
) {
    // Checking whether a rotation is due is one small query.
    let tick = config
        .rotate_every
        .map_or(PURGE_INTERVAL, |_| Duration::from_secs(1));
    let mut last_purge = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = clock.now();
        if let Some(every) = config.rotate_every {
            match rotate_due(
                &store,
                &master,
                every.as_secs() as i64,
                config.token_lifetime,
                now,
            )
            .await
            {
                Ok(kids) if !kids.is_empty() => {
                    tracing::info!(?kids, "rotated signing keys on schedule")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed"),
            }
        }
        if last_purge.elapsed() >= PURGE_INTERVAL {
            last_purge = std::time::Instant::now();
            loop {
                match store.purge_expired(now, PURGE_BATCH).await {
                    Ok(n) if n > 0 => tracing::debug!(n, "purged expired tokens"),
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "purging expired tokens failed");
                        break;
                    }
                }
                // Let other writers in between batches.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
