use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use super::{StoreError, ACQUIRE_TIMEOUT};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Every connection's settings, the pool's and the token thread's: one
/// file in WAL mode, shared by the server and the CLI. `synchronous = FULL`:
/// a commit is on disk before it returns, so a token answered with 200
/// survives a crash; group commit keeps that affordable.
pub(super) const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

/// The pool, with `PRAGMAS` on every connection.
pub async fn connect(path: &Path) -> Result<AnyPool, StoreError> {
    create_private(path).map_err(|e| open_error(path, e.to_string()))?;
    // sqlx percent-decodes the path of its URL: encoded here, a name with
    // `%`, `?` or `#` in it is the same file `create_private` made and the
    // token thread opens.
    const LITERAL: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    let url = format!(
        "sqlite://{}?mode=rwc",
        percent_encoding::utf8_percent_encode(&path.to_string_lossy(), LITERAL)
    );
    AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // An embedded database has no connection to go stale; the ping
        // before every acquire is a round trip to the connection's thread,
        // as much as the lookup of a client id itself.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(PRAGMAS).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| open_error(path, e.to_string()))
}

fn open_error(path: &Path, cause: String) -> StoreError {
    StoreError::Open(format!(
        "cannot open the SQLite database {}: {cause}",
        path.display()
    ))
}

/// The database holds secret hashes and sealed keys: a new one is created
/// readable by its owner only, before SQLite would create it 0644. SQLite
/// gives the `-wal` and `-shm` files the database file's mode, so they
/// follow. An existing file keeps the mode its owner gave it.
fn create_private(path: &Path) -> std::io::Result<()> {
    match create_new_private(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// A new empty file with mode 0600; an error if the file exists.
pub(super) fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
