//! Opening a database, and the one line said when that fails: a database
//! written by a newer Writ, PostgreSQL's chatter, an unreachable server.

use sqlx::Connection;

use crate::harness::{run_writ, writ_command, Writ};
use crate::pg::{PgDb, MASTER_KEY};

fn one_line(err: &str) {
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_writ_is_refused_in_one_plain_line() {
    let w = Writ::new();
    w.client(&[]);
    let mut db = sqlx::SqliteConnection::connect(&w.database())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    for err in [w.cli_err(&["client", "list"]), w.serve_fails()] {
        one_line(&err);
        assert!(err.contains("newer"), "{err}");
        assert!(!err.contains("previously applied"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_on_a_migrated_postgres_database_logs_no_notices() {
    let db = PgDb::create().await;
    let w = Writ::on_postgres(&db.url);
    drop(w.spawn(&[], &[]));
    // The second start finds the migrations table there already.
    let again = w.spawn(&[], &[]);
    let log = again.log.join("");
    assert!(!log.contains("already exists"), "{log}");
    assert!(!log.contains("notice"), "{log}");
}

#[test]
fn an_unreachable_database_is_named_with_the_cause_and_no_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let url = "postgres://writ:hunter2@127.0.0.1:1/writ";
    let out = run_writ(
        writ_command()
            .args(["client", "list", "--database", url])
            .env("WRIT_MASTER_KEY", MASTER_KEY),
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    one_line(&err);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
