//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{oauth_json, read_params, store_error, AppState};
use crate::oauth::client_auth::Authenticated;
use crate::oauth::request::Params;
use crate::oauth::{introspect as rules, revoke as revocation, OAuthError};
use crate::registry::Registry;
use crate::token::{lookup, Handle, TokenInfo};

pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let (params, registry) = (read_params(&headers, body).await?, state.registry.load());
        let now = state.clock.now();
        let caller = authenticate(&state, &headers, &params, &registry, now)?;
        let token = find(&state, &params, &registry, now).await?;
        let holder = token.as_ref().and_then(|t| registry.client(&t.client_id));
        Ok::<_, OAuthError>(oauth_json(rules::response(
            caller.client,
            token.as_ref(),
            holder,
            &state.issuer,
        )))
    };
    result.await.into_response()
}

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let (params, registry) = (read_params(&headers, body).await?, state.registry.load());
        let now = state.clock.now();
        let caller = authenticate(&state, &headers, &params, &registry, now)?;
        let token = find(&state, &params, &registry, now).await?;
        if let Some(t) = revocation::decide(caller.client, token.as_ref())? {
            let done = match &t.handle {
                Handle::Opaque(hash) => state.store.revoke_token(hash, now).await,
                Handle::Jwt => state.store.revoke_jti(&t.jti, t.expires_at).await,
            };
            done.map_err(|e| store_error(&e))?;
            tracing::info!(client_id = %caller.client.id, jti = %t.jti, "token revoked");
        }
        Ok::<_, OAuthError>(oauth_json(json!({})))
    };
    result.await.into_response()
}

fn authenticate<'r>(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    registry: &'r Registry,
    now: i64,
) -> Result<Authenticated<'r>, OAuthError> {
    let credentials = state.credentials(
        headers,
        params.get("client_id").map(str::to_owned),
        params.get("client_secret").map(str::to_owned),
    )?;
    let who = credentials.authenticate(registry, &state.hasher, now)?;
    state.record_use(&who, now);
    Ok(who)
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
