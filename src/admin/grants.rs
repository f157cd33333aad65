//! Grants: which of an API's scopes a client may receive.

use super::{Admin, AdminError, Field, Invalid};
use crate::oauth::policy::parse_scope_patterns;
use crate::store::{ApiRecord, GrantRecord};

/// A grant to create.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub client_id: String,
    /// The API's identifier.
    pub api: String,
    /// Scopes of the API, space-delimited.
    pub scope: String,
}

impl Admin<'_> {
    pub async fn create_grant(&self, new: NewGrant, now: i64) -> Result<GrantRecord, AdminError> {
        self.store.client(&new.client_id).await?;
        let api = self.store.api(&new.api).await?;
        let record = GrantRecord {
            scopes: grant_scopes(&new.scope, &api)?,
            client_id: new.client_id,
            api: new.api,
            created_at: now,
        };
        self.store.create_grant(&record).await?;
        self.audit(
            "grant.created",
            &format!("{} {}", record.client_id, record.api),
        )
        .await;
        Ok(record)
    }

    /// All grants, or one client's (which must exist).
    pub async fn grants(&self, client_id: Option<&str>) -> Result<Vec<GrantRecord>, AdminError> {
        match client_id {
            Some(id) => {
                self.store.client(id).await?;
                Ok(self.store.client_grants(id).await?)
            }
            None => Ok(self.store.grants().await?),
        }
    }

    /// Grants the client exactly `scope` of the API: a new grant, or the
    /// existing one's scopes replaced. Returns whether the grant is new.
    pub async fn set_grant(&self, new: NewGrant, now: i64) -> Result<bool, AdminError> {
        self.store.client(&new.client_id).await?;
        let api = self.store.api(&new.api).await?;
        let scopes = grant_scopes(&new.scope, &api)?;
        let exists = self
            .store
            .client_grants(&new.client_id)
            .await?
            .iter()
            .any(|g| g.api == new.api);
        if !exists {
            self.create_grant(new, now).await?;
            return Ok(true);
        }
        self.store
            .update_grant(&new.client_id, &new.api, &scopes)
            .await?;
        self.audit("grant.updated", &format!("{} {}", new.client_id, new.api))
            .await;
        Ok(false)
    }

    pub async fn delete_grant(&self, client_id: &str, api: &str) -> Result<(), AdminError> {
        self.store.delete_grant(client_id, api).await?;
        self.audit("grant.deleted", &format!("{client_id} {api}"))
            .await;
        Ok(())
    }
}

/// A grant names scopes the API defines, literally.
fn grant_scopes(text: &str, api: &ApiRecord) -> Result<Vec<String>, Invalid> {
    let scopes = parse_scope_patterns(text).map_err(|e| Invalid::sentence(Field::Scope, e))?;
    if let Some(bad) = scopes.iter().find(|s| !api.scopes.contains(s)) {
        return Err(Invalid::sentence(
            Field::Scope,
            format!("API '{}' defines no scope '{bad}'", api.identifier),
        ));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Algorithm;

    fn orders() -> ApiRecord {
        ApiRecord {
            identifier: "https://orders/".into(),
            name: "Orders".into(),
            scopes: vec!["read".into(), "write".into()],
            lifetime: None,
            max_lifetime: None,
            algorithm: Algorithm::ES256,
            created_at: 0,
            token_format: None,
            claims_profile: None,
        }
    }

    #[test]
    fn grant_scopes_are_defined_by_the_api() {
        assert_eq!(
            grant_scopes("write read", &orders()).unwrap(),
            ["write", "read"]
        );
        assert!(grant_scopes("", &orders()).unwrap().is_empty());
        let err = grant_scopes("read admin", &orders()).unwrap_err();
        assert_eq!(err.field, Field::Scope);
        assert_eq!(
            err.to_string(),
            "API 'https://orders/' defines no scope 'admin'"
        );
        // A pattern is never one of the API's scopes.
        assert!(grant_scopes("r*", &orders()).is_err());
    }
}
