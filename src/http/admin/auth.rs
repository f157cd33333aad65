//! Who calls the admin API: a client holding a bearer token (RFC 6750)
//! issued by this Writ with an admin scope.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::problem::Problem;
use super::AppState;
use crate::admin::{Actor, Admin};

/// Everything the admin API offers.
pub const ADMIN_SCOPE: &str = "writ:admin";
/// Reads only.
pub const ADMIN_READ_SCOPE: &str = "writ:admin:read";

/// The authenticated caller of an admin request.
pub struct Caller {
    pub client_id: String,
    may_write: bool,
}

impl Caller {
    /// Writes need `writ:admin`; a read-only token gets 403.
    pub fn write(&self) -> Result<(), Problem> {
        if self.may_write {
            Ok(())
        } else {
            Err(Problem::insufficient_scope(ADMIN_SCOPE))
        }
    }

    /// The operations, audited as this client's, via the API.
    pub fn admin<'a>(&self, state: &'a AppState) -> Admin<'a> {
        Admin::new(
            &state.store,
            &state.master,
            Actor {
                by: self.client_id.clone(),
                via: "api",
            },
            state.clock.now(),
        )
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let raw = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| Problem::unauthorized("a bearer token is required", false))?;
        let now = state.clock.now();
        let snapshot = state.registry.snapshot();
        let invalid = || Problem::unauthorized("the token is not valid here", true);
        let token = state
            .tokens
            .lookup(raw, &snapshot, now)
            .await?
            .ok_or_else(invalid)?;
        // A token for this server itself, held by a client that still exists
        // and is enabled.
        if token.audience != *state.issuer && token.audience != state.policy.default_audience {
            return Err(invalid());
        }
        let holder = state.registry.client(&token.client_id).await?;
        if !holder.is_some_and(|c| c.enabled) {
            return Err(invalid());
        }
        let scopes: Vec<&str> = token.scope.split(' ').collect();
        let may_write = scopes.contains(&ADMIN_SCOPE);
        if !may_write && !scopes.contains(&ADMIN_READ_SCOPE) {
            return Err(Problem::insufficient_scope(ADMIN_READ_SCOPE));
        }
        Ok(Self {
            client_id: token.client_id,
            may_write,
        })
    }
}

/// The OpenAPI document's security scheme: a bearer JWT from this Writ.
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from this Writ's token endpoint with the scope writ:admin or writ:admin:read.",
                    ))
                    .build(),
            ),
        );
    }
}
