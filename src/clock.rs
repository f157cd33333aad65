use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time enters as a value from a clock, so that tests are exact: wall-clock
/// Unix seconds for tokens and keys, and a monotonic reading for rate limits
/// and back-off (which must not jump when the wall clock is set).
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds: one reading where a caller needs both the
    /// seconds (`div_euclid(1000)`) and finer order (opaque selectors).
    fn now_millis(&self) -> i64;
    /// Unix seconds.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
    /// Monotonic time since an arbitrary fixed point.
    fn elapsed(&self) -> Duration;
}

/// The real clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn elapsed(&self) -> Duration {
        static START: LazyLock<Instant> = LazyLock::new(Instant::now);
        START.elapsed()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct FixedClock {
    /// Unix seconds at the monotonic reading zero.
    base: AtomicI64,
    /// The monotonic reading, in nanoseconds.
    nanos: AtomicU64,
}

impl FixedClock {
    pub fn new(now: i64) -> Self {
        Self {
            base: AtomicI64::new(now),
            nanos: AtomicU64::new(0),
        }
    }

    /// Sets the wall clock, as an operator would; the monotonic reading stays.
    pub fn set(&self, now: i64) {
        let passed = self.elapsed().as_secs() as i64;
        self.base.store(now - passed, Ordering::SeqCst);
    }

    /// Moves both readings forward by whole seconds; a negative step
    /// moves only the wall clock back (monotonic time never goes back).
    pub fn advance(&self, secs: i64) {
        if secs < 0 {
            self.set(self.now() + secs);
        } else {
            self.advance_by(Duration::from_secs(secs as u64));
        }
    }

    /// Moves both readings forward.
    pub fn advance_by(&self, d: Duration) {
        self.nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_millis(&self) -> i64 {
        (self.base.load(Ordering::SeqCst).saturating_mul(1000))
            .saturating_add(self.elapsed().as_millis() as i64)
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(1000);
        assert_eq!((c.now(), c.elapsed()), (1000, Duration::ZERO));
        c.advance_by(Duration::from_millis(1500));
        assert_eq!((c.now(), c.elapsed()), (1001, Duration::from_millis(1500)));
        assert_eq!(c.now_millis(), 1_001_500);
        c.advance(2);
        assert_eq!(c.now(), 1003);
        c.set(500);
        assert_eq!(c.now(), 500, "the wall clock is set");
        assert_eq!(c.elapsed(), Duration::from_millis(3500), "monotonic stays");
    }
}
