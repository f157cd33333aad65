//! The last minutes of token traffic, in memory, for the console's live
//! view: answers of the token endpoint counted as they go, and a sample
//! every `INTERVAL` seconds kept for `KEPT` samples. Per-client counts
//! come from the counts the registry keeps with each client; reading them
//! means visiting every client held, so it is done only while someone
//! watches the live view.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::registry::Registry;

/// Seconds between samples.
pub const INTERVAL: u64 = 5;
/// Samples kept: ten minutes.
pub const KEPT: usize = 120;
/// Clients kept per sample, for each count: the busiest.
const TOP: usize = 10;
/// How long per-client sampling goes on after the live view was last read.
const WATCH_FOR: i64 = 10 * 60;

/// One interval's counts.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// When the interval ended, Unix seconds.
    pub at: i64,
    pub issued: u64,
    pub refused: u64,
    /// Per client (id, tokens issued, failed authentications), the busiest
    /// only; `None` when nobody was watching.
    pub clients: Option<Vec<(String, u64, u64)>>,
}

#[derive(Debug, Default)]
pub struct Live {
    issued: AtomicU64,
    refused: AtomicU64,
    watched_until: AtomicI64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    samples: VecDeque<Sample>,
    /// The totals at the last sample.
    issued: u64,
    refused: u64,
}

impl Live {
    /// One answer of the token endpoint.
    pub fn count(&self, issued: bool) {
        let counter = if issued { &self.issued } else { &self.refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Someone reads the live view: keep sampling per client for a while.
    /// When nobody watched until now, the clients' counts since the last
    /// sample are dropped first: they hold everything since then, not one
    /// interval.
    pub fn watch(&self, registry: &Registry, now: i64) {
        let until = self
            .watched_until
            .fetch_max(now + WATCH_FOR, Ordering::Relaxed);
        if until <= now {
            registry.take_client_windows(|_| {});
        }
    }

    /// Ends an interval: the endpoint's counts since the last sample, and
    /// the busiest clients' while watched.
    pub fn sample(&self, registry: &Registry, now: i64) {
        let watched = self.watched_until.load(Ordering::Relaxed) > now;
        let mut clients = None;
        if watched {
            let mut all = Vec::new();
            registry.take_client_windows(|c| {
                all.push((c.client_id.to_owned(), c.issued, c.failures));
            });
            clients = Some(busiest(all));
        }
        let (issued, refused) = (
            self.issued.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        );
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let sample = Sample {
            at: now,
            issued: issued - state.issued,
            refused: refused - state.refused,
            clients,
        };
        (state.issued, state.refused) = (issued, refused);
        if state.samples.len() == KEPT {
            state.samples.pop_front();
        }
        state.samples.push_back(sample);
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.samples.iter().cloned().collect()
    }
}

/// The `TOP` clients by refusals and the `TOP` by tokens issued.
fn busiest(mut all: Vec<(String, u64, u64)>) -> Vec<(String, u64, u64)> {
    if all.len() <= 2 * TOP {
        return all;
    }
    let mut kept = Vec::with_capacity(2 * TOP);
    all.sort_unstable_by_key(|c| std::cmp::Reverse(c.2));
    kept.extend(all.drain(..TOP).filter(|c| c.2 > 0));
    all.sort_unstable_by_key(|c| std::cmp::Reverse(c.1));
    kept.extend(all.drain(..TOP));
    kept
}

/// Samples every `INTERVAL` seconds until the server stops.
pub async fn run(
    live: std::sync::Arc<Live>,
    registry: std::sync::Arc<Registry>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(INTERVAL));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Visiting every client held takes a while with many: off the
        // threads that answer requests.
        let (live, registry, now) = (live.clone(), registry.clone(), clock.now());
        let _ = tokio::task::spawn_blocking(move || live.sample(&registry, now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_by_each_count_are_kept() {
        let all: Vec<(String, u64, u64)> =
            (0..100u64).map(|i| (format!("c{i}"), i, 100 - i)).collect();
        let kept = busiest(all);
        assert_eq!(kept.len(), 2 * TOP);
        assert!(kept.iter().any(|c| c.0 == "c0"), "most refused");
        assert!(kept.iter().any(|c| c.0 == "c99"), "most issued");
        assert!(!kept.iter().any(|c| c.0 == "c50"));
    }
}
