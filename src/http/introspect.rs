//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::request_id;
use super::{oauth_json, read_params, store_error, AppState};
use crate::oauth::client_auth::Authenticated;
use crate::oauth::request::Params;
use crate::oauth::{introspect as rules, revoke as revocation, OAuthError};
use crate::registry::{Client, Registry};
use crate::token::{lookup, Handle, TokenInfo};

pub async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = async {
        let (source, registry, now) = (
            state.limits.source(peer, &headers),
            state.registry.load(),
            state.clock.now(),
        );
        let (caller, token) =
            caller_and_token(&state, source, &headers, body, &registry, now).await?;
        let holder = token.as_ref().and_then(|t| registry.client(&t.client_id));
        Ok::<_, OAuthError>(oauth_json(rules::response(
            caller,
            token.as_ref(),
            holder,
            &state.issuer,
        )))
    };
    let response = result.await.into_response();
    crate::metrics::request("introspect", response.status().as_u16(), started);
    response
}

pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = async {
        let (source, registry, now) = (
            state.limits.source(peer, &headers),
            state.registry.load(),
            state.clock.now(),
        );
        let (caller, token) =
            caller_and_token(&state, source, &headers, body, &registry, now).await?;
        if let Some(t) = revocation::decide(caller, token.as_ref())? {
            let done = match &t.handle {
                Handle::Opaque(hash) => state.store.revoke_token(hash, now).await,
                Handle::Jwt => state.store.revoke_jti(&t.jti, t.expires_at).await,
            };
            done.map_err(|e| store_error(&e))?;
            tracing::info!(target: "audit", event = "token.revoked", client_id = %caller.id,
                holder = %t.client_id, jti = %t.jti, source = %source,
                request_id = request_id::current());
        }
        Ok::<_, OAuthError>(oauth_json(json!({})))
    };
    let response = result.await.into_response();
    crate::metrics::request("revoke", response.status().as_u16(), started);
    response
}

/// The steps introspection and revocation share, in order: the address's
/// budget, the body, the caller's authentication, the token looked up.
async fn caller_and_token<'r>(
    state: &AppState,
    source: IpAddr,
    headers: &HeaderMap,
    body: Body,
    registry: &'r Registry,
    now: i64,
) -> Result<(&'r Client, Option<TokenInfo>), OAuthError> {
    let body = state.admit(source, headers, body).await?;
    let params = read_params(headers, body, state.limits.request_timeout()).await?;
    let caller = authenticate(state, headers, &params, registry, source, now)?;
    let token = find(state, &params, registry, now).await?;
    Ok((caller.client, token))
}

fn authenticate<'r>(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    registry: &'r Registry,
    source: IpAddr,
    now: i64,
) -> Result<Authenticated<'r>, OAuthError> {
    let credentials = state.credentials(
        headers,
        params.get("client_id").map(str::to_owned),
        params.get("client_secret").map(str::to_owned),
    )?;
    state.before_authentication(&credentials, source)?;
    let who = credentials.authenticate(registry, &state.hasher, now);
    state.after_authentication(&credentials, source, now, who.as_ref())?;
    who
}

async fn find(
    state: &AppState,
    params: &Params,
    registry: &Registry,
    now: i64,
) -> Result<Option<TokenInfo>, OAuthError> {
    let raw = rules::token_param(params)?;
    lookup(
        raw,
        registry,
        &state.store,
        &state.token_hasher,
        &state.issuer,
        now,
    )
    .await
    .map_err(|e| store_error(&e))
}
