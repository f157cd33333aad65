//! Settings: flags, then environment variables (both through clap), then the
//! TOML file, then defaults, resolved into one validated `Config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://writ.db";
pub const DEFAULT_TOKEN_LIFETIME: u64 = 3600;
pub const DEFAULT_OPAQUE_MAX_BATCH: usize = 512;

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
    /// Failed authentications of one client id from one address before it
    /// must wait (1 s, doubling to a minute).
    pub failures_before_backoff: u32,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDRs).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
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
            failures_before_backoff: 5,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
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
    pub failures_before_backoff: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_connections: Option<usize>,
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
    /// validated here, so a bad one stops the server at start.
    pub fn from_parts(file: FileConfig, overrides: &Overrides) -> Result<Self, ConfigError> {
        let defaults = Config::default();
        let listen = overrides.listen.clone().or(file.listen);
        let listen = match listen {
            Some(text) => text.parse().map_err(|e: std::net::AddrParseError| {
                ConfigError::Invalid("listen address", text.clone(), e.to_string())
            })?,
            None => defaults.listen,
        };
        let issuer = overrides.issuer.clone().or(file.issuer);
        if let Some(issuer) = &issuer {
            validate_issuer(issuer)?;
        }
        let token_lifetime = file.token_lifetime.unwrap_or(defaults.token_lifetime);
        if token_lifetime == 0 {
            return Err(ConfigError::Invalid(
                "token_lifetime",
                "0".into(),
                "must be a positive number of seconds".into(),
            ));
        }
        let rotate_every = match file.keys.and_then(|k| k.rotate_every) {
            None => None,
            Some(text) => match humantime::parse_duration(&text) {
                Ok(d) if d.as_secs() >= 60 => Some(d),
                Ok(_) => {
                    return Err(ConfigError::Invalid(
                        "keys.rotate_every",
                        text,
                        "must be at least one minute".into(),
                    ))
                }
                Err(e) => {
                    return Err(ConfigError::Invalid(
                        "keys.rotate_every",
                        text,
                        e.to_string(),
                    ))
                }
            },
        };
        let opaque_max_batch = file
            .opaque_tokens
            .and_then(|o| o.max_batch)
            .unwrap_or(defaults.opaque_max_batch);
        if opaque_max_batch == 0 {
            return Err(ConfigError::Invalid(
                "opaque_tokens.max_batch",
                "0".into(),
                "must be at least 1".into(),
            ));
        }
        let tls = match (
            overrides.tls_cert.clone().or(file.tls_cert),
            overrides.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(Tls { cert, key }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "TLS settings",
                    "tls_cert/tls_key".into(),
                    "give both the certificate and the key, or neither".into(),
                ))
            }
        };
        let limits = match file.limits {
            None => LimitsConfig::default(),
            Some(l) => {
                let d = LimitsConfig::default();
                let mut proxies = Vec::new();
                for p in l.trusted_proxies.unwrap_or_default() {
                    let net = p
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            ConfigError::Invalid(
                                "limits.trusted_proxies entry",
                                p.clone(),
                                "an IP address or CIDR".into(),
                            )
                        })?;
                    proxies.push(net);
                }
                LimitsConfig {
                    enabled: l.enabled.unwrap_or(d.enabled),
                    per_address: l.per_address.unwrap_or(d.per_address),
                    per_address_burst: l.per_address_burst.unwrap_or(d.per_address_burst),
                    per_client: l.per_client.unwrap_or(d.per_client),
                    per_client_burst: l.per_client_burst.unwrap_or(d.per_client_burst),
                    failures_before_backoff: l
                        .failures_before_backoff
                        .unwrap_or(d.failures_before_backoff)
                        .max(1),
                    trusted_proxies: proxies,
                    max_connections: l.max_connections.unwrap_or(d.max_connections).max(1),
                    request_timeout: match l.request_timeout {
                        None => d.request_timeout,
                        Some(t) => humantime::parse_duration(&t).map_err(|e| {
                            ConfigError::Invalid("limits.request_timeout", t.clone(), e.to_string())
                        })?,
                    },
                    // hyper needs room for at least one read buffer.
                    max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes).max(8192),
                }
            }
        };
        let log_format = std::env::var("WRIT_LOG_FORMAT")
            .ok()
            .map(|v| match v.as_str() {
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                _ => Err(ConfigError::Invalid(
                    "WRIT_LOG_FORMAT",
                    v.clone(),
                    "use text or json".into(),
                )),
            })
            .transpose()?
            .or(file.log_format)
            .unwrap_or_default();
        Ok(Self {
            log_format,
            limits,
            tls,
            rotate_every,
            opaque_max_batch,
            listen,
            database: overrides
                .database
                .clone()
                .or(file.database)
                .unwrap_or(defaults.database),
            issuer,
            default_audience: file.default_audience,
            token_lifetime,
            client_credentials_enabled: file
                .grant_types
                .and_then(|g| g.client_credentials)
                .is_none_or(|t| t.enabled),
            master_key: std::env::var("WRIT_MASTER_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        })
    }

    pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(shown.clone(), e))?;
        Self::parse_file(&text).map_err(|e| ConfigError::Parse(shown, e))
    }

    pub fn parse_file(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }
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
    fn rfc8414_2_issuer_has_no_query() {
        let err = Config::resolve(&Overrides {
            issuer: Some("https://a.example/?x=1".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("issuer"));
    }
}
