//! The admin HTTP API under `/admin/v1/`: JSON over the same operations as
//! the CLI (`crate::admin`, the same rules and audit events), protected by
//! Writ's own tokens. Lists page by a cursor with an RFC 8288 `Link` to the
//! next page; reads carry an `ETag` and updates honour `If-Match`; errors
//! are RFC 9457 problem details naming the field. The OpenAPI 3.1 document
//! at `/admin/v1/openapi.json` is generated from these handlers.

mod apis;
mod auth;
mod clients;
mod keys;
mod problem;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use auth::BearerScheme;
pub use auth::{ADMIN_READ_SCOPE, ADMIN_SCOPE};
use problem::Problem;

use super::AppState;

/// Where the API lives; every path below is relative to it.
pub const BASE: &str = "/admin/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Writ admin API",
        description = "Manage the clients, APIs, grants and signing keys of a Writ authorization server. Every request carries a bearer token issued by this Writ to a client holding `writ:admin` (everything) or `writ:admin:read` (reads only)."
    ),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
struct Doc;

/// The routes, and the OpenAPI document made from them.
pub fn router() -> axum::Router<AppState> {
    let (routes, mut doc) = OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(clients::list, clients::create))
        .routes(routes!(clients::get, clients::update, clients::delete))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(clients::revoke_secret))
        .routes(routes!(
            clients::grants,
            clients::create_grant,
            clients::delete_grant
        ))
        .routes(routes!(apis::list, apis::create))
        .routes(routes!(apis::get, apis::update, apis::delete))
        .routes(routes!(keys::list))
        .routes(routes!(keys::rotate))
        .split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new(BASE)]);
    let doc = std::sync::Arc::new(doc.to_json().expect("the document serialises"));
    routes.route(
        "/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move {
                ([(header::CONTENT_TYPE, "application/json")], (*doc).clone()).into_response()
            }
        }),
    )
}

/// A JSON answer with a strong `ETag` of its body, so a client can update
/// it with `If-Match` without losing another's change.
fn with_etag<T: serde::Serialize>(status: axum::http::StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let etag = etag_of(&bytes);
    let mut response =
        (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn etag_of(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("\"{}\"", crate::keys::b64url(&digest.as_ref()[..16]))
}

/// RFC 9110 §13.1.1: `If-Match` names the representation the change was
/// made from; another's change since then is a 412, not a silent overwrite.
fn check_if_match<T: serde::Serialize>(headers: &HeaderMap, current: &T) -> Result<(), Problem> {
    let Some(wanted) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let wanted = wanted.to_str().unwrap_or_default();
    let etag = etag_of(&serde_json::to_vec(current).expect("JSON"));
    if wanted.trim() == "*" || wanted.split(',').any(|w| w.trim() == etag) {
        Ok(())
    } else {
        Err(Problem::precondition_failed())
    }
}

/// A page of a list, `{"items": [...]}`, with a `Link: <…>; rel="next"`
/// (RFC 8288) unless it is the last.
fn page<T: serde::Serialize>(items: Vec<T>, next: Option<String>) -> Response {
    let mut response = Json(serde_json::json!({ "items": items })).into_response();
    if let Some(next) = next {
        if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}
