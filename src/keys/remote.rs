//! Public keys Writ fetches: a client's JWK Set at its `jwks_uri` (RFC 7591
//! §2), or an external issuer's, found through its OpenID Connect discovery
//! document (OpenID Connect Discovery 1.0 §4) for workload identity, or a
//! SPIFFE trust domain's bundle from its bundle endpoint (SPIFFE
//! Federation §4). Every URL fetched was configured by an administrator (a
//! client's `jwks_uri`, a trust rule's issuer, a trust domain's bundle
//! endpoint) or named by such an issuer's own discovery document: never a
//! URL taken from a request.
//!
//! Each source has its own cache slot behind its own lock, so concurrent
//! requests needing the same keys share one fetch, and a slow or dead
//! endpoint holds up only the requests that need its keys, each for at most
//! the fetch's time limit. Keys are kept `MAX_AGE`, then fetched again; an
//! unknown `kid` (the issuer rotated) forces a fetch, at most once per
//! `REFETCH_INTERVAL` per source, so forged `kid`s cannot make Writ hammer
//! an endpoint.

use std::sync::Arc;
use std::time::Duration;

use super::ClientKeys;

/// Largest document read: a discovery document or a JWK Set.
pub const MAX_BYTES: usize = 64 * 1024;
/// Time for one fetch, connecting and reading included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Keys are fetched again after this many seconds.
pub const MAX_AGE: i64 = 300;
/// Fetches of one source, after a failure or for an unknown `kid`, at most
/// this often (seconds).
pub const REFETCH_INTERVAL: i64 = 60;
/// Sources held at most.
const CAPACITY: u64 = 10_000;
/// The bounds put on a SPIFFE bundle's `spiffe_refresh_hint` (seconds):
/// never fetched more often than `REFETCH_INTERVAL`, never kept longer than
/// an hour (SPIFFE Federation §4.2.2 leaves the hint to the publisher).
pub const BUNDLE_MIN_AGE: i64 = REFETCH_INTERVAL;
pub const BUNDLE_MAX_AGE: i64 = 3600;

/// Where keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A JWK Set at this URL.
    Jwks(String),
    /// An OpenID Connect issuer: its discovery document names its JWK Set.
    Issuer(String),
    /// A SPIFFE trust domain's bundle, at the endpoint configured for it.
    /// The trust domain is part of the key, so two trust domains never
    /// share keys even if they were configured with the same URL.
    SpiffeBundle { trust_domain: String, url: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Jwks(url) => write!(f, "JWK Set {url}"),
            Self::Issuer(iss) => write!(f, "issuer {iss}"),
            Self::SpiffeBundle { trust_domain, url } => {
                write!(f, "SPIFFE bundle of {trust_domain} at {url}")
            }
        }
    }
}

/// Why no keys could be had: logged where it happens; the reason the
/// authentication was refused is this short text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable(pub &'static str);

#[derive(Default)]
struct Slot {
    keys: Option<Arc<ClientKeys>>,
    /// When `keys` were fetched (the clock's seconds).
    fetched_at: i64,
    /// How long they are kept (seconds).
    max_age: i64,
    /// When a fetch was last tried, successful or not.
    tried_at: Option<i64>,
}

pub struct RemoteKeys {
    http: reqwest::Client,
    slots: moka::sync::Cache<Source, Arc<tokio::sync::Mutex<Slot>>>,
    /// Fetch from `http://` loopback URLs too (tests, local development).
    allow_insecure_localhost: bool,
    timeout: Duration,
}

/// How long a bundle is kept: its `spiffe_refresh_hint` within bounds, or
/// `MAX_AGE` without one.
pub fn bundle_max_age(hint: Option<i64>) -> i64 {
    hint.map_or(MAX_AGE, |h| h.clamp(BUNDLE_MIN_AGE, BUNDLE_MAX_AGE))
}

/// Is the URL's host the loopback interface (`127.0.0.1`, `[::1]`, `localhost`)?
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl RemoteKeys {
    pub fn new(allow_insecure_localhost: bool) -> Self {
        Self::with_timeout(allow_insecure_localhost, FETCH_TIMEOUT)
    }

    pub fn with_timeout(allow_insecure_localhost: bool, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            // A redirect would lead to a URL nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("writ/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        Self {
            http,
            slots: moka::sync::Cache::builder().max_capacity(CAPACITY).build(),
            allow_insecure_localhost,
            timeout,
        }
    }

    /// The keys of `source`, from the cache or fetched. `kid` is the one
    /// the token names: if the held keys lack it, they are fetched again
    /// (at most once per `REFETCH_INTERVAL`).
    pub async fn keys(
        &self,
        source: &Source,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<ClientKeys>, Unavailable> {
        let slot = self.slots.get_with_by_ref(source, Default::default);
        // One fetch per source at a time: the others wait for its result.
        let mut slot = slot.lock().await;
        let may_try = slot.tried_at.is_none_or(|t| now - t >= REFETCH_INTERVAL);
        let wanted = match &slot.keys {
            None => true,
            Some(keys) => {
                now - slot.fetched_at >= slot.max_age || kid.is_some_and(|k| !keys.has_kid(k))
            }
        };
        if wanted && may_try {
            slot.tried_at = Some(now);
            match self.fetch(source).await {
                Ok((keys, max_age)) => {
                    slot.keys = Some(Arc::new(keys));
                    slot.fetched_at = now;
                    slot.max_age = max_age;
                }
                // Keys held before stay in use: a brief outage at the
                // issuer must not lock every client out.
                Err(e) => tracing::warn!(source = %source, error = %e, "keys could not be fetched"),
            }
        }
        slot.keys.clone().ok_or(Unavailable(
            "the keys could not be fetched (see the warning logged)",
        ))
    }

    /// The keys, and how long to keep them.
    async fn fetch(&self, source: &Source) -> Result<(ClientKeys, i64), String> {
        let jwks_uri = match source {
            Source::Jwks(url) => url.clone(),
            Source::Issuer(issuer) => self.discover(issuer).await?,
            Source::SpiffeBundle { url, .. } => {
                let text = self.get(url).await?;
                let (keys, hint) =
                    ClientKeys::parse_spiffe_bundle(&text).map_err(|e| format!("{url}: {e}"))?;
                return Ok((keys, bundle_max_age(hint)));
            }
        };
        let text = self.get(&jwks_uri).await?;
        let keys = ClientKeys::parse(&text).map_err(|e| format!("{jwks_uri}: {e}"))?;
        Ok((keys, MAX_AGE))
    }

    /// OpenID Connect Discovery 1.0 §4: the document is at the issuer plus
    /// `/.well-known/openid-configuration`; §4.3: its `issuer` must be the
    /// issuer asked for exactly, and its `jwks_uri` names the keys.
    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let text = self.get(&url).await?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{url}: not JSON: {e}"))?;
        if doc.get("issuer").and_then(|i| i.as_str()) != Some(issuer) {
            return Err(format!("{url}: 'issuer' is not {issuer}"));
        }
        doc.get("jwks_uri")
            .and_then(|j| j.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{url}: no 'jwks_uri'"))
    }

    /// A GET within the time limit, at most `MAX_BYTES` read, 200 only.
    async fn get(&self, url: &str) -> Result<String, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL: {e}"))?;
        let allowed = match parsed.scheme() {
            "https" => true,
            "http" => self.allow_insecure_localhost && is_loopback(&parsed),
            _ => false,
        };
        if !allowed {
            return Err(format!(
                "{url}: only https URLs are fetched (http on 127.0.0.1 or localhost only with allow_insecure_jwks_localhost)"
            ));
        }
        let read = async {
            let mut response = self
                .http
                .get(parsed)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(format!("{url}: answered {}", response.status()));
            }
            if response
                .content_length()
                .is_some_and(|n| n > MAX_BYTES as u64)
            {
                return Err(format!("{url}: larger than {MAX_BYTES} bytes"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BYTES {
                    return Err(format!("{url}: larger than {MAX_BYTES} bytes"));
                }
            }
            String::from_utf8(body).map_err(|_| format!("{url}: not UTF-8"))
        };
        // reqwest's own timeout covers the whole exchange; this one is the
        // bound the caller relies on, whatever the client does.
        tokio::time::timeout(self.timeout + Duration::from_millis(100), read)
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (url, loopback) in [
            ("http://127.0.0.1:8080/jwks", true),
            ("http://localhost/jwks", true),
            ("http://[::1]/jwks", true),
            ("http://127.0.0.2/jwks", true),
            ("http://10.0.0.1/jwks", false),
            ("http://localhost.example.com/jwks", false),
        ] {
            assert_eq!(
                is_loopback(&url::Url::parse(url).unwrap()),
                loopback,
                "{url}"
            );
        }
    }

    #[test]
    fn spiffe_refresh_hints_are_kept_within_bounds() {
        assert_eq!(bundle_max_age(None), MAX_AGE);
        assert_eq!(bundle_max_age(Some(0)), BUNDLE_MIN_AGE);
        assert_eq!(bundle_max_age(Some(-5)), BUNDLE_MIN_AGE);
        assert_eq!(bundle_max_age(Some(120)), 120);
        assert_eq!(bundle_max_age(Some(86_400)), BUNDLE_MAX_AGE);
    }

    #[tokio::test]
    async fn plain_http_is_fetched_only_from_loopback_and_only_when_allowed() {
        let strict = RemoteKeys::new(false);
        let err = strict.get("http://127.0.0.1:1/jwks").await.unwrap_err();
        assert!(err.contains("only https"), "{err}");
        let lenient = RemoteKeys::new(true);
        let err = lenient.get("http://10.1.2.3/jwks").await.unwrap_err();
        assert!(err.contains("only https"), "{err}");
        let err = lenient.get("file:///etc/passwd").await.unwrap_err();
        assert!(err.contains("only https"), "{err}");
    }
}
