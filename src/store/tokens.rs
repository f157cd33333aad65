//! The `tokens` and `revoked_jtis` tables: opaque tokens, and the JWTs
//! revoked before they expire.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};

/// How many tokens, of any client, one page of a client's tokens reads at
/// most.
pub const SCAN: i64 = 10_000;

/// Where selectors in order of expiry begin (`selector_prefix`).
const EXPIRY_ORDER: [u8; 1] = [0x80];

/// How many tokens from before selectors were in order of expiry one purge
/// reads at most (`Store::purge_expired`).
const LEGACY_WINDOW: i64 = 10_000;

/// The first six bytes of an opaque token's selector: the millisecond it
/// expires (Unix, 48 bits) with the top bit set. The primary key is then in
/// order of expiry, so the expired tokens are one range at its start and the
/// purge needs no index on `expires_at`, which cost every token issued a
/// second B-tree insert; tokens of one lifetime still append to the B-tree.
/// Selectors from before this order began with the issue time, below 0x80,
/// and sort before every one of these. Nothing may trust the prefix (to
/// skip a lookup, say): it is the client's to alter, and only the stored
/// `expires_at` counts.
pub fn selector_prefix(expires_millis: i64) -> [u8; 6] {
    let millis = expires_millis.clamp(0, (1 << 47) - 1) as u64 | 1 << 47;
    let b = millis.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// An opaque access token: its public selector and the keyed hash of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public selector (the `id` column), in order of expiry
    /// (`selector_prefix`).
    pub selector: Vec<u8>,
    pub hash: Vec<u8>,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The issuer it was issued under; `None` for tokens from before issuers
    /// were recorded, which count as the current issuer's.
    pub issuer: Option<String>,
}

impl Store {
    /// Inserts a batch of tokens, all or none, committed before this
    /// returns (group commit): on SQLite by the token thread's own
    /// connection (`sqlite_tokens`), on PostgreSQL by connections of their
    /// own, in one statement (`postgres_tokens`).
    pub async fn insert_tokens(&self, tokens: Vec<TokenRecord>) -> Result<(), StoreError> {
        match &self.token_writes {
            super::TokenWrites::Sqlite(thread) => thread.insert(tokens).await,
            super::TokenWrites::Postgres(connections) => connections.insert(&tokens).await,
        }
    }

    /// A page of a client's live opaque tokens in selector order from the
    /// last: the last to expire first (for one lifetime, the newest first),
    /// then those from before selectors were in order of expiry, newest
    /// first. At most `limit`, from the tokens that sort before the selector
    /// `before` (all, without it), and where the next page starts: `None`
    /// once every token has been seen.
    ///
    /// Each page reads at most `SCAN` tokens of any client, in that order,
    /// by selector; a page can therefore hold fewer than
    /// `limit` and still have a next one. There is no index by client: on
    /// the token path it cost a third of SQLite's work for each insert, and
    /// with many clients a random B-tree page written for every token, for
    /// the sake of this admin listing.
    pub async fn client_tokens(
        &self,
        client_id: &str,
        now: i64,
        limit: u32,
        before: Option<&[u8]>,
    ) -> Result<(Vec<TokenRecord>, Option<Vec<u8>>), StoreError> {
        // A selector is 16 bytes; 17 of 0xff sort after every one, and the
        // empty one before every one.
        let start = before.map_or_else(|| vec![0xff; 17], <[u8]>::to_vec);
        // The window's last token when it is full, where the next page goes
        // on. The page is read down to it and no further, so a purge between
        // the two reads cannot start the next page past tokens unread.
        let end: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT id FROM tokens WHERE id < $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
        )
        .bind(&start)
        .bind(SCAN - 1)
        .fetch_optional(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT * FROM tokens WHERE id < $1 AND id >= $2
               AND client_id = $3 AND revoked_at IS NULL AND expires_at > $4
             ORDER BY id DESC LIMIT $5",
        )
        .bind(&start)
        .bind(end.as_deref().unwrap_or_default())
        .bind(client_id)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let tokens = rows.iter().map(token_row).collect::<Result<Vec<_>, _>>()?;
        let next = match tokens.last() {
            Some(last) if tokens.len() == limit as usize => Some(last.selector.clone()),
            _ => end,
        };
        Ok((tokens, next))
    }

    pub async fn token(&self, selector: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(selector)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    pub async fn revoke_token(&self, selector: &[u8], now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(selector)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn revoke_jti(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Deletes up to `batch` expired tokens, revocations and records of used
    /// client assertions (each); returns how many.
    ///
    /// A token expires at `expires_at` seconds, and its selector begins with
    /// a millisecond of that second: the expired ones are the selectors
    /// from `EXPIRY_ORDER` up to the first millisecond of the second after
    /// `now`, a range of the key whose every row goes. Tokens whose
    /// selectors began with their issue time, from before, sort below
    /// `EXPIRY_ORDER`; each purge reads at most `LEGACY_WINDOW` of them,
    /// the oldest, so that however many are still live it holds SQLite's
    /// write lock for a moment only. Their number only falls: an expired
    /// one behind that many live ones waits for them to expire.
    pub async fn purge_expired(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        let below = selector_prefix(now.saturating_add(1).saturating_mul(1000));
        let tokens = sqlx::query(
            "DELETE FROM tokens WHERE id IN
               (SELECT id FROM tokens WHERE id >= $1 AND id < $2 AND expires_at <= $3 LIMIT $4)",
        )
        .bind(&EXPIRY_ORDER[..])
        .bind(&below[..])
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let legacy = sqlx::query(
            "DELETE FROM tokens WHERE id IN
               (SELECT id FROM (SELECT id, expires_at FROM tokens WHERE id < $1 ORDER BY id LIMIT $2)
                  AS legacy WHERE expires_at <= $3 LIMIT $4)",
        )
        .bind(&EXPIRY_ORDER[..])
        .bind(LEGACY_WINDOW)
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let jtis = sqlx::query(
            "DELETE FROM revoked_jtis WHERE jti IN
               (SELECT jti FROM revoked_jtis WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let assertions = self.purge_assertions(now, batch).await?;
        Ok(tokens + legacy + jtis + assertions)
    }
}

fn token_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        selector: row.try_get("id")?,
        hash: row.try_get("hash")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        audience: row.try_get("audience")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        issuer: row.try_get("issuer")?,
    })
}

#[cfg(test)]
mod tests {
    use super::selector_prefix;

    #[test]
    fn selector_prefixes_sort_by_expiry_after_issue_time_selectors() {
        let second = 1_800_000_000i64;
        let last_ms = selector_prefix(second * 1000 + 999);
        let next = selector_prefix((second + 1) * 1000);
        assert!(selector_prefix(second * 1000) < last_ms);
        assert!(
            last_ms < next,
            "a second's milliseconds sort before the next"
        );
        // A selector from the issue time (48-bit milliseconds, to 2039 below
        // 0x02) sorts before every prefix, even of a token long expired.
        let issued = &(second * 1000).to_be_bytes()[2..];
        assert!(issued < &selector_prefix(0)[..]);
        assert_eq!(selector_prefix(-5), selector_prefix(0));
        assert_eq!(selector_prefix(i64::MAX), [0xff; 6]);
    }
}
