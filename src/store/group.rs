//! Requests grouped into one statement or transaction: requests queue their
//! rows; a task takes whatever queued while the previous group was in the
//! database, handles it at once, and only then answers each request. For
//! writes this is group commit (every row is durable before its request is
//! answered, and under load one commit serves many requests); for reads,
//! one query answers many requests, so a flood of them costs the database
//! a query per round trip rather than one each.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use super::StoreError;

type Reply<R> = oneshot::Sender<Result<R, Arc<StoreError>>>;

/// Rows waiting for a group: requests beyond it wait to queue. A group never
/// holds more, so it is also the largest `max_batch` that means anything.
pub const QUEUE: usize = 16 * 1024;

/// A queue of `T` handled in groups, each answered with its `R`.
pub struct Grouped<T, R> {
    queue: mpsc::Sender<(T, Reply<R>)>,
}

impl<T, R> Clone for Grouped<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static, R: Clone + Send + 'static> Grouped<T, R> {
    /// `tasks` groups in the database at once (SQLite has one writer at a
    /// time; PostgreSQL commits in parallel). `handle` takes a group and
    /// returns one answer a row, in order. `max_batch = 1` gives one
    /// transaction a row (for comparison).
    pub fn spawn<F, Fut>(tasks: usize, max_batch: usize, handle: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send,
    {
        let (queue, rx) = mpsc::channel::<(T, Reply<R>)>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..tasks.max(1) {
            let rx = rx.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(max_batch);
                loop {
                    {
                        let mut rx = rx.lock().await;
                        if rx.recv_many(&mut batch, max_batch.max(1)).await == 0 {
                            return; // every sender is gone: shutting down
                        }
                        if tasks <= 1 {
                            gather(&mut rx, &mut batch, max_batch.max(1)).await;
                        }
                    }
                    let (rows, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                    let count = rows.len();
                    match handle(rows).await {
                        Ok(answers) if answers.len() == count => {
                            for (reply, answer) in replies.into_iter().zip(answers) {
                                let _ = reply.send(Ok(answer));
                            }
                        }
                        result => {
                            let e = Arc::new(match result {
                                Err(e) => e,
                                Ok(_) => StoreError::Conflict("a batch lost its answers".into()),
                            });
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            });
        }
        Self { queue }
    }

    /// Resolves once the row's group was handled, with its answer.
    ///
    /// The row is queued when this is called, not when the future is first
    /// polled, so that the future does not hold it: at once while there is
    /// room (there is, but under a backlog of `QUEUE` rows), else through
    /// `send`'s future (the row, and a place in the queue's wait list),
    /// boxed. Held inline, the row and that future made every caller's
    /// future 700 bytes larger, the token handler's among them, and those
    /// bytes are copied as futures are built and moved.
    pub fn submit(&self, row: T) -> impl Future<Output = Result<R, Arc<StoreError>>> + Send + '_ {
        let (tx, rx) = oneshot::channel();
        let queued = match self.queue.try_send((row, tx)) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(item)) => Ok(Some(Box::pin(self.queue.send(item)))),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        async move {
            let closed = || Arc::new(StoreError::closed());
            match queued {
                Ok(None) => {}
                Ok(Some(send)) => send.await.map_err(|_| closed())?,
                Err(()) => return Err(closed()),
            }
            rx.await.map_err(|_| closed())?
        }
    }
}

/// How many times a group waits for the requests that are ready to run.
const GATHER_ROUNDS: usize = 4;

/// Lets the requests that are ready to run reach the queue before a group
/// goes to the database: each yield runs every task that was ready, and
/// those that get as far as their row join this group. No timer, so an idle
/// server adds no latency; under load a commit (an fsync, and the pages it
/// writes) serves several times more rows. Only for a single task (SQLite's
/// one writer): with several, groups form while the others are in the
/// database, and a task gathering with the queue locked only holds them up
/// (PostgreSQL's p99 at c64 went from 3.2 to 7.5 ms).
async fn gather<T>(rx: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    for _ in 0..GATHER_ROUNDS {
        if batch.len() >= max {
            return;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < max {
            match rx.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        if batch.len() == before {
            return; // nothing more was on its way
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Every row gets its own answer, in groups, also when the queue is
    /// full and rows wait for room (`submit`'s boxed `send`).
    #[tokio::test]
    async fn every_row_is_answered_past_a_full_queue() {
        let open = Arc::new(tokio::sync::Semaphore::new(0));
        let groups = Arc::new(AtomicUsize::new(0));
        let grouped = {
            let (open, groups) = (open.clone(), groups.clone());
            Grouped::spawn(1, QUEUE, move |rows: Vec<usize>| {
                let (open, groups) = (open.clone(), groups.clone());
                async move {
                    // The first group waits until the queue behind it is full.
                    open.acquire().await.expect("open").forget();
                    open.add_permits(1);
                    groups.fetch_add(1, Ordering::SeqCst);
                    Ok(rows.into_iter().map(|n| n * 2).collect())
                }
            })
        };
        let rows = QUEUE + 100;
        let answers = futures_util::future::join_all((0..rows).map(|n| {
            let grouped = grouped.clone();
            async move { grouped.submit(n).await }
        }));
        let release = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            open.add_permits(1);
        };
        let (answers, ()) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(answers, release)
        })
        .await
        .expect("answered in time");
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.expect("answered"), n * 2);
        }
        let groups = groups.load(Ordering::SeqCst);
        assert!((2..rows / 2).contains(&groups), "{groups} groups");
    }

    /// A row submitted after the task is gone fails at once.
    #[tokio::test]
    async fn a_row_for_a_stopped_queue_fails() {
        let (queue, rx) = mpsc::channel::<(u8, Reply<u8>)>(1);
        drop(rx);
        let grouped = Grouped { queue };
        assert!(grouped.submit(1).await.is_err());
    }
}
