use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use super::{StoreError, ACQUIRE_TIMEOUT, CHANGE_CHANNEL};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub async fn connect(url: &str) -> Result<AnyPool, StoreError> {
    // One connection of its own first: the pool retries a failing connection
    // until its timeout and then says only "pool timed out", losing the cause.
    match tokio::time::timeout(ACQUIRE_TIMEOUT, AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(unreachable(url, &e.to_string())),
        Err(_) => {
            let waited = format!("no answer within {} s", ACQUIRE_TIMEOUT.as_secs());
            return Err(unreachable(url, &waited));
        }
    }
    AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Drop connections the server closed, so an outage heals by itself.
        .test_before_acquire(true)
        .idle_timeout(Duration::from_secs(300))
        .after_connect(|conn, _| {
            Box::pin(async move {
                // Migrations' `CREATE TABLE IF NOT EXISTS` would otherwise
                // send a NOTICE at every start, which sqlx logs at INFO.
                conn.execute("SET client_min_messages = warning").await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| unreachable(url, &e.to_string()))
}

/// Where the database is (host and port, never the password) and why it
/// could not be reached.
fn unreachable(url: &str, cause: &str) -> StoreError {
    StoreError::Open(format!(
        "cannot connect to PostgreSQL at {}: {cause}",
        server_of(url)
    ))
}

/// `host:port` of a PostgreSQL URL, including a `host=` parameter (a Unix
/// socket directory, say).
fn server_of(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "the configured URL".into();
    };
    let param = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let host = param("host")
        .or_else(|| {
            parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".into());
    let port = param("port")
        .or_else(|| parsed.port().map(|p| p.to_string()))
        .unwrap_or_else(|| "5432".into());
    format!("{host}:{port}")
}

/// Registry change notifications (LISTEN on the change channel).
pub struct Changes(PgListener);

impl Changes {
    pub async fn listen(url: &str) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANGE_CHANNEL).await?;
        Ok(Self(listener))
    }

    /// Waits for the next notification. After a lost connection the listener
    /// reconnects by itself; missed notifications are covered by the
    /// periodic revision check.
    pub async fn next(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}
