//! `writ serve`: open the store, make sure keys exist, build the registry,
//! keep it fresh, and serve HTTP until told to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, LimitsConfig, Tls};
use crate::http::connections::{Acceptor, PerAddress};
use crate::http::limits::Limits;
use crate::http::{router, AppState, Shared};
use crate::keys::remote::RemoteKeys;
use crate::keys::rotation::{ensure_signing_keys, RotationError};
use crate::keys::{MasterKey, MasterKeyError};
use crate::oauth::assertion::Audience;
use crate::oauth::client_credentials::GrantPolicy;
use crate::registry::{Registry, RegistryError};
use crate::store::{Backend, Grouped, Location, Replay, Store, StoreError};
use crate::token::opaque::TokenWriter;
use crate::token::Tokens;
use crate::types::Algorithm;

mod tasks;

/// How often the store's revision is checked. Changes made by the CLI or
/// another node reach the hot path within this interval plus a rebuild
/// (on PostgreSQL, NOTIFY usually brings them sooner).
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(250);
/// How long in-flight HTTPS requests may take to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A connection on which nothing moves is closed this long after
/// `request_timeout`: a request whose body stops arriving gets its 408 at
/// `request_timeout` from when its handler started, just after the last
/// byte read, and that answer must go out before the connection is cut.
const IDLE_GRACE: Duration = Duration::from_secs(1);
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
    #[error("the master key is not this database's (its data is sealed under another one): use the WRIT_MASTER_KEY or key file the database was set up with; nothing was written")]
    WrongMasterKey,
    #[error("the master key file {0} is missing, but the database {1} holds data sealed under it: restore the file beside it (or set WRIT_MASTER_KEY); no new key was made")]
    KeyFileMissing(String, String),
}

/// The master key file sits beside the database: `writ.db` → `writ.db.key`.
pub fn key_file_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Opens the database and the master key, as both `serve` and the CLI do,
/// and refuses a master key that is not the database's before anything is
/// written: data sealed under the wrong key would be of use to nobody.
pub async fn open(config: &Config) -> Result<(Store, MasterKey), StartError> {
    let location = Location::parse(&config.database)?;
    // Check the key's form before touching the database, so a misconfigured
    // node fails without side effects.
    let master = match &location {
        Location::Sqlite(path) => {
            MasterKey::load_existing(config.master_key.as_deref(), &key_file_for(path))?
        }
        Location::Postgres(_) => {
            let text = config
                .master_key
                .as_deref()
                .ok_or(StartError::NoSharedMasterKey)?;
            Some(MasterKey::from_base64(text).ok_or(MasterKeyError::BadEnv)?)
        }
    };
    let store = Store::open(&location).await?;
    let master = match (master, &location) {
        (Some(master), _) => master,
        (None, Location::Sqlite(path)) => {
            let file = key_file_for(path);
            // Never a new key for data sealed under a lost one.
            if store.master_key_verifier().await?.is_some() || store.holds_sealed_data().await? {
                return Err(StartError::KeyFileMissing(
                    file.display().to_string(),
                    path.display().to_string(),
                ));
            }
            MasterKey::create_file(&file)?
        }
        (None, Location::Postgres(_)) => unreachable!("checked above"),
    };
    check_master_key(&store, &master).await?;
    // Whoever rotates keys later (the CLI, with a config of its own or none)
    // keeps retiring keys published for the longest lifetime on record.
    store.record_token_lifetime(config.token_lifetime).await?;
    Ok((store, master))
}

/// The database's verifier must match the key. A database from before
/// verifiers is checked against a signing key it holds, then given one.
async fn check_master_key(store: &Store, master: &MasterKey) -> Result<(), StartError> {
    if let Some(stored) = store.master_key_verifier().await? {
        return if master.matches(&stored) {
            Ok(())
        } else {
            Err(StartError::WrongMasterKey)
        };
    }
    let keys = store.keys().await?;
    if let Some(k) = keys.first() {
        if master.open(k.kid.as_bytes(), &k.private_key).is_err() {
            return Err(StartError::WrongMasterKey);
        }
    } else if store.holds_sealed_data().await? {
        // Only secret hashes, which cannot tell: decide once a key exists.
        return Ok(());
    }
    store.set_master_key_verifier(&master.verifier()).await?;
    // Another process may have set a different one first.
    match store.master_key_verifier().await? {
        Some(stored) if !master.matches(&stored) => Err(StartError::WrongMasterKey),
        _ => Ok(()),
    }
}

/// A server that is running; dropping it does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub issuer: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<std::io::Result<()>>,
    /// The certificate served and the files it came from.
    tls: Option<(RustlsConfig, Tls)>,
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

    /// What SIGHUP reloads without a restart: the TLS certificate (also
    /// reloaded when its files change). Everything else in the
    /// configuration needs a restart; the registry is always current.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            tls: self.tls.clone(),
        }
    }
}

/// Reloads what can change while serving; see `RunningServer::reloader`.
#[derive(Clone)]
pub struct Reloader {
    tls: Option<(RustlsConfig, Tls)>,
}

impl Reloader {
    /// Reloads and logs what was reloaded; a certificate that does not load
    /// is logged and the old one kept.
    pub async fn reload(&self) {
        let Some((rustls, files)) = &self.tls else {
            tracing::info!(
                "SIGHUP received; nothing to reload (configuration changes need a restart)"
            );
            return;
        };
        match rustls.reload_from_pem_file(&files.cert, &files.key).await {
            Ok(()) => tracing::info!(cert = %files.cert.display(),
                "SIGHUP received; TLS certificate reloaded (other configuration changes need a restart)"),
            Err(e) => tracing::warn!(cert = %files.cert.display(), error = %e,
                "SIGHUP received; TLS certificate not reloaded, the old one is kept"),
        }
    }
}

pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, StartError> {
    // What can fail without side effects comes first: a missing certificate
    // or a taken port must not leave a new database and key file behind.
    let tls = load_tls(config.tls.as_ref()).await?;
    let (listener, addr) = bind(config.listen).await?;
    let (store, master) = open(&config).await?;
    let master = Arc::new(master);
    ensure_keys(&store, &master, clock.now()).await?;
    let registry = load_registry(&store, &master, config.client_cache, clock.now()).await?;
    let has_clients = store.has_clients().await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let (stop, _) = watch::channel(false);
    // Room for a burst of first uses while a batch gathers (16 bytes each).
    let (secret_use, used) = mpsc::channel(65536);
    let state = app_state(
        &config, &store, &master, &registry, &clock, &issuer, secret_use,
    );
    spawn_tasks(
        &config, &store, &master, &registry, &clock, &state, used, &tls, &stop,
    );
    let reloadable = tls.clone().zip(config.tls.clone());
    let handle = serve(listener, tls, router(state), &config.limits, &stop, store)?;
    tracing::info!("listening on {scheme}://{addr}");
    announce(&config, &issuer, has_clients);
    Ok(RunningServer {
        addr,
        issuer,
        stop,
        handle,
        tls: reloadable,
    })
}

/// Each algorithm in use has an active and a next key: ES256 on first
/// start, others when an API asks for them.
async fn ensure_keys(store: &Store, master: &MasterKey, now: i64) -> Result<(), StartError> {
    let mut needed = vec![Algorithm::ES256];
    needed.extend(store.apis().await?.iter().map(|a| a.algorithm));
    needed.sort();
    needed.dedup();
    for kid in ensure_signing_keys(store, master, &needed, now).await? {
        tracing::info!(kid, "generated a signing key");
    }
    Ok(())
}

/// The APIs and keys; clients come as they are asked for. At start a key
/// that cannot be opened is an error to fix, not to serve around.
async fn load_registry(
    store: &Store,
    master: &Arc<MasterKey>,
    client_cache: u64,
    now: i64,
) -> Result<Arc<Registry>, StartError> {
    let registry = Registry::open(store.clone(), master.clone(), client_cache, now).await?;
    if let Some(e) = registry.snapshot().key_errors.first() {
        return Err(StartError::Registry(RegistryError::Key {
            kid: e.kid().to_owned(),
            reason: e.to_string(),
        }));
    }
    Ok(Arc::new(registry))
}

async fn bind(listen: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    let bind_error = |e| StartError::Bind(listen, e);
    let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener.into_std().map_err(bind_error)?, addr))
}

async fn load_tls(tls: Option<&Tls>) -> Result<Option<RustlsConfig>, StartError> {
    let Some(tls) = tls else { return Ok(None) };
    // One crypto provider for the whole process, whatever else links rustls.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rustls = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(StartError::Tls)?;
    Ok(Some(rustls))
}

/// The `aud` a client assertion must carry: the issuer; and, when the
/// configuration allows it, a token endpoint URL (any of the dialects').
fn assertion_audience(issuer: &str, token_endpoints: bool) -> Audience {
    let base = issuer.trim_end_matches('/');
    Audience {
        issuer: issuer.to_owned(),
        token_endpoints: if token_endpoints {
            crate::http::TOKEN_PATHS
                .iter()
                .map(|path| format!("{base}{path}"))
                .collect()
        } else {
            vec![]
        },
    }
}

/// What every request handler shares.
fn app_state(
    config: &Config,
    store: &Store,
    master: &Arc<MasterKey>,
    registry: &Arc<Registry>,
    clock: &Arc<dyn Clock>,
    issuer: &str,
    secret_use: mpsc::Sender<(i64, i64)>,
) -> AppState {
    // SQLite has one writer at a time; PostgreSQL commits batches in parallel.
    let writers = match store.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let writer = TokenWriter::spawn(store.clone(), writers, config.opaque_max_batch);
    let replays = {
        let store = store.clone();
        Grouped::spawn(
            writers,
            config.opaque_max_batch,
            move |uses: Vec<Replay>| {
                let store = store.clone();
                async move { store.record_assertions(&uses).await }
            },
        )
    };
    AppState::new(Shared {
        registry: registry.clone(),
        replays,
        clock: clock.clone(),
        secret_hasher: master.secret_hasher(),
        issuer: issuer.into(),
        assertion_audience: assertion_audience(issuer, config.assertion_token_endpoint_audience),
        remote_keys: {
            // reqwest's rustls takes the process's crypto provider.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            Arc::new(RemoteKeys::new(config.allow_insecure_jwks_localhost))
        },
        spiffe_bundles: Arc::new(config.spiffe_bundles.clone()),
        policy: Arc::new(GrantPolicy {
            enabled: config.client_credentials_enabled,
            default_lifetime: config.token_lifetime,
            default_audience: config.default_audience.clone().unwrap_or(issuer.into()),
        }),
        tokens: Tokens::new(issuer.into(), master.token_hasher(), store.clone(), writer),
        store: store.clone(),
        master: master.clone(),
        secret_use,
        limits: Limits::new(config.limits.clone(), clock.clone()),
        metrics: crate::metrics::install(),
        live: Default::default(),
    })
}

#[allow(clippy::too_many_arguments)]
fn spawn_tasks(
    config: &Config,
    store: &Store,
    master: &Arc<MasterKey>,
    registry: &Arc<Registry>,
    clock: &Arc<dyn Clock>,
    state: &AppState,
    used: mpsc::Receiver<(i64, i64)>,
    tls: &Option<RustlsConfig>,
    stop: &watch::Sender<bool>,
) {
    let changed = Arc::new(Notify::new());
    tokio::spawn(tasks::listen_for_changes(
        store.clone(),
        changed.clone(),
        stop.subscribe(),
    ));
    tokio::spawn(tasks::refresh(
        store.clone(),
        registry.clone(),
        clock.clone(),
        changed,
        stop.subscribe(),
    ));
    tokio::spawn(tasks::prune_limits(state.clone(), stop.subscribe()));
    tokio::spawn(tasks::drain_metrics(state.clone(), stop.subscribe()));
    tokio::spawn(crate::http::live::run(
        state.live.clone(),
        registry.clone(),
        clock.clone(),
        stop.subscribe(),
    ));
    tokio::spawn(tasks::record_secret_use(store.clone(), used));
    tokio::spawn(tasks::maintain(
        store.clone(),
        master.clone(),
        clock.clone(),
        config.clone(),
        stop.subscribe(),
    ));
    if let (Some(rustls), Some(files)) = (tls, &config.tls) {
        tokio::spawn(tasks::reload_certificate(
            rustls.clone(),
            files.clone(),
            stop.subscribe(),
        ));
    }
}

/// Plain HTTP and HTTPS take the same path through axum-server, which
/// exposes hyper's limits: how long a client may take to send its first
/// request (counted from the connection, or the end of the TLS handshake,
/// so one that sends nothing is closed too) and its later heads (counted
/// from the previous answer, so an idle keep-alive connection is closed),
/// how large they may be, and (with our acceptor) how many connections may
/// be open, in all and from one address. The store closes once the last
/// request is answered.
fn serve(
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    app: crate::http::request_id::WithId<axum::Router>,
    limits: &LimitsConfig,
    stop: &watch::Sender<bool>,
    store: Store,
) -> Result<JoinHandle<std::io::Result<()>>, StartError> {
    let addr = listener.local_addr().map_err(StartError::Tls)?;
    let handle = axum_server::Handle::new();
    let on_stop = handle.clone();
    let mut stopped = stop.subscribe();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|s| *s).await;
        on_stop.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let per_address = PerAddress::new(
        limits.max_connections_per_address,
        limits.trusted_proxies.clone(),
    );
    let acceptor = Acceptor::new(
        tls,
        Arc::new(Semaphore::new(limits.max_connections)),
        Arc::new(per_address),
        limits.request_timeout + IDLE_GRACE,
    );
    let mut server = axum_server::from_tcp(listener)
        .map_err(|e| StartError::Bind(addr, e))?
        .acceptor(acceptor)
        // hyper's header timeout starts only once protocol detection has
        // read a byte: without this, a silent connection is never closed.
        .first_request_timeout(limits.request_timeout);
    apply_limits(server.http_builder(), limits);
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(app);
    Ok(tokio::spawn(async move {
        let result = server.handle(handle).serve(service).await;
        store.close().await;
        result
    }))
}

/// The first lines an operator reads.
fn announce(config: &Config, issuer: &str, has_clients: bool) {
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
        .max_buf_size(limits.max_header_bytes)
        // A client that sends its request and then shuts down its sending
        // side (TCP half-close) still waits for the answer: write it.
        .half_close(true);
    builder
        .http2()
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256);
}
