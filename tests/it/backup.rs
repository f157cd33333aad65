//! The SQLite files on disk: who may read them, and `writ backup`, a
//! consistent copy taken while the server runs, restored elsewhere.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{eventually, Remote, Writ};
use crate::pg::PgDb;

const LIMIT: Duration = Duration::from_secs(2);
const ISSUER: &str = "https://auth.example.test";

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_and_its_wal_and_shm_files_are_private() {
    let mut w = Writ::new();
    let c = w.client(&["--format", "opaque"]);
    w.start().await;
    // An opaque token is a write: the -wal and -shm files exist now.
    w.token(&c, "").await.access_token();
    let db = w.db_path();
    for suffix in ["", "-wal", "-shm", ".key"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        assert_eq!(mode(Path::new(&name)), 0o600, "writ.db{suffix}");
    }
    w.server.take().unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_clients_and_tokens() {
    let w = Writ::new();
    let opaque = w.client(&["--format", "opaque", "--name", "billing"]);
    let jwt = w.client(&["--name", "orders"]);
    let server = w.spawn(&["--issuer", ISSUER], &[]);
    let node = server.remote();
    eventually(LIMIT, || async {
        node.request_token(&opaque).await.status == 200
    })
    .await;

    // Opaque tokens are issued throughout the backup.
    let answered = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (node, c, answered, stop) =
            (node.clone(), opaque.clone(), answered.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let t = node.request_token(&c).await.access_token().to_owned();
                answered.lock().unwrap().push(t);
            }
        }
    });
    eventually(Duration::from_secs(10), || async {
        answered.lock().unwrap().len() >= 50
    })
    .await;
    let before: Vec<String> = answered.lock().unwrap().clone();
    let jwt_before = node.request_token(&jwt).await.access_token().to_owned();

    let backup = w.dir.path().join("backup.db");
    let out = w.cli(&["backup", backup.to_str().unwrap()]);
    assert_eq!(out["backup"], backup.to_str().unwrap(), "{out}");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(answered.lock().unwrap().len() > before.len());
    #[cfg(unix)]
    assert_eq!(mode(&backup), 0o600);

    // Never over an existing file, not even the backup just made.
    let size = std::fs::metadata(&backup).unwrap().len();
    let err = w.cli_err(&["backup", backup.to_str().unwrap()]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::metadata(&backup).unwrap().len(), size);
    drop(server);

    // Restore: the backup and the key file, copied to a new place.
    let restored = Writ::new();
    std::fs::copy(&backup, restored.db_path()).unwrap();
    std::fs::copy(
        w.dir.path().join("writ.db.key"),
        restored.dir.path().join("writ.db.key"),
    )
    .unwrap();
    let clients = restored.cli(&["client", "list"]);
    let mut names: Vec<&str> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["billing", "orders"]);
    let server = restored.spawn(&["--issuer", ISSUER], &[]);
    let node = Remote::new(&server.base);
    node.assert_all_active(&opaque, &before).await;
    assert_eq!(
        node.introspect(&jwt, &jwt_before).await.json["active"],
        true
    );
    assert_eq!(node.request_token(&opaque).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_on_postgres_points_to_pg_dump() {
    let db = PgDb::create().await;
    let w = Writ::on_postgres(&db.url);
    let target = w.dir.path().join("backup.db");
    let err = w.cli_err(&["backup", target.to_str().unwrap()]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!target.exists());
}
