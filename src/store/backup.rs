//! `writ backup`: a consistent copy of a SQLite database, taken while
//! servers write to it. Copying the file is not one: a running server's
//! recent commits sit in the `-wal` file beside it.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{sqlite, Location, StoreError};

/// Writes a copy of the database at `location` to `target`, a new file
/// (never over an existing one) readable by its owner only. SQLite's
/// `VACUUM INTO` reads one snapshot, so the copy is consistent whatever
/// commits meanwhile. PostgreSQL has `pg_dump` for this.
pub async fn backup(location: &Location, target: &Path) -> Result<(), StoreError> {
    let source = match location {
        Location::Sqlite(path) => path,
        Location::Postgres(_) => {
            return Err(StoreError::Config(
                "a PostgreSQL database is backed up with pg_dump (e.g. pg_dump -Fc -f writ.dump URL), not writ backup".into(),
            ))
        }
    };
    if !source.exists() {
        return Err(StoreError::NotFound(format!(
            "no database at {}",
            source.display()
        )));
    }
    // Made here, empty and private, so that a file appearing meanwhile is
    // never overwritten; VACUUM INTO accepts an empty target.
    let created = sqlite::create_new_private(target).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            StoreError::Conflict(format!(
                "{} already exists: a backup never overwrites a file",
                target.display()
            ))
        } else {
            StoreError::Config(format!("cannot create {}: {e}", target.display()))
        }
    })?;
    drop(created);
    let copied = vacuum_into(source, target).await;
    if copied.is_err() {
        let _ = std::fs::remove_file(target);
    }
    copied
}

async fn vacuum_into(source: &Path, target: &Path) -> Result<(), StoreError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(source)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await?;
    let target_name = target
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", target.display())))?;
    let result = sqlx::query("VACUUM INTO ?")
        .bind(target_name)
        .execute(&mut conn)
        .await;
    conn.close().await?;
    result?;
    // VACUUM INTO does not sync what it wrote: a backup reported done is on disk.
    std::fs::File::open(target)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Config(format!("cannot sync {}: {e}", target.display())))?;
    Ok(())
}
