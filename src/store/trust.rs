//! The `client_trust_rules` table: which external issuers' tokens
//! authenticate a client (workload identity), and on what conditions.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::clients::no_client;
use super::{Change, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustRuleRecord {
    pub id: i64,
    #[serde(skip)]
    pub client_id: String,
    /// The issuer identifier, exactly as its tokens' `iss`.
    pub issuer: String,
    /// The `sub`, exactly or as a pattern with `*`.
    pub subject: Option<String>,
    /// The `aud` its tokens must carry; none: Writ's issuer.
    pub audience: Option<String>,
    /// Further conditions: claim (a name, or a JSON pointer) → value or pattern.
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
}

impl Store {
    pub async fn trust_rules(&self, client_id: &str) -> Result<Vec<TrustRuleRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM client_trust_rules WHERE client_id = $1 ORDER BY id")
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trust_row).collect()
    }

    /// Adds a rule; returns its id.
    pub async fn add_trust_rule(&self, rule: &TrustRuleRecord) -> Result<i64, StoreError> {
        let mut tx = self.begin_change(Change::Client(&rule.client_id)).await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM clients WHERE id = $1")
            .bind(&rule.client_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(no_client(&rule.client_id));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO client_trust_rules (client_id, issuer, subject, audience, claims, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&rule.client_id)
        .bind(&rule.issuer)
        .bind(rule.subject.as_deref())
        .bind(rule.audience.as_deref())
        .bind((!rule.claims.is_empty()).then(|| serde_json::Value::from(rule.claims.clone()).to_string()))
        .bind(rule.created_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn remove_trust_rule(&self, client_id: &str, id: i64) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM client_trust_rules WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(id);
        self.change_one(Change::Client(client_id), q, || {
            StoreError::NotFound(format!("client '{client_id}' has no trust rule {id}"))
        })
        .await
    }
}

pub(super) fn trust_row(row: &AnyRow) -> Result<TrustRuleRecord, StoreError> {
    let claims = match row.try_get::<Option<String>, _>("claims")? {
        None => serde_json::Map::new(),
        Some(text) => serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(e.into()))?,
    };
    Ok(TrustRuleRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        audience: row.try_get("audience")?,
        claims,
        created_at: row.try_get("created_at")?,
    })
}
