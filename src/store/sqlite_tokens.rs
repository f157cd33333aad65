//! Opaque tokens into SQLite through a connection of their own: a thread
//! owns it and its prepared INSERT, and writes each group it is handed in
//! one transaction, durable (`synchronous = FULL`) before it answers. Going
//! through the pool instead cost a statement of hundreds of placeholders
//! built, hashed and bound through sqlx's generic `Any` values for every
//! group, and a lock on the connection for every call into SQLite.
//!
//! rusqlite 0.32 is the release built on the same libsqlite3-sys as sqlx
//! 0.8: one SQLite library in the binary.

use std::path::Path;
use std::sync::{mpsc, Mutex};

use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::{StoreError, TokenRecord};

type Group = (Vec<TokenRecord>, oneshot::Sender<Result<(), StoreError>>);

const INSERT: &str = "INSERT INTO tokens
    (id, hash, client_id, scope, audience, issued_at, expires_at, issuer)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The way into the token thread. The thread ends, closing its connection,
/// on `close` or when this is dropped.
#[derive(Debug)]
pub(super) struct TokenThread {
    queue: Mutex<Option<mpsc::Sender<Group>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl TokenThread {
    /// Opens the thread's connection to the (migrated) database and starts it.
    pub fn spawn(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path)?;
        let (queue, groups) = mpsc::channel::<Group>();
        let thread = std::thread::Builder::new()
            .name("writ-tokens".into())
            .spawn(move || run(conn, groups))
            .map_err(|e| StoreError::Open(format!("cannot start the token writer: {e}")))?;
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Inserts the tokens in one transaction: all of them or none.
    pub async fn insert(&self, records: Vec<TokenRecord>) -> Result<(), StoreError> {
        let gone = StoreError::closed;
        let queue = self.queue.lock().map_err(|_| gone())?.clone();
        let (reply, answer) = oneshot::channel();
        queue
            .ok_or_else(gone)?
            .send((records, reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Lets the thread finish the groups it was given, and waits for it to
    /// close its connection: the last connection to close checkpoints the
    /// WAL into the database file, which a copy of a stopped server's
    /// database then holds.
    pub async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Writes each group it is handed until the queue closes. A group that
/// failed leaves no transaction open behind it, and a panic fails its
/// group only, not every token after it.
fn run(mut conn: Connection, groups: mpsc::Receiver<Group>) {
    for (records, reply) in groups {
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insert(&mut conn, &records).map_err(StoreError::from)
        }))
        .unwrap_or_else(|_| {
            tracing::error!("the token writer panicked; its group was not written");
            // As sqlx reports its own SQLite thread's crash.
            Err(StoreError::Database(sqlx::Error::WorkerCrashed))
        });
        if written.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let _ = reply.send(written);
    }
}

/// The same settings as the pool's connections (`sqlite::PRAGMAS`).
fn open(path: &Path) -> Result<Connection, StoreError> {
    // Only the thread uses the connection: no mutex around each call.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(super::sqlite::PRAGMAS)?;
    conn.prepare_cached(INSERT)?;
    Ok(conn)
}

fn insert(conn: &mut Connection, records: &[TokenRecord]) -> rusqlite::Result<()> {
    // IMMEDIATE takes the write lock at BEGIN, waiting for it (busy_timeout)
    // if another connection holds it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for t in records {
            insert.execute(params![
                &t.selector[..],
                &t.hash[..],
                t.client_id,
                t.scope,
                t.audience,
                t.issued_at,
                t.expires_at,
                t.issuer,
            ])?;
        }
    }
    tx.commit()
}
