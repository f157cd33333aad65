//! Importing clients from another server, keeping their ids and secrets,
//! so its services move without being re-keyed.
//!
//! The input is JSON Lines, one client a line:
//! `{"client_id": "...", "client_secret": "...", "name": "...", "scope": "a b", "public": false}`
//! (`client_id` and `client_secret` generated when absent). Lines are
//! checked and written in batches, each one transaction; the first bad line
//! stops the import with its number, and nothing from it or after it is
//! written, so a corrected file can be resumed from that line.

use std::collections::HashSet;
use std::io::BufRead;

use serde::Deserialize;

use super::clients::{client_name, new_client_id, public_clients_do_not_introspect};
use super::{Admin, AdminError};
use crate::keys::generate_secret;
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::oauth::policy::parse_scope_patterns;
use crate::store::ClientRecord;
use crate::types::AuthMethod;

/// Clients written in one transaction.
const BATCH: usize = 2000;
/// Longest client id or secret taken from another server.
const MAX_CREDENTIAL: usize = 255;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    client_id: Option<String>,
    client_secret: Option<String>,
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    public: bool,
}

/// A checked line waiting for its batch: its number, the client, its
/// secret's hash, and the secret when Writ made it (to show once).
type Pending = (usize, ClientRecord, Option<Vec<u8>>, Option<String>);

/// A client imported with a secret it did not bring: shown once.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Default)]
pub struct Imported {
    pub count: usize,
    /// Secrets Writ made, for lines without `client_secret`.
    pub generated: Vec<GeneratedSecret>,
}

/// Why an import stopped: the line, and how many clients went in before it.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {error} ({imported} clients imported before it; nothing from this line on)")]
pub struct ImportError {
    pub line: usize,
    pub imported: usize,
    pub error: AdminError,
}

impl Admin<'_> {
    /// Reads clients from `input` and registers them; `progress` hears the
    /// running count after each batch.
    pub async fn import_clients(
        &self,
        input: impl BufRead,
        now: i64,
        mut progress: impl FnMut(usize),
    ) -> Result<Imported, ImportError> {
        let hasher = self.master.secret_hasher();
        let mut done = Imported::default();
        let mut seen = HashSet::new();
        let mut batch: Vec<Pending> = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let number = i + 1;
            let fail = |error: AdminError, imported| ImportError {
                line: number,
                imported,
                error,
            };
            let line = line.map_err(|e| {
                fail(
                    AdminError::Malformed(format!("cannot read: {e}")),
                    done.count,
                )
            })?;
            if line.trim().is_empty() {
                continue;
            }
            // A bad line stops the import: the good lines before it in this
            // batch are written first, so the file can resume at this line.
            let parsed = self
                .import_line(&line, now)
                .and_then(|(record, secret, generated)| {
                    if seen.insert(record.id.clone()) {
                        Ok((record, secret, generated))
                    } else {
                        Err(AdminError::Conflict(format!(
                            "client '{}' appears twice in the input",
                            record.id
                        )))
                    }
                });
            let (record, secret, generated) = match parsed {
                Ok(parsed) => parsed,
                Err(e) => {
                    self.write_batch(&mut batch, &mut done).await?;
                    return Err(fail(e, done.count));
                }
            };
            let hash = secret.as_deref().map(|s| hasher.hash(s).to_vec());
            batch.push((number, record, hash, secret.filter(|_| generated)));
            if batch.len() >= BATCH {
                self.write_batch(&mut batch, &mut done).await?;
                progress(done.count);
            }
        }
        self.write_batch(&mut batch, &mut done).await?;
        progress(done.count);
        self.audit("clients.imported", &done.count.to_string())
            .await;
        Ok(done)
    }

    fn import_line(
        &self,
        text: &str,
        now: i64,
    ) -> Result<(ClientRecord, Option<String>, bool), AdminError> {
        let line: Line = serde_json::from_str(text)
            .map_err(|e| AdminError::Malformed(format!("not a client as JSON: {e}")))?;
        let id = match line.client_id {
            Some(id) => credential("client_id", id)?,
            None => new_client_id(),
        };
        let scopes = parse_scope_patterns(&line.scope).map_err(AdminError::Malformed)?;
        let record = ClientRecord {
            id,
            name: client_name(line.name)?,
            public: line.public,
            scopes,
            default_scope: None,
            lifetime: None,
            grant_types: vec![GRANT_TYPE.into()],
            enabled: true,
            created_at: now,
            token_format: None,
            claims: None,
            auth_methods: AuthMethod::defaults(line.public, false),
            jwks: None,
            jwks_uri: None,
        };
        public_clients_do_not_introspect(&record)?;
        let (secret, generated) = match (line.client_secret, line.public) {
            (Some(_), true) => {
                return Err(AdminError::Malformed(
                    "a public client has no client_secret".into(),
                ))
            }
            (None, true) => (None, false),
            (Some(s), false) => (Some(credential("client_secret", s)?), false),
            (None, false) => (Some(generate_secret()), true),
        };
        Ok((record, secret, generated))
    }

    /// Writes a batch in one transaction, refusing ids already registered
    /// (naming the first one's line).
    async fn write_batch(
        &self,
        batch: &mut Vec<Pending>,
        done: &mut Imported,
    ) -> Result<(), ImportError> {
        if batch.is_empty() {
            return Ok(());
        }
        let fail = |line, error| ImportError {
            line,
            imported: done.count,
            error,
        };
        let ids: Vec<&str> = batch.iter().map(|(_, c, _, _)| c.id.as_str()).collect();
        let existing = self
            .store
            .existing_client_ids(&ids)
            .await
            .map_err(|e| fail(batch[0].0, e.into()))?;
        if let Some((line, c, _, _)) = batch.iter().find(|(_, c, _, _)| existing.contains(&c.id)) {
            // The lines before it in this batch are good: write them first.
            let line = *line;
            let id = c.id.clone();
            batch.retain(|(l, _, _, _)| *l < line);
            Box::pin(self.write_batch(batch, done)).await?;
            return Err(ImportError {
                line,
                imported: done.count,
                error: AdminError::Conflict(format!("client '{id}' already exists")),
            });
        }
        let (clients, hashes): (Vec<ClientRecord>, Vec<Option<Vec<u8>>>) = batch
            .iter()
            .map(|(_, c, h, _)| (c.clone(), h.clone()))
            .unzip();
        self.store
            .create_clients(&clients, &hashes)
            .await
            .map_err(|e| fail(batch[0].0, e.into()))?;
        done.count += clients.len();
        for (_, c, _, secret) in batch.drain(..) {
            if let Some(client_secret) = secret {
                done.generated.push(GeneratedSecret {
                    client_id: c.id,
                    client_secret,
                });
            }
        }
        Ok(())
    }
}

/// A client id or secret from another server: visible ASCII (RFC 6749
/// Appendix A.1/A.2: VSCHAR), not empty, of a sane length.
fn credential(what: &str, value: String) -> Result<String, AdminError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_CREDENTIAL
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(value)
    } else {
        Err(AdminError::Malformed(format!(
            "{what} must be 1 to {MAX_CREDENTIAL} visible ASCII characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_a_1_imported_credentials_are_visible_ascii() {
        assert!(credential("client_id", "svc-1".into()).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"x".repeat(256)] {
            assert!(credential("client_id", bad.into()).is_err(), "{bad:?}");
        }
    }
}
