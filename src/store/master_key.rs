//! The `master_key` table: one verifier derived from the master key, so
//! that a database is only ever used with the key its data is sealed under.

use super::{Store, StoreError};

impl Store {
    pub async fn master_key_verifier(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT verifier FROM master_key WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records the verifier unless one is there already (another process
    /// may have won the race: the caller reads it back and compares).
    pub async fn set_master_key_verifier(&self, verifier: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO master_key (id, verifier) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(verifier)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Does the database hold anything sealed or keyed under a master key
    /// (signing keys, client secrets)?
    pub async fn holds_sealed_data(&self) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM keys UNION ALL SELECT 1 FROM client_secrets LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }
}
