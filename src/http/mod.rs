//! HTTP: the router and thin handlers. Each endpoint parses, calls the
//! protocol core, and renders; `OAuthError` is rendered in `error.rs` only.

mod discovery;
mod error;
mod token;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::clock::Clock;
use crate::keys::SecretHasher;
use crate::oauth::client_credentials::GrantPolicy;
use crate::registry::Registry;

/// What every handler shares. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<ArcSwap<Registry>>,
    pub clock: Arc<dyn Clock>,
    pub hasher: SecretHasher,
    pub issuer: Arc<str>,
    pub policy: Arc<GrantPolicy>,
}

/// The token paths of the four dialects: RFC 6749 and Auth0 and Commerce
/// Layer (`/oauth/token`), Moltin (`/oauth/access_token`), WSO2 (`/token`).
pub const TOKEN_PATHS: [&str; 3] = ["/oauth/token", "/oauth/access_token", "/token"];

pub fn router(state: AppState) -> Router {
    let token_route = post(token::token).fallback(error::method_not_allowed);
    let mut token_routes = Router::new();
    for path in TOKEN_PATHS {
        token_routes = token_routes.route(path, token_route.clone());
    }
    // RFC 6749 §5.1: token responses, errors included, must not be cached.
    let token_routes = token_routes.layer(axum::middleware::map_response(no_store));
    Router::new()
        .merge(token_routes)
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

async fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
