use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use super::{StoreError, ACQUIRE_TIMEOUT};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// One file in WAL mode, shared by the server and the CLI. `synchronous =
/// FULL`: a commit is on disk before it returns, so a token answered with 200
/// survives a crash; group commit keeps that affordable.
pub async fn connect(path: &Path) -> Result<AnyPool, StoreError> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| open_error(path, e.to_string()))
}

fn open_error(path: &Path, cause: String) -> StoreError {
    StoreError::Open(format!(
        "cannot open the SQLite database {}: {cause}",
        path.display()
    ))
}
