//! `/apis`: the audiences tokens are issued for (RFC 8707 resources). An
//! identifier is a URI: percent-encode it in the path.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::Problem;
use super::{check_if_match, idempotent, page, with_etag, AppState, Created, BASE};
use crate::admin::{ApiChanges, FormatSetting, NewApi};
use crate::store::ApiRecord;
use crate::types::{Algorithm, ClaimsProfile};

#[derive(Debug, Serialize, ToSchema)]
pub struct Api {
    /// Absolute URI that tokens name in `aud`.
    pub identifier: String,
    pub name: String,
    pub scope: String,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    /// ES256, RS256 or EdDSA.
    pub algorithm: String,
    pub format: Option<String>,
    /// standard or auth0.
    pub claims: Option<String>,
    pub created_at: i64,
}

impl From<&ApiRecord> for Api {
    fn from(a: &ApiRecord) -> Self {
        Self {
            identifier: a.identifier.clone(),
            name: a.name.clone(),
            scope: a.scopes.join(" "),
            lifetime: a.lifetime,
            max_lifetime: a.max_lifetime,
            algorithm: a.algorithm.to_string(),
            format: a.token_format.map(|f| f.to_string()),
            claims: a.claims_profile.map(|p| p.to_string()),
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiBody {
    pub identifier: String,
    pub name: Option<String>,
    #[serde(default)]
    pub scope: String,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    pub algorithm: Option<String>,
    pub format: Option<String>,
    pub claims: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    pub name: Option<String>,
    pub scope: Option<String>,
    pub lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
    pub algorithm: Option<String>,
    /// `jwt`, `opaque` or `default`.
    pub format: Option<String>,
    pub claims: Option<String>,
}

fn parsed<T: std::str::FromStr<Err = String>>(text: Option<String>) -> Result<Option<T>, Problem> {
    text.map(|t| t.parse().map_err(Problem::bad_request))
        .transpose()
}

/// Every API.
#[utoipa::path(operation_id = "list_apis", get, path = "/apis", tag = "apis",
    responses((status = 200, description = "`{\"items\": [Api]}`", body = inline(Object))))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let apis = caller.admin(&state).apis().await?;
    Ok(page(apis.iter().map(Api::from).collect(), None))
}

/// Registers an API, and signing keys for its algorithm if there are none.
#[utoipa::path(operation_id = "create_api", post, path = "/apis", tag = "apis", request_body = NewApiBody,
    responses((status = 201, description = "Created", body = Api), (status = 409, description = "Conflicts with what exists", body = Problem), (status = 422, description = "A rule is broken; `field` names the input", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    text: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.write()?;
    let b: NewApiBody = serde_json::from_slice(&text)
        .map_err(|e| Problem::bad_request(format!("the body is not a new API: {e}")))?;
    let create = async {
        let new = NewApi {
            identifier: b.identifier,
            name: b.name,
            scope: b.scope,
            lifetime: b.lifetime,
            max_lifetime: b.max_lifetime,
            algorithm: parsed::<Algorithm>(b.algorithm)?.unwrap_or(Algorithm::ES256),
            format: parsed(b.format)?,
            claims_profile: parsed::<ClaimsProfile>(b.claims)?,
        };
        let api = caller
            .admin(&state)
            .create_api(new, state.clock.now())
            .await?;
        let location = format!(
            "{BASE}/apis/{}",
            percent_encoding::utf8_percent_encode(
                &api.identifier,
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        Ok(Created {
            status: 201,
            location: Some(location),
            body: serde_json::to_value(Api::from(&api)).expect("JSON"),
        })
    };
    idempotent(&state, &caller.client_id, &headers, &text, create).await
}

/// One API, with an `ETag`.
#[utoipa::path(operation_id = "get_api", get, path = "/apis/{identifier}", params(("identifier" = String, Path, description = "The API's identifier, percent-encoded")), tag = "apis",
    responses((status = 200, description = "OK", body = Api), (status = 404, description = "Not found", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<Response, Problem> {
    let api = caller.admin(&state).api(&identifier).await?;
    Ok(with_etag(StatusCode::OK, &Api::from(&api)))
}

/// Changes settings, checked as a whole (granted scopes must stay).
#[utoipa::path(operation_id = "update_api", patch, path = "/apis/{identifier}", params(("identifier" = String, Path, description = "The API's identifier, percent-encoded")), tag = "apis", request_body = ApiPatch,
    responses((status = 200, description = "OK", body = Api), (status = 404, description = "Not found", body = Problem), (status = 412, description = "Changed since it was read", body = Problem), (status = 422, description = "A rule is broken; `field` names the input", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ApiPatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    caller.write()?;
    let Json(p) = body?;
    let admin = caller.admin(&state);
    check_if_match(&headers, &Api::from(&admin.api(&identifier).await?))?;
    let changes = ApiChanges {
        name: p.name,
        scope: p.scope,
        lifetime: p.lifetime,
        max_lifetime: p.max_lifetime,
        algorithm: parsed(p.algorithm)?,
        format: parsed::<FormatSetting>(p.format)?,
        claims_profile: parsed(p.claims)?,
    };
    let api = admin
        .update_api(&identifier, changes, state.clock.now())
        .await?;
    Ok(with_etag(StatusCode::OK, &Api::from(&api)))
}

/// Deletes the API and every grant for it.
#[utoipa::path(operation_id = "delete_api", delete, path = "/apis/{identifier}", params(("identifier" = String, Path, description = "The API's identifier, percent-encoded")), tag = "apis",
    responses((status = 204, description = "Done"), (status = 404, description = "Not found", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.write()?;
    caller.admin(&state).delete_api(&identifier).await?;
    Ok(StatusCode::NO_CONTENT)
}
