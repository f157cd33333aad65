//! `/clients`: the services that ask for tokens, their secrets and grants.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::problem::Problem;
use super::{check_if_match, idempotent, page, with_etag_of, AppState, Created, BASE};
use crate::admin::{ClientChanges, FormatSetting, NewClient, NewGrant, NewTrustRule};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::store::{ClientRecord, GrantRecord, SecretRecord, TrustRuleRecord};
use crate::types::{AuthMethod, TokenFormat};

/// A client as the API shows it: scopes as one space-delimited string.
#[derive(Debug, Serialize, ToSchema)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// No secret: authenticates with its id alone.
    pub public: bool,
    pub scope: String,
    pub default_scope: Option<String>,
    /// Token lifetime in seconds; none: the API's or the server's.
    pub lifetime: Option<u64>,
    pub grant_types: Vec<String>,
    pub enabled: bool,
    /// `jwt` or `opaque`; none: the API's, else jwt.
    pub format: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// How it may authenticate; empty: what its kind allows.
    pub auth_methods: Vec<String>,
    /// Its public keys (a JWK Set), for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Or the URL its keys are fetched from.
    pub jwks_uri: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&ClientRecord> for Client {
    fn from(c: &ClientRecord) -> Self {
        Self {
            client_id: c.id.clone(),
            name: c.name.clone(),
            public: c.public,
            scope: c.scopes.join(" "),
            default_scope: c.default_scope.as_ref().map(|d| d.join(" ")),
            lifetime: c.lifetime,
            grant_types: c.grant_types.clone(),
            enabled: c.enabled,
            format: c.token_format.map(|f| f.as_str().to_owned()),
            claims: c.claims.clone(),
            auth_methods: c
                .auth_methods
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: c.jwks_uri.clone(),
            created_at: c.created_at,
        }
    }
}

/// A client with its grants and secrets (ids and dates, never a secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientDetails {
    #[serde(flatten)]
    pub client: Client,
    pub grants: Vec<Grant>,
    pub secrets: Vec<Secret>,
    /// External issuers whose tokens authenticate it (workload identity).
    pub trust: Vec<TrustRule>,
}

/// A trust rule: tokens of `issuer` whose `sub` matches `subject` (a `*`
/// is any run of characters) and whose claims meet `claims` authenticate
/// the client, if their `aud` is `audience` (default: Writ's issuer). An
/// `issuer` of `spiffe://TRUST-DOMAIN` stands for that SPIFFE trust
/// domain's JWT-SVIDs, `subject` then being a SPIFFE ID.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustRule {
    /// Given by the server.
    #[serde(default, skip_deserializing)]
    pub id: i64,
    pub issuer: String,
    pub subject: Option<String>,
    pub audience: Option<String>,
    /// Claim name, or JSON pointer (`/kubernetes.io/namespace`), → value or pattern.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
}

impl From<&TrustRuleRecord> for TrustRule {
    fn from(r: &TrustRuleRecord) -> Self {
        Self {
            id: r.id,
            issuer: r.issuer.clone(),
            subject: r.subject.clone(),
            audience: r.audience.clone(),
            claims: r
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
        }
    }
}

impl From<TrustRule> for NewTrustRule {
    fn from(r: TrustRule) -> Self {
        Self {
            issuer: r.issuer,
            subject: r.subject,
            audience: r.audience,
            claims: r.claims.into_iter().collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    pub client_id: String,
    /// The API's identifier.
    pub api: String,
    pub scope: String,
    pub created_at: i64,
}

impl From<&GrantRecord> for Grant {
    fn from(g: &GrantRecord) -> Self {
        Self {
            client_id: g.client_id.clone(),
            api: g.api.clone(),
            scope: g.scopes.join(" "),
            created_at: g.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Secret {
    pub id: i64,
    pub created_at: i64,
    /// When it stops working (after a rotation with overlap).
    pub expires_at: Option<i64>,
    /// Recorded at most once a minute.
    pub last_used_at: Option<i64>,
}

impl From<&SecretRecord> for Secret {
    fn from(s: &SecretRecord) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_used_at: s.last_used_at,
        }
    }
}

/// A new client, and its secret: shown only now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    pub client_secret: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    pub name: String,
    /// Allowed scopes, space-delimited; a trailing `*` is a wildcard.
    #[serde(default)]
    pub scope: String,
    pub default_scope: Option<String>,
    #[serde(default)]
    pub public: bool,
    pub lifetime: Option<u64>,
    pub grant_types: Option<Vec<String>>,
    /// `jwt` or `opaque`.
    pub format: Option<String>,
    /// Its public keys, a JWK Set, for `private_key_jwt` (it then gets no secret).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Or the https URL of its JWK Set, fetched and cached by the server.
    pub jwks_uri: Option<String>,
    /// External issuers whose tokens authenticate it instead of a secret.
    pub trust: Option<Vec<TrustRule>>,
    /// How it may authenticate: `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`, `none` (default: what its kind allows).
    pub auth_methods: Option<Vec<String>>,
}

fn auth_methods(names: Option<Vec<String>>) -> Result<Option<Vec<AuthMethod>>, Problem> {
    names
        .map(|n| {
            n.iter()
                .map(|m| m.parse().map_err(Problem::bad_request))
                .collect()
        })
        .transpose()
}

/// Settings to change; an absent member stays as it is.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub scope: Option<String>,
    /// `""` removes it.
    pub default_scope: Option<String>,
    pub lifetime: Option<u64>,
    pub grant_types: Option<Vec<String>>,
    /// `jwt`, `opaque` or `default`.
    pub format: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Value>,
    /// `false` refuses its token requests (and its tokens introspect inactive).
    pub enabled: Option<bool>,
    /// Replaces its public keys (only a client that has keys).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Replaces its keys with the URL they are fetched from.
    pub jwks_uri: Option<String>,
    /// Limits how it may authenticate; `[]`: back to what its kind allows.
    pub auth_methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
    /// The last client id of the previous page.
    pub after: Option<String>,
    /// Only clients whose name starts with this.
    pub name_prefix: Option<String>,
}

fn format(text: Option<String>) -> Result<Option<TokenFormat>, Problem> {
    text.map(|f| f.parse().map_err(Problem::bad_request))
        .transpose()
}

/// Clients in the order they were registered, a page at a time.
#[utoipa::path(operation_id = "list_clients", get, path = "/clients", tag = "clients", params(ListQuery),
    responses((status = 200, description = "`{\"items\": [Client]}`; a `Link` header names the next page", body = inline(Object))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut found = caller
        .admin(&state)
        .clients_page(q.after.as_deref(), q.name_prefix.as_deref(), limit + 1)
        .await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next = (more).then(|| found.last()).flatten().map(|last| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("limit", &limit.to_string());
        url.append_pair("after", &last.id);
        if let Some(p) = &q.name_prefix {
            url.append_pair("name_prefix", p);
        }
        format!("{BASE}/clients?{}", url.finish())
    });
    Ok(page(found.iter().map(Client::from).collect(), next))
}

/// Registers a client; its secret is in the answer and never again. An
/// `Idempotency-Key` makes a repeated request answer the same, once.
#[utoipa::path(operation_id = "create_client", post, path = "/clients", tag = "clients", request_body = NewClientBody,
    responses((status = 201, description = "Created", body = CreatedClient), (status = 422, description = "A rule is broken; `field` names the input", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    text: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.write()?;
    let b: NewClientBody = serde_json::from_slice(&text)
        .map_err(|e| Problem::bad_request(format!("the body is not a new client: {e}")))?;
    let create = async {
        let new = NewClient {
            name: b.name,
            scope: b.scope,
            default_scope: b.default_scope,
            public: b.public,
            lifetime: b.lifetime,
            grant_types: b.grant_types.unwrap_or_else(|| vec![GRANT_TYPE.into()]),
            format: format(b.format)?,
            auth_methods: auth_methods(b.auth_methods)?.unwrap_or_default(),
            jwks: b.jwks.map(|j| j.to_string()),
            jwks_uri: b.jwks_uri,
            trust: b
                .trust
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let created = caller
            .admin(&state)
            .create_client(new, state.clock.now())
            .await?;
        let body = CreatedClient {
            client: Client::from(&created.client),
            client_secret: created.secret,
        };
        Ok(Created {
            status: 201,
            location: Some(format!("{BASE}/clients/{}", created.client.id)),
            body: serde_json::to_value(body).expect("JSON"),
        })
    };
    idempotent(&state, &caller.client_id, &headers, &text, create).await
}

async fn details(state: &AppState, caller: &Caller, id: &str) -> Result<ClientDetails, Problem> {
    let d = caller.admin(state).client(id).await?;
    Ok(ClientDetails {
        client: Client::from(&d.client),
        grants: d.grants.iter().map(Grant::from).collect(),
        secrets: d.secrets.iter().map(Secret::from).collect(),
        trust: d.trust.iter().map(TrustRule::from).collect(),
    })
}

/// One client with its grants and secrets, and an `ETag`.
#[utoipa::path(operation_id = "get_client", get, path = "/clients/{id}", params(("id" = String, Path, description = "The client's id")), tag = "clients",
    responses((status = 200, description = "OK", body = ClientDetails), (status = 404, description = "Not found", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let d = details(&state, &caller, &id).await?;
    Ok(with_etag_of(StatusCode::OK, &d, &d.client))
}

/// Changes settings, checked as a whole; `If-Match` with the `ETag` read
/// makes a lost update a 412.
#[utoipa::path(operation_id = "update_client", patch, path = "/clients/{id}", params(("id" = String, Path, description = "The client's id")), tag = "clients", request_body = ClientPatch,
    responses((status = 200, description = "OK", body = ClientDetails), (status = 404, description = "Not found", body = Problem),
        (status = 412, description = "Changed since it was read", body = Problem), (status = 422, description = "A rule is broken; `field` names the input", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ClientPatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    caller.write()?;
    let Json(patch) = body?;
    check_if_match(&headers, &details(&state, &caller, &id).await?.client)?;
    let admin = caller.admin(&state);
    let changes = ClientChanges {
        name: patch.name,
        scope: patch.scope,
        default_scope: patch.default_scope,
        lifetime: patch.lifetime,
        grant_types: patch.grant_types,
        format: patch
            .format
            .map(|f| f.parse::<FormatSetting>().map_err(Problem::bad_request))
            .transpose()?,
        claims: patch.claims.map(|c| c.to_string()),
        auth_methods: auth_methods(patch.auth_methods)?,
        jwks: patch.jwks.map(|j| j.to_string()),
        jwks_uri: patch.jwks_uri,
    };
    admin.update_client(&id, changes).await?;
    if let Some(enabled) = patch.enabled {
        admin.set_client_enabled(&id, enabled).await?;
    }
    let d = details(&state, &caller, &id).await?;
    Ok(with_etag_of(StatusCode::OK, &d, &d.client))
}

/// Deletes the client and its grants.
#[utoipa::path(operation_id = "delete_client", delete, path = "/clients/{id}", params(("id" = String, Path, description = "The client's id")), tag = "clients",
    responses((status = 204, description = "Done"), (status = 404, description = "Not found", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.write()?;
    caller.admin(&state).delete_client(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the previous secrets keep working, in seconds (default a
    /// day; 0 revokes them at once).
    pub overlap_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    /// Shown only now.
    pub client_secret: String,
    pub previous_secrets_expire_at: Option<i64>,
}

/// Adds a new secret; the previous ones keep working for the overlap.
#[utoipa::path(operation_id = "rotate_secret", post, path = "/clients/{id}/secrets", params(("id" = String, Path, description = "The client's id")), tag = "clients", request_body = RotateBody,
    responses((status = 201, description = "Created", body = RotatedSecret), (status = 404, description = "Not found", body = Problem), (status = 409, description = "Conflicts with what exists", body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, Problem> {
    caller.write()?;
    let overlap = body
        .and_then(|Json(b)| b.overlap_seconds)
        .unwrap_or(24 * 3600);
    let rotated = caller
        .admin(&state)
        .rotate_secret(
            &id,
            std::time::Duration::from_secs(overlap),
            state.clock.now(),
        )
        .await?;
    let body = RotatedSecret {
        client_id: id,
        client_secret: rotated.secret,
        previous_secrets_expire_at: rotated.previous_secrets_expire_at,
    };
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedSecret {
    /// Live secrets left: none means the client gets no token until a new one.
    pub secrets_left: usize,
}

/// Revokes one secret at once.
#[utoipa::path(operation_id = "revoke_secret", delete, path = "/clients/{id}/secrets/{secret_id}", params(("id" = String, Path, description = "The client's id"), ("secret_id" = i64, Path, description = "The secret's id, from the client's `secrets`")), tag = "clients",
    responses((status = 200, description = "OK", body = RevokedSecret), (status = 404, description = "Not found", body = Problem)))]
pub async fn revoke_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, secret_id)): Path<(String, i64)>,
) -> Result<Json<RevokedSecret>, Problem> {
    caller.write()?;
    let secrets_left = caller
        .admin(&state)
        .revoke_secret(&id, secret_id, state.clock.now())
        .await?;
    Ok(Json(RevokedSecret { secrets_left }))
}

/// The APIs this client may receive tokens for, with their scopes.
#[utoipa::path(operation_id = "list_grants", get, path = "/clients/{id}/grants", params(("id" = String, Path, description = "The client's id")), tag = "grants",
    responses((status = 200, description = "`{\"items\": [Grant]}`", body = inline(Object)), (status = 404, description = "Not found", body = Problem)))]
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let grants = caller.admin(&state).grants(Some(&id)).await?;
    Ok(page(grants.iter().map(Grant::from).collect(), None))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrantBody {
    /// The API's identifier.
    pub api: String,
    /// Scopes the API defines, space-delimited.
    pub scope: String,
}

/// Lets the client receive some of an API's scopes.
#[utoipa::path(operation_id = "create_grant", post, path = "/clients/{id}/grants", params(("id" = String, Path, description = "The client's id")), tag = "grants", request_body = NewGrantBody,
    responses((status = 201, description = "Created", body = Grant), (status = 404, description = "Not found", body = Problem), (status = 409, description = "Conflicts with what exists", body = Problem), (status = 422, description = "A rule is broken; `field` names the input", body = Problem)))]
pub async fn create_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<NewGrantBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Problem> {
    caller.write()?;
    let Json(b) = body?;
    let grant = caller
        .admin(&state)
        .create_grant(
            NewGrant {
                client_id: id,
                api: b.api,
                scope: b.scope,
            },
            state.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Grant::from(&grant))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// The API's identifier.
    pub api: String,
}

/// Takes a grant away.
#[utoipa::path(operation_id = "delete_grant", delete, path = "/clients/{id}/grants", tag = "grants", params(("id" = String, Path, description = "The client's id"), GrantQuery),
    responses((status = 204, description = "Done"), (status = 404, description = "Not found", body = Problem)))]
pub async fn delete_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<GrantQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, Problem> {
    caller.write()?;
    let Query(q) = query?;
    caller.admin(&state).delete_grant(&id, &q.api).await?;
    Ok(StatusCode::NO_CONTENT)
}
