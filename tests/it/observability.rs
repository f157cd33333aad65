//! What operators see: metrics, JSON logs with audit events, request ids,
//! and no secret or token in any of it.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{blocking, eventually, transcript, Writ};

const ISSUER: &str = "http://writ.observability.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_tokens_never_reach_the_log() {
    let w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let o = w.client(&["--format", "opaque"]);
    let mut node = w.spawn(&["--issuer", ISSUER], &[("RUST_LOG", "debug")]);
    let remote = node.remote();
    let mut secrets = vec![c.secret.clone(), o.secret.clone()];
    eventually(Duration::from_secs(2), || async {
        remote.request_token(&c).await.status == 200
    })
    .await;
    let wrong = "writ_sk_a_wrong_guess_that_must_not_be_logged";
    transcript::secret(wrong);
    for creds in [&c, &o] {
        for secret in [creds.secret.as_str(), wrong] {
            remote
                .send(
                    remote
                        .http
                        .post(remote.url("/oauth/token"))
                        .basic_auth(&creds.id, Some(secret))
                        .form(&[("grant_type", "client_credentials"), ("scope", "nope")]),
                )
                .await;
            let r = remote
                .send(remote.http.post(remote.url("/oauth/token")).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", creds.id.as_str()),
                    ("client_secret", secret),
                ]))
                .await;
            if let Some(t) = r.json["access_token"].as_str() {
                secrets.push(t.to_owned());
                remote.introspect(creds, t).await;
                remote.revoke(creds, t).await;
            }
        }
    }
    let rotated = w.rotate_secret(&c, &[]);
    secrets.push(rotated.secret);
    secrets.push(wrong.into());
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocking(|| node.terminate());
    let log = node.output();
    assert!(log.contains("DEBUG"), "the log ran at debug level: {log}");
    assert!(secrets.len() >= 5);
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "a secret or token reached the log"
        );
    }
    assert!(!log.to_lowercase().contains("authorization: basic"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_tokens() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let o = w.client(&["--format", "opaque"]);
    w.start().await;
    w.token(&c, "").await;
    w.token(&o, "").await;
    w.post_form(
        "/oauth/token",
        &format!(
            "grant_type=password&client_id={}&client_secret={}",
            c.id, c.secret
        ),
    )
    .await
    .assert_error(400, "unsupported_grant_type");
    let r = w.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let m = r.text;
    for needle in [
        r#"writ_http_requests_total{endpoint="token",outcome="ok"} 2"#,
        r#"writ_http_requests_total{endpoint="token",outcome="client_error"} 1"#,
        r#"writ_tokens_issued_total{grant="client_credentials",format="jwt"} 1"#,
        r#"writ_tokens_issued_total{grant="client_credentials",format="opaque"} 1"#,
        "writ_http_request_duration_seconds_bucket",
        "writ_store_seconds",
        // Each client's first lookup reads the store (the refused third
        // request never looked its client up).
        r#"writ_registry_lookups_total{result="miss"} 2"#,
        r#"writ_registry_lookups_total{result="hit"} 0"#,
        &format!(
            r#"writ_client_tokens_issued_total{{client_id="{}"}} 1"#,
            c.id
        ),
        &format!(
            r#"writ_client_tokens_issued_total{{client_id="{}"}} 1"#,
            o.id
        ),
    ] {
        assert!(m.contains(needle), "{needle} missing from:\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_audit_events_and_request_ids() {
    let w = Writ::new();
    let c = w.client(&[]);
    let mut node = w.spawn(
        &[],
        &[("WRIT_LOG_FORMAT", "json"), ("RUST_LOG", "info,writ=debug")],
    );
    let remote = node.remote();
    let mut ids = Vec::new();
    for (secret, caller_id) in [(c.secret.as_str(), Some("req-42")), ("writ_sk_wrong", None)] {
        let creds = crate::harness::Creds {
            id: c.id.clone(),
            secret: secret.to_owned(),
        };
        let mut request = remote.token_request(&creds);
        if let Some(caller_id) = caller_id {
            request = request.header("x-request-id", caller_id);
        }
        let r = remote.send(request).await;
        ids.push(r.header("x-request-id").unwrap().to_owned());
    }
    // The caller's id is kept; without one, Writ makes one and says which.
    assert_eq!(ids[0], "req-42");
    assert!(ids[1].len() >= 12 && ids[1] != ids[0], "{ids:?}");
    blocking(|| node.terminate());
    let events: Vec<Value> = node
        .output()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let audit = |event: &str| {
        events
            .iter()
            .find(|e| e["target"] == "audit" && e["fields"]["event"] == event)
            .unwrap_or_else(|| panic!("no {event} in {events:?}"))
            .clone()
    };
    let issued = audit("token.issued");
    assert_eq!(issued["fields"]["client_id"], c.id.as_str());
    assert_eq!(issued["fields"]["source"], "127.0.0.1");
    assert_eq!(issued["fields"]["request_id"], "req-42");
    let denied = audit("token.denied");
    assert_eq!(denied["fields"]["error"], "invalid_client");
    assert_eq!(denied["fields"]["client_id"], c.id.as_str());
    assert_eq!(denied["fields"]["request_id"], ids[1].as_str());
    // With debug logging every line of a request carries its id (the span);
    // the line of a failed request always names it.
    assert_eq!(denied["span"]["request_id"], ids[1].as_str());
    let refused = events
        .iter()
        .find(|e| e["fields"]["message"] == "request refused")
        .unwrap_or_else(|| panic!("no refusal logged in {events:?}"));
    assert_eq!(refused["fields"]["request_id"], ids[1].as_str());
    let text = node.output();
    assert!(!text.contains(&c.secret) && !text.contains("writ_sk_wrong"));
}

/// Every answer names its request: the token endpoint's, and those no
/// handler of ours writes (a 404, a 405), the admin API's and the console's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_its_request_id() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let remote = w.remote();
    let mut seen = Vec::new();
    let requests = [
        remote.token_request(&c),
        w.http.get(w.url("/no/such/path")),
        w.http.get(w.url("/oauth/token")),
        w.http.get(w.url("/admin/v1/clients")),
        w.http.get(w.url("/console")),
        w.http.get(w.url("/healthz")),
    ];
    for request in requests {
        let r = w.send(request).await;
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no id with {}", r.status));
        assert!(
            id.len() >= 12 && !seen.contains(&id.to_owned()),
            "{id} {seen:?}"
        );
        seen.push(id.to_owned());
    }
    let r = w
        .send(
            w.http
                .get(w.url("/no/such/path"))
                .header("x-request-id", "caller-7"),
        )
        .await;
    assert_eq!(
        (r.status, r.header("x-request-id")),
        (404, Some("caller-7"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_is_described_and_present_from_the_start() {
    let w = Writ::new();
    let node = w.spawn(&[], &[]);
    let remote = node.remote();
    let m = remote.get("/metrics").await.text;
    for family in [
        "writ_http_requests_total",
        "writ_http_request_duration_seconds",
        "writ_tokens_issued_total",
        "writ_authentication_failures_total",
        "writ_rate_limited_total",
        "writ_store_seconds",
        "writ_registry_lookups_total",
        "writ_registry_reloads_total",
        "writ_connections_refused_total",
        "writ_client_tokens_issued_total",
        "writ_client_authentication_failures_total",
    ] {
        assert!(
            m.contains(&format!("# HELP {family} ")),
            "no HELP for {family}:\n{m}"
        );
        assert!(
            m.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}:\n{m}"
        );
    }
    for zero in [
        "writ_rate_limited_total 0",
        "writ_registry_reloads_total 0",
        "writ_authentication_failures_total 0",
        "writ_connections_refused_total 0",
        r#"writ_http_requests_total{endpoint="token",outcome="rate_limited"} 0"#,
        r#"writ_tokens_issued_total{grant="client_credentials",format="opaque"} 0"#,
        r#"writ_registry_lookups_total{result="miss"} 0"#,
        r#"writ_http_request_duration_seconds_count{endpoint="introspect",outcome="ok"} 0"#,
        r#"writ_store_seconds_count{operation="insert_token"} 0"#,
    ] {
        assert!(m.contains(zero), "{zero} missing from a fresh server:\n{m}");
    }
    let c = w.client(&[]);
    eventually(Duration::from_secs(2), || async {
        remote.request_token(&c).await.status == 200
    })
    .await;
    let m = remote.get("/metrics").await.text;
    assert!(
        m.contains(r#"writ_http_request_duration_seconds_count{endpoint="token",outcome="ok"} 1"#),
        "{m}"
    );
}
