use std::borrow::Cow;

use crate::store::StoreError;
use crate::token::IssueError;

/// Error codes of RFC 6749 §5.2 and RFC 8707 §2, plus `server_error` and
/// `temporarily_unavailable` for failures on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    /// Over a rate limit (RFC 8628 §3.5's code, used with 429).
    SlowDown,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::SlowDown => "slow_down",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Refusals of the exchange itself rather than of its OAuth parameters:
/// each is `invalid_request`, and the renderer gives it its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A method the endpoint does not take.
    MethodNotAllowed,
    /// The body did not arrive in time.
    BodyTimeout,
    /// The body is larger than an OAuth request needs.
    BodyTooLarge,
}

/// Over a limit: which budget (draft-ietf-httpapi-ratelimit-headers'
/// policy) and how many seconds until it has room again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    pub policy: String,
    pub retry_after: u64,
}

/// Everything a client can cause, and internal failures, as one type.
///
/// `description` is sent to the client; `detail` is only logged.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    pub detail: Option<String>,
    /// RFC 6749 §5.2: a failed Basic authentication answers with a
    /// `WWW-Authenticate` challenge.
    pub basic_challenge: bool,
    pub refusal: Option<Refusal>,
    pub rate_limited: Option<RateLimited>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            detail: None,
            basic_challenge: false,
            refusal: None,
            rate_limited: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// One description for every authentication failure, so the answer never
    /// tells an unknown client from a wrong secret; the reason goes to `detail`.
    pub fn client_authentication_failed(detail: &'static str) -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed").with_detail(detail)
    }

    /// An internal failure: the cause is logged, never sent.
    pub fn server_error(detail: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
        .with_detail(detail.to_string())
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn refused(refusal: Refusal, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            refusal: Some(refusal),
            ..Self::invalid_request(description)
        }
    }

    pub fn rate_limited(policy: &str, retry_after: u64) -> Self {
        Self {
            rate_limited: Some(RateLimited {
                policy: policy.to_owned(),
                retry_after,
            }),
            ..Self::new(
                ErrorCode::SlowDown,
                "too many requests; retry after the time in Retry-After",
            )
        }
    }
}

/// A store failure as the client sees it: `temporarily_unavailable` when the
/// database is out of reach (it will come back), else `server_error`. The
/// cause is logged, never sent.
impl From<&StoreError> for OAuthError {
    fn from(e: &StoreError) -> Self {
        if e.is_unavailable() {
            Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the token store is unavailable; try again shortly",
            )
            .with_detail(e.to_string())
        } else {
            Self::server_error(e)
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        Self::from(&e)
    }
}

impl From<IssueError> for OAuthError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Store(e) => Self::from(&*e),
            // The key's row could not be opened: 503 until it is fixed.
            IssueError::NoSigningKey(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "no signing key is available for this API; try again later",
            )
            .with_detail(e.to_string()),
            IssueError::Sign(e) => Self::server_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL error as the driver reports it: only its SQLSTATE matters here.
    #[derive(Debug)]
    struct Pg(&'static str);

    impl std::fmt::Display for Pg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Pg {}

    impl sqlx::error::DatabaseError for Pg {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn code_for(sqlstate: &'static str) -> ErrorCode {
        let e = StoreError::Database(sqlx::Error::Database(Box::new(Pg(sqlstate))));
        OAuthError::from(&e).code
    }

    #[test]
    fn a_database_that_is_not_accepting_connections_or_is_gone_is_unavailable() {
        // 55000: "the database system is not accepting connections" (or
        // ALLOW_CONNECTIONS false); 3D000: "database … does not exist".
        for sqlstate in ["55000", "3D000", "57P01", "08006", "25006", "42501"] {
            assert_eq!(
                code_for(sqlstate),
                ErrorCode::TemporarilyUnavailable,
                "{sqlstate}"
            );
        }
        // A bug of ours stays a 500: a syntax error, a unique violation.
        for sqlstate in ["42601", "23505"] {
            assert_eq!(code_for(sqlstate), ErrorCode::ServerError, "{sqlstate}");
        }
    }
}
