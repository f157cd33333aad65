//! The `tokens` and `revoked_jtis` tables: opaque tokens, and the JWTs
//! revoked before they expire.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};

/// An opaque access token: its public selector and the keyed hash of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public, time-ordered selector (the `id` column).
    pub selector: Vec<u8>,
    pub hash: Vec<u8>,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The issuer it was issued under; `None` for tokens from before issuers
    /// were recorded, which count as the current issuer's.
    pub issuer: Option<String>,
}

impl Store {
    /// Inserts a batch of tokens, all or none, committed before this
    /// returns (group commit): on SQLite by the token thread's own
    /// connection (`sqlite_tokens`), on PostgreSQL by connections of their
    /// own, in one statement (`postgres_tokens`).
    pub async fn insert_tokens(&self, tokens: Vec<TokenRecord>) -> Result<(), StoreError> {
        match &self.token_writes {
            super::TokenWrites::Sqlite(thread) => thread.insert(tokens).await,
            super::TokenWrites::Postgres(connections) => connections.insert(&tokens).await,
        }
    }

    /// A client's live opaque tokens, newest first, at most `limit`.
    pub async fn client_tokens(
        &self,
        client_id: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM tokens WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2
             ORDER BY issued_at DESC LIMIT $3",
        )
        .bind(client_id)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_row).collect()
    }

    pub async fn token(&self, selector: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(selector)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    pub async fn revoke_token(&self, selector: &[u8], now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(selector)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn revoke_jti(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Deletes up to `batch` expired tokens, revocations and records of used
    /// client assertions (each); returns how many.
    pub async fn purge_expired(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        let tokens = sqlx::query(
            "DELETE FROM tokens WHERE id IN
               (SELECT id FROM tokens WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let jtis = sqlx::query(
            "DELETE FROM revoked_jtis WHERE jti IN
               (SELECT jti FROM revoked_jtis WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let assertions = self.purge_assertions(now, batch).await?;
        Ok(tokens + jtis + assertions)
    }
}

fn token_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        selector: row.try_get("id")?,
        hash: row.try_get("hash")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        audience: row.try_get("audience")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        issuer: row.try_get("issuer")?,
    })
}
