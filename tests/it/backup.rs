//! The SQLite files on disk: who may read them.

use std::path::Path;

use crate::harness::Writ;

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
