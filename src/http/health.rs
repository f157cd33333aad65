//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve:
//! the database answers and signing keys are loaded).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::types::Algorithm;

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.metrics.render();
            let mut held = Vec::new();
            state
                .registry
                .client_counts(|c| held.push((c.client_id.to_owned(), c.issued, c.failures)));
            let counts: Vec<crate::metrics::ClientCounts<'_>> = held
                .iter()
                .map(|(id, issued, failures)| crate::metrics::ClientCounts {
                    client_id: id,
                    issued: *issued,
                    failures: *failures,
                })
                .collect();
            crate::metrics::render_top_clients(&mut text, &counts);
            text
        },
    )
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = tokio::time::timeout(Duration::from_secs(2), state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let registry = state.registry.snapshot();
    let keys = registry.signer(Algorithm::ES256).is_some();
    // A key that cannot be opened (say a next key sealed under another
    // master key) signs nothing yet, but would once rotated: say so.
    let unusable: Vec<&str> = registry.key_errors.iter().map(|e| e.kid()).collect();
    let status = if database && keys {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
        "database": if database { "ok" } else { "unreachable" },
        "keys": match (keys, unusable.is_empty()) {
            (false, _) => "missing",
            (true, true) => "ok",
            (true, false) => "unusable",
        },
    });
    if !unusable.is_empty() {
        body["unusable_keys"] = json!(unusable);
    }
    (status, axum::Json(body))
}
