//! RFC 9457 problem details: every admin API error, rendered here only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::{AdminError, Field};
use crate::store::StoreError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI for the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The input the problem is about, by its JSON name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    #[serde(skip)]
    challenge: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            challenge: None,
        }
    }

    /// RFC 6750 §3: no token, or one that is not valid here.
    pub fn unauthorized(detail: &str, invalid_token: bool) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail);
        p.challenge = Some(if invalid_token {
            format!(r#"Bearer realm="writ", error="invalid_token", error_description="{detail}""#)
        } else {
            r#"Bearer realm="writ""#.to_owned()
        });
        p
    }

    /// RFC 6750 §3.1 `insufficient_scope`: a read-only token that writes.
    pub fn insufficient_scope(needed: &str) -> Self {
        let mut p = Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("this needs a token with the scope {needed}"),
        );
        p.challenge = Some(format!(
            r#"Bearer realm="writ", error="insufficient_scope", scope="{needed}""#
        ));
        p
    }

    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "Precondition Failed",
            "it changed since it was read (If-Match names another ETag): read it again",
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(invalid) => {
                let mut p = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Unprocessable Content",
                    invalid.to_string(),
                );
                p.field = Some(Field::as_str(invalid.field));
                p
            }
            AdminError::Malformed(m) => Self::bad_request(m),
            AdminError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "Not Found", m),
            AdminError::Conflict(m) => Self::new(StatusCode::CONFLICT, "Conflict", m),
            AdminError::Store(e) => Self::from(e),
            AdminError::Keys(e) => {
                tracing::error!(error = %e, "admin request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    "the server could not complete the request",
                )
            }
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        // The cause is logged, never sent.
        tracing::error!(error = %e, "admin request failed");
        if e.is_unavailable() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "the database is unavailable; try again shortly",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "the server could not complete the request",
            )
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let challenge = self.challenge.clone();
        let mut response = (status, axum::Json(&self)).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        response
    }
}

/// A JSON body that did not parse is a problem too, naming what was wrong.
impl From<axum::extract::rejection::JsonRejection> for Problem {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for Problem {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}
