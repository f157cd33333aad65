//! `writ serve`: open the store, make sure keys exist, build the registry,
//! keep it fresh, and serve HTTP until told to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::http::{router, AppState};
use crate::keys::rotation::{ensure_signing_keys, RotationError};
use crate::keys::{Algorithm, MasterKey, MasterKeyError};
use crate::oauth::client_credentials::GrantPolicy;
use crate::registry::{Registry, RegistryError};
use crate::store::{Store, StoreError};

/// How often the store's revision is checked. Changes made by the CLI or
/// another process reach the hot path within this interval plus a rebuild.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(250);

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
}

/// The master key file sits beside the database: `writ.db` → `writ.db.key`.
pub fn key_file_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Opens the database and the master key, as both `serve` and the CLI do.
pub async fn open(config: &Config) -> Result<(Store, MasterKey), StartError> {
    let path = Store::path_from_url(&config.database)?;
    let store = Store::open(&path).await?;
    let master = MasterKey::load(config.master_key.as_deref(), &key_file_for(&path))?;
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
    let now = clock.now();

    let mut needed = vec![Algorithm::ES256];
    needed.extend(store.apis().await?.iter().map(|a| a.algorithm));
    needed.sort();
    needed.dedup();
    for kid in ensure_signing_keys(&store, &master, &needed, now).await? {
        tracing::info!(kid, "generated a signing key");
    }
    let registry = Registry::build(store.snapshot().await?, &master, now, None)?;
    let has_clients = registry.has_clients();
    let registry = Arc::new(ArcSwap::from_pointee(registry));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState {
        registry: registry.clone(),
        clock: clock.clone(),
        hasher: master.secret_hasher(),
        issuer: issuer.clone().into(),
        policy: Arc::new(GrantPolicy {
            enabled: config.client_credentials_enabled,
            default_lifetime: config.token_lifetime,
            default_audience: config.default_audience.clone().unwrap_or(issuer.clone()),
        }),
    };

    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(refresh(
        store.clone(),
        master,
        registry,
        clock,
        stop.subscribe(),
    ));
    let app = router(state);
    let handle = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        store.close().await;
        result
    });

    tracing::info!("listening on http://{addr}");
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
    tracing::info!(issuer = %issuer, database = %config.database, "ready");
    Ok(RunningServer {
        addr,
        issuer,
        stop,
        handle,
    })
}

/// Rebuilds the registry when the store's revision moves (a write by this or
/// any other process) or when a retiring key's publication window ends.
async fn refresh(
    store: Store,
    master: MasterKey,
    registry: Arc<ArcSwap<Registry>>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let current = registry.load();
        let now = clock.now();
        let due = current.next_expiry.is_some_and(|t| t <= now);
        let result = match store.revision().await {
            Ok(rev) if rev == current.revision && !due => continue,
            Ok(_) => match store.snapshot().await {
                Ok(snapshot) => Registry::build(snapshot, &master, now, Some(&current))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(next) => {
                if failing {
                    tracing::info!("registry refresh recovered");
                }
                failing = false;
                tracing::debug!(revision = next.revision, "registry rebuilt");
                registry.store(Arc::new(next));
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
