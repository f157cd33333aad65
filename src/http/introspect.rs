//! `POST /oauth/introspect` (RFC 7662).

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{oauth_json, AppState};
use crate::oauth::{introspect as rules, OAuthError};

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
        let (caller, token) = state
            .caller_and_token(source, &headers, body, &registry, now)
            .await?;
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
