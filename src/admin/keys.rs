//! Signing keys.

use super::{Admin, AdminError};
use crate::keys::rotation::rotate;
use crate::store::KeyRecord;
use crate::types::Algorithm;

impl Admin<'_> {
    /// Starts signing with the next key of each algorithm in use (or only
    /// `only`); the keys they replace stay published until tokens signed
    /// with them expire, for which `default_lifetime` is the server's token
    /// lifetime. Returns the newly active key ids.
    pub async fn rotate_keys(
        &self,
        only: Option<Algorithm>,
        default_lifetime: u64,
        now: i64,
    ) -> Result<Vec<String>, AdminError> {
        let activated = rotate(self.store, self.master, only, default_lifetime, now).await?;
        for kid in &activated {
            self.audit("key.rotated", kid);
        }
        Ok(activated)
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, AdminError> {
        Ok(self.store.keys().await?)
    }
}
