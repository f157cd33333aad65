//! Prometheus metrics. Labels are endpoints, outcomes, grants and formats,
//! never addresses; client ids only for a bounded top list (`PerClient`), so
//! the number of series stays bounded.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once; later servers in the same
/// process (tests) share it. Every family is described and every series
/// registered at zero here, so that a fresh server's scrape already has
/// them: `rate()` and absence alerts need a series before its first event.
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
            if metrics::set_global_recorder(recorder).is_ok() {
                describe_and_register();
            }
            handle
        })
        .clone()
}

/// The endpoints `request` is called for.
const ENDPOINTS: [&str; 3] = ["token", "introspect", "revoke"];
/// An answer's outcome, from its status.
const OUTCOMES: [&str; 5] = [
    "ok",
    "unauthorized",
    "rate_limited",
    "client_error",
    "server_error",
];

fn outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        401 => "unauthorized",
        429 => "rate_limited",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

fn describe_and_register() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        "writ_http_requests_total",
        "Answered requests of the token, introspection and revocation endpoints, by endpoint and outcome."
    );
    describe_histogram!(
        "writ_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request of the token, introspection and revocation endpoints, by endpoint and outcome."
    );
    describe_counter!(
        "writ_tokens_issued_total",
        "Access tokens issued, by grant and format."
    );
    describe_counter!(
        "writ_authentication_failures_total",
        "Failed client authentications, registered client or not."
    );
    describe_counter!(
        "writ_rate_limited_total",
        "Requests refused with 429 by a rate limit or the failed-authentication back-off."
    );
    describe_histogram!(
        "writ_store_seconds",
        Unit::Seconds,
        "Time to commit an opaque token, group commit included."
    );
    describe_counter!(
        "writ_registry_lookups_total",
        "Client lookups: a hit is answered from memory, a miss asks the store (or remembers an id nobody registered)."
    );
    describe_counter!(
        "writ_registry_store_reads_total",
        "Clients read from the store on a miss (concurrent misses for one id share one read)."
    );
    describe_counter!(
        "writ_registry_reloads_total",
        "Rebuilds of the in-memory API and key snapshot after a change in the database."
    );
    describe_counter!(
        "writ_connections_refused_total",
        "Connections closed at once: over max_connections, or over max_connections_per_address."
    );
    for endpoint in ENDPOINTS {
        for outcome in OUTCOMES {
            metrics::counter!("writ_http_requests_total", "endpoint" => endpoint, "outcome" => outcome)
                .increment(0);
            let _ = metrics::histogram!("writ_http_request_duration_seconds", "endpoint" => endpoint, "outcome" => outcome);
        }
    }
    for grant in ["client_credentials", "implicit"] {
        for format in ["jwt", "opaque"] {
            metrics::counter!("writ_tokens_issued_total", "grant" => grant, "format" => format)
                .increment(0);
        }
    }
    for result in ["hit", "miss"] {
        metrics::counter!("writ_registry_lookups_total", "result" => result).increment(0);
    }
    for name in [
        "writ_authentication_failures_total",
        "writ_rate_limited_total",
        "writ_registry_reloads_total",
        "writ_registry_store_reads_total",
        "writ_connections_refused_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    let _ = metrics::histogram!("writ_store_seconds", "operation" => "insert_token");
}

/// Counts one answered request of an OAuth endpoint and its latency.
pub fn request(endpoint: &'static str, status: u16, started: Instant) {
    let outcome = outcome(status);
    metrics::counter!("writ_http_requests_total", "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("writ_http_request_duration_seconds", "endpoint" => endpoint, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// How many clients get their own series in the per-client families: the
/// busiest ones only, so the series count stays bounded however many
/// clients are registered.
pub const TOP_CLIENTS: usize = 10;

#[derive(Default)]
struct ClientCounts {
    issued: AtomicU64,
    failures: AtomicU64,
}

/// Clients counted at most. The busiest stay (the cache keeps what is used
/// often), so the top lists are right; a quiet client may be forgotten.
const COUNTED_CLIENTS: u64 = 10_000;

/// Per-client counts of registered clients (never of ids nobody
/// registered, which an attacker could invent without end), rendered at
/// scrape time for the top `TOP_CLIENTS` of each family. Bounded, and
/// constant time per request however many clients there are.
pub struct PerClient(moka::sync::Cache<Box<str>, Arc<ClientCounts>>);

impl Default for PerClient {
    fn default() -> Self {
        Self(moka::sync::Cache::new(COUNTED_CLIENTS))
    }
}

impl PerClient {
    fn counts(&self, client_id: &str) -> Arc<ClientCounts> {
        if let Some(c) = self.0.get(client_id) {
            return c;
        }
        self.0.get_with(client_id.into(), Default::default)
    }

    pub fn issued(&self, client_id: &str) {
        self.counts(client_id)
            .issued
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A failed authentication of a client that is registered.
    pub fn failed(&self, client_id: &str) {
        self.counts(client_id)
            .failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the per-client families in Prometheus text format, forgetting
    /// clients that are no longer registered.
    pub fn render(&self, out: &mut String, registered: impl Fn(&str) -> bool) {
        let mut counted = Vec::new();
        for (id, counts) in self.0.iter() {
            if registered(&id) {
                counted.push((id, counts));
            } else {
                self.0.invalidate(&*id);
            }
        }
        type Read = fn(&ClientCounts) -> u64;
        let families: [(&str, &str, Read); 2] = [
            (
                "writ_client_tokens_issued_total",
                "Tokens issued, for the clients that were issued the most.",
                |c| c.issued.load(Ordering::Relaxed),
            ),
            (
                "writ_client_authentication_failures_total",
                "Failed authentications of registered clients, for the clients that failed the most.",
                |c| c.failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, read) in families {
            let mut top: Vec<(&str, u64)> = counted
                .iter()
                .map(|(id, c)| (&***id, read(c)))
                .filter(|(_, n)| *n > 0)
                .collect();
            top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            top.truncate(TOP_CLIENTS);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (id, n) in top {
                let _ = writeln!(out, "{name}{{client_id=\"{}\"}} {n}", escape_label(id));
            }
        }
    }
}

/// Prometheus text format: a label value escapes `\`, `"` and newlines.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_counts_stay_bounded_however_many_clients_are_served() {
        // Each new client once copied a map of every client ever counted:
        // unbounded memory, and quadratic time at 100,000 clients.
        let per = PerClient::default();
        for i in 0..30_000 {
            per.issued(&format!("client-{i}"));
        }
        for _ in 0..5 {
            per.issued("busy");
        }
        per.0.run_pending_tasks();
        assert!(per.0.entry_count() <= COUNTED_CLIENTS);
        let mut out = String::new();
        per.render(&mut out, |_| true);
        assert!(
            out.contains(r#"writ_client_tokens_issued_total{client_id="busy"} 5"#),
            "{out}"
        );
    }

    #[test]
    fn only_the_top_clients_get_series() {
        let per = PerClient::default();
        for i in 0..30 {
            for _ in 0..=i {
                per.issued(&format!("c{i:02}"));
            }
        }
        per.failed("c\"x");
        let mut out = String::new();
        per.render(&mut out, |id| id != "c29");
        let issued: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("writ_client_tokens_issued_total{"))
            .collect();
        assert_eq!(issued.len(), TOP_CLIENTS);
        // c29 is no longer registered: forgotten; c28 is the busiest left.
        assert_eq!(
            issued[0],
            r#"writ_client_tokens_issued_total{client_id="c28"} 29"#
        );
        assert!(out.contains(r#"writ_client_authentication_failures_total{client_id="c\"x"} 1"#));
        assert!(!out.contains("c29"));
    }
}
