//! RFC 7591 dynamic client registration at `/oauth/register`, and RFC 7592
//! reading, updating and deleting a registration at
//! `/oauth/register/{client_id}`, for machine clients.
//!
//! Registering needs an initial access token (§3): a token from this Writ
//! held by a client with the scope `writ:register`. Each registered client
//! is then managed with its own registration access token (RFC 7592 §1).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::admin::{Actor, Admin, AdminError, Metadata, REGISTRATION_TOKEN_PREFIX};

/// The scope of an initial access token (RFC 7591 §3).
pub const REGISTER_SCOPE: &str = "writ:register";
pub const REGISTRATION_PATH: &str = "/oauth/register";

/// An RFC 6750 / RFC 7591 §3.2.2 error answer.
pub struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Refusal {
    fn token(description: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
            description: description.into(),
        }
    }
}

impl From<AdminError> for Refusal {
    fn from(e: AdminError) -> Self {
        let (status, error) = match &e {
            AdminError::Invalid(_) | AdminError::Malformed(_) | AdminError::Conflict(_) => {
                (StatusCode::BAD_REQUEST, "invalid_client_metadata")
            }
            AdminError::NotFound(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            AdminError::Store(s) if s.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let description = match status {
            StatusCode::BAD_REQUEST => e.to_string(),
            StatusCode::UNAUTHORIZED => "the registration access token is not valid".into(),
            _ => {
                tracing::error!(error = %e, "registration failed");
                "the server could not complete the request".into()
            }
        };
        Self {
            status,
            error,
            description,
        }
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        AdminError::Store(e).into()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = no_store(
            (
                self.status,
                Json(json!({"error": self.error, "error_description": self.description})),
            )
                .into_response(),
        );
        if self.status == StatusCode::UNAUTHORIZED || self.status == StatusCode::FORBIDDEN {
            let challenge = format!(r#"Bearer realm="writ", error="{}""#, self.error);
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn bearer(headers: &HeaderMap) -> Result<&str, Refusal> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| Refusal::token("a bearer token is required"))
}

fn body(text: &[u8]) -> Result<Metadata, Refusal> {
    serde_json::from_slice(text).map_err(|e| Refusal {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_client_metadata",
        description: format!("the body is not client metadata as JSON: {e}"),
    })
}

/// RFC 7591 §3.1: register a client.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    text: axum::body::Bytes,
) -> Result<Response, Refusal> {
    let raw = bearer(&headers)?;
    let now = state.clock.now();
    let snapshot = state.registry.snapshot();
    let token = state
        .tokens
        .lookup(raw, &snapshot, now)
        .await?
        .ok_or_else(|| Refusal::token("the initial access token is not valid"))?;
    let holder = state.registry.client(&token.client_id).await?;
    if token.audience != *state.issuer && token.audience != state.policy.default_audience
        || !holder.is_some_and(|c| c.enabled)
    {
        return Err(Refusal::token("the initial access token is not valid"));
    }
    if !token.scope.split(' ').any(|s| s == REGISTER_SCOPE) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            error: "insufficient_scope",
            description: format!("registering needs a token with the scope {REGISTER_SCOPE}"),
        });
    }
    let admin = Admin::new(
        &state.store,
        &state.master,
        Actor {
            by: token.client_id,
            via: "registration",
        },
        state.clock.now(),
    );
    let registered = admin.register(body(&text)?, now).await?;
    let uri = format!(
        "{}{REGISTRATION_PATH}/{}",
        state.issuer.trim_end_matches('/'),
        registered.client_id
    );
    let mut shown = serde_json::to_value(&registered).expect("JSON");
    shown["registration_client_uri"] = json!(uri);
    Ok(no_store(
        (StatusCode::CREATED, [(header::LOCATION, uri)], Json(shown)).into_response(),
    ))
}

/// RFC 7592 §2: the registration access token of client `id`, checked.
async fn managed<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Admin<'a>, Refusal> {
    let raw = bearer(headers)?;
    let admin = Admin::new(
        &state.store,
        &state.master,
        Actor {
            by: id.to_owned(),
            via: "registration",
        },
        state.clock.now(),
    );
    if !raw.starts_with(REGISTRATION_TOKEN_PREFIX)
        || !admin.registration_token_matches(id, raw).await?
    {
        return Err(Refusal::token("the registration access token is not valid"));
    }
    Ok(admin)
}

fn shown(state: &AppState, r: crate::admin::Registered) -> Response {
    let mut v = serde_json::to_value(&r).expect("JSON");
    v["registration_client_uri"] = json!(format!(
        "{}{REGISTRATION_PATH}/{}",
        state.issuer.trim_end_matches('/'),
        r.client_id
    ));
    no_store(Json(v).into_response())
}

/// RFC 7592 §2.1: read the registration.
pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let admin = managed(&state, &headers, &id).await?;
    Ok(shown(&state, admin.registration(&id).await?))
}

/// RFC 7592 §2.2: replace the registration's metadata.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    text: axum::body::Bytes,
) -> Result<Response, Refusal> {
    let admin = managed(&state, &headers, &id).await?;
    let updated = admin.update_registration(&id, body(&text)?).await?;
    Ok(shown(&state, updated))
}

/// RFC 7592 §2.3: delete the client; its tokens stop with it.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let admin = managed(&state, &headers, &id).await?;
    admin.delete_client(&id).await?;
    Ok(no_store(StatusCode::NO_CONTENT.into_response()))
}
