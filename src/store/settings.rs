//! The `settings` table: facts about the servers that every process on the
//! database must know, whoever started it with which configuration.

use super::{Store, StoreError};

/// The longest server default token lifetime any process has opened the
/// database with: a key rotation keeps the retiring key published at least
/// that long, whichever process rotates.
const LONGEST_TOKEN_LIFETIME: &str = "longest_token_lifetime";

impl Store {
    /// The longest lifetime a client or an API sets, in one aggregate (a
    /// key rotation must not read a million clients to learn it).
    pub async fn longest_configured_lifetime(&self) -> Result<u64, StoreError> {
        let value: Option<i64> = sqlx::query_scalar(
            "SELECT max(l) FROM (SELECT max(lifetime) AS l FROM clients
                                 UNION ALL SELECT max(lifetime) AS l FROM apis) AS m",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(value.unwrap_or(0).max(0) as u64)
    }

    pub async fn longest_token_lifetime(&self) -> Result<Option<u64>, StoreError> {
        let value: Option<i64> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(LONGEST_TOKEN_LIFETIME)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value.map(|v| v.max(0) as u64))
    }

    /// Records `seconds` unless a longer lifetime is recorded already. Only
    /// writes when it raises the value, so most opens cost one read.
    pub async fn record_token_lifetime(&self, seconds: u64) -> Result<(), StoreError> {
        if self
            .longest_token_lifetime()
            .await?
            .is_some_and(|v| v >= seconds)
        {
            return Ok(());
        }
        let seconds = seconds.min(i64::MAX as u64 / 2) as i64;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value
             WHERE settings.value < excluded.value",
        )
        .bind(LONGEST_TOKEN_LIFETIME)
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
