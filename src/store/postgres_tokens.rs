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
use std::time::Duration;

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

#[derive(Debug)]
pub(super) struct TokenConnections {
    options: PgConnectOptions,
    /// Connections between groups; at most one for each group in flight.
    idle: Mutex<Vec<PgConnection>>,
}

impl TokenConnections {
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let options = url
            .parse::<PgConnectOptions>()?
            .log_statements(tracing::log::LevelFilter::Trace);
        Ok(Self {
            options,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Inserts the tokens in one statement: all of them or none.
    pub async fn insert(&self, records: &[TokenRecord]) -> Result<(), StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let reused = idle.is_some();
        let written = match idle {
            Some(conn) => self.insert_on(conn, records).await,
            None => self.insert_on(self.connect().await?, records).await,
        };
        match written {
            // A connection that waited between groups may have been closed
            // by the server meanwhile (a restart, a failover, an idle
            // timeout), which the pool's ping found out before lending it.
            // The group is tried once more on a fresh connection: it cannot
            // be written twice, as a token's id is unique.
            Err(e) if reused && e.is_unavailable() && !timed_out(&e) => {
                self.insert_on(self.connect().await?, records).await
            }
            written => written,
        }
    }

    async fn connect(&self) -> Result<PgConnection, StoreError> {
        Ok(
            tokio::time::timeout(ACQUIRE_TIMEOUT, self.options.connect())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        )
    }

    /// The group on `conn`, which is kept for the next group if it worked
    /// and dropped if it failed or timed out.
    async fn insert_on(
        &self,
        mut conn: PgConnection,
        records: &[TokenRecord],
    ) -> Result<(), StoreError> {
        tokio::time::timeout(INSERT_TIMEOUT, insert(&mut conn, records))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        Ok(())
    }

    /// Closes the connections between groups.
    pub async fn close(&self) {
        let idle = match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => return,
        };
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

/// A group that took longer than `INSERT_TIMEOUT` is not tried again:
/// its requests have waited long enough.
fn timed_out(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::PoolTimedOut))
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
