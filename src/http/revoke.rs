//! `POST /oauth/revoke` (RFC 7009).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{oauth_json, request_id, AppState};
use crate::oauth::{revoke as rules, OAuthError};

pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // The request taken whole: the `HeaderMap` extractor clones the map.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let started = Instant::now();
    let result = async {
        let (source, snapshot, now) = (
            state.limits.source(peer, &headers),
            state.registry.snapshot(),
            state.clock.now(),
        );
        let (caller, token) = state
            .caller_and_token(source, &headers, body, &snapshot, now)
            .await?;
        if let Some(t) = rules::decide(&caller, token.as_ref())? {
            state.tokens.revoke(t, now).await?;
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
