//! The registry at scale: clients loaded on demand, changes applied as
//! deltas from the change log, read-your-writes, and unknown ids that do
//! not become a flood of queries.

use std::time::Duration;

use sqlx::Connection;

use crate::harness::{eventually, Creds, Writ};
use crate::pg::PgDb;

const SECOND: Duration = Duration::from_secs(1);

/// The value of a counter (no labels) in `/metrics`.
async fn counter(w: &Writ, name: &str) -> u64 {
    let text = w.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_api_and_grant_created_by_the_cli_work_at_once() {
    let mut w = Writ::new();
    w.start().await;
    for round in 0..5 {
        // A new client: the very next request, no waiting.
        let c = w.client(&["--scope", "read"]);
        assert_eq!(w.token(&c, "scope=read").await.status, 200, "round {round}");
        // A new API (with a new algorithm's keys) and a grant for it.
        let api = format!("https://api-{round}.example/");
        let algorithm = ["EdDSA", "RS256", "ES256", "EdDSA", "ES256"][round];
        w.api_granted_to(&c, &api, "x", &["--algorithm", algorithm]);
        let r = w.token(&c, &format!("audience={api}")).await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text);
        // A second grant for a client the node already holds.
        let other = format!("https://other-{round}.example/");
        w.cli(&["api", "create", "--identifier", &other, "--scope", "y"]);
        w.token(&c, &format!("audience={other}"))
            .await
            .assert_error(400, "invalid_target");
        w.grant(&c, &other, "y");
        let r = w.token(&c, &format!("audience={other}")).await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_serve_what_either_did_not_hold_at_once() {
    let db = PgDb::create().await;
    let w = Writ::on_postgres(&db.url);
    w.cli(&["init"]);
    let mut a = w.spawn(&[], &[]);
    let mut b = w.spawn(&[], &[]);
    let nodes = [a.remote(), b.remote()];
    for round in 0..3 {
        let c = w.client(&[]);
        for node in &nodes {
            let r = node.request_token(&c).await;
            assert_eq!(r.status, 200, "round {round} on {}: {}", node.base, r.text);
        }
        // A revoking change reaches both nodes within a second.
        w.cli(&["client", "disable", &c.id]);
        for node in &nodes {
            let took = eventually(SECOND, || async {
                node.request_token(&c).await.status == 401
            })
            .await;
            println!("disable reached {} after {took:?}", node.base);
        }
    }
    a.terminate();
    b.terminate();
}

/// The node holds a client, then the log moves on without it: a change it
/// cannot apply item by item. It must forget what it holds and read again.
async fn a_node_that_fell_behind_starts_afresh(mut w: Writ, statements: &[&str]) {
    let c = w.client(&[]);
    w.start().await;
    assert_eq!(w.token(&c, "").await.status, 200);
    let db = w.database();
    if db.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        for sql in statements {
            sqlx::query(sql)
                .bind(&c.id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        for sql in statements {
            sqlx::query(sql)
                .bind(&c.id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let took = eventually(SECOND, || async { w.token(&c, "").await.status == 401 }).await;
    println!("caught up after {took:?}");
}

/// The client disabled behind the log's back, far ahead of the node, with
/// only a newer entry left: the entries between were pruned.
const FELL_BEHIND: &[&str] = &[
    "UPDATE clients SET enabled = 0 WHERE id = $1",
    "DELETE FROM changes",
    "UPDATE revision SET value = value + 200000 WHERE id = 1",
    "INSERT INTO changes (revision, kind, subject) SELECT value, 'keys', '' FROM revision WHERE id = 1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_fell_behind_the_log_starts_afresh_on_sqlite() {
    a_node_that_fell_behind_starts_afresh(Writ::new(), FELL_BEHIND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_fell_behind_the_log_starts_afresh_on_postgres() {
    let db = PgDb::create().await;
    a_node_that_fell_behind_starts_afresh(Writ::on_postgres(&db.url), FELL_BEHIND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_without_an_entry_is_not_trusted() {
    // As an older writer that records no change would leave it.
    let statements = [
        "UPDATE clients SET enabled = 0 WHERE id = $1",
        "UPDATE revision SET value = value + 1 WHERE id = 1",
    ];
    a_node_that_fell_behind_starts_afresh(Writ::new(), &statements).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_do_not_become_a_flood_of_queries() {
    let mut w = Writ::new();
    let real = w.client(&[]);
    // Only the registry is under test here, not the abuse limits.
    let config = w.config_with_file("[limits]\nenabled = false\n");
    w.start_configured(config).await;
    let before = counter(&w, "writ_registry_store_reads_total").await;
    // Fifty concurrent requests for one unknown id share one read, and the
    // id is remembered: fifty more read nothing.
    let nobody = Creds {
        id: "nobody-registered-this".into(),
        secret: "x".into(),
    };
    let requests = (0..50).map(|_| w.token(&nobody, ""));
    for r in futures_util::future::join_all(requests).await {
        r.assert_error(401, "invalid_client");
    }
    for _ in 0..50 {
        w.token(&nobody, "")
            .await
            .assert_error(401, "invalid_client");
    }
    let reads = counter(&w, "writ_registry_store_reads_total").await - before;
    assert!(reads <= 2, "{reads} store reads for one unknown id");
    // A real client is read once, then held.
    for _ in 0..20 {
        assert_eq!(w.token(&real, "").await.status, 200);
    }
    let reads = counter(&w, "writ_registry_store_reads_total").await - before;
    assert!(reads <= 3, "{reads} store reads");
    // Once it is registered, the id that was remembered as unknown works
    // as soon as the node reads the change log.
    let secret = "imported-secret-0123456789";
    crate::harness::transcript::secret(secret);
    let path = w.dir.path().join("one.jsonl");
    std::fs::write(
        &path,
        format!(
            "{{\"client_id\": \"{}\", \"client_secret\": \"{secret}\", \"name\": \"late\"}}\n",
            nobody.id
        ),
    )
    .unwrap();
    w.cli(&["client", "import", path.to_str().unwrap()]);
    let late = Creds {
        id: nobody.id.clone(),
        secret: secret.into(),
    };
    eventually(SECOND, || async { w.token(&late, "").await.status == 200 }).await;
}
