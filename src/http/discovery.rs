//! `GET /.well-known/jwks.json` (RFC 7517 §5) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use super::{AppState, INTROSPECTION_PATH, REVOCATION_PATH};

/// The same three methods at every endpoint that authenticates clients.
const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];
use crate::oauth::client_credentials::GRANT_TYPE;

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let jwks = state.registry.snapshot().jwks.clone();
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            // Short, so a rotated-in key is picked up by resource servers soon.
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        axum::body::Bytes::from_owner(jwks),
    )
}

pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.issuer.trim_end_matches('/');
    let grant_types: &[&str] = if state.policy.enabled {
        &[GRANT_TYPE]
    } else {
        &[]
    };
    let scopes = state.registry.snapshot().api_scopes();
    let mut doc = json!({
        "issuer": &*state.issuer,
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": grant_types,
        // No authorization endpoint: no response types (RFC 8414 §2 allows
        // an empty list for servers that only serve the token endpoint).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint": format!("{base}{INTROSPECTION_PATH}"),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint": format!("{base}{REVOCATION_PATH}"),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        // RFC 7591 §3, with an initial access token (scope writ:register).
        "registration_endpoint": format!("{base}{}", super::register::REGISTRATION_PATH),
    });
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
    axum::Json(doc)
}
