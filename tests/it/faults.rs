//! Faults: SIGKILL under load, SIGTERM with requests in flight, readiness,
//! input limits, and secrets kept out of the logs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sqlx::Connection;

use crate::harness::{verify, Creds, Process, Writ};

const ISSUER: &str = "http://writ.faults.test";

/// Opaque and JWT requests from `workers` tasks until the server goes away;
/// returns every token answered with 200.
async fn load(base: &str, opaque: &Creds, jwt: &Creds, stop: Arc<AtomicBool>) -> Vec<String> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (base, c, got, stop) = (
            base.to_owned(),
            if i % 4 == 0 {
                jwt.clone()
            } else {
                opaque.clone()
            },
            got.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            // Bounded: at most 5,000 requests a worker.
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = http
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(&c.id, Some(&c.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if r.status() != 200 {
                    break;
                }
                let Ok(body) = r.json::<serde_json::Value>().await else {
                    break;
                };
                got.lock()
                    .unwrap()
                    .push(body["access_token"].as_str().unwrap().to_owned());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tokens = got.lock().unwrap().clone();
    tokens
}

fn pseudo_random_ms(lo: u64, hi: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    lo + nanos % (hi - lo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_that_was_answered() {
    let w = Writ::new();
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://kept.example/",
        "--scope",
        "r",
    ]);
    w.cli(&[
        "grant",
        "create",
        "--client",
        &jwt.id,
        "--api",
        "https://kept.example/",
        "--scope",
        "r",
    ]);

    let mut answered = Vec::new();
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let mut node = Process::spawn(&w.db_path(), &["--issuer", ISSUER]);
        let stop = Arc::new(AtomicBool::new(false));
        let loader = tokio::spawn({
            let (base, o, j, stop) = (node.base.clone(), opaque.clone(), jwt.clone(), stop.clone());
            async move { load(&base, &o, &j, stop).await }
        });
        let after = pseudo_random_ms(100, 600);
        tokio::time::sleep(Duration::from_millis(after)).await;
        node.child.kill().unwrap(); // SIGKILL: no chance to flush anything
        node.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let tokens = loader.await.unwrap();
        println!(
            "round {round}: killed after {after} ms, {} tokens answered",
            tokens.len()
        );
        answered.extend(tokens);
    }

    // Every token a client received still works after a restart.
    let node = Process::spawn(&w.db_path(), &["--issuer", ISSUER]);
    let http = reqwest::Client::new();
    let jwks: serde_json::Value = http
        .get(format!("{}/.well-known/jwks.json", node.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut opaque_count, mut jwt_count) = (0, 0);
    for t in &answered {
        if t.starts_with("writ_at_") {
            let r: serde_json::Value = http
                .post(format!("{}/oauth/introspect", node.base))
                .basic_auth(&opaque.id, Some(&opaque.secret))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["active"], true, "an answered opaque token was lost");
            opaque_count += 1;
        } else {
            verify(t, &jwks, ISSUER, ISSUER);
            jwt_count += 1;
        }
    }
    println!("{ROUNDS} SIGKILLs: {opaque_count} opaque tokens introspect active, {jwt_count} JWTs verify");
    assert!(opaque_count > 0 && jwt_count > 0);

    // The registry is intact and the database passes its integrity check.
    assert_eq!(w.cli(&["client", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(w.cli(&["api", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(w.cli(&["grant", "list"]).as_array().unwrap().len(), 1);
    let keys = w.cli(&["key", "list"]);
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["state"] == "active"));
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", w.db_path().display()))
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let w = Writ::new();
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    let mut node = Process::spawn(&w.db_path(), &["--issuer", ISSUER]);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn({
        let (base, o, j, stop) = (node.base.clone(), opaque.clone(), jwt.clone(), stop.clone());
        async move { load(&base, &o, &j, stop).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    crate::harness::blocking(|| node.terminate()); // asserts exit status 0
    stop.store(true, Ordering::Relaxed);
    let tokens = loader.await.unwrap();
    assert!(!tokens.is_empty());
    let node = Process::spawn(&w.db_path(), &["--issuer", ISSUER]);
    let http = reqwest::Client::new();
    for t in tokens.iter().filter(|t| t.starts_with("writ_at_")) {
        let r: serde_json::Value = http
            .post(format!("{}/oauth/introspect", node.base))
            .basic_auth(&opaque.id, Some(&opaque.secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["active"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_database_and_keys() {
    let mut w = Writ::new();
    w.start().await;
    let r = w.send(w.http.get(w.url("/readyz"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json,
        json!({"status": "ready", "database": "ok", "keys": "ok"})
    );
    let r = w.send(w.http.get(w.url("/healthz"))).await;
    assert_eq!(r.status, 200);
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
async fn secrets_and_tokens_never_reach_the_log() {
    let w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let o = w.client(&["--format", "opaque"]);
    let mut node = Process::spawn_on(
        &w.database(),
        &["--issuer", ISSUER],
        &[("RUST_LOG", "debug")],
    );
    let http = reqwest::Client::new();
    let mut secrets = vec![c.secret.clone(), o.secret.clone()];
    crate::harness::eventually(Duration::from_secs(2), || async {
        http.post(format!("{}/oauth/token", node.base))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    for creds in [&c, &o] {
        for secret in [
            creds.secret.as_str(),
            "writ_sk_a_wrong_guess_that_must_not_be_logged",
        ] {
            let r = http
                .post(format!("{}/oauth/token", node.base))
                .basic_auth(&creds.id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "nope")])
                .send()
                .await
                .unwrap();
            let _ = r.text().await;
            let r = http
                .post(format!("{}/oauth/token", node.base))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", creds.id.as_str()),
                    ("client_secret", secret),
                ])
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if let Some(t) = body["access_token"].as_str() {
                secrets.push(t.to_owned());
                for path in ["/oauth/introspect", "/oauth/revoke"] {
                    let _ = http
                        .post(format!("{}{path}", node.base))
                        .basic_auth(&creds.id, Some(&creds.secret))
                        .form(&[("token", t)])
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await;
                }
            }
        }
    }
    let rotated = w.cli(&["client", "rotate-secret", &c.id]);
    secrets.push(rotated["client_secret"].as_str().unwrap().to_owned());
    secrets.push("writ_sk_a_wrong_guess_that_must_not_be_logged".into());
    tokio::time::sleep(Duration::from_millis(500)).await;
    crate::harness::blocking(|| node.terminate());
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
