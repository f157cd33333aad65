//! `POST /oauth/introspect` (RFC 7662).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};

use super::{oauth_json, AppState};
use crate::oauth::{introspect as rules, OAuthError};

pub async fn introspect(
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
        let holder = match &token {
            Some(t) => state.registry.client(&t.client_id).await?,
            None => None,
        };
        Ok::<_, OAuthError>(oauth_json(rules::response(
            &caller,
            token.as_ref(),
            holder.as_deref(),
            &state.issuer,
        )))
    };
    let response = result.await.into_response();
    crate::metrics::request("introspect", response.status().as_u16(), started);
    response
}
