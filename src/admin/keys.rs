//! Signing keys.

use super::{Admin, AdminError};
use crate::keys::rotation::rotate;
use crate::store::{KeyRecord, KeyState};
use crate::types::Algorithm;

/// How long a next key should have been in the JWKS before it signs:
/// resource servers cache the JWKS (ten minutes is common), and one that
/// has not seen the key refuses its tokens.
pub const MIN_PUBLICATION: i64 = 10 * 60;

impl Admin<'_> {
    /// Starts signing with the next key of each algorithm in use (or only
    /// `only`); the keys they replace stay published until tokens signed
    /// with them expire, for which `default_lifetime` is the server's token
    /// lifetime. A next key published less than `MIN_PUBLICATION` ago is
    /// only activated with `force`. Returns the newly active key ids.
    pub async fn rotate_keys(
        &self,
        only: Option<Algorithm>,
        default_lifetime: u64,
        force: bool,
        now: i64,
    ) -> Result<Vec<String>, AdminError> {
        if !force {
            let keys = self.store.keys().await?;
            let active: Vec<Algorithm> = keys
                .iter()
                .filter(|k| k.state(now) == KeyState::Active)
                .map(|k| k.algorithm)
                .collect();
            if let Some(fresh) = keys.iter().find(|k| {
                k.state(now) == KeyState::Next
                    && only.map_or(active.contains(&k.algorithm), |o| o == k.algorithm)
                    && now - k.created_at < MIN_PUBLICATION
            }) {
                return Err(AdminError::Conflict(format!(
                    "the next {} key {} was published {} s ago: resource servers that cache the JWKS may not know it yet; wait {} s, or use --force",
                    fresh.algorithm,
                    fresh.kid,
                    now - fresh.created_at,
                    MIN_PUBLICATION - (now - fresh.created_at),
                )));
            }
        }
        let activated = rotate(self.store, self.master, only, default_lifetime, now).await?;
        for kid in &activated {
            self.audit("key.rotated", kid).await;
        }
        Ok(activated)
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, AdminError> {
        Ok(self.store.keys().await?)
    }
}
