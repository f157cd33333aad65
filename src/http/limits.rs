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
    /// trusted proxy, the right-most `X-Forwarded-For` entry that no trusted
    /// proxy added. Repeated header lines are one list, in order (RFC 9110
    /// §5.3): a proxy that appends its own line (HAProxy's `option
    /// forwardfor`) puts the address it saw after whatever the client wrote,
    /// so only the entries to the right are believed. An entry that is not
    /// an address stops the walk at the last trusted hop.
    pub fn source(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.config.trusted_proxies.iter().any(|n| n.contains(ip));
        let mut source = peer.ip().to_canonical();
        if !trusted(&source) {
            return source;
        }
        let lines: Vec<&str> = match headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str())
            .collect()
        {
            Ok(lines) => lines,
            Err(_) => return source,
        };
        for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let hop = hop.trim();
            if hop.is_empty() {
                // `a,,b` or a trailing comma: empty list elements are
                // allowed and carry nothing (RFC 9110 §5.6.1).
                continue;
            }
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted(&ip.to_canonical()) => source = ip.to_canonical(),
                Ok(ip) => return ip.to_canonical(),
                Err(_) => return source,
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
        crate::metrics::authentication_failed();
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
        crate::metrics::rate_limited();
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        OAuthError::rate_limited(policy, retry_after.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn behind(proxies: &[&str], lines: &[&str]) -> IpAddr {
        let config = LimitsConfig {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..LimitsConfig::default()
        };
        let limits = Limits::new(config, Arc::new(crate::clock::FixedClock::new(0)));
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        limits.source("10.0.0.1:443".parse().unwrap(), &headers)
    }

    #[test]
    fn rfc9110_5_3_repeated_forwarded_for_lines_are_one_list() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // The client wrote the first line; the proxy added the second.
        assert_eq!(
            behind(&["10.0.0.1/32"], &["203.0.113.5", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Walking right to left past every trusted proxy.
        assert_eq!(
            behind(
                &["10.0.0.0/8"],
                &["203.0.113.5, 198.51.100.7", "10.0.0.9", "10.0.0.8"]
            ),
            ip("198.51.100.7")
        );
        // Not an address: the last trusted hop is the caller.
        assert_eq!(
            behind(&["10.0.0.0/8"], &["198.51.100.7", "garbage, 10.0.0.9"]),
            ip("10.0.0.9")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(behind(&[], &["198.51.100.7"]), ip("10.0.0.1"));
    }
}
