//! The `console_signin_links` and `console_sessions` tables: only HMACs of
//! the links' tokens and the session ids are kept.

use sqlx::Row;

use super::{Store, StoreError};

/// What a sign-in link was found to be when it was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigninLink {
    /// It was valid and is now spent: its id and who asked for it.
    Spent {
        id: i64,
        created_by: String,
    },
    /// Spent before.
    Used,
    Expired,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub created_at: i64,
    pub expires_at: i64,
    pub label: String,
}

impl Store {
    pub async fn create_signin_link(
        &self,
        hash: &[u8],
        created_at: i64,
        expires_at: i64,
        created_by: &str,
    ) -> Result<(), StoreError> {
        // Links expired a day ago are of no further use.
        sqlx::query("DELETE FROM console_signin_links WHERE expires_at < $1")
            .bind(created_at - 24 * 3600)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_signin_links (hash, created_at, expires_at, used, created_by)
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(hash)
        .bind(created_at)
        .bind(expires_at)
        .bind(created_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends a link: one conditional update, so that of two requests with
    /// the same link (two nodes, a double click) exactly one wins.
    pub async fn spend_signin_link(&self, hash: &[u8], now: i64) -> Result<SigninLink, StoreError> {
        let spent = sqlx::query(
            "UPDATE console_signin_links SET used = 1
             WHERE hash = $1 AND used = 0 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT id, used, expires_at, created_by FROM console_signin_links WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SigninLink::Unknown);
        };
        if spent.rows_affected() == 1 {
            return Ok(SigninLink::Spent {
                id: row.try_get("id")?,
                created_by: row.try_get("created_by")?,
            });
        }
        if row.try_get::<i64, _>("used")? != 0 {
            Ok(SigninLink::Used)
        } else {
            Ok(SigninLink::Expired)
        }
    }

    pub async fn create_console_session(
        &self,
        hash: &[u8],
        session: &ConsoleSession,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(session.created_at)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (hash, created_at, expires_at, label)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(hash)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(&session.label)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session that has not expired.
    pub async fn console_session(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT created_at, expires_at, label FROM console_sessions
             WHERE hash = $1 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                label: r.try_get("label")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    pub async fn delete_console_session(&self, hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
