//! `/tokens` and `/audit`: revoking any token by its value, a client's live
//! opaque tokens, and the audit events.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::problem::Problem;
use super::{page, AppState, BASE};
use crate::keys::b64url;
use crate::token::opaque::SELECTOR;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// The access token, JWT or opaque.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// False when the token was unknown, expired or revoked already.
    pub revoked: bool,
    pub client_id: Option<String>,
}

/// Revokes any token by its value (RFC 7009 semantics, for any client's).
#[utoipa::path(operation_id = "revoke_token", post, path = "/tokens/revoke", tag = "tokens", request_body = RevokeBody,
    responses((status = 200, description = "OK", body = Revoked)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<RevokeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Revoked>, Problem> {
    caller.write()?;
    let Json(b) = body?;
    let now = state.clock.now();
    let snapshot = state.registry.snapshot();
    let Some(token) = state.tokens.lookup(&b.token, &snapshot, now).await? else {
        return Ok(Json(Revoked {
            revoked: false,
            client_id: None,
        }));
    };
    state.tokens.revoke(&token, now).await?;
    tracing::info!(target: "audit", event = "token.revoked", holder = %token.client_id,
        jti = %token.jti, by = %caller.client_id, via = "api");
    Ok(Json(Revoked {
        revoked: true,
        client_id: Some(token.client_id),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// The token's id (its selector), as introspection names it.
    pub jti: String,
    pub scope: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
    /// Where the previous page ended, as its `Link` names it.
    pub before: Option<String>,
}

/// A client's live opaque tokens (JWTs are not stored), the last to expire
/// first (for one lifetime, the newest first; tokens an earlier Writ issued
/// come after, newest first). A page reads at most 10,000 tokens of all
/// clients, so it can hold fewer than `limit` and still link to a next
/// page: the token store keeps no index by client, which would cost every
/// token issued.
#[utoipa::path(operation_id = "list_client_tokens", get, path = "/clients/{id}/tokens", tag = "tokens",
    params(("id" = String, Path, description = "The client's id"), TokenQuery),
    responses((status = 200, description = "`{\"items\": [Token]}`; a `Link` header names the next page", body = inline(Object)), (status = 400, description = "Not a cursor of this list", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn client_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query?;
    caller.admin(&state).client(&id).await?;
    let before = match q.before.as_deref() {
        None => None,
        Some(b) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b)
                .ok()
                .filter(|s| s.len() == SELECTOR)
                .ok_or_else(|| Problem::bad_request("before is not a cursor of this list"))?,
        ),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let (tokens, next) = state
        .store
        .client_tokens(&id, state.clock.now(), limit, before.as_deref())
        .await?;
    let next = next.map(|selector| {
        let id = percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC);
        format!(
            "{BASE}/clients/{id}/tokens?limit={limit}&before={}",
            b64url(&selector)
        )
    });
    let items = tokens
        .iter()
        .map(|t| Token {
            jti: b64url(&t.selector),
            scope: t.scope.clone(),
            audience: t.audience.clone(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
        })
        .collect();
    Ok(page::<Token>(items, next))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// e.g. `client.created`, `key.rotated`.
    pub event: String,
    pub subject: String,
    /// Who: a login name (CLI) or a client id (API, registration).
    pub actor: String,
    /// Through which front door: `cli`, `api` or `registration`.
    pub via: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
    /// The last id of the previous page (events are newest first).
    pub before: Option<i64>,
}

/// The audit events of management changes, newest first.
#[utoipa::path(operation_id = "list_audit_events", get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "`{\"items\": [AuditEvent]}`; a `Link` header names the next page", body = inline(Object))))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut events = caller
        .admin(&state)
        .audit_events(q.before, limit + 1)
        .await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next = more
        .then(|| events.last())
        .flatten()
        .map(|e| format!("{BASE}/audit?limit={limit}&before={}", e.id));
    let items = events
        .into_iter()
        .map(|e| AuditEvent {
            id: e.id,
            at: e.at,
            event: e.event,
            subject: e.subject,
            actor: e.actor,
            via: e.via,
        })
        .collect();
    Ok(page::<AuditEvent>(items, next))
}
