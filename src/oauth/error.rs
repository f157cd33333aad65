use std::borrow::Cow;

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

    /// RFC 6749 §5.2: 400, except 401 for a failed client authentication.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::SlowDown => 429,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
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
    /// HTTP status override for transport-level failures (405, 413).
    pub status: Option<u16>,
    /// Also render Commerce Layer's `errors` array (the request was JSON).
    pub errors_array: bool,
    /// Over a limit: the policy (RateLimit-Policy) and seconds to wait.
    pub rate_limit: Option<(String, u64)>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            detail: None,
            basic_challenge: false,
            status: None,
            errors_array: false,
            rate_limit: None,
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

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.status())
    }
}
