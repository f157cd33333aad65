//! The master key belongs to its database: another key, or a lost key file,
//! is refused before anything is written.

use sqlx::Connection;
use writ::clock::Clock;

use crate::harness::{change_keys, run_writ, writ_command, Writ};
use crate::pg::PgDb;

const OTHER_KEY: &str = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDE=";

/// `writ ARGS --json` on `database` with `WRIT_MASTER_KEY=key`.
fn with_key(database: &str, key: &str, args: &[&str]) -> std::process::Output {
    run_writ(
        writ_command()
            .args(args)
            .args(["--database", database, "--json"])
            .env("WRIT_MASTER_KEY", key),
    )
}

fn refused(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "printed nothing: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_master_key_is_refused_before_anything_is_written_on_sqlite() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let db = w.database();
    for args in [
        &["client", "create", "--name", "x"][..],
        &["key", "rotate"],
        &["client", "list"],
    ] {
        let err = refused(&with_key(&db, OTHER_KEY, args));
        assert!(err.contains("master key is not this database's"), "{err}");
    }
    // Nothing changed: one client, and no signing key (the refused rotation
    // made none; the first start makes them).
    assert_eq!(w.cli(&["client", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(w.cli(&["key", "list"]), serde_json::json!([]));
    w.start().await;
    w.token(&c, "").await.access_token();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_master_key_is_refused_on_postgres() {
    let db = PgDb::create().await;
    let mut w = Writ::on_postgres(&db.url);
    let c = w.client(&[]);
    w.start().await;
    let err = refused(&with_key(
        &db.url,
        OTHER_KEY,
        &["client", "create", "--name", "x"],
    ));
    assert!(err.contains("master key is not this database's"), "{err}");
    refused(&with_key(&db.url, OTHER_KEY, &["key", "rotate"]));
    assert_eq!(w.cli(&["client", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(w.get("/readyz").await.json["keys"], "ok");
    w.token(&c, "").await.access_token();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_is_never_replaced() {
    let w = Writ::new();
    w.client(&[]);
    let key_file = writ::server::key_file_for(&w.db_path());
    std::fs::remove_file(&key_file).unwrap();
    let err = w.serve_fails();
    assert!(
        err.contains("is missing") && err.contains(&key_file.display().to_string()),
        "{err}"
    );
    let err = w.cli_err(&["client", "list"]);
    assert!(err.contains("is missing"), "{err}");
    assert!(!key_file.exists(), "no new key file was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_key_that_cannot_be_opened_is_reported_and_never_activated() {
    // As a next key made by a process holding another master key would be.
    let mut w = Writ::new();
    let c = w.client(&[]);
    let clock = w.start_fixed(1_800_000_000).await;
    assert_eq!(w.get("/readyz").await.json["keys"], "ok");
    let next = w
        .cli(&["key", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "next")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut db = sqlx::SqliteConnection::connect(&w.database())
        .await
        .unwrap();
    change_keys(
        &mut db,
        clock.now(),
        &next,
        &[
            "DELETE FROM keys WHERE kid = ?2 AND ?1 > 0",
            "INSERT INTO keys (kid, algorithm, private_key, created_at)
             VALUES ('sealed-elsewhere', 'ES256', X'00112233445566778899aabbccddeeff00', ?1)",
        ],
    )
    .await;
    crate::harness::eventually(std::time::Duration::from_secs(2), || async {
        let ready = w.get("/readyz").await;
        ready.json["keys"] == "unusable" && ready.json["unusable_keys"][0] == "sealed-elsewhere"
    })
    .await;
    // Still serving with the active key; a rotation refuses to activate it.
    w.token(&c, "").await.access_token();
    let err = w.cli_err(&["key", "rotate", "--force"]);
    assert!(
        err.contains("sealed-elsewhere") && err.contains("cannot be opened"),
        "{err}"
    );
    let keys = w.cli(&["key", "list"]);
    let state = |kid: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("sealed-elsewhere"), "next", "{keys}");
}
