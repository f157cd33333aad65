//! The `client_assertions` table: the `jti` of every client assertion
//! accepted (RFC 7523 §3 item 7), until the assertion expires, so that a
//! replay is refused by every node sharing the database.

use std::collections::HashSet;

use sqlx::Row;

use super::{Backend, Store, StoreError};

/// One use of an assertion's `jti` by a client, recorded until `expires_at`.
#[derive(Debug, Clone)]
pub struct Replay {
    pub client_id: String,
    pub jti: String,
    pub expires_at: i64,
    pub now: i64,
}

impl Store {
    /// Records that the client used this `jti`; `false` if it already had
    /// (a replay). A record whose assertion has expired is taken over: its
    /// `jti` may be used again, since the old assertion no longer can.
    pub async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let one = Replay {
            client_id: client_id.into(),
            jti: jti.into(),
            expires_at,
            now,
        };
        Ok(self.record_assertions(&[one]).await?[0])
    }

    /// `record_assertion` for a batch, in one transaction (group commit):
    /// an answer for each, in order. A `jti` twice in one batch is a replay
    /// the second time.
    pub async fn record_assertions(&self, uses: &[Replay]) -> Result<Vec<bool>, StoreError> {
        let mut answers = vec![false; uses.len()];
        let mut seen = HashSet::with_capacity(uses.len());
        // The first use of each (client, jti) in the batch; the rest are replays.
        let firsts: Vec<usize> = (0..uses.len())
            .filter(|&i| seen.insert((&uses[i].client_id, &uses[i].jti)))
            .collect();
        let mut written = HashSet::with_capacity(firsts.len());
        let mut tx = self.pool.begin().await?;
        // 3 parameters a row and one for `now`: 301 a statement.
        for chunk in firsts.chunks(100) {
            let now = match self.backend {
                Backend::Sqlite => "?".to_owned(),
                Backend::Postgres => format!("${}", 3 * chunk.len() + 1),
            };
            let sql = format!(
                "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES {}
                 ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE client_assertions.expires_at <= {now}
                 RETURNING client_id, jti",
                self.placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for &i in chunk {
                let u = &uses[i];
                q = q.bind(&u.client_id).bind(&u.jti).bind(u.expires_at);
            }
            // Each record is judged by its own clock reading; a batch spans
            // microseconds, so the latest stands for all.
            let now = chunk.iter().map(|&i| uses[i].now).max().unwrap_or(0);
            for row in q.bind(now).fetch_all(&mut *tx).await? {
                written.insert((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
            }
        }
        tx.commit().await?;
        for i in firsts {
            answers[i] = written.contains(&(uses[i].client_id.clone(), uses[i].jti.clone()));
        }
        Ok(answers)
    }

    /// Deletes up to `batch` records of expired assertions; returns how many.
    pub(super) async fn purge_assertions(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM client_assertions WHERE (client_id, jti) IN
               (SELECT client_id, jti FROM client_assertions WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
