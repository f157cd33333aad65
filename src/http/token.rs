//! `POST /oauth/token` (and its aliases): RFC 6749 §4.4.2, §5.1, §5.2.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
#[cfg(test)]
use serde::Serialize;

use super::error::{render, Dialect};
use super::limits::Budget;
use super::{json_bytes, read_params, request_id, AppState};
use crate::oauth::client_credentials::{authorize, check_grant_type, Authorized};
use crate::oauth::request::TokenRequest;
use crate::oauth::{ErrorCode, OAuthError};
use crate::token::json_member;

/// RFC 6749 §5.1, plus members other dialects' SDKs read (§5.1 allows
/// more): `created_at` (Commerce Layer), the absolute `expires` and the
/// grant `identifier` (Moltin).
#[cfg_attr(test, derive(Serialize))]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[cfg_attr(test, serde(skip_serializing_if = "str::is_empty"))]
    scope: &'a str,
    created_at: i64,
    expires: i64,
    identifier: &'static str,
}

impl TokenResponse<'_> {
    /// The JSON body, written in one buffer of the right size. The access
    /// token is our own base64url text (a compact JWS, or `writ_at_` and
    /// base64url: `jwt::mint`, `opaque::generate`), which JSON carries as
    /// it is: serde_json's escaping of a JWT byte by byte, and the buffer it
    /// grew three times on the way, were the largest cost of the response.
    /// Everything else goes through serde_json.
    fn to_json(&self) -> Vec<u8> {
        debug_assert!(self
            .access_token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')));
        let mut out = Vec::with_capacity(self.access_token.len() + self.scope.len() + 192);
        out.extend_from_slice(b"{\"access_token\":\"");
        out.extend_from_slice(self.access_token.as_bytes());
        out.push(b'"');
        json_member(&mut out, "token_type", self.token_type);
        json_member(&mut out, "expires_in", &self.expires_in);
        if !self.scope.is_empty() {
            json_member(&mut out, "scope", self.scope);
        }
        json_member(&mut out, "created_at", &self.created_at);
        json_member(&mut out, "expires", &self.expires);
        json_member(&mut out, "identifier", self.identifier);
        out.push(b'}');
        out
    }
}

/// `/oauth/token` (RFC 6749, Auth0, Commerce Layer) and `/token` (WSO2).
/// The request is taken whole: axum's `HeaderMap` extractor clones the map.
pub async fn token(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    answer(state, peer, parts.headers, body, false).await
}

/// `/oauth/access_token`: Moltin's path, which also offers its `implicit`.
pub async fn moltin(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    answer(state, peer, parts.headers, body, true).await
}

async fn answer(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
    moltin: bool,
) -> Response {
    let started = Instant::now();
    let source = state.limits.source(peer, &headers);
    let mut client_id = None;
    let response = match respond(&state, source, &headers, body, moltin, &mut client_id).await {
        Ok(response) => response,
        Err(e) => {
            // Audit: who was refused, from where, and why (never a secret).
            // A failed authentication's reason is a fixed sentence, never
            // the credential; it is logged here only, never sent.
            let reason = (e.code == ErrorCode::InvalidClient)
                .then_some(e.detail.as_deref())
                .flatten();
            tracing::info!(target: "audit", event = "token.denied", client_id = client_id.as_deref(),
                source = %source, error = e.code.as_str(), description = %e.description,
                reason, request_id = request_id::current());
            render(e, Dialect::of(&headers))
        }
    };
    crate::metrics::request("token", response.status().as_u16(), started);
    state.live.count(response.status().is_success());
    response
}

async fn respond(
    state: &AppState,
    source: std::net::IpAddr,
    headers: &HeaderMap,
    body: Body,
    moltin: bool,
    client_id: &mut Option<String>,
) -> Result<Response, OAuthError> {
    // 1. the source address's budget
    let body = state.admit(source, headers, body).await?;
    // 2. content type, body size, parse; repeated parameters refused
    let request = TokenRequest::from_params(
        read_params(headers, body, state.limits.request_timeout()).await?,
    )?;
    // 3. exactly one client authentication method
    let credentials = state.credentials(headers, request.credentials.clone())?;
    *client_id = Some(credentials.client_id().to_owned());
    // 4. a grant type this server offers
    let grant_type = check_grant_type(&state.policy, request.grant_type.as_deref(), moltin)?;
    // 5. authenticate: the client from memory, or from the store if this
    //    node does not hold it; back-off and the client's budget
    let now_millis = state.clock.now_millis();
    let now = now_millis.div_euclid(1000);
    let mut client = state
        .authenticate(&credentials, source, now, Budget::Tokens)
        .await?;
    // An audience this node does not know (or whose signing key it lacks),
    // or a grant its copy of the client lacks, may have been created a
    // moment ago: look before refusing.
    if let Some(audience) = request.audience.as_deref() {
        let snapshot = state.registry.snapshot();
        let held = snapshot
            .api(audience)
            .is_some_and(|api| snapshot.signer(api.algorithm).is_some());
        if !held || !client.grants.contains_key(audience) {
            // Boxed, as a rare path: see `Shared::authenticate`.
            client = Box::pin(state.registry.refresh_for_target(&client, audience, now)).await?;
        }
    }
    let registry = state.registry.snapshot();
    // 6–9. the grant's checks: client, audience, scope, lifetime
    let Authorized { grant, grant_type } =
        authorize(&registry, &state.policy, grant_type, &client, &request)?;
    // 10. mint: sign a JWT, or commit an opaque token
    let issued = state.tokens.issue(&registry, &grant, now_millis).await?;
    crate::metrics::token_issued(grant_type, grant.format.as_str());
    grant.client.count_issued();
    tracing::info!(target: "audit", event = "token.issued", client_id = %grant.client.id,
        source = %source, grant = grant_type, format = grant.format.as_str(),
        aud = grant.audience, scope = %grant.scope, expires_in = grant.lifetime,
        request_id = request_id::current());
    // 11. render, with the no-store headers
    let body = TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in: grant.lifetime,
        scope: &grant.scope,
        created_at: issued.issued_at,
        expires: issued.expires_at,
        identifier: grant_type,
    };
    Ok(json_bytes(body.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_serde(response: TokenResponse<'_>) {
        let written: serde_json::Value = serde_json::from_slice(&response.to_json()).unwrap();
        assert_eq!(written, serde_json::to_value(&response).unwrap());
        // Keys in the order serde writes them, too.
        assert_eq!(
            String::from_utf8(response.to_json()).unwrap(),
            serde_json::to_string(&response).unwrap()
        );
    }

    #[test]
    fn rfc6749_5_1_token_response_is_the_json_serde_would_write() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjIn0.c2lnbmF0dXJl-_x";
        for (token, scope) in [
            (jwt, ""),
            ("writ_at_AAECAwQFBgcICQ", "read write market:12"),
            // Scope tokens (§3.3) exclude '"' and '\\', but a stored one is
            // escaped all the same.
            ("writ_at_x", "a\"b c\\d \u{1}"),
        ] {
            same_as_serde(TokenResponse {
                access_token: token,
                token_type: "Bearer",
                expires_in: 3600,
                scope,
                created_at: 1_700_000_000,
                expires: 1_700_003_600,
                identifier: "client_credentials",
            });
        }
    }
}
