//! The `clients` and `client_secrets` tables.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    conflict_on_unique, flag, join, opt_display, opt_parsed, opt_u64, split, Backend, Change,
    Store, StoreError, Tx,
};
use crate::types::{AuthMethod, TokenFormat};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub scopes: Vec<String>,
    pub default_scope: Option<Vec<String>>,
    pub lifetime: Option<u64>,
    pub grant_types: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    #[serde(serialize_with = "opt_display")]
    pub token_format: Option<TokenFormat>,
    /// Extra claims for this client's tokens.
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// How it may authenticate (RFC 7591 `token_endpoint_auth_method`).
    #[serde(serialize_with = "display_list")]
    pub auth_methods: Vec<AuthMethod>,
    /// Its public keys for `private_key_jwt`: a JWK Set as JSON text.
    pub jwks: Option<String>,
    /// Or the URL its keys are fetched from (RFC 7591 §2 `jwks_uri`).
    pub jwks_uri: Option<String>,
}

fn display_list<S: serde::Serializer>(v: &[AuthMethod], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|m| m.as_str()))
}

/// A LIKE pattern matching `text` literally (`\\` escapes).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Space-delimited, as stored.
fn join_methods(methods: &[AuthMethod]) -> String {
    methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRecord {
    pub id: i64,
    pub client_id: String,
    #[serde(skip)]
    pub hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl Store {
    pub async fn create_client(
        &self,
        client: &ClientRecord,
        secret_hash: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change(Change::ClientCreated(&client.id)).await?;
        self.insert_clients(&mut tx, std::slice::from_ref(client), || {
            format!("client '{}' already exists", client.id)
        })
        .await?;
        if let Some(hash) = secret_hash {
            insert_secret(&mut tx, &client.id, hash, client.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers many clients in one change (an import batch): all or none.
    /// `secret_hashes[i]` belongs to `clients[i]`.
    pub async fn create_clients(
        &self,
        clients: &[ClientRecord],
        secret_hashes: &[Option<Vec<u8>>],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_change(Change::ClientsCreated).await?;
        self.insert_clients(&mut tx, clients, || {
            "a client id in the batch already exists".into()
        })
        .await?;
        let secrets: Vec<(&ClientRecord, &Vec<u8>)> = clients
            .iter()
            .zip(secret_hashes)
            .filter_map(|(c, h)| Some((c, h.as_ref()?)))
            .collect();
        for chunk in secrets.chunks(300) {
            let sql = format!(
                "INSERT INTO client_secrets (client_id, hash, created_at) VALUES {}",
                self.placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (c, hash) in chunk {
                q = q.bind(&c.id).bind(&hash[..]).bind(c.created_at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Multi-row INSERTs of clients: 14 parameters a row, 100 rows a
    /// statement, within both backends' limits.
    async fn insert_clients(
        &self,
        tx: &mut Tx,
        clients: &[ClientRecord],
        exists: impl Fn() -> String,
    ) -> Result<(), StoreError> {
        for chunk in clients.chunks(100) {
            let sql = format!(
                "INSERT INTO clients (id, name, public, scopes, default_scope, lifetime, grant_types, enabled, created_at, token_format, claims, auth_methods, jwks, jwks_uri) VALUES {}",
                self.placeholders(chunk.len(), 14)
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(&c.id)
                    .bind(&c.name)
                    .bind(flag(c.public))
                    .bind(join(&c.scopes))
                    .bind(c.default_scope.as_deref().map(join))
                    .bind(c.lifetime.map(|l| l as i64))
                    .bind(join(&c.grant_types))
                    .bind(flag(c.enabled))
                    .bind(c.created_at)
                    .bind(c.token_format.map(|f| f.as_str()))
                    .bind(
                        c.claims
                            .as_ref()
                            .map(|m| serde_json::Value::from(m.clone()).to_string()),
                    )
                    .bind(join_methods(&c.auth_methods))
                    .bind(c.jwks.as_deref())
                    .bind(c.jwks_uri.as_deref());
            }
            q.execute(&mut **tx)
                .await
                .map_err(|e| conflict_on_unique(e, &exists))?;
        }
        Ok(())
    }

    /// Which of `ids` are registered already.
    pub async fn existing_client_ids(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id FROM clients WHERE id IN ({})",
                (1..=chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            found.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(found)
    }

    /// One page of clients in the order they were registered: those after
    /// the client `after` (a cursor that no later registration can sort
    /// before, so a walk sees every client once, also while clients are
    /// added), whose name starts with `name_prefix`.
    pub async fn clients_page(
        &self,
        after: Option<&str>,
        name_prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        if let Some(id) = after {
            self.client(id).await?;
        }
        let order = match self.backend {
            Backend::Sqlite => "rowid",
            Backend::Postgres => "seq",
        };
        // Each condition only when asked for: an `OR` with a flag would keep
        // the planner from seeking to the cursor (a million-row scan).
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if after.is_some() {
            let p = param();
            conditions.push(format!(
                "{order} > (SELECT {order} FROM clients WHERE id = {p})"
            ));
        }
        if name_prefix.is_some() {
            // An index range on the name (`clients_name`): SQLite compares
            // bytes; PostgreSQL's index uses pattern operators for LIKE.
            conditions.push(match self.backend {
                Backend::Sqlite => format!("name >= {} AND name < {}", param(), param()),
                Backend::Postgres => format!("name LIKE {} ESCAPE '\\'", param()),
            });
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT * FROM clients {filter} ORDER BY {order} LIMIT {}",
            param()
        );
        let mut q = sqlx::query(&sql);
        if let Some(id) = after {
            q = q.bind(id);
        }
        if let Some(prefix) = name_prefix {
            q = match self.backend {
                Backend::Sqlite => q.bind(prefix).bind(format!("{prefix}\u{10FFFF}")),
                Backend::Postgres => q.bind(format!("{}%", like_escaped(prefix))),
            };
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(client_row).collect()
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
        self.change_one(Change::Client(id), q, || no_client(id))
            .await
    }

    pub async fn set_client_format(
        &self,
        id: &str,
        format: Option<TokenFormat>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE clients SET token_format = $1 WHERE id = $2")
            .bind(format.map(|f| f.as_str()))
            .bind(id);
        self.change_one(Change::Client(id), q, || no_client(id))
            .await
    }

    pub async fn set_client_claims(
        &self,
        id: &str,
        claims: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE clients SET claims = $1 WHERE id = $2")
            .bind(claims.map(|c| serde_json::Value::from(c.clone()).to_string()))
            .bind(id);
        self.change_one(Change::Client(id), q, || no_client(id))
            .await
    }

    /// Writes a client's settings (everything but its id, kind, state and
    /// creation) in one change.
    pub async fn update_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE clients SET name = $1, scopes = $2, default_scope = $3, lifetime = $4,
               grant_types = $5, token_format = $6, claims = $7, auth_methods = $8, jwks = $9,
               jwks_uri = $10
             WHERE id = $11",
        )
        .bind(&c.name)
        .bind(join(&c.scopes))
        .bind(c.default_scope.as_deref().map(join))
        .bind(c.lifetime.map(|l| l as i64))
        .bind(join(&c.grant_types))
        .bind(c.token_format.map(|f| f.as_str()))
        .bind(
            c.claims
                .as_ref()
                .map(|m| serde_json::Value::from(m.clone()).to_string()),
        )
        .bind(join_methods(&c.auth_methods))
        .bind(c.jwks.as_deref())
        .bind(c.jwks_uri.as_deref())
        .bind(&c.id);
        self.change_one(Change::Client(&c.id), q, || no_client(&c.id))
            .await
    }

    pub async fn delete_client(&self, id: &str) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM clients WHERE id = $1").bind(id);
        self.change_one(Change::Client(id), q, || no_client(id))
            .await
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
        let mut tx = self.begin_change(Change::Client(client_id)).await?;
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
        self.change_one(Change::Client(client_id), q, || {
            StoreError::NotFound(format!("client '{client_id}' has no secret {secret_id}"))
        })
        .await
    }

    /// Records when secrets were last used. Not a registry change: no revision bump.
    pub async fn touch_secrets(&self, used: &[(i64, i64)]) -> Result<(), StoreError> {
        // One statement for many secrets: with many clients each new
        // minute brings a use of each, and a statement apiece would take
        // the core that serves tokens.
        let mut tx = self.pool.begin().await?;
        for chunk in used.chunks(200) {
            let sql = format!(
                "WITH used (id, at) AS (VALUES {})
                 UPDATE client_secrets
                 SET last_used_at = (SELECT at FROM used WHERE used.id = client_secrets.id)
                 WHERE id IN (SELECT id FROM used)
                   AND (last_used_at IS NULL
                        OR last_used_at < (SELECT at FROM used WHERE used.id = client_secrets.id))",
                self.placeholders(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (id, at) in chunk {
                q = q.bind(*id).bind(*at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
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

pub(super) fn no_client(id: &str) -> StoreError {
    StoreError::NotFound(format!("no client '{id}'"))
}

pub(super) fn client_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    let public = row.try_get::<i64, _>("public")? != 0;
    let jwks: Option<String> = row.try_get("jwks")?;
    let jwks_uri: Option<String> = row.try_get("jwks_uri")?;
    let mut methods = split(row.try_get("auth_methods")?)
        .iter()
        .map(|m| m.parse())
        .collect::<Result<Vec<AuthMethod>, String>>()
        .map_err(|e| sqlx::Error::Decode(e.into()))?;
    if methods.is_empty() {
        // Written by something that did not set them: what its kind allows.
        methods = AuthMethod::defaults(public, jwks.is_some() || jwks_uri.is_some());
    }
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        public,
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
        auth_methods: methods,
        jwks,
        jwks_uri,
    })
}

pub(super) fn secret_row(row: &AnyRow) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}
