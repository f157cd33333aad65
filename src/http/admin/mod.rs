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
mod tokens;

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
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::client_tokens))
        .routes(routes!(tokens::audit))
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
    with_etag_of(status, body, body)
}

/// The same, with the `ETag` of `versioned`: the part of the body a change
/// replaces (a client's settings, not when its secret was last used).
fn with_etag_of<T: serde::Serialize, V: serde::Serialize>(
    status: axum::http::StatusCode,
    body: &T,
    versioned: &V,
) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let etag = etag_of(&serde_json::to_vec(versioned).expect("JSON"));
    let mut response =
        (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn etag_of(bytes: &[u8]) -> String {
    let digest = crate::keys::sha256(bytes);
    format!("\"{}\"", crate::keys::b64url(&digest[..16]))
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

/// A create's answer, as kept for `Idempotency-Key` replays.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Created {
    status: u16,
    location: Option<String>,
    body: serde_json::Value,
}

impl IntoResponse for Created {
    fn into_response(self) -> Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::CREATED);
        let mut response = (status, Json(self.body)).into_response();
        let h = response.headers_mut();
        // A create's answer may hold a secret.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert(header::LOCATION, v);
        }
        response
    }
}

/// draft-ietf-httpapi-idempotency-key-header: a create repeated with the
/// same `Idempotency-Key` (by the same caller, within a day) gets the first
/// answer again instead of creating twice; the same key with another body
/// is a 422. The kept answer may hold a secret, so it is sealed under the
/// master key.
async fn idempotent<F>(
    state: &AppState,
    caller: &str,
    headers: &HeaderMap,
    body: &[u8],
    create: F,
) -> Result<Response, Problem>
where
    F: std::future::Future<Output = Result<Created, Problem>>,
{
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return Ok(create.await?.into_response());
    };
    if key.is_empty() || key.len() > 255 {
        return Err(Problem::bad_request(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    let now = state.clock.now();
    let request_hash = crate::keys::sha256(body).to_vec();
    let context = format!("idempotency\u{0}{caller}\u{0}{key}");
    if let Some(kept) = state.store.idempotent_answer(caller, key, now).await? {
        if kept.request_hash != request_hash {
            return Err(Problem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "Unprocessable Content",
                "this Idempotency-Key was used with another request",
            ));
        }
        let plain = state
            .master
            .open(context.as_bytes(), &kept.response)
            .map_err(|_| Problem::bad_request("the kept answer cannot be read"))?;
        let created: Created = serde_json::from_slice(&plain)
            .map_err(|_| Problem::bad_request("the kept answer cannot be read"))?;
        return Ok(created.into_response());
    }
    let created = create.await?;
    let sealed = state.master.seal(
        context.as_bytes(),
        &serde_json::to_vec(&created).expect("JSON"),
    );
    let answer = crate::store::IdempotentAnswer {
        request_hash,
        status: created.status,
        response: sealed,
    };
    state
        .store
        .keep_idempotent_answer(caller, key, &answer, now)
        .await?;
    Ok(created.into_response())
}
