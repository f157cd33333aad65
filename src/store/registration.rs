//! The `registration_tokens` table (RFC 7592): one keyed hash per
//! dynamically registered client.

use super::{Store, StoreError};

impl Store {
    /// Sets (or replaces) a client's registration access token hash.
    pub async fn set_registration_token(
        &self,
        client_id: &str,
        hash: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registration_tokens (client_id, hash) VALUES ($1, $2)
             ON CONFLICT (client_id) DO UPDATE SET hash = excluded.hash",
        )
        .bind(client_id)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn registration_token(&self, client_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT hash FROM registration_tokens WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
