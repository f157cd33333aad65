//! Writ on PostgreSQL: one node, several nodes on one database, and an outage.

use std::time::Duration;

use serde_json::json;

use crate::harness::{eventually, kid_of, run_writ, writ_command, Process, Writ};
use crate::pg::PgDb;

const LIMIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requires_the_shared_master_key() {
    let db = PgDb::create().await;
    let out = run_writ(writ_command().args(["client", "list", "--database", &db.url]));
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("WRIT_MASTER_KEY must be set with PostgreSQL"),
        "{err}"
    );
    let out =
        run_writ(writ_command().args(["serve", "--listen", "127.0.0.1:0", "--database", &db.url]));
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_issues_introspects_and_revokes_both_formats() {
    let db = PgDb::create().await;
    let mut w = Writ::on_postgres(&db.url);
    let opaque = w.client(&["--format", "opaque", "--scope", "read"]);
    let jwt = w.client(&["--scope", "read"]);
    w.start().await;
    for c in [&opaque, &jwt] {
        let token = w.token(c, "scope=read").await.access_token().to_owned();
        let i = w.introspect(c, &token).await;
        assert_eq!(
            (i.json["active"].clone(), i.json["scope"].clone()),
            (json!(true), json!("read"))
        );
        assert_eq!(w.revoke(c, &token).await.status, 200);
        let i = w.introspect(c, &token).await;
        assert_eq!(i.json, json!({"active": false}));
    }
    w.server.take().unwrap().shutdown().await.unwrap();
}

/// Nodes behind one load balancer share the issuer and the master key.
fn node(w: &Writ) -> Process {
    w.spawn(&["--issuer", "https://auth.example.test"], &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_behave_as_one() {
    let db = PgDb::create().await;
    let w = Writ::on_postgres(&db.url);
    let (a, b) = (node(&w), node(&w));
    let (a, b) = (a.remote(), b.remote());
    let c = w.client(&["--format", "opaque"]);
    let j = w.client(&[]);

    // Created through the CLI: usable on both nodes.
    for node in [&a, &b] {
        eventually(LIMIT, || async {
            node.request_token(&c).await.status == 200
        })
        .await;
    }
    // A token from one node introspects and revokes on the other: at once
    // on the node that revoked, within `RECENT_FOR` on the other, which
    // reuses for that long what it read of a token (read here first).
    for creds in [&c, &j] {
        let t = a.request_token(creds).await.access_token().to_owned();
        for node in [&b, &a] {
            let seen = node.introspect(creds, &t).await.json;
            assert_eq!(seen["active"], true, "{seen}");
        }
        assert_eq!(b.revoke(creds, &t).await.status, 200);
        assert_eq!(b.introspect(creds, &t).await.json, json!({"active": false}));
        let took = eventually(LIMIT, || async {
            a.introspect(creds, &t).await.json == json!({"active": false})
        })
        .await;
        assert!(
            took <= writ::token::RECENT_FOR + Duration::from_millis(300),
            "seen revoked by the other node after {took:?}"
        );
    }

    // A disabled client stops working on every node within 2 s.
    w.cli(&["client", "disable", &c.id]);
    for node in [&a, &b] {
        let took = eventually(LIMIT, || async {
            node.request_token(&c).await.status == 401
        })
        .await;
        println!("disable reached {} after {took:?}", node.base);
    }
    // A rotated secret, likewise.
    let j2 = w.rotate_secret(&j, &["--overlap", "0"]);
    for node in [&a, &b] {
        eventually(LIMIT, || async {
            node.request_token(&j).await.status == 401
        })
        .await;
        assert_eq!(node.request_token(&j2).await.status, 200);
    }

    // A key rotation reaches every node's JWKS and signer within 2 s.
    let activated = w.cli(&["key", "rotate", "--force"])["activated"][0]
        .as_str()
        .unwrap()
        .to_owned();
    for node in [&a, &b] {
        let took = eventually(LIMIT, || async {
            kid_of(node.request_token(&j2).await.access_token()) == activated
        })
        .await;
        println!("key rotation reached {} after {took:?}", node.base);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_and_heals_by_itself() {
    let (db, role) = PgDb::create_with_role().await;
    let mut w = Writ::on_postgres(&db.url);
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    w.start().await;
    let t = w.token(&opaque, "").await.access_token().to_owned();
    // The JWT client is used once before: then it is in memory.
    w.token(&jwt, "").await.access_token();

    // Take the database away: no new connections, existing ones killed.
    db.admin(&format!(
        "REVOKE CONNECT ON DATABASE {} FROM {role}",
        db.name
    ))
    .await;
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
    ))
    .await;

    let r = w.token(&opaque, "").await;
    r.assert_error(503, "temporarily_unavailable");
    // JWTs for clients in memory are still issued: they need no database.
    assert_eq!(w.token(&jwt, "").await.status, 200);
    w.introspect(&opaque, &t)
        .await
        .assert_error(503, "temporarily_unavailable");

    // Give it back: the node recovers without a restart.
    db.admin(&format!("GRANT CONNECT ON DATABASE {} TO {role}", db.name))
        .await;
    eventually(Duration::from_secs(10), || async {
        w.token(&opaque, "").await.status == 200
    })
    .await;
    w.server.take().unwrap().shutdown().await.unwrap();
}

/// A database that dropped every connection and came straight back (a
/// restart, a failover, an idle timeout) costs no request a 503: the
/// connection that writes opaque tokens was found closed and the group was
/// written on a fresh one, as the pool finds its own closed ones first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_closed_cost_no_request() {
    let db = PgDb::create().await;
    let mut w = Writ::on_postgres(&db.url);
    let opaque = w.client(&["--format", "opaque"]);
    w.start().await;
    let before = w.token(&opaque, "").await.access_token().to_owned();
    // With a timeout, each call waits until its backend has exited.
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    ))
    .await;
    for _ in 0..3 {
        let t = w.token(&opaque, "").await;
        assert_eq!(t.status, 200, "{:?}", t.json);
        let i = w.introspect(&opaque, t.access_token()).await;
        assert_eq!(i.json["active"], true);
    }
    assert_eq!(w.introspect(&opaque, &before).await.json["active"], true);
    w.server.take().unwrap().shutdown().await.unwrap();
}

/// What a failover onto a read-only replica looks like to Writ: every
/// write refused with SQLSTATE 25006. Writes get 503, reads and JWTs go on,
/// nothing stored changes, and it heals when writes come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_is_503_for_writes_and_heals() {
    let db = PgDb::create().await;
    let mut w = Writ::on_postgres(&db.url);
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    w.start().await;
    let t = w.token(&opaque, "").await.access_token().to_owned();
    // The JWT client is used once before: then it is in memory.
    w.token(&jwt, "").await.access_token();
    let read_only = |on: bool| {
        let db = &db;
        async move {
            let setting = if on {
                "SET default_transaction_read_only = on"
            } else {
                "RESET default_transaction_read_only"
            };
            db.admin(&format!("ALTER DATABASE {} {setting}", db.name))
                .await;
            db.admin(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                db.name
            ))
            .await;
        }
    };
    read_only(true).await;

    // The pool reconnects (read-only now); the first request may meet a
    // killed connection, which is a 503 too.
    let r = w.token(&opaque, "").await;
    r.assert_error(503, "temporarily_unavailable");
    let r = w.token(&opaque, "").await;
    r.assert_error(503, "temporarily_unavailable");
    assert_eq!(w.token(&jwt, "").await.status, 200);
    eventually(Duration::from_secs(10), || async {
        let i = w.introspect(&opaque, &t).await;
        i.status == 200 && i.json["active"] == true
    })
    .await;
    w.revoke(&opaque, &t)
        .await
        .assert_error(503, "temporarily_unavailable");
    assert_eq!(
        w.introspect(&opaque, &t).await.json["active"],
        true,
        "the failed revocation changed nothing"
    );

    read_only(false).await;
    eventually(Duration::from_secs(10), || async {
        w.token(&opaque, "").await.status == 200
    })
    .await;
    assert_eq!(w.revoke(&opaque, &t).await.status, 200);
    assert_eq!(w.introspect(&opaque, &t).await.json["active"], false);
    w.server.take().unwrap().shutdown().await.unwrap();
}

/// A database that refuses connections (SQLSTATE 55000, as during
/// maintenance) is an outage like any other: 503, and it heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_not_accepting_connections_is_503_and_heals() {
    let db = PgDb::create().await;
    let mut w = Writ::on_postgres(&db.url);
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    w.start().await;
    let t = w.token(&opaque, "").await.access_token().to_owned();
    // The JWT client is used once before: then it is in memory.
    w.token(&jwt, "").await.access_token();
    db.admin(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
        db.name
    ))
    .await;
    db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    ))
    .await;
    for _ in 0..3 {
        w.token(&opaque, "")
            .await
            .assert_error(503, "temporarily_unavailable");
    }
    w.introspect(&opaque, &t)
        .await
        .assert_error(503, "temporarily_unavailable");
    assert_eq!(w.token(&jwt, "").await.status, 200);
    db.admin(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
        db.name
    ))
    .await;
    eventually(Duration::from_secs(10), || async {
        w.token(&opaque, "").await.status == 200
    })
    .await;
    assert_eq!(w.introspect(&opaque, &t).await.json["active"], true);
    w.server.take().unwrap().shutdown().await.unwrap();
}
