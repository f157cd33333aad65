//! Everything the registry is built from, read in one transaction.

use super::{api_row, client_row, grant_row, key_row, secret_row};
use super::{fetch, Store, StoreError};
use super::{ApiRecord, ClientRecord, GrantRecord, KeyRecord, SecretRecord};

/// Everything the registry is built from, read in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub revision: i64,
    pub clients: Vec<ClientRecord>,
    pub secrets: Vec<SecretRecord>,
    pub apis: Vec<ApiRecord>,
    pub grants: Vec<GrantRecord>,
    pub keys: Vec<KeyRecord>,
}

impl Store {
    /// Everything the registry needs, read in one transaction so it is consistent.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision = sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let clients = fetch(
            &mut tx,
            "SELECT * FROM clients ORDER BY created_at, id",
            client_row,
        )
        .await?;
        let secrets = fetch(
            &mut tx,
            "SELECT * FROM client_secrets ORDER BY id",
            secret_row,
        )
        .await?;
        let apis = fetch(
            &mut tx,
            "SELECT * FROM apis ORDER BY created_at, identifier",
            api_row,
        )
        .await?;
        let grants = fetch(
            &mut tx,
            "SELECT * FROM grants ORDER BY client_id, api",
            grant_row,
        )
        .await?;
        let keys = fetch(
            &mut tx,
            "SELECT * FROM keys ORDER BY created_at, kid",
            key_row,
        )
        .await?;
        tx.commit().await?;
        Ok(Snapshot {
            revision,
            clients,
            secrets,
            apis,
            grants,
            keys,
        })
    }
}
