//! `writ serve`: the server until SIGTERM or Ctrl-C; SIGHUP (what
//! `systemctl reload` sends) reloads what can be reloaded.

use std::sync::Arc;

use super::CliError;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::server;

pub async fn serve(config: Config) -> Result<(), CliError> {
    // Installed before anything else: SIGHUP's default action ends the
    // process, so one sent during start-up would kill it silently.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let running = server::start(config, Arc::new(SystemClock)).await?;
    survive_file_size_limit();
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        let reloader = running.reloader();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                reloader.reload().await;
            }
        });
    }
    let stop = running.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    running.wait().await?;
    Ok(())
}

/// A write past a file size limit (`ulimit -f`) raises SIGXFSZ, which would
/// kill the server between a commit and its answers. Handled, the write just
/// fails (EFBIG), the store reports it, and requests that write get 503, as
/// with a full disk; PostgreSQL ignores the signal for the same reason.
fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut xfsz) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            tokio::spawn(async move {
                let mut said: Option<std::time::Instant> = None;
                while xfsz.recv().await.is_some() {
                    // Once a minute at most: every refused write raises it.
                    if said.is_none_or(|t| t.elapsed().as_secs() >= 60) {
                        said = Some(std::time::Instant::now());
                        tracing::error!("a write went past the file size limit (SIGXFSZ)");
                    }
                }
            });
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
