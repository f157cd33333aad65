//! Settings: flags, then environment variables (both through clap), then the
//! TOML file, then defaults, resolved into one validated `Config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::types::MAX_LIFETIME;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://writ.db";
pub const DEFAULT_TOKEN_LIFETIME: u64 = 3600;
pub const DEFAULT_OPAQUE_MAX_BATCH: usize = 512;
/// Clients held in memory unless `[cache] clients` says otherwise.
pub const DEFAULT_CLIENT_CACHE: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: String,
    /// `None`: `http://` and the address actually bound.
    pub issuer: Option<String>,
    /// `None`: the issuer.
    pub default_audience: Option<String>,
    pub token_lifetime: u64,
    pub client_credentials_enabled: bool,
    /// Base64 of 32 bytes, from `WRIT_MASTER_KEY`; `None` uses a key file.
    pub master_key: Option<String>,
    /// Rotate signing keys automatically when the active one is this old.
    pub rotate_every: Option<std::time::Duration>,
    /// Most opaque tokens committed in one transaction; 1 disables group commit.
    pub opaque_max_batch: usize,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<Tls>,
    pub limits: LimitsConfig,
    pub log_format: LogFormat,
    /// Clients held in memory at most (`[cache] clients`); the rest are
    /// read from the store when asked for.
    pub client_cache: u64,
    /// `[client_assertions] accept_token_endpoint_audience`: a client
    /// assertion may name the token endpoint URL as its `aud`, not only the
    /// issuer (for older client libraries).
    pub assertion_token_endpoint_audience: bool,
    /// `[client_assertions] allow_insecure_jwks_localhost`: keys may be
    /// fetched over plain `http` from 127.0.0.1 or localhost (tests, local
    /// development); otherwise only `https` URLs are fetched.
    pub allow_insecure_jwks_localhost: bool,
    /// `[spiffe] bundles`: SPIFFE trust domain → its bundle endpoint URL,
    /// where the keys of its JWT-SVIDs are fetched.
    pub spiffe_bundles: BTreeMap<String, String>,
}

/// `log_format = "text"` (default) or `"json"`: one JSON object a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[limits]`: token buckets (requests per second, and burst) per source
/// address and per authenticated client, and the failed-authentication
/// back-off. The defaults never hinder a client that caches its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub enabled: bool,
    pub per_address: u32,
    pub per_address_burst: u32,
    pub per_client: u32,
    pub per_client_burst: u32,
    /// Introspection and revocation per authenticated client: resource
    /// servers call on every API request, so `None` (the default) leaves
    /// them to the address budget alone.
    pub per_client_introspection: Option<(u32, u32)>,
    /// Failed authentications of one client id from one address before it
    /// must wait (1 s, doubling to a minute).
    pub failures_before_backoff: u32,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDRs).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Open connections from one address at most (trusted proxies exempt).
    pub max_connections_per_address: usize,
    /// Time a client has to send its request headers, and its body.
    pub request_timeout: std::time::Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // Generous: without trusted_proxies, everything behind one load
            // balancer shares its address.
            per_address: 1000,
            per_address_burst: 2000,
            per_client: 100,
            per_client_burst: 200,
            per_client_introspection: None,
            failures_before_backoff: 5,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            max_connections_per_address: 1000,
            request_timeout: std::time::Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            database: DEFAULT_DATABASE.into(),
            issuer: None,
            default_audience: None,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            client_credentials_enabled: true,
            master_key: None,
            rotate_every: None,
            opaque_max_batch: DEFAULT_OPAQUE_MAX_BATCH,
            tls: None,
            limits: LimitsConfig::default(),
            log_format: LogFormat::Text,
            client_cache: DEFAULT_CLIENT_CACHE,
            assertion_token_endpoint_audience: false,
            allow_insecure_jwks_localhost: false,
            spiffe_bundles: BTreeMap::new(),
        }
    }
}

/// The TOML file. Unknown keys are an error that names the key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub database: Option<String>,
    pub issuer: Option<String>,
    pub default_audience: Option<String>,
    pub token_lifetime: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub grant_types: Option<GrantTypes>,
    pub keys: Option<KeysSection>,
    pub opaque_tokens: Option<OpaqueSection>,
    pub limits: Option<LimitsSection>,
    pub cache: Option<CacheSection>,
    pub client_assertions: Option<ClientAssertionsSection>,
    pub spiffe: Option<SpiffeSection>,
}

/// `[spiffe]`: the SPIFFE trust domains whose JWT-SVIDs may authenticate
/// clients (draft-ietf-oauth-spiffe-client-auth), each with the bundle
/// endpoint its keys come from: `bundles = { "example.org" = "https://…" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpiffeSection {
    pub bundles: Option<BTreeMap<String, String>>,
}

/// `[client_assertions]`: how `private_key_jwt` assertions are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAssertionsSection {
    /// Accept the token endpoint URL as `aud` besides the issuer (off:
    /// draft-ietf-oauth-rfc7523bis wants the issuer alone).
    pub accept_token_endpoint_audience: Option<bool>,
    /// Fetch keys over plain http from the loopback interface (off).
    pub allow_insecure_jwks_localhost: Option<bool>,
}

/// `[cache]`: how much the registry holds in memory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Clients, with their secrets and grants (about 1.5 KiB each).
    pub clients: Option<u64>,
}

/// `[limits]` as written: every key optional, with a bare address allowed
/// where a CIDR is expected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub enabled: Option<bool>,
    pub per_address: Option<u32>,
    pub per_address_burst: Option<u32>,
    pub per_client: Option<u32>,
    pub per_client_burst: Option<u32>,
    pub per_client_introspection: Option<u32>,
    pub per_client_introspection_burst: Option<u32>,
    pub failures_before_backoff: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    /// e.g. "10s"
    pub request_timeout: Option<String>,
    pub max_header_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// e.g. "30d"
    pub rotate_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpaqueSection {
    pub max_batch: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantTypes {
    pub client_credentials: Option<GrantToggle>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantToggle {
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("config file {0}: {1}")]
    Parse(String, String),
    #[error("invalid {0} '{1}': {2}")]
    Invalid(&'static str, String, String),
}

/// Values from flags or the environment (clap has merged those two already).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub database: Option<String>,
    pub issuer: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `text` or `json`, checked here so the message names `WRIT_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `WRIT_MASTER_KEY`; empty counts as unset.
    pub master_key: Option<String>,
}

impl Config {
    pub fn resolve(overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = match &overrides.config {
            Some(path) => Self::read_file(path)?,
            None => FileConfig::default(),
        };
        Self::from_parts(file, overrides)
    }

    /// Checks and merges a parsed file with the flags: every value is
    /// validated here, so a bad one stops the server at start. Sections are
    /// checked in this order, so the first bad one is the one reported.
    pub fn from_parts(file: FileConfig, flags: &Overrides) -> Result<Self, ConfigError> {
        let listen = listen(flags.listen.clone().or(file.listen))?;
        let issuer = issuer(flags.issuer.clone().or(file.issuer))?;
        let token_lifetime = token_lifetime(file.token_lifetime)?;
        let rotate_every = rotate_every(file.keys.unwrap_or_default())?;
        let opaque_max_batch = opaque_max_batch(file.opaque_tokens.unwrap_or_default())?;
        let tls = tls(
            flags.tls_cert.clone().or(file.tls_cert),
            flags.tls_key.clone().or(file.tls_key),
        )?;
        let limits = limits(file.limits.unwrap_or_default())?;
        let log_format = log_format(flags.log_format.as_deref(), file.log_format)?;
        let allow_insecure_jwks_localhost = file
            .client_assertions
            .as_ref()
            .and_then(|c| c.allow_insecure_jwks_localhost)
            .unwrap_or(false);
        let spiffe_bundles = spiffe_bundles(
            file.spiffe.and_then(|s| s.bundles).unwrap_or_default(),
            allow_insecure_jwks_localhost,
        )?;
        Ok(Self {
            listen,
            database: (flags.database.clone().or(file.database))
                .unwrap_or_else(|| DEFAULT_DATABASE.into()),
            issuer,
            default_audience: default_audience(file.default_audience)?,
            token_lifetime,
            client_credentials_enabled: client_credentials_enabled(file.grant_types),
            master_key: flags.master_key.clone().filter(|k| !k.is_empty()),
            rotate_every,
            opaque_max_batch,
            tls,
            limits,
            log_format,
            client_cache: client_cache(file.cache.unwrap_or_default())?,
            assertion_token_endpoint_audience: file
                .client_assertions
                .as_ref()
                .and_then(|c| c.accept_token_endpoint_audience)
                .unwrap_or(false),
            allow_insecure_jwks_localhost,
            spiffe_bundles,
        })
    }

    pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(shown.clone(), e))?;
        Self::parse_file(&text).map_err(|e| ConfigError::Parse(shown, e))
    }

    /// A parse error names the line and the key: "line 3, key
    /// limits.per_client: invalid value: integer `-5`, expected u32".
    pub fn parse_file(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end();
            let Some(span) = e.span() else {
                return message.to_owned();
            };
            let at = span.start.min(text.len());
            let line = text[..at].matches('\n').count() + 1;
            match key_at(text, at) {
                Some(key) => format!("line {line}, key {key}: {message}"),
                None => format!("line {line}: {message}"),
            }
        })
    }

    /// What `serve` needs beyond what every command does.
    pub fn check_serving(&self) -> Result<(), ConfigError> {
        // Tokens and metadata name the issuer; `http://0.0.0.0:8080` is no
        // address anybody can reach.
        if self.issuer.is_none() && self.listen.ip().is_unspecified() {
            return Err(ConfigError::Invalid(
                "issuer",
                String::new(),
                format!(
                    "must be set (--issuer or WRIT_ISSUER) when listening on the wildcard address {}: tokens and metadata name it",
                    self.listen
                ),
            ));
        }
        Ok(())
    }
}

/// The dotted key whose value stands at byte `offset` of a TOML text.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let section = text[..line_start]
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let (key, _) = text[line_start..].lines().next()?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    match section {
        Some(section) => Some(format!("{section}.{key}")),
        None => Some(key.to_owned()),
    }
}

/// An address (`127.0.0.1:8080`, `[::1]:8080`) or a host name and port
/// (`localhost:8080`), resolved once at start, IPv4 first.
fn listen(text: Option<String>) -> Result<SocketAddr, ConfigError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LISTEN.parse().expect("valid default"));
    };
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bad = |why: String| ConfigError::Invalid("listen address", text.clone(), why);
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text.as_str())
        .map_err(|e| bad(format!("{e} (use HOST:PORT, e.g. 127.0.0.1:8080)")))?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| bad("the name resolves to no address".into()))
}

fn issuer(issuer: Option<String>) -> Result<Option<String>, ConfigError> {
    if let Some(issuer) = &issuer {
        validate_issuer(issuer)?;
    }
    Ok(issuer)
}

/// RFC 8414 §2: the issuer is an https URL (http tolerated for local use)
/// with no query or fragment.
fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::Invalid("issuer", issuer.into(), why.into());
    let url = url::Url::parse(issuer).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment (RFC 8414 §2)"));
    }
    Ok(())
}

fn token_lifetime(seconds: Option<u64>) -> Result<u64, ConfigError> {
    match seconds.unwrap_or(DEFAULT_TOKEN_LIFETIME) {
        0 => Err(ConfigError::Invalid(
            "token_lifetime",
            "0".into(),
            "must be a positive number of seconds".into(),
        )),
        s if s > MAX_LIFETIME => Err(ConfigError::Invalid(
            "token_lifetime",
            s.to_string(),
            format!("must be at most {MAX_LIFETIME} seconds (366 days)"),
        )),
        seconds => Ok(seconds),
    }
}

fn client_cache(cache: CacheSection) -> Result<u64, ConfigError> {
    match cache.clients {
        Some(0) => Err(ConfigError::Invalid(
            "cache.clients",
            "0".into(),
            "must be at least 1".into(),
        )),
        n => Ok(n.unwrap_or(DEFAULT_CLIENT_CACHE)),
    }
}

/// `aud` of tokens requested without an audience: a non-empty URI.
fn default_audience(audience: Option<String>) -> Result<Option<String>, ConfigError> {
    match audience {
        Some(a) if a.trim().is_empty() => Err(ConfigError::Invalid(
            "default_audience",
            a,
            "must not be empty (leave it out to use the issuer)".into(),
        )),
        a => Ok(a),
    }
}

/// `[grant_types]`: a grant is on unless switched off.
fn client_credentials_enabled(section: Option<GrantTypes>) -> bool {
    section
        .and_then(|g| g.client_credentials)
        .is_none_or(|t| t.enabled)
}

/// `[keys]`: rotation more often than once a minute is a mistake.
fn rotate_every(section: KeysSection) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = section.rotate_every else {
        return Ok(None);
    };
    match humantime::parse_duration(&text) {
        Ok(d) if d.as_secs() >= 60 => Ok(Some(d)),
        Ok(_) => Err(ConfigError::Invalid(
            "keys.rotate_every",
            text,
            "must be at least one minute".into(),
        )),
        Err(e) => Err(ConfigError::Invalid(
            "keys.rotate_every",
            text,
            e.to_string(),
        )),
    }
}

/// `[opaque_tokens]`
fn opaque_max_batch(section: OpaqueSection) -> Result<usize, ConfigError> {
    // Above the queue's size a group could never fill; far above, the
    // group's buffer (allocated at start) would abort the process.
    match section.max_batch.unwrap_or(DEFAULT_OPAQUE_MAX_BATCH) {
        n @ 1..=crate::store::GROUP_QUEUE => Ok(n),
        n => Err(ConfigError::Invalid(
            "opaque_tokens.max_batch",
            n.to_string(),
            format!("must be from 1 to {}", crate::store::GROUP_QUEUE),
        )),
    }
}

fn tls(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<Tls>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(Tls { cert, key })),
        (None, None) => Ok(None),
        _ => Err(ConfigError::Invalid(
            "TLS settings",
            "tls_cert/tls_key".into(),
            "give both the certificate and the key, or neither".into(),
        )),
    }
}

/// `[limits]`, each key defaulting on its own. Counts of at least one, so
/// that no setting locks everyone out.
fn limits(l: LimitsSection) -> Result<LimitsConfig, ConfigError> {
    let d = LimitsConfig::default();
    Ok(LimitsConfig {
        enabled: l.enabled.unwrap_or(d.enabled),
        per_address: l.per_address.unwrap_or(d.per_address),
        per_address_burst: l.per_address_burst.unwrap_or(d.per_address_burst),
        per_client: l.per_client.unwrap_or(d.per_client),
        per_client_burst: l.per_client_burst.unwrap_or(d.per_client_burst),
        per_client_introspection: l
            .per_client_introspection
            .map(|rate| (rate, l.per_client_introspection_burst.unwrap_or(2 * rate))),
        failures_before_backoff: l
            .failures_before_backoff
            .unwrap_or(d.failures_before_backoff)
            .max(1),
        trusted_proxies: trusted_proxies(l.trusted_proxies.unwrap_or_default())?,
        max_connections: l.max_connections.unwrap_or(d.max_connections).max(1),
        max_connections_per_address: l
            .max_connections_per_address
            .unwrap_or(d.max_connections_per_address)
            .max(1),
        request_timeout: match l.request_timeout {
            None => d.request_timeout,
            Some(t) => humantime::parse_duration(&t).map_err(|e| {
                ConfigError::Invalid("limits.request_timeout", t.clone(), e.to_string())
            })?,
        },
        // hyper needs room for at least one read buffer.
        max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes).max(8192),
    })
}

/// `[spiffe] bundles`: each trust domain a SPIFFE-ID §2.1 name, each
/// endpoint an https URL (draft-ietf-oauth-spiffe-client-auth: the bundle
/// endpoint's WebPKI profile), or http on the loopback interface when
/// `allow_insecure_jwks_localhost` is on.
fn spiffe_bundles(
    bundles: BTreeMap<String, String>,
    insecure_localhost: bool,
) -> Result<BTreeMap<String, String>, ConfigError> {
    for (domain, endpoint) in &bundles {
        if !crate::oauth::spiffe::is_trust_domain(domain) {
            return Err(ConfigError::Invalid(
                "spiffe.bundles trust domain",
                domain.clone(),
                "a trust domain name has only lowercase letters, digits, '.', '-' and '_' (SPIFFE-ID §2.1), with no spiffe:// before it".into(),
            ));
        }
        let bad = |why: &str| {
            ConfigError::Invalid("spiffe.bundles endpoint", endpoint.clone(), why.into())
        };
        let url = url::Url::parse(endpoint).map_err(|e| bad(&format!("not a URL: {e}")))?;
        let allowed = match url.scheme() {
            "https" => true,
            "http" => insecure_localhost && crate::keys::remote::is_loopback(&url),
            _ => false,
        };
        if !allowed {
            return Err(bad("must be https (http only on 127.0.0.1 or localhost, with [client_assertions] allow_insecure_jwks_localhost)"));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must have no fragment and no credentials"));
        }
    }
    Ok(bundles)
}

/// CIDRs, or bare addresses (one host each).
fn trusted_proxies(entries: Vec<String>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    entries
        .into_iter()
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::Invalid(
                        "limits.trusted_proxies entry",
                        p,
                        "an IP address or CIDR".into(),
                    )
                })
        })
        .collect()
}

/// `WRIT_LOG_FORMAT` (or its flag) wins over `log_format` in the file.
fn log_format(env: Option<&str>, file: Option<LogFormat>) -> Result<LogFormat, ConfigError> {
    let env = match env {
        None => None,
        Some("json") => Some(LogFormat::Json),
        Some("text") => Some(LogFormat::Text),
        Some(other) => {
            return Err(ConfigError::Invalid(
                "WRIT_LOG_FORMAT",
                other.into(),
                "use text or json".into(),
            ))
        }
    };
    Ok(env.or(file).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse_file("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert!(err.contains("listen_port"), "{err}");
        let err =
            Config::parse_file("[grant_types.client_credentials]\nenable = false\n").unwrap_err();
        assert!(err.contains("enable"), "{err}");
    }

    #[test]
    fn value_errors_name_the_line_and_the_key() {
        let err =
            Config::parse_file("listen = \"127.0.0.1:1\"\ntoken_lifetime = -5\n").unwrap_err();
        assert!(err.starts_with("line 2, key token_lifetime: "), "{err}");
        assert!(err.contains("-5"), "{err}");
        let err =
            Config::parse_file("[limits]\nenabled = true\nper_client = \"many\"\n").unwrap_err();
        assert!(err.starts_with("line 3, key limits.per_client: "), "{err}");
        let err = Config::parse_file("listen = \"a\"\n\nissuer = [unclosed\n").unwrap_err();
        assert!(err.starts_with("line 3"), "{err}");
    }

    #[test]
    fn spiffe_bundles_name_trust_domains_and_fetchable_endpoints() {
        let read = |toml: &str| {
            Config::from_parts(Config::parse_file(toml).unwrap(), &Overrides::default())
        };
        let config = read(
            "[spiffe]\nbundles = { \"example.org\" = \"https://spire.example.com/bundle\" }\n",
        )
        .unwrap();
        assert_eq!(
            config.spiffe_bundles.get("example.org").map(String::as_str),
            Some("https://spire.example.com/bundle")
        );
        for bad in [
            "[spiffe]\nbundles = { \"spiffe://example.org\" = \"https://x/b\" }\n",
            "[spiffe]\nbundles = { \"Example.org\" = \"https://x/b\" }\n",
            "[spiffe]\nbundles = { \"example.org\" = \"http://x.example.com/b\" }\n",
            "[spiffe]\nbundles = { \"example.org\" = \"http://127.0.0.1:9/b\" }\n",
            "[spiffe]\nbundles = { \"example.org\" = \"https://u:p@x/b\" }\n",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let local = "[client_assertions]\nallow_insecure_jwks_localhost = true\n[spiffe]\nbundles = { \"example.org\" = \"http://127.0.0.1:9/b\" }\n";
        assert!(read(local).is_ok());
    }

    #[test]
    fn listen_takes_a_host_name() {
        let addr = listen(Some("localhost:8080".into())).unwrap();
        assert!(addr.ip().is_loopback() && addr.port() == 8080, "{addr}");
        assert!(listen(Some("nohost.invalid:80".into())).is_err());
        assert!(
            listen(Some("localhost".into())).is_err(),
            "a port is needed"
        );
    }

    #[test]
    fn lifetimes_and_audience_are_bounded() {
        assert!(token_lifetime(Some(18_446_744_073_709_551_615)).is_err());
        assert_eq!(token_lifetime(Some(MAX_LIFETIME)).unwrap(), MAX_LIFETIME);
        assert!(default_audience(Some(" ".into())).is_err());
        assert_eq!(default_audience(None).unwrap(), None);
        let batch = |n| opaque_max_batch(OpaqueSection { max_batch: Some(n) });
        assert!(batch(0).is_err());
        assert!(batch(crate::store::GROUP_QUEUE + 1).is_err());
        assert!(batch(usize::MAX).is_err());
        assert_eq!(batch(1).unwrap(), 1);
        assert_eq!(
            batch(crate::store::GROUP_QUEUE).unwrap(),
            crate::store::GROUP_QUEUE
        );
    }

    #[test]
    fn rfc8414_2_a_wildcard_listener_needs_an_issuer() {
        let mut config = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        let err = config.check_serving().unwrap_err().to_string();
        assert!(err.contains("wildcard address 0.0.0.0:8080"), "{err}");
        config.issuer = Some("https://auth.example".into());
        assert!(config.check_serving().is_ok());
        assert!(Config::default().check_serving().is_ok());
    }

    #[test]
    fn grant_can_be_switched_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.toml");
        std::fs::write(&path, "[grant_types.client_credentials]\nenabled = false\n").unwrap();
        let config = Config::resolve(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert!(!config.client_credentials_enabled);
    }

    #[test]
    fn flags_win_over_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndatabase = \"sqlite://file.db\"\n",
        )
        .unwrap();
        let config = Config::resolve(&Overrides {
            config: Some(path),
            listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.database, "sqlite://file.db");
        assert_eq!(config.token_lifetime, 3600);
        assert!(config.client_credentials_enabled);
    }

    #[test]
    fn key_rotation_schedule_parses_durations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.toml");
        std::fs::write(&path, "[keys]\nrotate_every = \"30d\"\n").unwrap();
        let config = Config::resolve(&Overrides {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.rotate_every.unwrap().as_secs(), 30 * 86400);
        std::fs::write(&path, "[keys]\nrotate_every = \"soon\"\n").unwrap();
        assert!(Config::resolve(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn tls_needs_both_certificate_and_key() {
        let err = Config::resolve(&Overrides {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writ.toml");
        std::fs::write(&path, "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
        let config = Config::resolve(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.tls.unwrap().key, std::path::PathBuf::from("k.pem"));
    }

    #[test]
    fn log_format_from_the_environment_wins_over_the_file() {
        let file = Config::parse_file("log_format = \"json\"\n").unwrap();
        let config = Config::from_parts(file, &Overrides::default()).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        let file = Config::parse_file("log_format = \"json\"\n").unwrap();
        let overrides = Overrides {
            log_format: Some("text".into()),
            ..Default::default()
        };
        let config = Config::from_parts(file, &overrides).unwrap();
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn unknown_log_format_names_the_variable() {
        let err = Config::resolve(&Overrides {
            log_format: Some("xml".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid WRIT_LOG_FORMAT 'xml': use text or json"
        );
    }

    #[test]
    fn empty_master_key_counts_as_unset() {
        let with = |key: &str| {
            Config::resolve(&Overrides {
                master_key: Some(key.into()),
                ..Default::default()
            })
            .unwrap()
            .master_key
        };
        assert_eq!(with(""), None);
        assert_eq!(with("a2V5").as_deref(), Some("a2V5"));
    }

    #[test]
    fn rfc8414_2_issuer_has_no_query() {
        let err = Config::resolve(&Overrides {
            issuer: Some("https://a.example/?x=1".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("issuer"));
    }
}
