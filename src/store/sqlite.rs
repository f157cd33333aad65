use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqlitePool, Transaction};

use super::{
    join, split, ApiRecord, ClientRecord, GrantRecord, KeyRecord, SecretRecord, Snapshot,
    StoreError,
};
use crate::keys::Algorithm;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The embedded database: one file, WAL mode, shared by the server and the CLI.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

type Tx<'a> = Transaction<'a, sqlx::Sqlite>;

fn conflict_on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

impl Store {
    /// Opens (creating and migrating when new) the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }

    /// Parses `sqlite://PATH`, `sqlite:PATH` or a bare path.
    pub fn path_from_url(url: &str) -> Result<PathBuf, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(StoreError::Unsupported(
                "PostgreSQL is not supported yet: use sqlite://PATH".into(),
            ));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(StoreError::Unsupported(format!(
                "'{url}' names no database file: use sqlite://PATH"
            )));
        }
        Ok(PathBuf::from_str(path).expect("infallible"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn begin(&self) -> Result<Tx<'static>, StoreError> {
        // BEGIN IMMEDIATE would be ideal; a plain BEGIN that writes first is
        // equivalent here because every write starts with the revision bump.
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Everything the registry needs, read in one transaction so it is consistent.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision = sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let clients = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(client_row)
            .collect::<Result<_, _>>()?;
        let secrets = sqlx::query("SELECT * FROM client_secrets ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(secret_row)
            .collect::<Result<_, _>>()?;
        let apis = sqlx::query("SELECT * FROM apis ORDER BY created_at, identifier")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(api_row)
            .collect::<Result<_, _>>()?;
        let grants = sqlx::query("SELECT * FROM grants ORDER BY client_id, api")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(grant_row)
            .collect::<Result<_, _>>()?;
        let keys = sqlx::query("SELECT * FROM keys ORDER BY created_at, kid")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(key_row)
            .collect::<Result<_, _>>()?;
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
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, public, scopes, default_scope, lifetime, grant_types, enabled, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(client.public)
        .bind(join(&client.scopes))
        .bind(client.default_scope.as_deref().map(join))
        .bind(client.lifetime.map(|l| l as i64))
        .bind(join(&client.grant_types))
        .bind(client.enabled)
        .bind(client.created_at)
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
        sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(client_row)
            .collect()
    }

    pub async fn client(&self, id: &str) -> Result<ClientRecord, StoreError> {
        sqlx::query("SELECT * FROM clients WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_row)
            .transpose()?
            .ok_or_else(|| no_client(id))
    }

    pub async fn secrets(&self, client_id: &str) -> Result<Vec<SecretRecord>, StoreError> {
        sqlx::query("SELECT * FROM client_secrets WHERE client_id = ? ORDER BY id")
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(secret_row)
            .collect()
    }

    pub async fn set_client_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE clients SET enabled = ? WHERE id = ?")
            .bind(enabled)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(no_client(id));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_client(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(no_client(id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces every secret of a confidential client with one new secret.
    pub async fn replace_secret(
        &self,
        client_id: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let public: Option<bool> = sqlx::query_scalar("SELECT public FROM clients WHERE id = ?")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        match public {
            None => return Err(no_client(client_id)),
            Some(true) => {
                return Err(StoreError::Conflict(format!(
                    "client '{client_id}' is public and has no secret"
                )))
            }
            Some(false) => {}
        }
        sqlx::query("DELETE FROM client_secrets WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        insert_secret(&mut tx, client_id, hash, now).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- APIs ----

    pub async fn create_api(&self, api: &ApiRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO apis (identifier, name, scopes, lifetime, max_lifetime, algorithm, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&api.identifier)
        .bind(&api.name)
        .bind(join(&api.scopes))
        .bind(api.lifetime.map(|l| l as i64))
        .bind(api.max_lifetime.map(|l| l as i64))
        .bind(api.algorithm.as_str())
        .bind(api.created_at)
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
        sqlx::query("SELECT * FROM apis ORDER BY created_at, identifier")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(api_row)
            .collect()
    }

    pub async fn api(&self, identifier: &str) -> Result<ApiRecord, StoreError> {
        sqlx::query("SELECT * FROM apis WHERE identifier = ?")
            .bind(identifier)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_row)
            .transpose()?
            .ok_or_else(|| no_api(identifier))
    }

    pub async fn delete_api(&self, identifier: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM apis WHERE identifier = ?")
            .bind(identifier)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(no_api(identifier));
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- grants ----

    pub async fn create_grant(&self, grant: &GrantRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO grants (client_id, api, scopes, created_at) VALUES (?, ?, ?, ?)")
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
        sqlx::query("SELECT * FROM grants ORDER BY client_id, api")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(grant_row)
            .collect()
    }

    pub async fn delete_grant(&self, client_id: &str, api: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM grants WHERE client_id = ? AND api = ?")
            .bind(client_id)
            .bind(api)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "client '{client_id}' has no grant for '{api}'"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- keys ----

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query("SELECT * FROM keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_row)
            .collect()
    }

    /// Adds `new` as the signing key for its algorithm and retires the keys it
    /// replaces: they stop signing now but stay published until `publish_until`.
    pub async fn add_key(&self, new: &KeyRecord, publish_until: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE keys SET retired_at = ?, publish_until = ?
             WHERE algorithm = ? AND retired_at IS NULL",
        )
        .bind(new.created_at)
        .bind(publish_until)
        .bind(new.algorithm.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO keys (kid, algorithm, private_key, created_at, retired_at, publish_until)
             VALUES (?, ?, ?, ?, NULL, NULL)",
        )
        .bind(&new.kid)
        .bind(new.algorithm.as_str())
        .bind(&new.private_key)
        .bind(new.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_secret(
    tx: &mut Tx<'_>,
    client_id: &str,
    hash: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO client_secrets (client_id, hash, created_at) VALUES (?, ?, ?)")
        .bind(client_id)
        .bind(hash)
        .bind(now)
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

fn opt_u64(row: &SqliteRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v.max(0) as u64))
}

fn algorithm(row: &SqliteRow) -> Result<Algorithm, sqlx::Error> {
    let text: String = row.try_get("algorithm")?;
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn client_row(row: &SqliteRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        public: row.try_get("public")?,
        scopes: split(row.try_get("scopes")?),
        default_scope: row
            .try_get::<Option<String>, _>("default_scope")?
            .map(|s| split(&s)),
        lifetime: opt_u64(row, "lifetime")?,
        grant_types: split(row.try_get("grant_types")?),
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
    })
}

fn secret_row(row: &SqliteRow) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn api_row(row: &SqliteRow) -> Result<ApiRecord, StoreError> {
    Ok(ApiRecord {
        identifier: row.try_get("identifier")?,
        name: row.try_get("name")?,
        scopes: split(row.try_get("scopes")?),
        lifetime: opt_u64(row, "lifetime")?,
        max_lifetime: opt_u64(row, "max_lifetime")?,
        algorithm: algorithm(row)?,
        created_at: row.try_get("created_at")?,
    })
}

fn grant_row(row: &SqliteRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        client_id: row.try_get("client_id")?,
        api: row.try_get("api")?,
        scopes: split(row.try_get("scopes")?),
        created_at: row.try_get("created_at")?,
    })
}

fn key_row(row: &SqliteRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        kid: row.try_get("kid")?,
        algorithm: algorithm(row)?,
        private_key: row.try_get("private_key")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
        publish_until: row.try_get("publish_until")?,
    })
}
