//! Persistence. The records here are plain data; the registry turns them into
//! the structures the hot path reads.
//!
//! One backend so far (SQLite); a trait arrives with the second.

mod sqlite;

pub use sqlite::Store;

use crate::keys::Algorithm;

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
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretRecord {
    pub id: i64,
    pub client_id: String,
    #[serde(skip)]
    pub hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiRecord {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    #[serde(serialize_with = "alg_str")]
    pub algorithm: Algorithm,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantRecord {
    pub client_id: String,
    pub api: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyRecord {
    pub kid: String,
    #[serde(serialize_with = "alg_str")]
    pub algorithm: Algorithm,
    #[serde(skip)]
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

fn alg_str<S: serde::Serializer>(a: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

/// Everything the registry is built from, read in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub revision: i64,
    pub clients: Vec<ClientRecord>,
    pub secrets: Vec<SecretRecord>,
    pub apis: Vec<ApiRecord>,
    pub grants: Vec<GrantRecord>,
    pub keys: Vec<KeyRecord>,
}

pub(crate) fn join(words: &[String]) -> String {
    words.join(" ")
}

pub(crate) fn split(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}
