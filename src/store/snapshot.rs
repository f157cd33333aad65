//! What the registry reads: the APIs and signing keys (few) whole, in one
//! transaction; a client with its secrets and grants, one at a time.

use super::{api_row, client_row, grant_row, key_row, secret_row};
use super::{fetch, Store, StoreError};
use super::{ApiRecord, ClientRecord, GrantRecord, KeyRecord, SecretRecord};

/// The APIs and keys, and the revision they are current at.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub revision: i64,
    pub apis: Vec<ApiRecord>,
    pub keys: Vec<KeyRecord>,
}

/// One client as the registry holds it.
#[derive(Debug, Clone)]
pub struct ClientEntry {
    pub client: ClientRecord,
    pub secrets: Vec<SecretRecord>,
    pub grants: Vec<GrantRecord>,
    /// The issuers it trusts (workload identity).
    pub trust: Vec<super::TrustRuleRecord>,
}

impl Store {
    /// The APIs and keys, read in one transaction so they are consistent.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision = sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let apis = fetch(
            &mut tx,
            "SELECT * FROM apis ORDER BY created_at, identifier",
            api_row,
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
            apis,
            keys,
        })
    }

    /// A client with its secrets and grants, read in one transaction; `None`
    /// for an id nobody registered.
    pub async fn client_entry(&self, id: &str) -> Result<Option<ClientEntry>, StoreError> {
        // An id nobody registered is the common miss (and an attacker's):
        // one statement answers it, without a transaction's round trips.
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        self.registered_client_entry(id).await
    }

    /// `client_entry` for an id already found registered (`known_clients`):
    /// `None` if it was deleted since.
    pub async fn registered_client_entry(
        &self,
        id: &str,
    ) -> Result<Option<ClientEntry>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let client = client_row(&row)?;
        let secrets = sqlx::query("SELECT * FROM client_secrets WHERE client_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(secret_row)
            .collect::<Result<_, _>>()?;
        let grants = sqlx::query("SELECT * FROM grants WHERE client_id = $1 ORDER BY api")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(grant_row)
            .collect::<Result<_, _>>()?;
        let trust =
            sqlx::query("SELECT * FROM client_trust_rules WHERE client_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(super::trust::trust_row)
                .collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(Some(ClientEntry {
            client,
            secrets,
            grants,
            trust,
        }))
    }

    /// Which of these ids are registered clients: one statement for them
    /// all (an answer each, in order).
    pub async fn known_clients(&self, ids: &[String]) -> Result<Vec<bool>, StoreError> {
        let mut known = std::collections::HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(200) {
            let sql = format!(
                "SELECT id FROM clients WHERE id IN {}",
                self.placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            known.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(ids.iter().map(|id| known.contains(id)).collect())
    }

    /// Whether any client is registered (the start-up hint).
    pub async fn has_clients(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM clients LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }
}
