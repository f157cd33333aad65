//! Persistence on SQLite (embedded, the default) or PostgreSQL (several
//! nodes). Both run the same runtime queries through sqlx's `Any` driver;
//! what differs (connecting, migrations, change notification) lives in
//! `sqlite.rs` and `postgres.rs`. Opaque tokens, the one write on the hot
//! path, go to each backend its own way: SQLite's through a thread of their
//! own (`sqlite_tokens.rs`), PostgreSQL's through connections of their own
//! (`postgres_tokens.rs`).
//!
//! Every write to registry data bumps `revision` in the same transaction, so
//! servers know when to rebuild their in-memory snapshot.

mod apis;
mod assertions;
mod audit;
mod backup;
mod changes;
mod clients;
mod console;
mod grants;
mod group;
mod keys;
mod master_key;
mod postgres;
mod postgres_tokens;
mod registration;
mod settings;
mod snapshot;
mod sqlite;
mod sqlite_tokens;
mod tokens;
mod trust;

pub use apis::ApiRecord;
pub use assertions::Replay;
pub use audit::{AuditRecord, IdempotentAnswer};
pub use backup::backup;
pub use changes::{Change, ChangeRecord};
pub use clients::{ClientRecord, SecretRecord};
pub use console::{ConsoleSession, SigninLink};
pub use grants::GrantRecord;
pub use group::{Grouped, QUEUE as GROUP_QUEUE};
pub use keys::{KeyRecord, KeyState};
pub use snapshot::{ClientEntry, Snapshot};
pub use tokens::{selector_prefix, TokenRecord, SCAN};
pub use trust::TrustRuleRecord;

use apis::api_row;
use clients::{client_row, secret_row};
use grants::grant_row;
use keys::key_row;

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row, Transaction};

/// The channel servers LISTEN on (PostgreSQL) for registry changes.
pub const CHANGE_CHANNEL: &str = "writ_registry";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite token thread's own connection (`sqlite_tokens`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
    /// The database could not be opened or reached at start: where, and why.
    #[error("{0}")]
    Open(String),
    /// The database has migrations this binary does not know.
    #[error("the database was written by a newer version of Writ (its migration {0} is unknown to this binary): run that version or a later one")]
    Newer(i64),
    /// One failure seen by several waiters (a lookup they shared).
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// The store was closed (shutting down), or a writer of its own ended:
    /// a 503, as for a closed pool.
    pub(crate) fn closed() -> Self {
        StoreError::Database(sqlx::Error::PoolClosed)
    }

    /// The database could not be reached, refused us, or is busy, full or
    /// read-only: a condition that passes, worth a 503 rather than a 500.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Database(e) => e,
            StoreError::Shared(e) => return e.is_unavailable(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                return sqlite_unavailable(e.extended_code as u32)
            }
            _ => return false,
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    code.parse::<u32>().is_ok_and(sqlite_unavailable)
                } else {
                    // PostgreSQL SQLSTATE: connection exception (08), operator
                    // intervention such as terminated backends (57),
                    // insufficient resources such as a full disk (53), lost
                    // credentials (28), CONNECT privilege (42501), a
                    // read-only database, as after a failover (25006), a
                    // database not accepting connections (55000: starting
                    // up, shutting down, ALLOW_CONNECTIONS false) or not
                    // there (3D000: dropped, or not yet restored).
                    ["08", "57", "53", "28"].iter().any(|c| code.starts_with(c))
                        || ["42501", "25006", "55000", "3D000"].contains(&&*code)
                }
            }
            _ => false,
        }
    }
}

/// A SQLite result code that passes (the primary code is the low byte):
/// BUSY 5, LOCKED 6, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
fn sqlite_unavailable(code: u32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the data lives, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// `sqlite://PATH`, `sqlite:PATH`, a bare path, or `postgres://…`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty()
            || path == ":memory:"
            || url.contains("://") && !url.starts_with("sqlite")
        {
            return Err(StoreError::Config(format!(
                "'{url}' names no database: use sqlite://PATH or postgres://…"
            )));
        }
        Ok(Self::Sqlite(path.into()))
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    location: Location,
    /// Where opaque tokens are written.
    token_writes: TokenWrites,
}

/// Each backend's way of writing opaque tokens (`Store::insert_tokens`).
#[derive(Debug, Clone)]
enum TokenWrites {
    Sqlite(std::sync::Arc<sqlite_tokens::TokenThread>),
    Postgres(std::sync::Arc<postgres_tokens::TokenConnections>),
}

type Tx = Transaction<'static, sqlx::Any>;

fn conflict_on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

fn flag(b: bool) -> i64 {
    b as i64
}

impl Store {
    /// Opens the database, creating (SQLite) and migrating it as needed.
    pub async fn open(location: &Location) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (pool, backend) = match location {
            Location::Sqlite(path) => (sqlite::connect(path).await?, Backend::Sqlite),
            Location::Postgres(url) => (postgres::connect(url).await?, Backend::Postgres),
        };
        let migrated = match backend {
            Backend::Sqlite => sqlite::MIGRATOR.run(&pool).await,
            Backend::Postgres => postgres::MIGRATOR.run(&pool).await,
        };
        match migrated {
            Ok(()) => {}
            // Applied but unknown here: a later Writ has been at this database.
            Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
                pool.close().await;
                return Err(StoreError::Newer(v));
            }
            Err(e) => {
                pool.close().await;
                return Err(e.into());
            }
        }
        let token_writes = match location {
            Location::Sqlite(path) => {
                sqlite_tokens::TokenThread::spawn(path).map(|t| TokenWrites::Sqlite(t.into()))
            }
            Location::Postgres(url) => {
                postgres_tokens::TokenConnections::new(url).map(|c| TokenWrites::Postgres(c.into()))
            }
        };
        let token_writes = match token_writes {
            Ok(writes) => writes,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        Ok(Self {
            pool,
            backend,
            location: location.clone(),
            token_writes,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub async fn close(&self) {
        match &self.token_writes {
            TokenWrites::Sqlite(thread) => thread.close().await,
            TokenWrites::Postgres(connections) => connections.close().await,
        }
        self.pool.close().await;
    }

    /// A stream of change notifications where the backend has them
    /// (PostgreSQL LISTEN); `None` for SQLite, which is polled.
    pub async fn listen(&self) -> Result<Option<postgres::Changes>, StoreError> {
        match &self.location {
            Location::Postgres(url) => Ok(Some(postgres::Changes::listen(url).await?)),
            Location::Sqlite(_) => Ok(None),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Starts a registry write: the revision bump comes first, so it also
    /// takes SQLite's write lock at once, and PostgreSQL announces it on commit.
    async fn begin_change(&self, change: Change<'_>) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision: i64 = sqlx::query_scalar(
            "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (kind, subject) = change.parts();
        sqlx::query("INSERT INTO changes (revision, kind, subject) VALUES ($1, $2, $3)")
            .bind(revision)
            .bind(kind)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANGE_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// `rows` groups of `columns` placeholders for a multi-row INSERT.
    /// SQLite gets anonymous `?`: for numbered ones every bind looks its
    /// name up in a list, quadratic in a large statement.
    pub(crate) fn placeholders(&self, rows: usize, columns: usize) -> String {
        use std::fmt::Write;
        // Built in one string: a group commit's INSERT has hundreds of them.
        let mut sql = String::with_capacity(rows * columns * 5);
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ",(" });
            for k in 1..=columns {
                if k > 1 {
                    sql.push(',');
                }
                match self.backend {
                    Backend::Sqlite => sql.push('?'),
                    Backend::Postgres => {
                        let _ = write!(sql, "${}", r * columns + k);
                    }
                }
            }
            sql.push(')');
        }
        sql
    }

    /// One registry change that must touch a row: `missing` when none matched,
    /// and then nothing is written.
    async fn change_one<'q>(
        &self,
        change: Change<'_>,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        missing: impl FnOnce() -> StoreError,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change(change).await?;
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(missing());
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn fetch<T>(
    tx: &mut Tx,
    sql: &'static str,
    map: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = sqlx::query(sql).fetch_all(&mut **tx).await?;
    rows.iter().map(map).collect()
}

fn opt_u64(row: &AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v.max(0) as u64))
}

fn parsed<T: std::str::FromStr<Err = String>>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn opt_parsed<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    col: &str,
) -> Result<Option<T>, sqlx::Error> {
    row.try_get::<Option<String>, _>(col)?
        .map(|t| t.parse().map_err(|e: String| sqlx::Error::Decode(e.into())))
        .transpose()
}

pub(crate) fn display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

pub(crate) fn opt_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

pub(crate) fn join(words: &[String]) -> String {
    words.join(" ")
}

pub(crate) fn split(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How long a request waits for a pooled connection before it is answered 503.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
