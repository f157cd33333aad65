//! A token issuer on 127.0.0.1 for the tests of fetched keys: an OpenID
//! Connect discovery document (OpenID Connect Discovery 1.0 §4) and a JWK
//! Set that a test can rotate, slow down or take down, counting every
//! request it is sent.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::assertions::TestKey;

#[derive(Default)]
struct Served {
    issuer: Mutex<String>,
    jwks: Mutex<Value>,
    delay: Mutex<Duration>,
    failing: AtomicBool,
    discovery_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
}

pub struct TestIssuer {
    /// `http://127.0.0.1:PORT`: the issuer identifier.
    pub url: String,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl TestIssuer {
    /// An issuer publishing `keys`.
    pub async fn start(keys: &[&TestKey]) -> Self {
        let served = Arc::new(Served::default());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(served.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *served.issuer.lock().unwrap() = url.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let issuer = Self { url, served, task };
        issuer.publish(keys);
        issuer
    }

    /// Replaces the published keys (a rotation at the issuer).
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.served.jwks.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    }

    /// Every answer waits this long first.
    pub fn delay(&self, d: Duration) {
        *self.served.delay.lock().unwrap() = d;
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    /// Requests received: discovery documents and JWK Sets.
    pub fn requests(&self) -> (usize, usize) {
        (
            self.served.discovery_requests.load(Ordering::SeqCst),
            self.served.jwks_requests.load(Ordering::SeqCst),
        )
    }

    /// Stops serving: connections are then refused.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(served: &Served, body: Value) -> Response {
    let delay = *served.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if served.failing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(body).into_response()
}

async fn discovery(State(served): State<Arc<Served>>) -> Response {
    served.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let issuer = served.issuer.lock().unwrap().clone();
    let doc = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"]});
    answer(&served, doc).await
}

async fn jwks(State(served): State<Arc<Served>>) -> Response {
    served.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let keys = served.jwks.lock().unwrap().clone();
    answer(&served, keys).await
}
