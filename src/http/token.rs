//! `POST /oauth/token` (and its aliases): RFC 6749 §4.4.2, §5.1, §5.2.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::client_credentials::authorize;
use crate::oauth::request::{BodyFormat, TokenRequest, MAX_BODY_BYTES};
use crate::oauth::OAuthError;
use crate::token::jwt;

/// RFC 6749 §5.1, plus `created_at` (Commerce Layer) and the absolute
/// `expires` (Moltin's SDK reads it).
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    created_at: i64,
    expires: i64,
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match issue(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn issue(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, OAuthError> {
    // 1. content type and body size
    let format = BodyFormat::from_content_type(header_str(headers, header::CONTENT_TYPE)?)?;
    let body = read_body(headers, body).await?;
    // 2. parse the body; repeated parameters refused
    let request = TokenRequest::from_params(format.parse(&body)?)?;
    // 3. exactly one client authentication method
    let credentials = ClientCredentials::extract(
        header_str(headers, header::AUTHORIZATION)?,
        request.client_id.clone(),
        request.client_secret.clone(),
    )?;
    // 4–9. the grant's checks, against the current registry snapshot
    let registry = state.registry.load();
    let now = state.clock.now();
    let grant = authorize(
        &registry,
        &state.policy,
        &state.hasher,
        now,
        &request,
        &credentials,
    )?;
    // 10. mint
    let key = registry.signer(grant.algorithm).ok_or_else(|| {
        OAuthError::server_error(format!("no active {} signing key", grant.algorithm))
    })?;
    let exp = now.saturating_add(grant.lifetime.min(i64::MAX as u64) as i64);
    let jti = jwt::new_jti();
    let access_token = jwt::mint(
        key,
        &jwt::Claims {
            iss: &state.issuer,
            sub: &grant.client.id,
            client_id: &grant.client.id,
            aud: grant.audience,
            iat: now,
            exp,
            jti: &jti,
            scope: &grant.scope,
        },
    )
    .map_err(OAuthError::server_error)?;
    tracing::debug!(client_id = %grant.client.id, aud = grant.audience, scope = %grant.scope, "token issued");
    // 11. render (no-store headers are added by the router for every response)
    Ok(axum::Json(TokenResponse {
        access_token: &access_token,
        token_type: "Bearer",
        expires_in: grant.lifetime,
        scope: &grant.scope,
        created_at: now,
        expires: exp,
    })
    .into_response())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, OAuthError> {
    headers
        .get(&name)
        .map(|v| {
            v.to_str()
                .map_err(|_| OAuthError::invalid_request(format!("the {name} header is not ASCII")))
        })
        .transpose()
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, OAuthError> {
    let too_large = || {
        OAuthError::invalid_request(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
            .with_status(413)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if e.into_inner().is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                OAuthError::invalid_request("the body could not be read")
            }
        })
}
