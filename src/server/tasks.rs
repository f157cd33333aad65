//! What a running server does in the background: keep the registry fresh,
//! reload the TLS certificate, record secret use, prune limit state, purge
//! expired tokens and rotate keys on schedule. Each task ends when `stop`
//! turns true.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::sync::{mpsc, watch, Notify};

use super::{CERTIFICATE_CHECK, PURGE_BATCH, PURGE_INTERVAL, REFRESH_INTERVAL};
use crate::clock::Clock;
use crate::config::{Config, Tls};
use crate::http::AppState;
use crate::keys::rotation::rotate_due;
use crate::keys::MasterKey;
use crate::registry::Registry;
use crate::store::{Backend, Store};

/// Reloads the certificate when its files change (a renewal), so new
/// connections get the new one without a restart; a bad pair is logged and
/// the old certificate kept.
pub(super) async fn reload_certificate(
    rustls: RustlsConfig,
    tls: Tls,
    mut stop: watch::Receiver<bool>,
) {
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
pub(super) async fn listen_for_changes(
    store: Store,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
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

/// Applies the change log when the store's revision moves (a write by this
/// or any other process), and rebuilds the key snapshot when a key's
/// publication window ends.
pub(super) async fn refresh(
    store: Store,
    registry: Arc<Registry>,
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
        let now = clock.now();
        let due = registry.snapshot().next_expiry.is_some_and(|t| t <= now);
        let result = match store.revision().await {
            Ok(rev) if rev == registry.applied() && !due => Ok(None),
            Ok(_) => registry.apply_changes(now).await.map(Some),
            Err(e) => Err(e),
        };
        match result {
            Ok(applied) => {
                if failing {
                    tracing::info!("database reachable again; registry refresh recovered");
                }
                failing = false;
                if let Some(applied) = applied {
                    tracing::debug!(
                        ?applied,
                        revision = registry.applied(),
                        "registry changes applied"
                    );
                    if applied.reset {
                        tracing::info!(
                            "the change log no longer reached back: the registry was read afresh"
                        );
                    }
                }
            }
            // Keep serving what is held; say so once per outage.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "registry refresh failed; serving what is held");
            }
            Err(_) => {}
        }
    }
}

/// How long secret uses are gathered before they are written.
const SECRET_USE_GATHER: Duration = Duration::from_secs(1);

/// Forgets idle rate-limit and failure state, so memory stays bounded.
pub(super) async fn prune_limits(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PURGE_INTERVAL) => state.limits.prune(),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// How often the histograms' samples are folded into their buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(1);

/// Folds the samples the histograms recorded into their buckets. The
/// recorder keeps every sample until then (`build_recorder` spawns no upkeep
/// of its own, and only a scrape drained them): a node nobody scraped grew by
/// 24 bytes a request, over a gigabyte an hour at 15,000 requests a second.
/// Off the runtime's threads: a second of samples at full rate takes
/// milliseconds, which requests should not wait behind.
pub(super) async fn drain_metrics(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(METRICS_UPKEEP) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let metrics = state.metrics.clone();
        let _ = tokio::task::spawn_blocking(move || metrics.run_upkeep()).await;
    }
}

/// Writes secrets' `last_used_at` in batches, off the request path. Uses
/// are gathered for up to `SECRET_USE_GATHER` (the times are kept to the
/// minute), so a stream of first uses, as when a working set of many
/// clients warms up, costs a transaction a second rather than one for every
/// few uses, on the core that serves tokens.
pub(super) async fn record_secret_use(store: Store, mut used: mpsc::Receiver<(i64, i64)>) {
    const MAX: usize = 2000;
    let mut batch = Vec::with_capacity(MAX);
    while used.recv_many(&mut batch, MAX).await > 0 {
        let deadline = tokio::time::Instant::now() + SECRET_USE_GATHER;
        while batch.len() < MAX {
            let room = MAX - batch.len();
            let more = used.recv_many(&mut batch, room);
            match tokio::time::timeout_at(deadline, more).await {
                Ok(0) | Err(_) => break, // closed (shutting down), or time is up
                Ok(_) => {}
            }
        }
        if let Err(e) = store.touch_secrets(&batch).await {
            tracing::warn!(error = %e, "could not record secret use");
        }
        batch.clear();
    }
}

/// Periodic work: purge expired tokens in bounded batches; rotate keys on
/// schedule when `[keys] rotate_every` is set.
pub(super) async fn maintain(
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
                if let Err(e) = store.prune_changes().await {
                    tracing::warn!(error = %e, "pruning the change log failed");
                }
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
