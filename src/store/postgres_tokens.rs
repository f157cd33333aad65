//! Opaque tokens into PostgreSQL through connections of their own, as
//! SQLite's go through a thread of their own (`sqlite_tokens`). Each group
//! is one statement, the rows as eight arrays (`UNNEST`): a single prepared
//! statement whatever the group's size, its values bound in PostgreSQL's
//! binary format, and atomic and committed on its own.
//!
//! Not through the pool: sqlx pings a connection before lending it and
//! again when it is returned, so every group cost the database three round
//! trips instead of one, and went through the `Any` driver's generic values.
//! A connection here is kept while it works and dropped at its first error;
//! the next group opens a fresh one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::{StoreError, TokenRecord, ACQUIRE_TIMEOUT};

const INSERT: &str = "INSERT INTO tokens
    (id, hash, client_id, scope, audience, issued_at, expires_at, issuer)
    SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[],
                         $6::int8[], $7::int8[], $8::text[])";

/// How long a group may take in the database before it is answered 503 and
/// its connection dropped: a peer that vanished without closing the
/// connection would otherwise hold its requests for as long as TCP retries.
const INSERT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection idle longer than this is closed rather than reused: a
/// firewall or NAT may have dropped it without a word, and a group would
/// then wait out `INSERT_TIMEOUT` on it.
const IDLE_FOR: Duration = Duration::from_secs(60);

pub(super) struct TokenConnections {
    options: PgConnectOptions,
    /// Connections between groups, with when each was last used; at most
    /// one for each writer task. `None` once closed.
    idle: Mutex<Option<Vec<(PgConnection, Instant)>>>,
}

/// Not derived: the connect options hold the password.
impl std::fmt::Debug for TokenConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConnections").finish_non_exhaustive()
    }
}

impl TokenConnections {
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let options = url
            .parse::<PgConnectOptions>()?
            .log_statements(tracing::log::LevelFilter::Trace);
        Ok(Self {
            options,
            idle: Mutex::new(Some(Vec::new())),
        })
    }

    /// Inserts the tokens in one statement: all of them or none.
    pub async fn insert(&self, records: &[TokenRecord]) -> Result<(), StoreError> {
        let idle = self.take_idle()?;
        let reused = idle.is_some();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        match self.insert_on(conn, records).await {
            // A connection that waited between groups may have been closed
            // by the server meanwhile (a restart, a failover), which the
            // pool's ping finds out before it lends one. The group is tried
            // once more on a fresh connection. It cannot be written twice (a
            // token's id is unique); if the first try did commit before its
            // connection broke, the second finds its ids taken, and the
            // requests are answered 503 as the first try's failure was.
            Err(e) if reused && e.is_unavailable() && !timed_out(&e) => {
                match self.insert_on(self.connect().await?, records).await {
                    Err(StoreError::Database(sqlx::Error::Database(db)))
                        if db.is_unique_violation() =>
                    {
                        Err(e)
                    }
                    retried => retried,
                }
            }
            written => written,
        }
    }

    /// The connection used last, unless it has been idle too long.
    fn take_idle(&self) -> Result<Option<PgConnection>, StoreError> {
        let mut idle = self.idle.lock().map_err(|_| StoreError::closed())?;
        let idle = idle.as_mut().ok_or_else(StoreError::closed)?;
        // Those idle too long are the oldest, at the front: dropped.
        let fresh = idle.partition_point(|(_, since)| since.elapsed() > IDLE_FOR);
        idle.drain(..fresh);
        Ok(idle.pop().map(|(conn, _)| conn))
    }

    async fn connect(&self) -> Result<PgConnection, StoreError> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.options.connect()).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(timeout("connecting to the database")),
        }
    }

    /// The group on `conn`, which is kept for the next group if it worked
    /// and dropped if it failed or timed out.
    async fn insert_on(
        &self,
        mut conn: PgConnection,
        records: &[TokenRecord],
    ) -> Result<(), StoreError> {
        match tokio::time::timeout(INSERT_TIMEOUT, insert(&mut conn, records)).await {
            Ok(written) => written?,
            Err(_) => return Err(timeout("writing a group of tokens")),
        }
        let back = match self.idle.lock() {
            Ok(mut idle) => match idle.as_mut() {
                Some(idle) => {
                    idle.push((conn, Instant::now()));
                    None
                }
                None => Some(conn), // closed meanwhile
            },
            Err(_) => Some(conn),
        };
        if let Some(conn) = back {
            let _ = conn.close().await;
        }
        Ok(())
    }

    /// Closes the connections between groups; later groups are refused,
    /// and a group still in the database closes its connection when done.
    pub async fn close(&self) {
        let idle = match self.idle.lock() {
            Ok(mut idle) => idle.take().unwrap_or_default(),
            Err(_) => return,
        };
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }
}

/// A wait that ran out, as an I/O error (a 503), naming what was waited for.
fn timeout(what: &str) -> StoreError {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"));
    StoreError::Database(sqlx::Error::Io(e))
}

/// A group that took longer than `INSERT_TIMEOUT` is not tried again:
/// its requests have waited long enough.
fn timed_out(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut)
}

async fn insert(conn: &mut PgConnection, records: &[TokenRecord]) -> Result<(), sqlx::Error> {
    let column = |f: fn(&TokenRecord) -> &[u8]| records.iter().map(f).collect::<Vec<_>>();
    let text = |f: fn(&TokenRecord) -> &str| records.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&TokenRecord) -> i64| records.iter().map(f).collect::<Vec<_>>();
    sqlx::query(INSERT)
        .bind(column(|t| &t.selector))
        .bind(column(|t| &t.hash))
        .bind(text(|t| &t.client_id))
        .bind(text(|t| &t.scope))
        .bind(text(|t| &t.audience))
        .bind(int(|t| t.issued_at))
        .bind(int(|t| t.expires_at))
        .bind(
            records
                .iter()
                .map(|t| t.issuer.as_deref())
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await?;
    Ok(())
}
