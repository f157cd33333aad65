//! Faults: SIGKILL under load, SIGTERM with requests in flight, readiness,
//! a key row that cannot be opened, a full disk and a file size limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sqlx::Connection;

use crate::harness::{
    assert_sqlite_intact, blocking, change_keys, eventually, kid_of, try_send, verify,
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
