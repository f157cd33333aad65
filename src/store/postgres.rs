use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgListener;
use sqlx::AnyPool;

use super::{StoreError, ACQUIRE_TIMEOUT, CHANGE_CHANNEL};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub async fn connect(url: &str) -> Result<AnyPool, StoreError> {
    Ok(AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Drop connections the server closed, so an outage heals by itself.
        .test_before_acquire(true)
        .idle_timeout(Duration::from_secs(300))
        .connect(url)
        .await?)
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
