//! Limits: request rates per client and per address, the back-off after
//! failed authentication, the size of parameters and scopes, and slow or
//! greedy connections.
//!
//! The rate and back-off tests run on a fixed clock and move it past the
//! one-second window (`WINDOW`) instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use writ::clock::FixedClock;

use crate::harness::{eventually, try_send, Writ};

/// A little over the one-second window the rate limits and the back-off
/// refill in.
const WINDOW: Duration = Duration::from_millis(1100);
const NOW: i64 = 1_800_000_000;

/// Starts `w` with `config` on a clock that only the test moves.
async fn start_on_fixed_clock(w: &mut Writ, config: writ::config::Config) -> Arc<FixedClock> {
    let clock = Arc::new(FixedClock::new(NOW));
    w.start_with(config, clock.clone()).await;
    clock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_client_and_per_address() {
    let mut w = Writ::new();
    let a = w.client(&[]);
    let b = w.client(&[]);
    let config = w.config_with_file(
        "[limits]\nper_client = 1\nper_client_burst = 3\nper_address = 1000\nper_address_burst = 1000\n",
    );
    let clock = start_on_fixed_clock(&mut w, config).await;
    for _ in 0..3 {
        assert_eq!(w.token(&a, "").await.status, 200);
    }
    let r = w.token(&a, "").await;
    r.assert_error(429, "slow_down");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("ratelimit-policy"), Some("\"client\";q=1;w=1"));
    assert_eq!(r.header("ratelimit"), Some("\"client\";r=0;t=1"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Another client is not affected, and the first recovers.
    assert_eq!(w.token(&b, "").await.status, 200);
    w.token(&a, "").await.assert_error(429, "slow_down");
    clock.advance_by(WINDOW);
    assert_eq!(w.token(&a, "").await.status, 200);

    // Per address: one budget for everything from 127.0.0.1.
    let mut w = Writ::new();
    let a = w.client(&[]);
    let config = w.config_with_file("[limits]\nper_address = 1\nper_address_burst = 2\n");
    start_on_fixed_clock(&mut w, config).await;
    assert_eq!(w.token(&a, "").await.status, 200);
    assert_eq!(
        w.send(w.http.post(w.url("/oauth/introspect"))).await.status,
        400
    );
    let r = w.token(&a, "").await;
    r.assert_error(429, "slow_down");
    assert_eq!(r.header("ratelimit-policy"), Some("\"address\";q=1;w=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_backs_off_per_client_and_address() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    // Behind a trusted proxy, X-Forwarded-For names the caller.
    let config = w.config_with_file(
        "[limits]\nfailures_before_backoff = 3\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let clock = start_on_fixed_clock(&mut w, config).await;
    let from = |ip: &'static str, secret: &str| {
        w.http
            .post(w.url("/oauth/token"))
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .basic_auth(&c.id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
    };
    for _ in 0..3 {
        w.send(from("198.51.100.7", "wrong"))
            .await
            .assert_error(401, "invalid_client");
    }
    // The guesser must wait, even with the right secret…
    let r = w.send(from("198.51.100.7", &c.secret)).await;
    r.assert_error(429, "slow_down");
    assert!(r.header("retry-after").is_some());
    // …but the real client elsewhere is not locked out.
    assert_eq!(w.send(from("192.0.2.44", &c.secret)).await.status, 200);
    // Still waiting until the clock moves; then the right secret works and
    // clears the count.
    w.send(from("198.51.100.7", &c.secret))
        .await
        .assert_error(429, "slow_down");
    clock.advance_by(WINDOW);
    assert_eq!(w.send(from("198.51.100.7", &c.secret)).await.status, 200);
    assert_eq!(w.send(from("198.51.100.7", "wrong")).await.status, 401);

    // Failures are counted in the metrics: a registered client's under its
    // id (a bounded top list), an id nobody registered never.
    let guessed = w
        .http
        .post(w.url("/oauth/token"))
        .header("x-forwarded-for", "192.0.2.99")
        .basic_auth("nobody-registered-this", Some("x"))
        .form(&[("grant_type", "client_credentials")]);
    assert_eq!(w.send(guessed).await.status, 401);
    let metrics = w.get("/metrics").await.text;
    // The process-wide counters: five 401s and two 429s in this test (at
    // least: under `cargo test` other tests share the process).
    let count = |family: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(family)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {family} in\n{metrics}"))
    };
    assert!(
        count("writ_authentication_failures_total") >= 5,
        "{metrics}"
    );
    assert!(count("writ_rate_limited_total") >= 2, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "writ_client_authentication_failures_total{{client_id=\"{}\"}}",
            c.id
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("nobody-registered-this"));
    assert!(metrics.contains(r#"writ_registry_lookups_total{result="miss"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_request_spends_its_clients_budget_even_when_refused() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let config = w.config_with_file(
        "[limits]\nper_client = 1\nper_client_burst = 2\nper_address = 1000\nper_address_burst = 1000\n",
    );
    start_on_fixed_clock(&mut w, config).await;
    // Authenticated, then refused for the scope: each one still counts.
    for _ in 0..2 {
        w.token(&c, "scope=write")
            .await
            .assert_error(400, "invalid_scope");
    }
    for _ in 0..4 {
        w.token(&c, "scope=write")
            .await
            .assert_error(429, "slow_down");
    }
    w.token(&c, "scope=read")
        .await
        .assert_error(429, "slow_down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_has_its_own_budget_and_none_by_default() {
    let limits = "[limits]\nper_client = 1\nper_client_burst = 2\nper_address = 1000\nper_address_burst = 1000\n";
    // A resource server introspects on every API call: the token budget
    // does not apply to it.
    let mut w = Writ::new();
    let rs = w.client(&["--scope", "writ:introspect"]);
    let config = w.config_with_file(limits);
    start_on_fixed_clock(&mut w, config).await;
    for _ in 0..20 {
        assert_eq!(w.introspect(&rs, "writ_at_unknown").await.status, 200);
        assert_eq!(w.revoke(&rs, "writ_at_unknown").await.status, 200);
    }
    // Its own budget, when one is set.
    let mut w = Writ::new();
    let rs = w.client(&["--scope", "writ:introspect"]);
    let config = w.config_with_file(&format!(
        "{limits}per_client_introspection = 1\nper_client_introspection_burst = 2\n"
    ));
    let clock = start_on_fixed_clock(&mut w, config).await;
    assert_eq!(w.introspect(&rs, "x").await.status, 200);
    assert_eq!(w.revoke(&rs, "x").await.status, 200);
    let r = w.introspect(&rs, "x").await;
    r.assert_error(429, "slow_down");
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"introspection\";q=1;w=1")
    );
    clock.advance_by(WINDOW);
    assert_eq!(w.introspect(&rs, "x").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_parameters_and_scopes() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "a"]);
    w.start().await;
    let many: String = (0..100).map(|i| format!("&x{i}=1")).collect();
    w.token(&c, &many[1..])
        .await
        .assert_error(400, "invalid_request");
    let long = format!("scope={}", "a".repeat(20_000));
    w.token(&c, &long)
        .await
        .assert_error(400, "invalid_request");
    // 10,000 scopes do not fit in a parameter; 101 do, but are too many.
    let scopes: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    w.token(&c, &format!("scope={}", scopes.join("+")))
        .await
        .assert_error(400, "invalid_request");
    w.token(&c, &format!("scope={}", scopes[..101].join("+")))
        .await
        .assert_error(400, "invalid_scope");
    // Still serving, and nothing changed.
    assert_eq!(w.token(&c, "scope=a").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_big_heads_and_too_many_connections_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut w = Writ::new();
    let c = w.client(&[]);
    let config = w.config_with_file(
        "[limits]\nmax_connections = 3\nrequest_timeout = \"1s\"\nmax_header_bytes = 8192\n",
    );
    w.start_configured(config).await;
    let addr = w.base.trim_start_matches("http://").to_owned();
    // Reads until the server closes the connection (bounded by `limit`).
    let closed_within = |mut s: tokio::net::TcpStream, limit: Duration| async move {
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        let result = tokio::time::timeout(limit, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        (result.is_ok(), String::from_utf8_lossy(&got).into_owned())
    };

    // A client that sends half its headers and stops is cut off.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (closed, _) = closed_within(slow, Duration::from_secs(5)).await;
    assert!(closed, "a slow client was not cut off");

    // A body that never arrives: 408.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant",
    )
    .await
    .unwrap();
    let (_, answer) = closed_within(slow, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A request head larger than allowed is refused.
    let mut big = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = big.write_all(head.as_bytes()).await;
    let (closed, answer) = closed_within(big, Duration::from_secs(5)).await;
    assert!(closed && !answer.contains(" 200 "), "{answer}");

    // Three connections held open; a fourth is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (closed, answer) = closed_within(extra, Duration::from_secs(2)).await;
    assert!(closed && answer.is_empty(), "{answer}");
    drop(held);
    // Slots come back when connections close.
    let remote = w.remote();
    eventually(Duration::from_secs(3), || async {
        try_send(remote.token_request(&c))
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
}

/// RFC 9110 §5.3: repeated `X-Forwarded-For` lines are one list, in order.
/// A proxy that adds its own line (HAProxy's `option forwardfor`) puts the
/// address it saw last; the client's own line comes first and proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_written_forwarded_for_line_neither_escapes_nor_locks_out() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let config = w.config_with_file(
        "[limits]\nfailures_before_backoff = 3\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    start_on_fixed_clock(&mut w, config).await;
    // What the proxy forwards: the client's line, then its own.
    let via_proxy = |written: &str, seen: &str, secret: &str| {
        w.http
            .post(w.url("/oauth/token"))
            .header("x-forwarded-for", written)
            .header("x-forwarded-for", seen)
            .basic_auth(&c.id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
    };
    // A guesser at 198.51.100.7 rotating the line it writes still backs off…
    for i in 0..3 {
        w.send(via_proxy(
            &format!("203.0.113.{i}"),
            "198.51.100.7",
            "wrong",
        ))
        .await
        .assert_error(401, "invalid_client");
    }
    w.send(via_proxy("203.0.113.200", "198.51.100.7", "wrong"))
        .await
        .assert_error(429, "slow_down");
    // …and writing the victim's address locks nobody else out.
    for _ in 0..5 {
        let r = w
            .send(via_proxy("192.0.2.44", "198.51.100.8", "wrong"))
            .await;
        assert!(r.status == 401 || r.status == 429, "{}", r.text);
    }
    let victim = w
        .http
        .post(w.url("/oauth/token"))
        .header("x-forwarded-for", "192.0.2.44")
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("grant_type", "client_credentials")]);
    assert_eq!(w.send(victim).await.status, 200);
}
