use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::oauth::{ErrorCode, OAuthError, Refusal};
use crate::token::{json_member, json_value};

/// How an error body is written, chosen by the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 6749 §5.2: `error` and `error_description`.
    Rfc6749,
    /// Commerce Layer's SDK reports failures from an `errors` array; RFC 6749
    /// clients ignore the extra member.
    CommerceLayer,
}

impl Dialect {
    /// A JSON request body is Commerce Layer's.
    pub fn of(headers: &HeaderMap) -> Self {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"));
        if json {
            Self::CommerceLayer
        } else {
            Self::Rfc6749
        }
    }
}

/// RFC 6749 §5.2: 400, except 401 for a failed client authentication;
/// 429, 500 and 503 for limits and our own failures; refusals of the
/// exchange itself get their HTTP status.
fn status(e: &OAuthError) -> StatusCode {
    match e.refusal {
        Some(Refusal::MethodNotAllowed) => return StatusCode::METHOD_NOT_ALLOWED,
        Some(Refusal::BodyTimeout) => return StatusCode::REQUEST_TIMEOUT,
        Some(Refusal::BodyTooLarge) => return StatusCode::PAYLOAD_TOO_LARGE,
        None => {}
    }
    match e.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The one place a protocol error becomes HTTP: the JSON body of its
/// dialect, the status for its code, a Basic challenge after a failed Basic
/// login, the rate-limit headers, `Allow` after a wrong method. The private
/// `detail` is logged here and never sent.
pub fn render(e: OAuthError, dialect: Dialect) -> Response {
    let detail = e.detail.as_deref().unwrap_or("");
    match e.code {
        ErrorCode::ServerError => tracing::error!(
            error = e.code.as_str(),
            detail,
            request_id = super::request_id::current(),
            "request failed"
        ),
        // An outage fails every request that needs the database until it
        // passes: its cause is logged once, not once per request.
        ErrorCode::TemporarilyUnavailable if outage_is_news(detail) => tracing::error!(
            error = e.code.as_str(),
            detail,
            request_id = super::request_id::current(),
            "request failed; further failures with this cause are logged at debug level for a minute"
        ),
        _ => tracing::debug!(
            error = e.code.as_str(),
            description = %e.description,
            detail = e.detail.as_deref().unwrap_or(""),
            request_id = super::request_id::current(),
            "request refused"
        ),
    }
    let status = status(&e);
    let mut response = super::json_bytes(body(&e, dialect, status));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if e.basic_challenge && e.code == ErrorCode::InvalidClient {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="writ", charset="UTF-8""#),
        );
    }
    if let Some(limited) = &e.rate_limited {
        // RFC 9110 §10.2.3 and draft-ietf-httpapi-ratelimit-headers.
        let name = limited.policy.split(';').next().unwrap_or("\"default\"");
        let retry_after = limited.retry_after;
        for (header, value) in [
            (header::RETRY_AFTER.as_str(), retry_after.to_string()),
            ("ratelimit-policy", limited.policy.clone()),
            ("ratelimit", format!("{name};r=0;t={retry_after}")),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header, v);
            }
        }
    }
    if e.refusal == Some(Refusal::MethodNotAllowed) {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// RFC 6749 §5.2's members, and Commerce Layer's `errors` array after them
/// in its dialect. Written as `TokenResponse::to_json` is: through
/// `serde_json::json!` every 401 built and dropped a map and escaped each
/// key byte by byte.
fn body(e: &OAuthError, dialect: Dialect, status: StatusCode) -> Vec<u8> {
    let code = e.code.as_str();
    let description: &str = &e.description;
    let mut out = Vec::with_capacity(64 + 2 * description.len());
    out.extend_from_slice(b"{\"error\":");
    json_value(&mut out, code);
    json_member(&mut out, "error_description", description);
    if dialect == Dialect::CommerceLayer {
        out.extend_from_slice(b",\"errors\":[{\"code\":");
        json_value(&mut out, code.to_ascii_uppercase().as_str());
        json_member(&mut out, "title", code);
        json_member(&mut out, "detail", description);
        json_member(&mut out, "status", status.as_str());
        out.extend_from_slice(b"}]");
    }
    out.push(b'}');
    out
}

/// Whether an unavailability with this cause is worth an error line: the
/// first of its kind, or the first in a minute.
fn outage_is_news(detail: &str) -> bool {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LAST: Mutex<Option<(String, Instant)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let news = last
        .as_ref()
        .is_none_or(|(said, at)| said != detail || at.elapsed() >= Duration::from_secs(60));
    if news {
        *last = Some((detail.to_owned(), Instant::now()));
    }
    news
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        render(self, Dialect::Rfc6749)
    }
}

/// Any method but POST on a token path.
pub async fn method_not_allowed() -> OAuthError {
    OAuthError::refused(
        Refusal::MethodNotAllowed,
        "the token endpoint accepts only POST",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `serde_json::json!` wrote before the body was written by hand.
    fn as_serde_wrote(e: &OAuthError, dialect: Dialect, status: StatusCode) -> String {
        let mut body = serde_json::json!({
            "error": e.code.as_str(),
            "error_description": e.description,
        });
        if dialect == Dialect::CommerceLayer {
            body["errors"] = serde_json::json!([{
                "code": e.code.as_str().to_ascii_uppercase(),
                "title": e.code.as_str(),
                "detail": e.description,
                "status": status.as_u16().to_string(),
            }]);
        }
        body.to_string()
    }

    #[test]
    fn rfc6749_5_2_error_body_is_the_json_serde_would_write() {
        let errors = [
            OAuthError::client_authentication_failed("the client could not be authenticated"),
            OAuthError::invalid_request("the \"scope\" parameter is repeated \\ \u{1}"),
            OAuthError::new(ErrorCode::InvalidScope, ""),
        ];
        for e in &errors {
            for dialect in [Dialect::Rfc6749, Dialect::CommerceLayer] {
                let status = status(e);
                let written = String::from_utf8(body(e, dialect, status)).unwrap();
                assert_eq!(written, as_serde_wrote(e, dialect, status));
            }
        }
    }

    #[test]
    fn rfc6749_5_2_error_response_is_json_and_not_stored() {
        let response = render(
            OAuthError::client_authentication_failed("no such client"),
            Dialect::Rfc6749,
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let h = response.headers();
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::PRAGMA], "no-cache");
    }
}
