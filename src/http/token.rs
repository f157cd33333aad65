//! `POST /oauth/token` (and its aliases): RFC 6749 §4.4.2, §5.1, §5.2.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::request_id;
use super::{oauth_json, read_params, store_error, AppState};
use crate::oauth::client_credentials::{authorize, Authorized};
use crate::oauth::request::TokenRequest;
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::TokenRecord;
use crate::token::{jwt, opaque, TokenFormat};
use crate::types::ClaimsProfile;

/// RFC 6749 §5.1, plus members other dialects' SDKs read (§5.1 allows
/// more): `created_at` (Commerce Layer), the absolute `expires` and the
/// grant `identifier` (Moltin).
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    created_at: i64,
    expires: i64,
    identifier: &'static str,
}

pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let source = state.limits.source(peer, &headers);
    let mut client_id = None;
    let response = match issue(&state, source, &headers, body, &mut client_id).await {
        Ok(response) => response,
        Err(e) => {
            // Audit: who was refused, from where, and why (never a secret).
            tracing::info!(target: "audit", event = "token.denied", client_id = client_id.as_deref(),
                source = %source, error = e.code.as_str(), description = %e.description,
                request_id = request_id::current());
            e.for_request(&headers).into_response()
        }
    };
    crate::metrics::request("token", response.status().as_u16(), started);
    response
}

async fn issue(
    state: &AppState,
    source: std::net::IpAddr,
    headers: &HeaderMap,
    body: Body,
    client_id: &mut Option<String>,
) -> Result<Response, OAuthError> {
    // 0. the source address's budget
    let body = state.admit(source, headers, body).await?;
    // 1–2. content type, body size, parse; repeated parameters refused
    let request = TokenRequest::from_params(
        read_params(headers, body, state.limits.request_timeout()).await?,
    )?;
    // 3. exactly one client authentication method
    let credentials = state.credentials(
        headers,
        request.client_id.clone(),
        request.client_secret.clone(),
    )?;
    *client_id = Some(credentials.client_id().to_owned());
    // 4–9. the grant's checks, against the current registry snapshot,
    // with the failed-authentication back-off and the client's budget
    let registry = state.registry.load();
    let now = state.clock.now();
    state.before_authentication(&credentials, source)?;
    let grant = authorize(
        &registry,
        &state.policy,
        &state.hasher,
        now,
        &request,
        &credentials,
    );
    let outcome = grant.as_ref().map(|g| &g.authenticated);
    state.after_authentication(&credentials, source, now, outcome)?;
    let grant = grant?;
    // 10. mint
    let exp = now.saturating_add(grant.lifetime.min(i64::MAX as u64 / 2) as i64);
    let access_token = match grant.format {
        TokenFormat::Jwt => mint_jwt(state, &registry, &grant, now, exp, &jwt::new_jti())?,
        TokenFormat::Opaque => {
            let (token, selector) = opaque::generate();
            let record = TokenRecord {
                id: selector.to_vec(),
                hash: state.token_hasher.hash(&token).to_vec(),
                client_id: grant.client.id.clone(),
                scope: grant.scope.clone(),
                audience: grant.audience.to_owned(),
                issued_at: now,
                expires_at: exp,
                revoked_at: None,
            };
            // Answered only once the token is committed.
            let stored = Instant::now();
            state
                .writer
                .persist(record)
                .await
                .map_err(|e| store_error(&e))?;
            metrics::histogram!("writ_store_seconds", "operation" => "insert_token")
                .record(stored.elapsed().as_secs_f64());
            token
        }
    };
    metrics::counter!("writ_tokens_issued_total", "grant" => grant.grant_type, "format" => grant.format.as_str())
        .increment(1);
    state.per_client.issued(&grant.client.id);
    tracing::info!(target: "audit", event = "token.issued", client_id = %grant.client.id,
        source = %source, grant = grant.grant_type, format = grant.format.as_str(),
        aud = grant.audience, scope = %grant.scope, expires_in = grant.lifetime,
        request_id = request_id::current());
    // 11. render, with the no-store headers
    Ok(oauth_json(TokenResponse {
        access_token: &access_token,
        token_type: "Bearer",
        expires_in: grant.lifetime,
        scope: &grant.scope,
        created_at: now,
        expires: exp,
        identifier: grant.grant_type,
    }))
}

fn mint_jwt(
    state: &AppState,
    registry: &crate::registry::Registry,
    grant: &Authorized<'_>,
    now: i64,
    exp: i64,
    jti: &str,
) -> Result<String, OAuthError> {
    // No usable key (its row could not be opened): 503 until it is fixed,
    // never a token signed with another key.
    let key = registry.signer(grant.algorithm).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "no signing key is available for this API; try again later",
        )
        .with_detail(format!("no active {} signing key", grant.algorithm))
    })?;
    let id = grant.client.id.as_str();
    let auth0 = grant.profile == ClaimsProfile::Auth0;
    let auth0_sub;
    jwt::mint(
        key,
        &jwt::Claims {
            iss: &state.issuer,
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
            jti,
            scope: &grant.scope,
            gty: auth0.then_some("client-credentials"),
            azp: auth0.then_some(id),
            extra: grant.client.claims.as_ref(),
        },
    )
    .map_err(OAuthError::server_error)
}
