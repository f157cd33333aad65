//! Access token formats: RFC 9068 JWTs, and opaque tokens that live in the store.

pub mod jwt;
pub mod opaque;

pub use crate::types::TokenFormat;

use crate::keys::{hashes_equal, SecretHasher};
use crate::registry::Registry;
use crate::store::{Store, StoreError};

/// What is known of a live token, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// How to revoke it.
    pub handle: Handle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle {
    /// The selector of an opaque token.
    Opaque(Vec<u8>),
    /// A JWT, revoked by its `jti`.
    Jwt,
}

/// Reads a presented token: an opaque one is looked up by its hash, a JWT is
/// verified against the published keys and checked against the revoked
/// `jti`s. `None` for anything unknown, malformed, expired or revoked.
pub async fn lookup(
    raw: &str,
    registry: &Registry,
    store: &Store,
    token_hasher: &SecretHasher,
    issuer: &str,
    now: i64,
) -> Result<Option<TokenInfo>, StoreError> {
    if raw.starts_with(opaque::PREFIX) {
        let Some(selector) = opaque::selector(raw) else {
            return Ok(None);
        };
        let Some(t) = store.token(&selector).await? else {
            return Ok(None);
        };
        // The selector is not secret: the token must match its stored hash.
        if !hashes_equal(&t.hash, &token_hasher.hash(raw))
            || t.revoked_at.is_some()
            || t.expires_at <= now
        {
            return Ok(None);
        }
        return Ok(Some(TokenInfo {
            jti: crate::keys::b64url(&selector),
            client_id: t.client_id,
            scope: t.scope,
            audience: t.audience,
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            handle: Handle::Opaque(selector.to_vec()),
        }));
    }
    let Some(claims) = jwt::verify(raw, |kid| registry.published_key(kid), issuer, now) else {
        return Ok(None);
    };
    if store.jti_revoked(&claims.jti).await? {
        return Ok(None);
    }
    Ok(Some(TokenInfo {
        jti: claims.jti,
        client_id: claims.client_id,
        scope: claims.scope,
        audience: claims.aud,
        issued_at: claims.iat,
        expires_at: claims.exp,
        handle: Handle::Jwt,
    }))
}
