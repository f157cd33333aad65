//! The `grants` table: which of an API's scopes a client may receive.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{conflict_on_unique, join, split, Change, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRecord {
    pub client_id: String,
    pub api: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

impl Store {
    pub async fn create_grant(&self, grant: &GrantRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_change(Change::Client(&grant.client_id)).await?;
        sqlx::query(
            "INSERT INTO grants (client_id, api, scopes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&grant.client_id)
        .bind(&grant.api)
        .bind(join(&grant.scopes))
        .bind(grant.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!(
                    "client '{}' already has a grant for '{}': delete it first",
                    grant.client_id, grant.api
                )
            })
        })?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM grants ORDER BY client_id, api")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(grant_row).collect()
    }

    /// One client's grants, by the primary key's index.
    pub async fn client_grants(&self, client_id: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM grants WHERE client_id = $1 ORDER BY api")
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(grant_row).collect()
    }

    /// Replaces the scopes of an existing grant.
    pub async fn update_grant(
        &self,
        client_id: &str,
        api: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE grants SET scopes = $1 WHERE client_id = $2 AND api = $3")
            .bind(join(scopes))
            .bind(client_id)
            .bind(api);
        self.change_one(Change::Client(client_id), q, || {
            StoreError::NotFound(format!("client '{client_id}' has no grant for '{api}'"))
        })
        .await
    }

    pub async fn delete_grant(&self, client_id: &str, api: &str) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM grants WHERE client_id = $1 AND api = $2")
            .bind(client_id)
            .bind(api);
        self.change_one(Change::Client(client_id), q, || {
            StoreError::NotFound(format!("client '{client_id}' has no grant for '{api}'"))
        })
        .await
    }
}

pub(super) fn grant_row(row: &AnyRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        client_id: row.try_get("client_id")?,
        api: row.try_get("api")?,
        scopes: split(row.try_get("scopes")?),
        created_at: row.try_get("created_at")?,
    })
}
