//! The `keys` table: signing keys, their private halves sealed under the
//! master key, and where each is in its lifecycle.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{display, parsed, Backend, Change, Store, StoreError, Tx};
use crate::types::Algorithm;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    pub kid: String,
    #[serde(serialize_with = "display")]
    pub algorithm: Algorithm,
    #[serde(skip)]
    pub private_key: Vec<u8>,
    pub created_at: i64,
    /// `None`: a *next* key, published but not yet signing.
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

/// Where a key is in its lifecycle at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published in the JWKS before it ever signs.
    Next,
    /// Signs new tokens.
    Active,
    /// Published, not signing, until its tokens have expired.
    Retiring,
    /// No longer published.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Expired => "expired",
        }
    }
}

impl KeyRecord {
    pub fn state(&self, now: i64) -> KeyState {
        match (self.activated_at, self.retired_at, self.publish_until) {
            (None, None, _) => KeyState::Next,
            (Some(_), None, _) => KeyState::Active,
            (_, Some(_), Some(until)) if until > now => KeyState::Retiring,
            _ => KeyState::Expired,
        }
    }
}

/// The PostgreSQL advisory lock key changes hold ("writkeys" in ASCII).
const KEYS_LOCK: i64 = 0x7772_6974_6b65_7973;

impl Store {
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_row).collect()
    }

    /// Inserts a key as it is (active when `activated_at` is set, else next).
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_change(Change::Keys).await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts each of `candidates` whose algorithm has no key in its state
    /// (active when `activated_at` is set, else next) yet; returns the kids
    /// inserted. The keys are read again in the transaction that inserts:
    /// nodes starting together on a fresh database must not each add an
    /// active key because none of them saw another's.
    pub async fn insert_missing_keys(
        &self,
        candidates: &[KeyRecord],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_key_change().await?;
        let mut keys = super::fetch(&mut tx, "SELECT * FROM keys", key_row).await?;
        let mut inserted = Vec::new();
        for key in candidates {
            let state = key.state(now);
            if keys
                .iter()
                .any(|k| k.algorithm == key.algorithm && k.state(now) == state)
            {
                continue;
            }
            insert_key(&mut tx, key).await?;
            inserted.push(key.kid.clone());
            keys.push(key.clone());
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// A registry change to the keys, serialised with every other one: on
    /// SQLite the revision bump that starts it takes the write lock; on
    /// PostgreSQL an advisory lock held until commit says so outright.
    async fn begin_key_change(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin_change(Change::Keys).await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(KEYS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// One rotation step for an algorithm, atomically: the active key
    /// `retiring` (if any) stops signing and stays published until
    /// `publish_until`, and so does any other active key of the algorithm
    /// (left by nodes that once raced at start); `promote` (the next key)
    /// becomes active; `next` is published to take over at the following
    /// rotation. Fails with `Conflict` when another node rotated first.
    pub async fn rotate_keys(
        &self,
        retiring: Option<&str>,
        promote: &KeyRecord,
        next: &KeyRecord,
        now: i64,
        publish_until: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_key_change().await?;
        if let Some(kid) = retiring {
            let n = sqlx::query(
                "UPDATE keys SET retired_at = $1, publish_until = $2
                 WHERE kid = $3 AND retired_at IS NULL AND activated_at IS NOT NULL",
            )
            .bind(now)
            .bind(publish_until)
            .bind(kid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "key {kid} was already rotated"
                )));
            }
        }
        sqlx::query(
            "UPDATE keys SET retired_at = $1, publish_until = $2
             WHERE algorithm = $3 AND kid <> $4 AND retired_at IS NULL AND activated_at IS NOT NULL",
        )
        .bind(now)
        .bind(publish_until)
        .bind(promote.algorithm.as_str())
        .bind(&promote.kid)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(
            "UPDATE keys SET activated_at = $1 WHERE kid = $2 AND activated_at IS NULL",
        )
        .bind(now)
        .bind(&promote.kid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            insert_key(
                &mut tx,
                &KeyRecord {
                    activated_at: Some(now),
                    ..promote.clone()
                },
            )
            .await?;
        }
        insert_key(&mut tx, next).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_key(tx: &mut Tx, key: &KeyRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO keys (kid, algorithm, private_key, created_at, activated_at, retired_at, publish_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(key.algorithm.as_str())
    .bind(&key.private_key)
    .bind(key.created_at)
    .bind(key.activated_at)
    .bind(key.retired_at)
    .bind(key.publish_until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn key_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        kid: row.try_get("kid")?,
        algorithm: parsed::<Algorithm>(row, "algorithm")?,
        private_key: row.try_get("private_key")?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
        publish_until: row.try_get("publish_until")?,
    })
}
