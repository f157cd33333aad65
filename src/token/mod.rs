//! Access tokens, whatever their format: issued from what a grant decided,
//! read back when presented, and revoked. This module is their one owner:
//! the layers above hand it a decision or a presented string, never SQL.

pub mod jwt;
pub mod opaque;

pub use crate::types::TokenFormat;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::keys::{b64url, hashes_equal, sha256, KeyError, SecretHasher};
use crate::registry::{Client, Snapshot};
use crate::store::{Store, StoreError, TokenRecord};
use crate::types::{Algorithm, ClaimsProfile};
use opaque::TokenWriter;

/// Appends a JSON value to an object written by hand (claims, the token
/// response): a string escaped, a number, or a client's claim.
pub(crate) fn json_value<T: JsonValue + ?Sized>(out: &mut Vec<u8>, value: &T) {
    value.write_json(out);
}

/// Appends `,"name":value`. The name is one of ours, a constant that needs
/// no escaping; a name a client chose goes through `json_value`.
pub(crate) fn json_member<T: JsonValue + ?Sized>(out: &mut Vec<u8>, name: &str, value: &T) {
    debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    value.write_json(out);
}

/// What `json_value` writes.
pub(crate) trait JsonValue {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// A string that needs no escaping (ids, URLs, scopes: nearly every one) is
/// copied as it is; serde_json escapes byte by byte, 1.9k instructions a
/// JWT's claims and response. RFC 8259 §7: only `"`, `\` and controls
/// must be escaped, and serde_json escapes no others.
impl JsonValue for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        if !needs_escape(self.as_bytes()) {
            out.reserve(self.len() + 2);
            out.push(b'"');
            out.extend_from_slice(self.as_bytes());
            out.push(b'"');
        } else {
            serde_json::to_writer(out, self).expect("a string serialises");
        }
    }
}

/// Whether any byte is a control, `"` or `\`: eight bytes at a time
/// (Anderson's "Bit Twiddling Hacks": `hasless`, `haszero`, both exact);
/// a test a byte cost 6 instructions each.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let has_less = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let has = |x: u64, b: u8| has_less(x ^ (ONES * u64::from(b)), 1);
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_ne_bytes(chunk.try_into().expect("eight bytes"));
        if has_less(x, 0x20) || has(x, b'"') || has(x, b'\\') {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

macro_rules! json_by_serde {
    ($($t:ty),*) => {$(
        impl JsonValue for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                serde_json::to_writer(out, self).expect("a number or JSON value serialises");
            }
        }
    )*};
}
json_by_serde!(i64, u64, serde_json::Value);

/// What a grant decided: everything a token is made from.
#[derive(Debug)]
pub struct Grant<'r> {
    pub client: &'r Client,
    pub audience: &'r str,
    pub scope: String,
    /// Seconds.
    pub lifetime: u64,
    pub algorithm: Algorithm,
    pub format: TokenFormat,
    pub profile: ClaimsProfile,
}

/// An access token as handed to the client.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The key this token needs could not be opened: nothing is signed with
    /// another key instead.
    #[error("no active {0} signing key")]
    NoSigningKey(Algorithm),
    #[error(transparent)]
    Sign(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
}

/// How long what the store said of a presented token is reused. A
/// resource server that introspects on every API call (RFC 7662 §4 expects
/// it to, with opaque tokens) then costs the store a read per token per
/// second, not one per call. A revocation through this node forgets the
/// token at once; one made elsewhere (another node, the CLI) is seen within
/// this time.
pub const RECENT_FOR: Duration = Duration::from_secs(1);
/// At most this many tokens remembered: the ones presented in the last
/// `RECENT_FOR`, so a bound on memory and no more.
const RECENT_CAPACITY: u64 = 100_000;

fn recent<K, V>() -> moka::sync::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(RECENT_CAPACITY)
        .time_to_live(RECENT_FOR)
        .build()
}

/// Issues, reads and revokes access tokens under one issuer identifier.
pub struct Tokens {
    issuer: Arc<str>,
    hasher: SecretHasher,
    store: Store,
    writer: TokenWriter,
    /// Opaque tokens' records read in the last `RECENT_FOR`, by selector.
    /// Only records found: an unknown selector is asked of the store each
    /// time, so a token issued on another node is never missed.
    recent_opaque: moka::sync::Cache<[u8; 16], Arc<TokenRecord>>,
    /// Whether a JWT's `jti` was revoked, as read in the last `RECENT_FOR`.
    recent_jti: moka::sync::Cache<String, bool>,
    /// JWTs whose signature checked out in the last `RECENT_FOR`, by the
    /// SHA-256 of the whole token, so a resource server introspecting the
    /// same token on every call costs a signature verification a second,
    /// not one a call. Only tokens that verified; what can change (the key
    /// still published, expiry, revocation) is checked on every read.
    recent_jwt: moka::sync::Cache<[u8; 32], Arc<VerifiedJwt>>,
}

/// A JWT whose signature checked out, and the key that checked it.
struct VerifiedJwt {
    kid: String,
    claims: jwt::Verified,
}

impl Tokens {
    /// `hasher` keys the HMAC under which opaque tokens are stored.
    pub fn new(issuer: Arc<str>, hasher: SecretHasher, store: Store, writer: TokenWriter) -> Self {
        Self {
            issuer,
            hasher,
            store,
            writer,
            recent_opaque: recent(),
            recent_jti: recent(),
            recent_jwt: recent(),
        }
    }

    /// The record of an opaque token, from the last `RECENT_FOR` or the store.
    async fn opaque_record(
        &self,
        selector: [u8; 16],
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        if let Some(t) = self.recent_opaque.get(&selector) {
            return Ok(Some(t));
        }
        let Some(t) = self.store.token(&selector).await? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.recent_opaque.insert(selector, t.clone());
        Ok(Some(t))
    }

    /// Whether a JWT was revoked, from the last `RECENT_FOR` or the store.
    async fn jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        if let Some(revoked) = self.recent_jti.get(jti) {
            return Ok(revoked);
        }
        let revoked = self.store.jti_revoked(jti).await?;
        self.recent_jti.insert(jti.to_owned(), revoked);
        Ok(revoked)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Mints the token a grant decided on: a signed JWT, or an opaque token
    /// that is committed before this returns. `now_millis`: Unix
    /// milliseconds (`Clock::now_millis`).
    pub async fn issue(
        &self,
        registry: &Snapshot,
        grant: &Grant<'_>,
        now_millis: i64,
    ) -> Result<Issued, IssueError> {
        let now = now_millis.div_euclid(1000);
        let expires_at = now.saturating_add(grant.lifetime.min(i64::MAX as u64 / 2) as i64);
        let access_token = match grant.format {
            TokenFormat::Jwt => self.sign(registry, grant, now, expires_at)?,
            TokenFormat::Opaque => {
                // The selector's millisecond falls in the second `expires_at`
                // names, which the purge relies on (`store::selector_prefix`).
                let expires_millis = expires_at
                    .saturating_mul(1000)
                    .saturating_add(now_millis.rem_euclid(1000));
                let (token, selector) = opaque::generate(expires_millis);
                let record = TokenRecord {
                    selector: selector.to_vec(),
                    hash: self.hasher.hash(&token).to_vec(),
                    client_id: grant.client.id.clone(),
                    scope: grant.scope.clone(),
                    audience: grant.audience.to_owned(),
                    issued_at: now,
                    expires_at,
                    revoked_at: None,
                    issuer: Some(self.issuer.to_string()),
                };
                let started = Instant::now();
                self.writer.persist(record).await?;
                crate::metrics::token_committed(started.elapsed().as_secs_f64());
                token
            }
        };
        Ok(Issued {
            access_token,
            issued_at: now,
            expires_at,
        })
    }

    /// RFC 9068 §2.2 claims, the API's claims profile, the client's static claims.
    fn sign(
        &self,
        registry: &Snapshot,
        grant: &Grant<'_>,
        now: i64,
        exp: i64,
    ) -> Result<String, IssueError> {
        let key = registry
            .signer(grant.algorithm)
            .ok_or(IssueError::NoSigningKey(grant.algorithm))?;
        let id = grant.client.id.as_str();
        let auth0 = grant.profile == ClaimsProfile::Auth0;
        let auth0_sub;
        let claims = jwt::Claims {
            iss: &self.issuer,
            sub: if auth0 {
                auth0_sub = format!("{id}@clients");
                &auth0_sub
            } else {
                id
            },
            client_id: id,
            aud: grant.audience,
            iat: now,
            exp,
            jti: &jwt::new_jti(),
            scope: &grant.scope,
            gty: auth0.then_some("client-credentials"),
            azp: auth0.then_some(id),
            extra: grant.client.claims.as_ref(),
        };
        Ok(jwt::mint(key, &claims)?)
    }

    /// Reads a presented token: an opaque one is looked up by its selector
    /// and checked against its keyed hash, a JWT is verified against the
    /// published keys and checked against the revoked `jti`s. `None` for
    /// anything unknown, malformed, expired or revoked.
    pub async fn lookup(
        &self,
        raw: &str,
        registry: &Snapshot,
        now: i64,
    ) -> Result<Option<TokenInfo>, StoreError> {
        if raw.starts_with(opaque::PREFIX) {
            let Some(selector) = opaque::selector(raw) else {
                return Ok(None);
            };
            let Some(t) = self.opaque_record(selector).await? else {
                return Ok(None);
            };
            // The selector is not secret: the token must match its stored hash.
            // Like a JWT's `iss`, a token from another issuer is not ours to
            // vouch for (say, after a restore under a new issuer).
            if !hashes_equal(&t.hash, &self.hasher.hash(raw))
                || t.revoked_at.is_some()
                || t.expires_at <= now
                || t.issuer.as_deref().is_some_and(|i| i != &*self.issuer)
            {
                return Ok(None);
            }
            return Ok(Some(TokenInfo {
                jti: b64url(&selector),
                client_id: t.client_id.clone(),
                scope: t.scope.clone(),
                audience: t.audience.clone(),
                issued_at: t.issued_at,
                expires_at: t.expires_at,
                handle: Handle::Opaque {
                    selector: selector.to_vec(),
                },
            }));
        }
        let Some(verified) = self.verified_jwt(raw, registry, now) else {
            return Ok(None);
        };
        let claims = &verified.claims;
        if self.jti_revoked(&claims.jti).await? {
            return Ok(None);
        }
        Ok(Some(TokenInfo {
            jti: claims.jti.clone(),
            client_id: claims.client_id.clone(),
            scope: claims.scope.clone(),
            audience: claims.aud.clone(),
            issued_at: claims.iat,
            expires_at: claims.exp,
            handle: Handle::Jwt,
        }))
    }

    /// One of our JWTs, verified now or in the last `RECENT_FOR`.
    fn verified_jwt(&self, raw: &str, registry: &Snapshot, now: i64) -> Option<Arc<VerifiedJwt>> {
        let digest = sha256(raw.as_bytes());
        if let Some(hit) = self.recent_jwt.get(&digest) {
            // What a verification now would see differently: a key no
            // longer published, or the token expired since.
            return (registry.published_key(&hit.kid).is_some() && hit.claims.exp > now)
                .then_some(hit);
        }
        let used = std::cell::Cell::new(None);
        let key_for = |kid: &str| {
            let key = registry.published_key(kid);
            used.set(key);
            key
        };
        let claims = jwt::verify(raw, key_for, &self.issuer, now)?;
        let kid = used.get()?.kid.clone();
        let verified = Arc::new(VerifiedJwt { kid, claims });
        self.recent_jwt.insert(digest, verified.clone());
        Some(verified)
    }

    /// RFC 7009 §2.1: an opaque token is marked revoked; a JWT's `jti` is
    /// remembered until the token would have expired.
    pub async fn revoke(&self, token: &TokenInfo, now: i64) -> Result<(), StoreError> {
        // Forgotten once the store has it, so the next read sees it revoked.
        match &token.handle {
            Handle::Opaque { selector } => {
                self.store.revoke_token(selector, now).await?;
                if let Ok(selector) = <[u8; 16]>::try_from(selector.as_slice()) {
                    self.recent_opaque.invalidate(&selector);
                }
            }
            Handle::Jwt => {
                self.store.revoke_jti(&token.jti, token.expires_at).await?;
                self.recent_jti.invalidate(&token.jti);
            }
        }
        Ok(())
    }
}

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
    /// An opaque token, found again by its selector.
    Opaque { selector: Vec<u8> },
    /// A JWT, revoked by its `jti`.
    Jwt,
}

#[cfg(test)]
mod tests {
    use super::{json_value, needs_escape};

    #[test]
    fn needs_escape_finds_every_byte_that_must_be_escaped_anywhere() {
        // Among ASCII and among the bytes of non-ASCII UTF-8 (0x80 and up),
        // which a borrow between the eight bytes' lanes must not hide.
        let must = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for filler in [b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xc3, 0xff] {
            for len in [1, 7, 8, 9, 16, 17] {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut s = vec![filler; len];
                        s[at] = b;
                        assert_eq!(
                            needs_escape(&s),
                            must(b),
                            "byte {b:#x} at {at} of {len} among {filler:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rfc8259_7_strings_are_written_as_serde_json_writes_them() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "",
            "https://api.example/",
            "read write:all",
            "quote \" and backslash \\",
            "\u{7f} delete, é, 日本, 🦀",
            "</script>",
            controls.as_str(),
        ] {
            let mut ours = Vec::new();
            json_value(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
}
