//! APIs: the audiences tokens are issued for (RFC 8707 resources).

use super::{positive_lifetime, Admin, AdminError, Field, FormatSetting, Invalid, Problem};
use crate::keys::rotation::ensure_signing_keys;
use crate::oauth::policy::parse_scope_patterns;
use crate::store::ApiRecord;
use crate::types::{Algorithm, ClaimsProfile, TokenFormat};

/// An API to register.
#[derive(Debug, Clone)]
pub struct NewApi {
    /// Absolute URI that tokens name in `aud`.
    pub identifier: String,
    /// Defaults to the identifier.
    pub name: Option<String>,
    /// Scopes the API defines, space-delimited.
    pub scope: String,
    pub lifetime: Option<u64>,
    /// Longest lifetime any token for this API may have.
    pub max_lifetime: Option<u64>,
    pub algorithm: Algorithm,
    pub format: Option<TokenFormat>,
    pub claims_profile: Option<ClaimsProfile>,
}

/// Settings to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct ApiChanges {
    pub name: Option<String>,
    /// Scopes the API defines; every scope a grant names must stay.
    pub scope: Option<String>,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    /// Signing keys for a new algorithm are made at once.
    pub algorithm: Option<Algorithm>,
    pub format: Option<FormatSetting>,
    pub claims_profile: Option<ClaimsProfile>,
}

impl Admin<'_> {
    /// Registers the API, and makes signing keys for its algorithm if there
    /// are none yet.
    pub async fn create_api(&self, new: NewApi, now: i64) -> Result<ApiRecord, AdminError> {
        identifier(&new.identifier)?;
        let scopes = api_scopes(&new.scope)?;
        let (lifetime, max_lifetime) = lifetimes(new.lifetime, new.max_lifetime)?;
        let record = ApiRecord {
            name: match new.name {
                Some(n) => super::name(n)?,
                None => new.identifier.clone(),
            },
            identifier: new.identifier,
            scopes,
            lifetime,
            max_lifetime,
            algorithm: new.algorithm,
            created_at: now,
            token_format: new.format,
            claims_profile: new.claims_profile,
        };
        self.store.create_api(&record).await?;
        self.audit("api.created", &record.identifier).await;
        ensure_signing_keys(self.store, self.master, &[record.algorithm], now).await?;
        Ok(record)
    }

    /// Applies every change, checks the API as a whole (grants still name
    /// scopes it defines, lifetime within the longest), then writes it in
    /// one change; nothing is written when a rule is broken.
    pub async fn update_api(
        &self,
        identifier: &str,
        changes: ApiChanges,
        now: i64,
    ) -> Result<ApiRecord, AdminError> {
        let mut api = self.store.api(identifier).await?;
        if let Some(name) = changes.name {
            api.name = super::name(name)?;
        }
        if let Some(scope) = changes.scope {
            api.scopes = api_scopes(&scope)?;
            let grants = self.store.grants().await?;
            if let Some((grant, scope)) = grants
                .iter()
                .filter(|g| g.api == api.identifier)
                .find_map(|g| Some((g, g.scopes.iter().find(|s| !api.scopes.contains(s))?)))
            {
                return Err(Invalid::sentence(
                    Field::Scope,
                    format!(
                        "scope '{scope}' is granted to client '{}': change or delete that grant first",
                        grant.client_id
                    ),
                )
                .into());
            }
        }
        let (lifetime, max_lifetime) = lifetimes(
            changes.lifetime.or(api.lifetime),
            changes.max_lifetime.or(api.max_lifetime),
        )?;
        (api.lifetime, api.max_lifetime) = (lifetime, max_lifetime);
        if let Some(algorithm) = changes.algorithm {
            api.algorithm = algorithm;
        }
        if let Some(FormatSetting(format)) = changes.format {
            api.token_format = format;
        }
        if let Some(profile) = changes.claims_profile {
            api.claims_profile = Some(profile);
        }
        self.store.update_api(&api).await?;
        self.audit("api.updated", identifier).await;
        ensure_signing_keys(self.store, self.master, &[api.algorithm], now).await?;
        Ok(api)
    }

    pub async fn apis(&self) -> Result<Vec<ApiRecord>, AdminError> {
        Ok(self.store.apis().await?)
    }

    pub async fn api(&self, identifier: &str) -> Result<ApiRecord, AdminError> {
        Ok(self.store.api(identifier).await?)
    }

    pub async fn delete_api(&self, identifier: &str) -> Result<(), AdminError> {
        self.store.delete_api(identifier).await?;
        self.audit("api.deleted", identifier).await;
        Ok(())
    }
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn identifier(identifier: &str) -> Result<(), Invalid> {
    let problem = match url::Url::parse(identifier) {
        // The URL parser drops an empty fragment (`https://a/#`): look for `#` too.
        Ok(u) if u.fragment().is_none() && !identifier.contains('#') => return Ok(()),
        Ok(_) => format!("API identifier '{identifier}' must not contain a fragment (RFC 8707 §2)"),
        Err(e) => format!("API identifier '{identifier}' is not an absolute URI: {e}"),
    };
    Err(Invalid::sentence(Field::Identifier, problem))
}

/// An API defines literal scopes; patterns belong to what clients are allowed.
fn api_scopes(text: &str) -> Result<Vec<String>, Invalid> {
    let scopes = parse_scope_patterns(text).map_err(|e| Invalid::sentence(Field::Scope, e))?;
    if let Some(bad) = scopes.iter().find(|s| s.contains('*')) {
        return Err(Invalid::sentence(
            Field::Scope,
            format!("API scope '{bad}' must not be a pattern"),
        ));
    }
    Ok(scopes)
}

/// Both positive, and the usual lifetime within the longest.
fn lifetimes(
    lifetime: Option<u64>,
    max_lifetime: Option<u64>,
) -> Result<(Option<u64>, Option<u64>), Invalid> {
    let lifetime = positive_lifetime(Field::Lifetime, lifetime)?;
    let max_lifetime = positive_lifetime(Field::MaxLifetime, max_lifetime)?;
    if let (Some(l), Some(m)) = (lifetime, max_lifetime) {
        if l > m {
            return Err(Invalid {
                field: Field::Lifetime,
                problem: Problem::Exceeds(Field::MaxLifetime),
            });
        }
    }
    Ok((lifetime, max_lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8707_2_identifier_is_an_absolute_uri() {
        assert!(identifier("https://api.example/orders").is_ok());
        assert!(identifier("urn:example:orders").is_ok());
        let err = identifier("not a uri").unwrap_err();
        assert_eq!(err.field, Field::Identifier);
        assert_eq!(
            err.to_string(),
            "API identifier 'not a uri' is not an absolute URI: relative URL without a base"
        );
    }

    #[test]
    fn rfc8707_2_identifier_has_no_fragment() {
        for id in ["https://a/#frag", "https://a/#"] {
            assert_eq!(
                identifier(id).unwrap_err().to_string(),
                format!("API identifier '{id}' must not contain a fragment (RFC 8707 §2)")
            );
        }
    }

    #[test]
    fn api_scopes_are_not_patterns() {
        assert_eq!(api_scopes("read write read").unwrap(), ["read", "write"]);
        let err = api_scopes("read orders:*").unwrap_err();
        assert_eq!(err.field, Field::Scope);
        assert_eq!(
            err.to_string(),
            "API scope 'orders:*' must not be a pattern"
        );
        assert!(api_scopes("a*b")
            .unwrap_err()
            .to_string()
            .starts_with("malformed scope"));
    }

    #[test]
    fn lifetime_must_not_exceed_max_lifetime() {
        assert_eq!(lifetimes(Some(60), Some(60)), Ok((Some(60), Some(60))));
        assert_eq!(lifetimes(Some(60), None), Ok((Some(60), None)));
        let err = lifetimes(Some(61), Some(60)).unwrap_err();
        assert_eq!(err.field, Field::Lifetime);
        assert_eq!(err.to_string(), "lifetime must not exceed max_lifetime");
    }

    #[test]
    fn lifetimes_must_be_positive() {
        assert_eq!(
            lifetimes(Some(0), Some(5)).unwrap_err().field,
            Field::Lifetime
        );
        assert_eq!(
            lifetimes(None, Some(0)).unwrap_err().field,
            Field::MaxLifetime
        );
    }
}
