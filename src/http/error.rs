use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::oauth::{ErrorCode, OAuthError};

/// The one place a protocol error becomes HTTP: RFC 6749 §5.2 JSON body, the
/// status for its code, a Basic challenge after a failed Basic login. The
/// private `detail` is logged here and never sent.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        match self.code {
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => tracing::error!(
                error = self.code.as_str(),
                detail = self.detail.as_deref().unwrap_or(""),
                request_id = super::request_id::current(),
                "request failed"
            ),
            _ => tracing::debug!(
                error = self.code.as_str(),
                description = %self.description,
                detail = self.detail.as_deref().unwrap_or(""),
                request_id = super::request_id::current(),
                "request refused"
            ),
        }
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        if self.errors_array {
            // Commerce Layer's SDK reports failures from an `errors` array;
            // RFC 6749 §5.2 clients ignore the extra member.
            body["errors"] = serde_json::json!([{
                "code": self.code.as_str().to_ascii_uppercase(),
                "title": self.code.as_str(),
                "detail": self.description,
                "status": status.as_u16().to_string(),
            }]);
        }
        let mut response = super::no_store((status, axum::Json(body)).into_response());
        let headers = response.headers_mut();
        if self.basic_challenge && self.code == ErrorCode::InvalidClient {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="writ", charset="UTF-8""#),
            );
        }
        if let Some((policy, retry_after)) = &self.rate_limit {
            // RFC 9110 §10.2.3 and draft-ietf-httpapi-ratelimit-headers.
            let name = policy.split(';').next().unwrap_or("\"default\"");
            for (header, value) in [
                (header::RETRY_AFTER.as_str(), retry_after.to_string()),
                ("ratelimit-policy", policy.clone()),
                ("ratelimit", format!("{name};r=0;t={retry_after}")),
            ] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header, v);
                }
            }
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

impl OAuthError {
    /// Errors answer in the dialect of the request: a JSON body (Commerce
    /// Layer) also gets the `errors` array its SDK reads.
    pub fn for_request(mut self, headers: &axum::http::HeaderMap) -> Self {
        self.errors_array = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
            });
        self
    }
}

/// Any method but POST on a token path.
pub async fn method_not_allowed() -> OAuthError {
    OAuthError::invalid_request("the token endpoint accepts only POST").with_status(405)
}
