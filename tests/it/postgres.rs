//! Writ on PostgreSQL: one node, several nodes on one database, and an outage.

use std::time::Duration;

use serde_json::json;

use crate::harness::{eventually, writ_command, Creds, Process, Writ};
use crate::pg::{PgDb, MASTER_KEY};

const LIMIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requires_the_shared_master_key() {
    let db = PgDb::create().await;
    let out = writ_command()
        .args(["client", "list", "--database", &db.url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("WRIT_MASTER_KEY must be set with PostgreSQL"),
        "{err}"
    );
    let out = writ_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db.url])
        .output()
        .unwrap();
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
        let body = |t: &str| format!("client_id={}&client_secret={}&token={t}", c.id, c.secret);
        let i = w.post_form("/oauth/introspect", &body(&token)).await;
        assert_eq!(
            (i.json["active"].clone(), i.json["scope"].clone()),
            (json!(true), json!("read"))
        );
        assert_eq!(
            w.post_form("/oauth/revoke", &body(&token)).await.status,
            200
        );
        let i = w.post_form("/oauth/introspect", &body(&token)).await;
        assert_eq!(i.json, json!({"active": false}));
    }
    w.server.take().unwrap().shutdown().await.unwrap();
}

/// Nodes behind one load balancer share the issuer and the master key.
fn node(db: &PgDb) -> Process {
    Process::spawn_on(
        &db.url,
        &["--issuer", "https://auth.example.test"],
        &[("WRIT_MASTER_KEY", MASTER_KEY)],
    )
}

async fn token(http: &reqwest::Client, base: &str, c: &Creds) -> (u16, serde_json::Value) {
    let r = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

async fn introspect(http: &reqwest::Client, base: &str, c: &Creds, t: &str) -> serde_json::Value {
    http.post(format!("{base}/oauth/introspect"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("token", t)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_behave_as_one() {
    let db = PgDb::create().await;
    let w = Writ::on_postgres(&db.url);
    let a = node(&db);
    let b = node(&db);
    let http = reqwest::Client::new();
    let c = w.client(&["--format", "opaque"]);
    let j = w.client(&[]);

    // Created through the CLI: usable on both nodes.
    for base in [&a.base, &b.base] {
        eventually(LIMIT, || async { token(&http, base, &c).await.0 == 200 }).await;
    }
    // A token from one node introspects and revokes on the other.
    for creds in [&c, &j] {
        let t = token(&http, &a.base, creds).await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let seen = introspect(&http, &b.base, creds, &t).await;
        assert_eq!(seen["active"], true, "{seen}");
        let r = http
            .post(format!("{}/oauth/revoke", b.base))
            .basic_auth(&creds.id, Some(&creds.secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            introspect(&http, &a.base, creds, &t).await,
            json!({"active": false})
        );
    }

    // A disabled client stops working on every node within 2 s.
    w.cli(&["client", "disable", &c.id]);
    for base in [&a.base, &b.base] {
        let took = eventually(LIMIT, || async { token(&http, base, &c).await.0 == 401 }).await;
        println!("disable reached {base} after {took:?}");
    }
    // A rotated secret, likewise.
    let rotated = w.cli(&["client", "rotate-secret", &j.id, "--overlap", "0"]);
    let j2 = Creds {
        id: j.id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
    };
    for base in [&a.base, &b.base] {
        eventually(LIMIT, || async { token(&http, base, &j).await.0 == 401 }).await;
        assert_eq!(token(&http, base, &j2).await.0, 200);
    }

    // A key rotation reaches every node's JWKS and signer within 2 s.
    let activated = w.cli(&["key", "rotate"])["activated"][0]
        .as_str()
        .unwrap()
        .to_owned();
    for base in [&a.base, &b.base] {
        let took = eventually(LIMIT, || async {
            let t = token(&http, base, &j2).await.1["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            jsonwebtoken::decode_header(&t).unwrap().kid.as_deref() == Some(activated.as_str())
        })
        .await;
        println!("key rotation reached {base} after {took:?}");
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
    // JWTs for cached clients are still issued: they need no database.
    assert_eq!(w.token(&jwt, "").await.status, 200);
    let i = w
        .post_form(
            "/oauth/introspect",
            &format!(
                "client_id={}&client_secret={}&token={t}",
                opaque.id, opaque.secret
            ),
        )
        .await;
    i.assert_error(503, "temporarily_unavailable");

    // Give it back: the node recovers without a restart.
    db.admin(&format!("GRANT CONNECT ON DATABASE {} TO {role}", db.name))
        .await;
    eventually(Duration::from_secs(10), || async {
        w.token(&opaque, "").await.status == 200
    })
    .await;
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
    let body = format!(
        "client_id={}&client_secret={}&token={t}",
        opaque.id, opaque.secret
    );
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
        let i = w.post_form("/oauth/introspect", &body).await;
        i.status == 200 && i.json["active"] == true
    })
    .await;
    w.post_form("/oauth/revoke", &body)
        .await
        .assert_error(503, "temporarily_unavailable");
    assert_eq!(
        w.post_form("/oauth/introspect", &body).await.json["active"],
        true,
        "the failed revocation changed nothing"
    );

    read_only(false).await;
    eventually(Duration::from_secs(10), || async {
        w.token(&opaque, "").await.status == 200
    })
    .await;
    assert_eq!(w.post_form("/oauth/revoke", &body).await.status, 200);
    assert_eq!(
        w.post_form("/oauth/introspect", &body).await.json["active"],
        false
    );
    w.server.take().unwrap().shutdown().await.unwrap();
}
