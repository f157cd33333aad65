//! A request id for every request: the caller's `X-Request-Id` when it is a
//! short, plain token, else one Writ makes. It is echoed in the response,
//! named in audit events and in the log line of a failed request, and with
//! debug logging carried by every line of the request (a span), so one
//! failed call can be found in the logs from either side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tracing::instrument::Instrumented;
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
        let mut id = Vec::with_capacity(PREFIX.len() + 17);
        id.extend_from_slice(PREFIX.as_bytes());
        id.push(b'-');
        push_hex(&mut id, n);
        Self(HeaderValue::try_from(id).expect("base64url and hex are valid header bytes"))
    }
}

/// `n` in lowercase hex without leading zeros, digit by digit: `format!`
/// was 0.8k instructions a request.
fn push_hex(out: &mut Vec<u8>, n: u64) {
    let digits = (u64::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for d in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(n >> (4 * d) & 0xf) as usize]);
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

/// The layer that gives every request its id: in the task's `CURRENT`, in a
/// debug span (as tower-http makes them: the id on every line of the request
/// when debugging, nothing otherwise), and echoed in the response. A tower
/// layer, not `axum::middleware::from_fn`, which per request cloned the
/// routes behind it and boxed two futures.
#[derive(Debug, Clone, Copy)]
pub struct Layer;

impl<S> tower::Layer<S> for Layer {
    type Service = WithId<S>;

    fn layer(&self, inner: S) -> WithId<S> {
        WithId(inner)
    }
}

#[derive(Debug, Clone)]
pub struct WithId<S>(S);

/// For any body: the server hands hyper's own on, as the router takes it.
impl<S, B, E> tower::Service<Request<B>> for WithId<S>
where
    S: tower::Service<Request<B>, Response = Response, Error = E>,
{
    type Response = Response;
    type Error = E;
    type Future = Echo<TaskLocalFuture<RequestId, Instrumented<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let id = RequestId::for_request(request.headers());
        let span = tracing::debug_span!("request", request_id = id.as_str());
        let header = Some(id.0.clone());
        let inner = CURRENT.scope(id, self.0.call(request).instrument(span));
        Echo { inner, header }
    }
}

pin_project_lite::pin_project! {
    /// The response, with the request's id added.
    pub struct Echo<F> {
        #[pin]
        inner: F,
        header: Option<HeaderValue>,
    }
}

impl<F, E> Future for Echo<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(id) = this.header.take() {
            response.headers_mut().insert(&HEADER, id);
        }
        Poll::Ready(Ok(response))
    }
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
    fn counters_are_written_as_format_writes_them() {
        for n in [
            0,
            1,
            9,
            0xa,
            0xf,
            0x10,
            0xff,
            0x100,
            0xdead_beef,
            u64::MAX >> 4,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{n:x}"));
        }
        let id = RequestId::generate();
        let (prefix, hex) = id.as_str().rsplit_once('-').unwrap();
        assert!(
            prefix.len() == 12 && u64::from_str_radix(hex, 16).is_ok(),
            "{id:?}"
        );
    }

    #[test]
    fn generated_ids_differ() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a.as_str(), b.as_str());
        assert!(is_plain(a.as_str().as_bytes()), "{}", a.as_str());
    }
}
