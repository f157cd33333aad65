//! The `client_assertions` table: the `jti` of every client assertion
//! accepted (RFC 7523 §3 item 7), until the assertion expires, so that a
//! replay is refused by every node sharing the database.

use super::{Store, StoreError};

impl Store {
    /// Records that the client used this `jti`; `false` if it already had
    /// (a replay). A record whose assertion has expired is taken over: its
    /// `jti` may be used again, since the old assertion no longer can.
    pub async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let written = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at
             WHERE client_assertions.expires_at <= $4",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(written == 1)
    }

    /// Deletes up to `batch` records of expired assertions; returns how many.
    pub(super) async fn purge_assertions(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM client_assertions WHERE (client_id, jti) IN
               (SELECT client_id, jti FROM client_assertions WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
