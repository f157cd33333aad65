//! Opaque tokens into SQLite through a connection of their own: a thread
//! owns it and its prepared INSERT, and writes each group it is handed in
//! one transaction, durable (`synchronous = FULL`) before it answers. Going
//! through the pool instead cost a statement of hundreds of placeholders
//! built, hashed and bound through sqlx's generic `Any` values for every
//! group, and a lock on the connection for every call into SQLite.
//!
//! WAL checkpoints, which copy committed pages into the database file and
//! sync it, run on a thread and connection of their own
//! (`checkpoints`), so that a group's commit does not wait behind one. The
//! token connection still checkpoints by itself past `WAL_LIMIT` frames:
//! the WAL restarts from its beginning only after a checkpoint that caught
//! up with every commit, which one running beside a steady stream of
//! commits seldom does, so without it the WAL of a busy server would grow
//! for as long as the load lasted.
//!
//! rusqlite 0.32 is the release built on the same libsqlite3-sys as sqlx
//! 0.8: one SQLite library in the binary.

use std::path::Path;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::{StoreError, TokenRecord};

type Group = (Vec<TokenRecord>, oneshot::Sender<Result<(), StoreError>>);

const INSERT: &str = "INSERT INTO tokens
    (id, hash, client_id, scope, audience, issued_at, expires_at, issuer)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// How long the checkpoint thread lets commits gather after the first
/// since its last checkpoint. Each checkpoint syncs the database file once;
/// at full rate this is 20 syncs a second, each copying what 50 ms of
/// commits changed (the same few B-tree pages, mostly).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// WAL frames (pages) past which the token connection checkpoints by itself
/// after a commit (`wal_autocheckpoint`; SQLite's default is 1,000). By
/// then the checkpoint thread has copied all but the last few milliseconds'
/// frames, so this checkpoint is short, and it lets the WAL restart. 10,000
/// frames of 4 KiB bound the WAL at about 40 MB.
const WAL_LIMIT: u32 = 10_000;

/// The way into the token thread. It ends, closing its connection, on
/// `close` or when this is dropped, and the checkpoint thread after it.
#[derive(Debug)]
pub(super) struct TokenThread {
    queue: Mutex<Option<mpsc::Sender<Group>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl TokenThread {
    /// Opens the token thread's and the checkpoint thread's connections to
    /// the (migrated) database and starts both.
    pub fn spawn(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_LIMIT)?;
        let checkpointer = open(path)?;
        // One pending request is enough: the checkpoint copies every commit
        // made before it starts.
        let (committed, pending) = mpsc::sync_channel::<()>(1);
        let (queue, groups) = mpsc::channel::<Group>();
        let start = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(|e| StoreError::Open(format!("cannot start {name}: {e}")))
        };
        let checkpoints = start(
            "writ-checkpoint",
            Box::new(move || checkpoints(checkpointer, pending)),
        )?;
        let writer = start(
            "writ-tokens",
            Box::new(move || run(conn, groups, committed)),
        )?;
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            // The writer first: it ends first, which ends the checkpoints.
            threads: Mutex::new(vec![writer, checkpoints]),
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

    /// Lets the thread finish the groups it was given, and waits for it and
    /// the checkpoint thread to close their connections: the last connection
    /// to close checkpoints the WAL into the database file, which a copy of
    /// a stopped server's database then holds.
    pub async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// Writes each group it is handed until the queue closes. A group that
/// failed leaves no transaction open behind it, and a panic fails its
/// group only, not every token after it.
fn run(mut conn: Connection, groups: mpsc::Receiver<Group>, committed: mpsc::SyncSender<()>) {
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
        // Full: a checkpoint is already due, which will copy this commit.
        let _ = committed.try_send(());
    }
}

/// Checkpoints the WAL a moment after commits, until the token thread ends.
/// PASSIVE: it waits for no one and copies what no reader still needs.
fn checkpoints(conn: Connection, pending: mpsc::Receiver<()>) {
    while pending.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_EVERY);
        let _ = pending.try_recv();
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "a WAL checkpoint failed; the next commit retries it");
        }
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
