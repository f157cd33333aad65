//! Test tokens: a token for a client, issued by the console on an
//! operator's behalf, through the grant's own checks and the same issuing
//! path as the token endpoint; the client's secret is never needed.

use super::{Admin, AdminError};
use crate::oauth::client_credentials::{authorize, GrantPolicy, GRANT_TYPE};
use crate::oauth::request::TokenRequest;
use crate::registry::Registry;
use crate::token::{IssueError, Issued, Tokens};
use crate::types::TokenFormat;

/// A token issued for trying a client out, and what it was issued for.
#[derive(Debug)]
pub struct TestToken {
    pub issued: Issued,
    pub audience: String,
    pub scope: String,
    pub format: TokenFormat,
}

/// Where the token is issued from: the server's own registry, policy and
/// issuer.
pub struct Issuing<'a> {
    pub registry: &'a Registry,
    pub policy: &'a GrantPolicy,
    pub tokens: &'a Tokens,
}

impl Admin<'_> {
    /// Issues the token the client would get for `audience` and `scope`
    /// (each optional, as in a token request), or says why its request
    /// would be refused. Audited as `token.test_issued`.
    pub async fn issue_test_token(
        &self,
        from: Issuing<'_>,
        client_id: &str,
        audience: Option<&str>,
        scope: Option<&str>,
        now_millis: i64,
    ) -> Result<TestToken, AdminError> {
        let now = now_millis.div_euclid(1000);
        // The store says whether it is enabled: a change made a moment ago
        // may not have reached the registry's copy yet.
        if !self.store.client(client_id).await?.enabled {
            return Err(AdminError::Conflict(
                "the client is disabled: its token requests are refused".into(),
            ));
        }
        let mut client = from
            .registry
            .client(client_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no client '{client_id}'")))?;
        if let Some(audience) = audience {
            client = from
                .registry
                .refresh_for_target(&client, audience, now)
                .await?;
        }
        let request = TokenRequest {
            grant_type: Some(GRANT_TYPE.into()),
            scope: scope.map(str::to_owned),
            audience: audience.map(str::to_owned),
            ..Default::default()
        };
        let registry = from.registry.snapshot();
        let authorized =
            authorize(&registry, from.policy, GRANT_TYPE, &client, &request).map_err(|e| {
                AdminError::Conflict(format!(
                    "its token request would be refused ({}): {}",
                    e.code.as_str(),
                    e.description
                ))
            })?;
        let grant = authorized.grant;
        let issued = from
            .tokens
            .issue(&registry, &grant, now_millis)
            .await
            .map_err(|e| match e {
                IssueError::Store(e) => AdminError::Store(crate::store::StoreError::Shared(e)),
                other => AdminError::Conflict(format!("no token could be made: {other}")),
            })?;
        self.audit(
            "token.test_issued",
            &format!("{} {}", client.id, grant.audience),
        )
        .await;
        Ok(TestToken {
            issued,
            audience: grant.audience.to_owned(),
            scope: grant.scope.clone(),
            format: grant.format,
        })
    }
}
