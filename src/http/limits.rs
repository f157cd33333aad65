//! Abuse limits (RFC 6819 §5.1.4.2.3, RFC 9700 §4.x): token buckets per
//! source address and per authenticated client, and a back-off per
//! (client id, address) after repeated failed authentications, so guessing
//! is throttled without letting an attacker elsewhere lock the real client out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use crate::config::LimitsConfig;
use crate::oauth::OAuthError;

/// Failure counters kept at most; the oldest are forgotten first.
const MAX_TRACKED_FAILURES: usize = 100_000;
/// A pair's failures are forgotten after this long without another.
const FAILURE_MEMORY: Duration = Duration::from_secs(600);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The injected clock's monotonic reading, as the rate limiters' time, so
/// that tests move it instead of sleeping.
#[derive(Clone)]
struct LimitClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimitClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, LimitClock, NoOpMiddleware<Duration>>;

/// A moment on the injected clock's monotonic scale.
type Instant = Duration;

pub struct Limits {
    config: LimitsConfig,
    by_address: Keyed<IpAddr>,
    by_client: Keyed<String>,
    /// Introspection and revocation, when configured.
    by_introspector: Option<Keyed<String>>,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
    /// How many pairs `failures` holds, kept under its lock, so that the
    /// usual request (no failures anywhere) takes no lock and no allocation.
    tracked: AtomicUsize,
    clock: LimitClock,
    address_policy: String,
    client_policy: String,
    introspection_policy: String,
}

/// Which of an authenticated client's budgets a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Token requests.
    Tokens,
    /// Introspection and revocation, which resource servers make on every
    /// API call.
    Introspection,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
    /// Logged once per burst, not once per request.
    logged: bool,
}

fn quota(rate: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(rate.max(1)).expect("at least 1");
    Quota::per_second(rate).allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"))
}

impl Limits {
    pub fn new(config: LimitsConfig, clock: Arc<dyn Clock>) -> Self {
        let clock = LimitClock(clock);
        Self {
            by_address: RateLimiter::new(
                quota(config.per_address, config.per_address_burst),
                Default::default(),
                clock.clone(),
            ),
            by_client: RateLimiter::new(
                quota(config.per_client, config.per_client_burst),
                Default::default(),
                clock.clone(),
            ),
            by_introspector: config.per_client_introspection.map(|(rate, burst)| {
                RateLimiter::new(quota(rate, burst), Default::default(), clock.clone())
            }),
            failures: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
            clock,
            // draft-ietf-httpapi-ratelimit-headers: quota per 1 s window.
            address_policy: format!("\"address\";q={};w=1", config.per_address),
            client_policy: format!("\"client\";q={};w=1", config.per_client),
            introspection_policy: format!(
                "\"introspection\";q={};w=1",
                config.per_client_introspection.map_or(0, |(rate, _)| rate)
            ),
            config,
        }
    }

    /// How long a client has to send its headers, and its body.
    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// The caller's address: the socket's peer, or, when the peer is a
    /// trusted proxy, the right-most `X-Forwarded-For` entry it did not add.
    pub fn source(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.config.trusted_proxies.iter().any(|n| n.contains(ip));
        let mut source = peer.ip();
        if !trusted(&source) {
            return source;
        }
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else { break };
            for hop in text.rsplit(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) if trusted(&ip) => source = ip,
                    Ok(ip) => return ip,
                    Err(_) => return source,
                }
            }
        }
        source
    }

    pub fn check_address(&self, ip: IpAddr) -> Result<(), OAuthError> {
        if !self.config.enabled {
            return Ok(());
        }
        self.by_address.check_key(&ip).map_err(|not_until| {
            self.limited(
                not_until.wait_time_from(governor::clock::Clock::now(&self.clock)),
                &self.address_policy,
            )
        })
    }

    /// After authentication, so nobody can spend a client's budget without
    /// its secret.
    pub fn check_client(&self, client_id: &str, budget: Budget) -> Result<(), OAuthError> {
        if !self.config.enabled {
            return Ok(());
        }
        let (limiter, policy) = match budget {
            Budget::Tokens => (&self.by_client, &self.client_policy),
            Budget::Introspection => match &self.by_introspector {
                Some(limiter) => (limiter, &self.introspection_policy),
                None => return Ok(()),
            },
        };
        limiter
            .check_key(&client_id.to_owned())
            .map_err(|not_until| {
                self.limited(
                    not_until.wait_time_from(governor::clock::Clock::now(&self.clock)),
                    policy,
                )
            })
    }

    /// Refuses, before looking at the credentials, a (client id, address)
    /// pair that is backing off after failed authentications.
    pub fn check_failures(&self, client_id: &str, ip: IpAddr) -> Result<(), OAuthError> {
        if !self.config.enabled || self.tracked.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let failures = self.failures.lock().expect("not poisoned");
        let Some(f) = failures.get(&(client_id.to_owned(), ip)) else {
            return Ok(());
        };
        match f.blocked_until {
            Some(until) if until > self.now() => {
                Err(self.limited(until - self.now(), "\"authentication\";q=1;w=1"))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, client_id: &str, ip: IpAddr) {
        metrics::counter!("writ_authentication_failures_total").increment(1);
        if !self.config.enabled {
            return;
        }
        let now = self.now();
        let mut failures = self.failures.lock().expect("not poisoned");
        if failures.len() >= MAX_TRACKED_FAILURES {
            failures.retain(|_, f| now.saturating_sub(f.last) < FAILURE_MEMORY);
            if failures.len() >= MAX_TRACKED_FAILURES {
                failures.clear();
            }
        }
        let f = failures
            .entry((client_id.to_owned(), ip))
            .or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: None,
                logged: false,
            });
        if now.saturating_sub(f.last) >= FAILURE_MEMORY {
            *f = Failures {
                count: 0,
                last: now,
                blocked_until: None,
                logged: false,
            };
        }
        f.count += 1;
        f.last = now;
        if f.count >= self.config.failures_before_backoff {
            // 1 s, 2 s, 4 s … up to a minute.
            let exponent = (f.count - self.config.failures_before_backoff).min(6);
            let backoff = Duration::from_secs(1 << exponent).min(MAX_BACKOFF);
            f.blocked_until = Some(now + backoff);
            if !f.logged {
                f.logged = true;
                tracing::warn!(client_id, address = %ip, failures = f.count,
                    "repeated failed client authentication; backing off");
            }
        }
        self.tracked.store(failures.len(), Ordering::Release);
    }

    pub fn record_success(&self, client_id: &str, ip: IpAddr) {
        if !self.config.enabled || self.tracked.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut failures = self.failures.lock().expect("not poisoned");
        failures.remove(&(client_id.to_owned(), ip));
        self.tracked.store(failures.len(), Ordering::Release);
    }

    /// Drops idle rate-limiter state, so memory stays bounded.
    pub fn prune(&self) {
        self.by_address.retain_recent();
        self.by_client.retain_recent();
        if let Some(limiter) = &self.by_introspector {
            limiter.retain_recent();
        }
        let now = self.now();
        let mut failures = self.failures.lock().expect("not poisoned");
        failures.retain(|_, f| now.saturating_sub(f.last) < FAILURE_MEMORY);
        self.tracked.store(failures.len(), Ordering::Release);
    }

    fn now(&self) -> Instant {
        self.clock.0.elapsed()
    }

    fn limited(&self, wait: Duration, policy: &str) -> OAuthError {
        metrics::counter!("writ_rate_limited_total").increment(1);
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        OAuthError::rate_limited(policy, retry_after.max(1))
    }
}
