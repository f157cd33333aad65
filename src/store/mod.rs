//! Persistence on SQLite (embedded, the default) or PostgreSQL (several
//! nodes). Both run the same runtime queries through sqlx's `Any` driver;
//! what differs (connecting, migrations, change notification) lives in
//! `sqlite.rs` and `postgres.rs`.
//!
//! Every write to registry data bumps `revision` in the same transaction, so
//! servers know when to rebuild their in-memory snapshot.

mod postgres;
mod records;
mod sqlite;

pub use records::*;

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row, Transaction};

use crate::types::{Algorithm, ClaimsProfile, TokenFormat};

/// The channel servers LISTEN on (PostgreSQL) for registry changes.
pub const CHANGE_CHANNEL: &str = "writ_registry";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    /// The database could not be reached, refused us, or is busy, full or
    /// read-only: a condition that passes, worth a 503 rather than a 500.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // SQLite (primary result code, the low byte): BUSY 5,
                    // LOCKED 6, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
                    code.parse::<u32>()
                        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
                } else {
                    // PostgreSQL SQLSTATE: connection exception (08), operator
                    // intervention such as terminated backends (57),
                    // insufficient resources such as a full disk (53), lost
                    // credentials (28), CONNECT privilege (42501), or a
                    // read-only database, as after a failover (25006).
                    ["08", "57", "53", "28"].iter().any(|c| code.starts_with(c))
                        || code == "42501"
                        || code == "25006"
                }
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the data lives, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// `sqlite://PATH`, `sqlite:PATH`, a bare path, or `postgres://…`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty()
            || path == ":memory:"
            || url.contains("://") && !url.starts_with("sqlite")
        {
            return Err(StoreError::Config(format!(
                "'{url}' names no database: use sqlite://PATH or postgres://…"
            )));
        }
        Ok(Self::Sqlite(path.into()))
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    location: Location,
}

type Tx = Transaction<'static, sqlx::Any>;

fn conflict_on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

fn flag(b: bool) -> i64 {
    b as i64
}

impl Store {
    /// Opens the database, creating (SQLite) and migrating it as needed.
    pub async fn open(location: &Location) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (pool, backend) = match location {
            Location::Sqlite(path) => (sqlite::connect(path).await?, Backend::Sqlite),
            Location::Postgres(url) => (postgres::connect(url).await?, Backend::Postgres),
        };
        match backend {
            Backend::Sqlite => sqlite::MIGRATOR.run(&pool).await?,
            Backend::Postgres => postgres::MIGRATOR.run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            location: location.clone(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A stream of change notifications where the backend has them
    /// (PostgreSQL LISTEN); `None` for SQLite, which is polled.
    pub async fn listen(&self) -> Result<Option<postgres::Changes>, StoreError> {
        match &self.location {
            Location::Postgres(url) => Ok(Some(postgres::Changes::listen(url).await?)),
            Location::Sqlite(_) => Ok(None),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Starts a registry write: the revision bump comes first, so it also
    /// takes SQLite's write lock at once, and PostgreSQL announces it on commit.
    async fn begin_change(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANGE_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// One registry change that must touch a row: `missing` when none matched,
    /// and then nothing is written.
    async fn change_one<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        missing: impl FnOnce() -> StoreError,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(missing());
        }
        tx.commit().await?;
        Ok(())
    }

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

    // ---- clients ----

    pub async fn create_client(
        &self,
        client: &ClientRecord,
        secret_hash: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, public, scopes, default_scope, lifetime, grant_types, enabled, created_at, token_format, claims)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(flag(client.public))
        .bind(join(&client.scopes))
        .bind(client.default_scope.as_deref().map(join))
        .bind(client.lifetime.map(|l| l as i64))
        .bind(join(&client.grant_types))
        .bind(flag(client.enabled))
        .bind(client.created_at)
        .bind(client.token_format.map(|f| f.as_str()))
        .bind(client.claims.as_ref().map(|c| serde_json::Value::from(c.clone()).to_string()))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("client '{}' already exists", client.id)))?;
        if let Some(hash) = secret_hash {
            insert_secret(&mut tx, &client.id, hash, client.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_row).collect()
    }

    pub async fn client(&self, id: &str) -> Result<ClientRecord, StoreError> {
        sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_row)
            .transpose()?
            .ok_or_else(|| no_client(id))
    }

    pub async fn secrets(&self, client_id: &str) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM client_secrets WHERE client_id = $1 ORDER BY id")
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(secret_row).collect()
    }

    pub async fn set_client_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE clients SET enabled = $1 WHERE id = $2")
            .bind(flag(enabled))
            .bind(id);
        self.change_one(q, || no_client(id)).await
    }

    pub async fn set_client_format(
        &self,
        id: &str,
        format: Option<TokenFormat>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE clients SET token_format = $1 WHERE id = $2")
            .bind(format.map(|f| f.as_str()))
            .bind(id);
        self.change_one(q, || no_client(id)).await
    }

    pub async fn set_client_claims(
        &self,
        id: &str,
        claims: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE clients SET claims = $1 WHERE id = $2")
            .bind(claims.map(|c| serde_json::Value::from(c.clone()).to_string()))
            .bind(id);
        self.change_one(q, || no_client(id)).await
    }

    pub async fn delete_client(&self, id: &str) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM clients WHERE id = $1").bind(id);
        self.change_one(q, || no_client(id)).await
    }

    /// Adds a new secret. The client's other live secrets keep working until
    /// `now + overlap`; with no overlap they are deleted at once.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        hash: &[u8],
        now: i64,
        overlap: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
        let public: Option<i64> = sqlx::query_scalar("SELECT public FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        match public {
            None => return Err(no_client(client_id)),
            Some(1) => {
                return Err(StoreError::Conflict(format!(
                    "client '{client_id}' is public and has no secret"
                )))
            }
            Some(_) => {}
        }
        if overlap <= 0 {
            sqlx::query("DELETE FROM client_secrets WHERE client_id = $1")
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        } else {
            let until = now + overlap;
            sqlx::query(
                "UPDATE client_secrets SET expires_at = $1
                 WHERE client_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(until)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        }
        insert_secret(&mut tx, client_id, hash, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn revoke_secret(&self, client_id: &str, secret_id: i64) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM client_secrets WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(secret_id);
        self.change_one(q, || {
            StoreError::NotFound(format!("client '{client_id}' has no secret {secret_id}"))
        })
        .await
    }

    /// Records when secrets were last used. Not a registry change: no revision bump.
    pub async fn touch_secrets(&self, used: &[(i64, i64)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE client_secrets SET last_used_at = $1
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(*at)
            .bind(*id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- APIs ----

    pub async fn create_api(&self, api: &ApiRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
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
        self.change_one(q, || no_api(identifier)).await
    }

    pub async fn set_api_claims_profile(
        &self,
        identifier: &str,
        profile: Option<ClaimsProfile>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE apis SET claims_profile = $1 WHERE identifier = $2")
            .bind(profile.map(|p| p.to_string()))
            .bind(identifier);
        self.change_one(q, || no_api(identifier)).await
    }

    pub async fn delete_api(&self, identifier: &str) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM apis WHERE identifier = $1").bind(identifier);
        self.change_one(q, || no_api(identifier)).await
    }

    // ---- grants ----

    pub async fn create_grant(&self, grant: &GrantRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
        sqlx::query(
            "INSERT INTO grants (client_id, api, scopes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&grant.client_id)
        .bind(&grant.api)
        .bind(join(&grant.scopes))
        .bind(grant.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!(
                    "client '{}' already has a grant for '{}': delete it first",
                    grant.client_id, grant.api
                )
            })
        })?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM grants ORDER BY client_id, api")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(grant_row).collect()
    }

    pub async fn delete_grant(&self, client_id: &str, api: &str) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM grants WHERE client_id = $1 AND api = $2")
            .bind(client_id)
            .bind(api);
        self.change_one(q, || {
            StoreError::NotFound(format!("client '{client_id}' has no grant for '{api}'"))
        })
        .await
    }

    // ---- keys ----

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_row).collect()
    }

    /// Inserts a key as it is (active when `activated_at` is set, else next).
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One rotation step for an algorithm, atomically: the active key
    /// `retiring` (if any) stops signing and stays published until
    /// `publish_until`; `promote` (the next key) becomes active; `next` is
    /// published to take over at the following rotation. Fails with
    /// `Conflict` when another node rotated first.
    pub async fn rotate_keys(
        &self,
        retiring: Option<&str>,
        promote: &KeyRecord,
        next: &KeyRecord,
        now: i64,
        publish_until: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change().await?;
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

    // ---- opaque tokens and revocation ----

    /// Inserts a batch of tokens in one transaction (group commit).
    pub async fn insert_tokens(&self, tokens: &[TokenRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Multi-row INSERTs: 7 parameters a row, 700 a statement, well under
        // both backends' limits. SQLite gets anonymous `?` placeholders: for
        // numbered ones every bind looks its name up in a list, quadratic here.
        for chunk in tokens.chunks(100) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=7)
                        .map(|k| match self.backend {
                            Backend::Sqlite => "?".to_owned(),
                            Backend::Postgres => format!("${}", i * 7 + k),
                        })
                        .collect();
                    format!("({})", p.join(","))
                })
                .collect();
            let sql = format!(
                "INSERT INTO tokens (id, hash, client_id, scope, audience, issued_at, expires_at) VALUES {}",
                rows.join(",")
            );
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = q
                    .bind(&t.id[..])
                    .bind(&t.hash[..])
                    .bind(&t.client_id)
                    .bind(&t.scope)
                    .bind(&t.audience)
                    .bind(t.issued_at)
                    .bind(t.expires_at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn token(&self, id: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    pub async fn revoke_token(&self, id: &[u8], now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
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

    /// Deletes up to `batch` expired tokens and revocations; returns how many.
    pub async fn purge_expired(&self, now: i64, batch: i64) -> Result<u64, StoreError> {
        let tokens = sqlx::query(
            "DELETE FROM tokens WHERE id IN
               (SELECT id FROM tokens WHERE expires_at <= $1 LIMIT $2)",
        )
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
        Ok(tokens + jtis)
    }
}

async fn fetch<T>(
    tx: &mut Tx,
    sql: &'static str,
    map: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = sqlx::query(sql).fetch_all(&mut **tx).await?;
    rows.iter().map(map).collect()
}

async fn insert_secret(
    tx: &mut Tx,
    client_id: &str,
    hash: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO client_secrets (client_id, hash, created_at) VALUES ($1, $2, $3)")
        .bind(client_id)
        .bind(hash)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
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

fn no_client(id: &str) -> StoreError {
    StoreError::NotFound(format!("no client '{id}'"))
}

fn no_api(identifier: &str) -> StoreError {
    StoreError::NotFound(format!("no API '{identifier}'"))
}

fn opt_u64(row: &AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v.max(0) as u64))
}

fn parsed<T: std::str::FromStr<Err = String>>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn opt_parsed<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    col: &str,
) -> Result<Option<T>, sqlx::Error> {
    row.try_get::<Option<String>, _>(col)?
        .map(|t| t.parse().map_err(|e: String| sqlx::Error::Decode(e.into())))
        .transpose()
}

fn client_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        public: row.try_get::<i64, _>("public")? != 0,
        scopes: split(row.try_get("scopes")?),
        default_scope: row
            .try_get::<Option<String>, _>("default_scope")?
            .map(|s| split(&s)),
        lifetime: opt_u64(row, "lifetime")?,
        grant_types: split(row.try_get("grant_types")?),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        token_format: opt_parsed(row, "token_format")?,
        claims: row
            .try_get::<Option<String>, _>("claims")?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
    })
}

fn secret_row(row: &AnyRow) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn api_row(row: &AnyRow) -> Result<ApiRecord, StoreError> {
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

fn grant_row(row: &AnyRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        client_id: row.try_get("client_id")?,
        api: row.try_get("api")?,
        scopes: split(row.try_get("scopes")?),
        created_at: row.try_get("created_at")?,
    })
}

fn key_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
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

fn token_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        audience: row.try_get("audience")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// How long a request waits for a pooled connection before it is answered 503.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
