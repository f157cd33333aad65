//! The `apis` table: the audiences tokens are issued for.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    conflict_on_unique, display, join, opt_display, opt_parsed, opt_u64, parsed, split, Change,
    Store, StoreError,
};
use crate::types::{Algorithm, ClaimsProfile, TokenFormat};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiRecord {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    #[serde(serialize_with = "display")]
    pub algorithm: Algorithm,
    pub created_at: i64,
    #[serde(serialize_with = "opt_display")]
    pub token_format: Option<TokenFormat>,
    #[serde(serialize_with = "opt_display")]
    pub claims_profile: Option<ClaimsProfile>,
}

impl Store {
    pub async fn create_api(&self, api: &ApiRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_change(Change::Api(&api.identifier)).await?;
        sqlx::query(
            "INSERT INTO apis (identifier, name, scopes, lifetime, max_lifetime, algorithm, created_at, token_format, claims_profile)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&api.identifier)
        .bind(&api.name)
        .bind(join(&api.scopes))
        .bind(api.lifetime.map(|l| l as i64))
        .bind(api.max_lifetime.map(|l| l as i64))
        .bind(api.algorithm.as_str())
        .bind(api.created_at)
        .bind(api.token_format.map(|f| f.as_str()))
        .bind(api.claims_profile.map(|p| p.to_string()))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!("an API with identifier '{}' already exists", api.identifier)
            })
        })?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn apis(&self) -> Result<Vec<ApiRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM apis ORDER BY created_at, identifier")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(api_row).collect()
    }

    pub async fn api(&self, identifier: &str) -> Result<ApiRecord, StoreError> {
        sqlx::query("SELECT * FROM apis WHERE identifier = $1")
            .bind(identifier)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_row)
            .transpose()?
            .ok_or_else(|| no_api(identifier))
    }

    pub async fn set_api_format(
        &self,
        identifier: &str,
        format: Option<TokenFormat>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE apis SET token_format = $1 WHERE identifier = $2")
            .bind(format.map(|f| f.as_str()))
            .bind(identifier);
        self.change_one(Change::Api(identifier), q, || no_api(identifier))
            .await
    }

    pub async fn set_api_claims_profile(
        &self,
        identifier: &str,
        profile: Option<ClaimsProfile>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE apis SET claims_profile = $1 WHERE identifier = $2")
            .bind(profile.map(|p| p.to_string()))
            .bind(identifier);
        self.change_one(Change::Api(identifier), q, || no_api(identifier))
            .await
    }

    /// Writes an API's settings (everything but its identifier and
    /// creation) in one change.
    pub async fn update_api(&self, a: &ApiRecord) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE apis SET name = $1, scopes = $2, lifetime = $3, max_lifetime = $4,
               algorithm = $5, token_format = $6, claims_profile = $7
             WHERE identifier = $8",
        )
        .bind(&a.name)
        .bind(join(&a.scopes))
        .bind(a.lifetime.map(|l| l as i64))
        .bind(a.max_lifetime.map(|l| l as i64))
        .bind(a.algorithm.as_str())
        .bind(a.token_format.map(|f| f.as_str()))
        .bind(a.claims_profile.map(|p| p.to_string()))
        .bind(&a.identifier);
        self.change_one(Change::Api(&a.identifier), q, || no_api(&a.identifier))
            .await
    }

    /// Deletes the API and its grants; the clients that held one are named
    /// in the change log too, so no node keeps a grant for an API that may
    /// come back under the same identifier.
    pub async fn delete_api(&self, identifier: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_change(Change::Api(identifier)).await?;
        sqlx::query(
            "INSERT INTO changes (revision, kind, subject)
             SELECT (SELECT value FROM revision WHERE id = 1), 'client', client_id
             FROM grants WHERE api = $1",
        )
        .bind(identifier)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM apis WHERE identifier = $1")
            .bind(identifier)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(no_api(identifier));
        }
        tx.commit().await?;
        Ok(())
    }
}

fn no_api(identifier: &str) -> StoreError {
    StoreError::NotFound(format!("no API '{identifier}'"))
}

pub(super) fn api_row(row: &AnyRow) -> Result<ApiRecord, StoreError> {
    Ok(ApiRecord {
        identifier: row.try_get("identifier")?,
        name: row.try_get("name")?,
        scopes: split(row.try_get("scopes")?),
        lifetime: opt_u64(row, "lifetime")?,
        max_lifetime: opt_u64(row, "max_lifetime")?,
        algorithm: parsed::<Algorithm>(row, "algorithm")?,
        created_at: row.try_get("created_at")?,
        token_format: opt_parsed(row, "token_format")?,
        claims_profile: opt_parsed(row, "claims_profile")?,
    })
}
