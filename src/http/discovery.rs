//! `GET /.well-known/jwks.json` (RFC 7517 §5) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use super::{AppState, INTROSPECTION_PATH, REVOCATION_PATH};

use crate::keys::AssertionAlgorithm;
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::types::AuthMethod;

/// The same methods at every endpoint that authenticates clients.
fn auth_methods() -> Vec<&'static str> {
    AuthMethod::ALL.iter().map(|m| m.as_str()).collect()
}

/// RFC 8414 §2: what `private_key_jwt` assertions may be signed with.
fn signing_algs() -> Vec<&'static str> {
    AssertionAlgorithm::ALL.iter().map(|a| a.as_str()).collect()
}

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
        "token_endpoint_auth_methods_supported": auth_methods(),
        "token_endpoint_auth_signing_alg_values_supported": signing_algs(),
        "introspection_endpoint": format!("{base}{INTROSPECTION_PATH}"),
        "introspection_endpoint_auth_methods_supported": auth_methods(),
        "introspection_endpoint_auth_signing_alg_values_supported": signing_algs(),
        "revocation_endpoint": format!("{base}{REVOCATION_PATH}"),
        "revocation_endpoint_auth_methods_supported": auth_methods(),
        "revocation_endpoint_auth_signing_alg_values_supported": signing_algs(),
        // RFC 7591 §3, with an initial access token (scope writ:register).
        "registration_endpoint": format!("{base}{}", super::register::REGISTRATION_PATH),
    });
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
    axum::Json(doc)
}
