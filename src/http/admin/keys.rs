//! `/keys`: the signing keys and their lifecycle.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::Problem;
use super::{page, AppState};
use crate::types::Algorithm;

#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    pub kid: String,
    pub algorithm: String,
    /// next (published, not signing yet), active, retiring or expired.
    pub state: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    /// A retiring key leaves the JWKS then.
    pub publish_until: Option<i64>,
}

/// Every key with its state.
#[utoipa::path(operation_id = "list_keys", get, path = "/keys", tag = "keys",
    responses((status = 200, description = "`{\"items\": [Key]}`", body = inline(Object))))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let now = state.clock.now();
    let keys = caller.admin(&state).keys().await?;
    let items = keys
        .iter()
        .map(|k| Key {
            kid: k.kid.clone(),
            algorithm: k.algorithm.to_string(),
            state: k.state(now).as_str().to_owned(),
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
            publish_until: k.publish_until,
        })
        .collect();
    Ok(page::<Key>(items, None))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Only this algorithm's keys (default: every algorithm in use).
    pub algorithm: Option<String>,
    /// Activate a next key even if it was published only moments ago.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// The keys that now sign.
    pub activated: Vec<String>,
}

/// Starts signing with the next keys; the old ones stay published until
/// their tokens expire.
#[utoipa::path(operation_id = "rotate_keys", post, path = "/keys/rotate", tag = "keys", request_body = RotateBody,
    responses((status = 200, description = "OK", body = Rotated), (status = 409, description = "Conflicts with what exists", body = Problem)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    body: Option<Json<RotateBody>>,
) -> Result<Json<Rotated>, Problem> {
    caller.write()?;
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let algorithm = b
        .algorithm
        .map(|a| a.parse::<Algorithm>().map_err(Problem::bad_request))
        .transpose()?;
    let activated = caller
        .admin(&state)
        .rotate_keys(
            algorithm,
            state.policy.default_lifetime,
            b.force,
            state.clock.now(),
        )
        .await?;
    Ok(Json(Rotated { activated }))
}
