//! A request id for every request: the caller's `X-Request-Id` when it is a
//! short, plain token, else one Writ makes. It is echoed in the response,
//! named in audit events and in the log line of a failed request, and with
//! debug logging carried by every line of the request (a span), so one
//! failed call can be found in the logs from either side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// A parsed name: looking a header up by a `&str` parses it every time.
static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The caller's id if it is safe to log as it is (no spaces, quotes or
    /// control characters that could forge a log line), else a fresh one.
    fn for_request(headers: &HeaderMap) -> Self {
        match headers.get(&HEADER) {
            Some(v) if is_plain(v.as_bytes()) => Self(v.clone()),
            _ => Self::generate(),
        }
    }

    /// A random per-process prefix and a counter: unique across nodes in
    /// practice, and cheaper than a random value per request.
    fn generate() -> Self {
        static PREFIX: LazyLock<String> =
            LazyLock::new(|| crate::keys::b64url(&crate::keys::random_bytes::<9>()));
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:x}", *PREFIX);
        Self(HeaderValue::try_from(id).expect("base64url and hex are valid header bytes"))
    }
}

fn is_plain(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request this task is serving, for audit events and the
/// lines that must carry it at any log level (a failed request's). Only
/// called where a line is written: tracing evaluates a field only when its
/// event is enabled.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.as_str().to_owned()).ok()
}

pub async fn layer(request: Request, next: Next) -> Response {
    let id = RequestId::for_request(request.headers());
    // A debug span, as tower-http makes them: it puts the id on every line
    // of the request when debugging, and costs nothing otherwise.
    let span = tracing::debug_span!("request", request_id = id.as_str());
    let mut response = CURRENT
        .scope(id.clone(), next.run(request).instrument(span))
        .await;
    response.headers_mut().insert(&HEADER, id.0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_caller_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(&HEADER, HeaderValue::from_static("req-42:a_b.c"));
        assert_eq!(RequestId::for_request(&headers).as_str(), "req-42:a_b.c");
        for bad in ["a b", "x\"y", "", &"x".repeat(65)] {
            headers.insert(&HEADER, HeaderValue::from_str(bad).unwrap());
            let id = RequestId::for_request(&headers);
            assert_ne!(id.as_str(), bad);
            assert!(is_plain(id.as_str().as_bytes()));
        }
    }

    #[test]
    fn generated_ids_differ() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a.as_str(), b.as_str());
        assert!(is_plain(a.as_str().as_bytes()), "{}", a.as_str());
    }
}
