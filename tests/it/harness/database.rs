//! Reaching into a SQLite database behind the server's back.

use std::path::Path;

use sqlx::Connection;

/// SQLite's own integrity check passes on the database file.
pub async fn assert_sqlite_intact(path: &Path) {
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}

/// Runs `statements` (binding ?1 = now, ?2 = kid), a registry revision
/// bump and its change-log entry in one transaction, as another node's key
/// change would.
pub async fn change_keys(
    db: &mut sqlx::SqliteConnection,
    now: i64,
    kid: &str,
    statements: &[&str],
) {
    let mut tx = db.begin().await.unwrap();
    for sql in statements.iter().chain(&[
        "UPDATE revision SET value = value + 1 WHERE id = 1",
        "INSERT INTO changes (revision, kind, subject)
             SELECT value, 'keys', '' FROM revision WHERE id = 1",
    ]) {
        sqlx::query(sql)
            .bind(now)
            .bind(kid)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}
