//! Prometheus metrics. Labels are endpoints, outcomes, grants and formats:
//! never client ids or addresses, so their number stays bounded.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once; later servers in the same
/// process (tests) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be set (an embedding program): then
            // this handle renders nothing, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts one answered request of an OAuth endpoint and its latency.
pub fn request(endpoint: &'static str, status: u16, started: Instant) {
    let outcome = match status {
        200..=299 => "ok",
        401 => "unauthorized",
        429 => "rate_limited",
        400..=499 => "client_error",
        _ => "server_error",
    };
    metrics::counter!("writ_http_requests_total", "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("writ_http_request_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
}
