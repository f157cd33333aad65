//! Prometheus metrics. Labels are endpoints, outcomes, grants and formats,
//! never addresses; client ids only for a bounded top list (`PerClient`), so
//! the number of series stays bounded.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Instant;

use metrics::{Counter, Histogram};
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
            // The request path's series, registered at zero with the rest.
            SERIES.get_or_init(Series::register);
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
}

/// The handles of the series the request path counts into, registered
/// once at `install`: `counter!` with labels hashes its key and searches
/// the registry on every call, which the token path did three times a
/// request.
struct Series {
    /// By endpoint, then outcome (`ENDPOINTS`, `OUTCOMES`).
    requests: Vec<(Counter, Histogram)>,
    /// By grant, then format (`GRANTS`, `FORMATS`).
    issued: Vec<Counter>,
    insert_token: Histogram,
    authentication_failures: Counter,
    rate_limited: Counter,
    /// A registry lookup answered from memory, and one that was not.
    lookups: [Counter; 2],
    registry_store_reads: Counter,
}

/// Empty until `install`: before it there is no recorder to count into.
static SERIES: OnceLock<Series> = OnceLock::new();

impl Series {
    fn register() -> Self {
        let zero = |c: Counter| {
            c.increment(0);
            c
        };
        let requests = ENDPOINTS
            .iter()
            .flat_map(|&endpoint| {
                OUTCOMES.iter().map(move |&outcome| {
                    (
                        zero(metrics::counter!("writ_http_requests_total", "endpoint" => endpoint, "outcome" => outcome)),
                        metrics::histogram!("writ_http_request_duration_seconds", "endpoint" => endpoint, "outcome" => outcome),
                    )
                })
            })
            .collect();
        let issued = GRANTS
            .iter()
            .flat_map(|&grant| {
                FORMATS.iter().map(move |&format| {
                    zero(metrics::counter!("writ_tokens_issued_total", "grant" => grant, "format" => format))
                })
            })
            .collect();
        Self {
            requests,
            issued,
            insert_token: metrics::histogram!("writ_store_seconds", "operation" => "insert_token"),
            authentication_failures: metrics::counter!("writ_authentication_failures_total"),
            rate_limited: metrics::counter!("writ_rate_limited_total"),
            lookups: ["hit", "miss"]
                .map(|result| metrics::counter!("writ_registry_lookups_total", "result" => result)),
            registry_store_reads: metrics::counter!("writ_registry_store_reads_total"),
        }
    }
}

/// Counts one answered request of an OAuth endpoint and its latency.
pub fn request(endpoint: &'static str, status: u16, started: Instant) {
    let Some(series) = SERIES.get() else {
        return;
    };
    let e = ENDPOINTS.iter().position(|&e| e == endpoint);
    let o = OUTCOMES.iter().position(|&o| o == outcome(status));
    debug_assert!(e.is_some(), "an endpoint without series: {endpoint}");
    if let Some((count, duration)) = e
        .zip(o)
        .and_then(|(e, o)| series.requests.get(e * OUTCOMES.len() + o))
    {
        count.increment(1);
        duration.record(started.elapsed().as_secs_f64());
    }
}

const GRANTS: [&str; 2] = ["client_credentials", "implicit"];
const FORMATS: [&str; 2] = ["jwt", "opaque"];

/// Counts one access token issued.
pub fn token_issued(grant: &'static str, format: &'static str) {
    let Some(series) = SERIES.get() else {
        return;
    };
    let g = GRANTS.iter().position(|&g| g == grant);
    let f = FORMATS.iter().position(|&f| f == format);
    debug_assert!(g.is_some() && f.is_some(), "no series: {grant} {format}");
    if let Some(counter) = g
        .zip(f)
        .and_then(|(g, f)| series.issued.get(g * FORMATS.len() + f))
    {
        counter.increment(1);
    }
}

/// Times one opaque token's commit, group commit included.
pub fn token_committed(seconds: f64) {
    if let Some(series) = SERIES.get() {
        series.insert_token.record(seconds);
    }
}

/// Counts one failed client authentication (a 401's cause).
pub fn authentication_failed() {
    if let Some(series) = SERIES.get() {
        series.authentication_failures.increment(1);
    }
}

/// Counts one request refused with 429.
pub fn rate_limited() {
    if let Some(series) = SERIES.get() {
        series.rate_limited.increment(1);
    }
}

/// Counts one registry lookup of a client, answered from memory (`hit`)
/// or not.
pub fn registry_lookup(hit: bool) {
    if let Some(series) = SERIES.get() {
        series.lookups[usize::from(!hit)].increment(1);
    }
}

/// Counts one read of a client from the store that memory did not answer.
pub fn registry_store_read() {
    if let Some(series) = SERIES.get() {
        series.registry_store_reads.increment(1);
    }
}

/// How many clients get their own series in the per-client families: the
/// busiest ones only, so the series count stays bounded however many
/// clients are registered.
pub const TOP_CLIENTS: usize = 10;

/// One registered client's counts (kept with the client in the registry:
/// never of ids nobody registered, which an attacker could invent without
/// end, and nothing to do per request but an increment).
pub struct ClientCounts<'a> {
    pub client_id: &'a str,
    pub issued: u64,
    pub failures: u64,
}

/// Appends the per-client families in Prometheus text format: the top
/// `TOP_CLIENTS` of each.
pub fn render_top_clients(out: &mut String, clients: &[ClientCounts<'_>]) {
    type Read = fn(&ClientCounts<'_>) -> u64;
    let families: [(&str, &str, Read); 2] = [
        (
            "writ_client_tokens_issued_total",
            "Tokens issued, for the clients that were issued the most.",
            |c| c.issued,
        ),
        (
            "writ_client_authentication_failures_total",
            "Failed authentications of registered clients, for the clients that failed the most.",
            |c| c.failures,
        ),
    ];
    for (name, help, read) in families {
        let mut top: Vec<(&str, u64)> = clients
            .iter()
            .map(|c| (c.client_id, read(c)))
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
    fn only_the_top_clients_get_series() {
        let ids: Vec<String> = (0..30).map(|i| format!("c{i:02}")).collect();
        let mut clients: Vec<ClientCounts<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| ClientCounts {
                client_id: id,
                issued: i as u64 + 1,
                failures: 0,
            })
            .collect();
        clients.push(ClientCounts {
            client_id: "c\"x",
            issued: 0,
            failures: 1,
        });
        let mut out = String::new();
        render_top_clients(&mut out, &clients);
        let issued: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("writ_client_tokens_issued_total{"))
            .collect();
        assert_eq!(issued.len(), TOP_CLIENTS);
        assert_eq!(
            issued[0],
            r#"writ_client_tokens_issued_total{client_id="c29"} 30"#
        );
        assert!(!out.contains("c19\""), "only the top ten");
        assert!(out.contains(r#"writ_client_authentication_failures_total{client_id="c\"x"} 1"#));
    }
}
