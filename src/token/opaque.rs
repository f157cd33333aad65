//! Opaque access tokens: 256 random bits, stored only as a keyed hash, and
//! written with group commit so issuing one does not cost a transaction.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::keys::{b64url, random_bytes};
use crate::store::{Store, StoreError, TokenRecord};

/// Prefix of every opaque token, so secret scanners can spot a leaked one and
/// the reader can tell it from a JWT without a lookup.
pub const PREFIX: &str = "writ_at_";

/// A fresh opaque token.
pub fn generate() -> String {
    format!("{PREFIX}{}", b64url(&random_bytes::<32>()))
}

type Reply = oneshot::Sender<Result<(), Arc<StoreError>>>;

/// Queues tokens for the database. Writers take whatever has queued up while
/// the previous batch was committing, insert it in one transaction, and only
/// then answer each waiting request: every token is durable before its
/// response is sent, and under load one commit serves many requests.
#[derive(Clone)]
pub struct TokenWriter {
    queue: mpsc::Sender<(TokenRecord, Reply)>,
}

impl TokenWriter {
    /// `max_batch = 1` gives one transaction per token (for comparison).
    pub fn spawn(store: Store, writers: usize, max_batch: usize) -> Self {
        let (queue, rx) = mpsc::channel::<(TokenRecord, Reply)>(16 * 1024);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(max_batch);
                loop {
                    {
                        let mut rx = rx.lock().await;
                        if rx.recv_many(&mut batch, max_batch.max(1)).await == 0 {
                            return; // every sender is gone: shutting down
                        }
                    }
                    let (records, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                    let result = store.insert_tokens(&records).await.map_err(Arc::new);
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                }
            });
        }
        Self { queue }
    }

    /// Returns once the token is committed.
    pub async fn persist(&self, record: TokenRecord) -> Result<(), Arc<StoreError>> {
        let (tx, rx) = oneshot::channel();
        let closed = || Arc::new(StoreError::Database(sqlx::Error::PoolClosed));
        self.queue.send((record, tx)).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}
