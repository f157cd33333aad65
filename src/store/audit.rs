//! The `audit_events` and `idempotency` tables of the admin front doors.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub subject: String,
    pub actor: String,
    pub via: String,
}

/// A stored answer to an idempotent create.
#[derive(Debug, Clone)]
pub struct IdempotentAnswer {
    pub request_hash: Vec<u8>,
    pub status: u16,
    /// Sealed under the master key.
    pub response: Vec<u8>,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_FOR: i64 = 24 * 3600;

impl Store {
    pub async fn record_audit(
        &self,
        at: i64,
        event: &str,
        subject: &str,
        actor: &str,
        via: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (at, event, subject, actor, via) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(at)
        .bind(event)
        .bind(subject)
        .bind(actor)
        .bind(via)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Newest first, before the event `before` (a cursor), at most `limit`.
    pub async fn audit_events(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE $1 = 0 OR id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(i64::from(before.is_some()))
        .bind(before.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    event: r.try_get("event")?,
                    subject: r.try_get("subject")?,
                    actor: r.try_get("actor")?,
                    via: r.try_get("via")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn idempotent_answer(
        &self,
        caller: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency
             WHERE caller = $1 AND key = $2 AND created_at > $3",
        )
        .bind(caller)
        .bind(key)
        .bind(now - IDEMPOTENCY_FOR)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(IdempotentAnswer {
                request_hash: r.try_get("request_hash")?,
                status: r.try_get::<i64, _>("status")? as u16,
                response: r.try_get("response")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    /// Keeps an answer; a key used already (a race) keeps the first.
    pub async fn keep_idempotent_answer(
        &self,
        caller: &str,
        key: &str,
        answer: &IdempotentAnswer,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency WHERE created_at <= $1")
            .bind(now - IDEMPOTENCY_FOR)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO idempotency (caller, key, request_hash, status, response, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (caller, key) DO NOTHING",
        )
        .bind(caller)
        .bind(key)
        .bind(&answer.request_hash[..])
        .bind(i64::from(answer.status))
        .bind(&answer.response[..])
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
