//! Faults: SIGKILL under load, SIGTERM with requests in flight, readiness,
//! input limits, and secrets kept out of the logs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sqlx::Connection;

use crate::harness::{
    assert_sqlite_intact, blocking, change_keys, eventually, kid_of, transcript, try_send, verify,
    writ_command, Creds, Process, Remote, Writ, NO_LIMITS,
};

const ISSUER: &str = "http://writ.faults.test";

/// Server flags for the load tests: one client flat out from one address
/// is what the rate limits stop, so they are off here.
fn unlimited(w: &Writ) -> [String; 4] {
    [
        "--issuer".into(),
        ISSUER.into(),
        "--config".into(),
        w.config_file("unlimited.toml", NO_LIMITS)
            .display()
            .to_string(),
    ]
}

/// Opaque and JWT requests from 16 tasks until the server goes away;
/// returns every token answered with 200.
async fn load(base: &str, opaque: &Creds, jwt: &Creds, stop: Arc<AtomicBool>) -> Vec<String> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, got, stop) = (
            if i % 4 == 0 {
                jwt.clone()
            } else {
                opaque.clone()
            },
            got.clone(),
            stop.clone(),
        );
        // A server killed mid-request must not hang a worker.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let node = Remote::with_client(base, http);
        tasks.push(tokio::spawn(async move {
            // Bounded: at most 5,000 requests a worker.
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(r) = try_send(node.token_request(&c)).await else {
                    break;
                };
                if r.status != 200 || r.json.is_null() {
                    break;
                }
                got.lock().unwrap().push(r.access_token().to_owned());
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
    sigkill_rounds(&w).await;
    assert_sqlite_intact(&w.db_path()).await;
}

/// The crash test on PostgreSQL: the same rounds, then every B-tree index
/// checked with amcheck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_on_postgres_loses_nothing_that_was_answered() {
    let db = crate::pg::PgDb::create().await;
    sigkill_rounds(&Writ::on_postgres(&db.url)).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS amcheck")
        .execute(&mut conn)
        .await
        .unwrap();
    // Raises an error on the first index whose structure is broken.
    let checked: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_am a ON a.oid = c.relam, \
         LATERAL bt_index_check(c.oid, true) \
         WHERE n.nspname = 'public' AND a.amname = 'btree'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    println!("amcheck: {} indexes intact", checked.len());
    assert!(checked.len() >= 5, "{checked:?}");
    conn.close().await.unwrap();
}

/// Kills `writ serve` with SIGKILL at random moments under opaque and JWT
/// load, five times, then checks that every token answered 200 still
/// introspects or verifies and that the registry is whole.
async fn sigkill_rounds(w: &Writ) {
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    w.api_granted_to(&jwt, "https://kept.example/", "r", &[]);

    let mut answered = Vec::new();
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let args = unlimited(w);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut node = w.spawn(&args, &[]);
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
    let args = unlimited(w);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let restarted = w.spawn(&args, &[]);
    let node = restarted.remote();
    let jwks = node.jwks().await;
    let (opaque_tokens, jwts): (Vec<String>, Vec<String>) = answered
        .into_iter()
        .partition(|t| t.starts_with("writ_at_"));
    node.assert_all_active(&opaque, &opaque_tokens).await;
    for t in &jwts {
        verify(t, &jwks, ISSUER, ISSUER);
    }
    let (opaque_count, jwt_count) = (opaque_tokens.len(), jwts.len());
    println!("{ROUNDS} SIGKILLs: {opaque_count} opaque tokens introspect active, {jwt_count} JWTs verify");
    assert!(opaque_count > 0 && jwt_count > 0);

    // The registry is intact.
    assert_eq!(w.cli(&["client", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(w.cli(&["api", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(w.cli(&["grant", "list"]).as_array().unwrap().len(), 1);
    let keys = w.cli(&["key", "list"]);
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["state"] == "active"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let w = Writ::new();
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    let args = unlimited(&w);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = w.spawn(&args, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn({
        let (base, o, j, stop) = (node.base.clone(), opaque.clone(), jwt.clone(), stop.clone());
        async move { load(&base, &o, &j, stop).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocking(|| node.terminate()); // asserts exit status 0
    stop.store(true, Ordering::Relaxed);
    let tokens = loader.await.unwrap();
    assert!(!tokens.is_empty());
    let node = w.spawn(&args, &[]);
    let opaque_tokens: Vec<String> = tokens
        .into_iter()
        .filter(|t| t.starts_with("writ_at_"))
        .collect();
    node.remote()
        .assert_all_active(&opaque, &opaque_tokens)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_database_and_keys() {
    let mut w = Writ::new();
    w.start().await;
    let r = w.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json,
        json!({"status": "ready", "database": "ok", "keys": "ok"})
    );
    let r = w.get("/healthz").await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_key_row_gets_503_at_run_time_and_stops_a_start() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let first = w.token(&c, "").await;
    assert_eq!(first.status, 200);
    let good_kid = kid_of(first.access_token());

    // Another node (or a CLI run with another master key) makes a new
    // active ES256 key that this node cannot open: the sealed bytes of the
    // next key under another id, so decryption fails.
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", w.db_path().display()))
        .await
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    change_keys(
        &mut db,
        now,
        &good_kid,
        &[
            "INSERT INTO keys (kid, algorithm, private_key, created_at, activated_at)
             SELECT 'corrupted-kid', algorithm, private_key, ?1, ?1 FROM keys
             WHERE algorithm = 'ES256' AND activated_at IS NULL",
            "UPDATE keys SET retired_at = ?1, publish_until = ?1 + 3600 WHERE kid = ?2",
        ],
    )
    .await;

    // Until the node sees the change it signs with the good key; then 503,
    // and never a token signed with any other key.
    eventually(Duration::from_secs(10), || async {
        let r = w.token(&c, "").await;
        if r.status == 200 {
            assert_eq!(kid_of(r.access_token()), good_kid);
            return false;
        }
        r.assert_error(503, "temporarily_unavailable");
        true
    })
    .await;
    // The rest still serves: the JWKS (the good key is retiring, still
    // published), health, and readiness says what is wrong.
    let published = w.published_kids().await;
    assert!(published.contains(&good_kid), "{published:?}");
    assert!(!published.contains(&"corrupted-kid".to_owned()));
    assert_eq!(w.get("/healthz").await.status, 200);
    let ready = w.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["keys"], "missing");

    // A fresh start on this database refuses, naming the key.
    let err = w.serve_fails();
    assert!(err.contains("corrupted-kid"), "{err}");

    // Repaired, the running node signs again, with the good key.
    change_keys(
        &mut db,
        now,
        &good_kid,
        &[
            "DELETE FROM keys WHERE kid = 'corrupted-kid'",
            "UPDATE keys SET retired_at = NULL, publish_until = NULL WHERE kid = ?2",
        ],
    )
    .await;
    eventually(Duration::from_secs(10), || async {
        w.token(&c, "").await.status == 200
    })
    .await;
    assert_eq!(kid_of(w.token(&c, "").await.access_token()), good_kid);
}

/// A file size limit reached under load (`ulimit -f`, as a quota or a
/// full volume would): the server is not killed by SIGXFSZ, writes get 503,
/// JWTs and reads go on, and no token answered 200 is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_is_503_for_writes_not_a_crash() {
    let w = Writ::new();
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    let args = unlimited(&w);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Room for a few more pages than the files hold after start-up.
    let mut launcher = std::process::Command::new("prlimit");
    launcher.arg(format!("--fsize={}", 1024 * 1024));
    launcher.arg(writ_command().get_program());
    let mut node = Process::spawn_command(launcher, &w.database(), &args, &[]);
    let remote = node.remote();
    let mut answered = Vec::new();
    let refused = remote
        .issue_until_refused(&opaque, &mut answered, 20_000)
        .await;
    assert_eq!(refused, 3, "the limit was never reached");
    println!(
        "{} tokens answered before the limit, {refused} refused with 503",
        answered.len()
    );
    assert_eq!(remote.request_token(&jwt).await.status, 200);
    remote.assert_all_active(&opaque, &answered).await;
    // Still a clean exit on SIGTERM (asserted by terminate).
    blocking(|| node.terminate());
    let output = node.output();
    assert!(output.contains("file size limit"), "{output}");
    // At the default level the failure's line names its request.
    let failed = output
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no failure logged: {output}"));
    assert!(failed.contains("request_id="), "{failed}");
    assert!(!output.contains("panicked"), "{output}");
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(out.status.success(), "this test mounts a tmpfs: {out:?}");
        Self(at)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The disk the database is on fills up: writes get 503 (SQLITE_FULL),
/// JWTs and reads go on, nothing answered is lost, and the node heals by
/// itself once there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_503_for_writes_and_heals() {
    let mut w = Writ::new();
    let disk = SmallDisk::mount(w.dir.path().join("disk"), "4m");
    w.sqlite = disk.0.join("writ.db");
    let opaque = w.client(&["--name", "o", "--format", "opaque"]);
    let jwt = w.client(&["--name", "j"]);
    let args = unlimited(&w);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut node = w.spawn(&args, &[]);
    let remote = node.remote();
    let mut answered = Vec::new();
    assert_eq!(
        remote.issue_until_refused(&opaque, &mut answered, 10).await,
        0
    );

    // Fill the disk to the last byte.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0]);
    }
    let refused = remote
        .issue_until_refused(&opaque, &mut answered, 2000)
        .await;
    assert_eq!(refused, 3, "the full disk was never noticed");
    assert_eq!(remote.request_token(&jwt).await.status, 200);

    // Room again: the node heals without a restart.
    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(10), || async {
        remote.request_token(&opaque).await.status == 200
    })
    .await;
    println!(
        "{} tokens answered around a full disk, {refused} refused with 503",
        answered.len()
    );
    remote.assert_all_active(&opaque, &answered).await;
    blocking(|| node.terminate());
    assert!(!node.output().contains("panicked"));
    assert_sqlite_intact(&w.db_path()).await;
}

/// A little over the one-second window the rate limits and the back-off
/// refill in.
const WINDOW: Duration = Duration::from_millis(1100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_client_and_per_address() {
    let mut w = Writ::new();
    let a = w.client(&[]);
    let b = w.client(&[]);
    let config = w.config_with_file(
        "[limits]\nper_client = 1\nper_client_burst = 3\nper_address = 1000\nper_address_burst = 1000\n",
    );
    w.start_configured(config).await;
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
    tokio::time::sleep(WINDOW).await;
    assert_eq!(w.token(&a, "").await.status, 200);

    // Per address: one budget for everything from 127.0.0.1.
    let mut w = Writ::new();
    let a = w.client(&[]);
    let config = w.config_with_file("[limits]\nper_address = 1\nper_address_burst = 2\n");
    w.start_configured(config).await;
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
    w.start_configured(config).await;
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
    // After the back-off the right secret works and clears the count.
    tokio::time::sleep(WINDOW).await;
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
    assert!(
        metrics.contains("writ_authentication_failures_total"),
        "{metrics}"
    );
    assert!(metrics.contains("writ_rate_limited_total"));
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
        r#"writ_registry_lookups_total{result="hit"} 2"#,
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
