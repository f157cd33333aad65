//! Plain data as stored; the registry turns these into what the hot path reads.

use serde::Serialize;

use crate::types::{Algorithm, ClaimsProfile, TokenFormat};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiRecord {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    #[serde(serialize_with = "display")]
    pub algorithm: Algorithm,
    pub created_at: i64,
    #[serde(serialize_with = "opt_display")]
    pub token_format: Option<TokenFormat>,
    #[serde(serialize_with = "opt_display")]
    pub claims_profile: Option<ClaimsProfile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRecord {
    pub client_id: String,
    pub api: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

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

/// An opaque access token: its public selector and the keyed hash of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: Vec<u8>,
    pub hash: Vec<u8>,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
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

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn opt_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
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
