//! The `changes` table: what each registry write touched, keyed by the
//! revision it made. Nodes read it to apply only what changed.

use sqlx::Row;

use super::{Store, StoreError};

/// What one registry write touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// A client's settings, state, secrets or grants: forget its cached entry.
    Client(&'a str),
    /// A new client: forget that the id was unknown.
    ClientCreated(&'a str),
    /// Many new clients (an import): forget every unknown id.
    ClientsCreated,
    /// An API: rebuild the API and key snapshot.
    Api(&'a str),
    /// Signing keys: rebuild the API and key snapshot.
    Keys,
}

impl<'a> Change<'a> {
    pub(super) fn parts(self) -> (&'static str, &'a str) {
        match self {
            Self::Client(id) => ("client", id),
            Self::ClientCreated(id) => ("client.created", id),
            Self::ClientsCreated => ("clients.created", ""),
            Self::Api(id) => ("api", id),
            Self::Keys => ("keys", ""),
        }
    }
}

/// A change as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub revision: i64,
    pub kind: String,
    pub subject: String,
}

impl ChangeRecord {
    pub fn change(&self) -> Option<Change<'_>> {
        Some(match self.kind.as_str() {
            "client" => Change::Client(&self.subject),
            "client.created" => Change::ClientCreated(&self.subject),
            "clients.created" => Change::ClientsCreated,
            "api" => Change::Api(&self.subject),
            "keys" => Change::Keys,
            _ => return None,
        })
    }
}

/// Entries kept; a node further behind starts afresh.
pub const KEPT_CHANGES: i64 = 100_000;

impl Store {
    /// The changes after `revision`, oldest first, at most `limit`; `None`
    /// when the log no longer reaches back to `revision` (pruned): the
    /// caller must start afresh.
    pub async fn changes_since(
        &self,
        revision: i64,
        limit: i64,
    ) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        let oldest: Option<i64> = sqlx::query_scalar("SELECT min(revision) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        let current = self.revision().await?;
        if current > revision && oldest.is_none_or(|o| o > revision + 1) {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT revision, kind, subject FROM changes WHERE revision > $1 ORDER BY revision LIMIT $2",
        )
        .bind(revision)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChangeRecord {
                    revision: r.try_get("revision")?,
                    kind: r.try_get("kind")?,
                    subject: r.try_get("subject")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map(Some)
            .map_err(Into::into)
    }

    /// Forgets all but the newest `KEPT_CHANGES` revisions; returns how many
    /// entries went.
    pub async fn prune_changes(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM changes WHERE revision < (SELECT value FROM revision WHERE id = 1) - $1",
        )
        .bind(KEPT_CHANGES)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
