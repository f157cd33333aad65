//! The `writ` command: `serve`, and the management commands that work
//! directly on the same database as the server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogFormat, Overrides};
use crate::keys::rotation::{ensure_signing_keys, rotate};
use crate::keys::{generate_secret, random_bytes, MasterKey};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::oauth::policy::{allowed, parse_scope_patterns};
use crate::server;
use crate::store::{ApiRecord, ClientRecord, GrantRecord, Store};
use crate::types::{Algorithm, ClaimsProfile, TokenFormat};

#[derive(Debug, Parser)]
#[command(
    name = "writ",
    version,
    about = "An OAuth 2.0 authorization server for machine-to-machine tokens"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Database URL: sqlite://PATH
    #[arg(long, global = true, env = "WRIT_DATABASE_URL")]
    database: Option<String>,
    /// TOML configuration file
    #[arg(long, global = true, env = "WRIT_CONFIG")]
    config: Option<PathBuf>,
    /// Print one JSON object or array on stdout
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server
    Serve(ServeArgs),
    /// Manage clients (the services that ask for tokens)
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage APIs (the audiences tokens are issued for)
    #[command(subcommand)]
    Api(ApiCommand),
    /// Manage which API scopes a client may receive
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Manage signing keys
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "WRIT_LISTEN")]
    listen: Option<String>,
    /// Issuer URL (default: http(s)://<listen address>)
    #[arg(long, env = "WRIT_ISSUER")]
    issuer: Option<String>,
    /// Serve HTTPS: certificate chain (PEM); reloaded when the file changes
    #[arg(long, env = "WRIT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Serve HTTPS: private key (PEM)
    #[arg(long, env = "WRIT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and, once only, its secret
    Create {
        #[arg(long)]
        name: String,
        /// Allowed scopes, space-delimited; a trailing * is a wildcard (market:*)
        #[arg(long, default_value = "")]
        scope: String,
        /// Scope given when a request names none
        #[arg(long)]
        default_scope: Option<String>,
        /// A public client: no secret, authenticates with its client_id alone
        #[arg(long)]
        public: bool,
        /// Token lifetime in seconds
        #[arg(long)]
        lifetime: Option<u64>,
        /// Grant types the client may use
        #[arg(long, value_delimiter = ',', num_args = 1.., default_value = GRANT_TYPE)]
        grant_types: Vec<String>,
        /// Access token format: jwt or opaque (default: the API's, else jwt)
        #[arg(long)]
        format: Option<TokenFormat>,
    },
    /// Change a client's settings
    Update {
        id: String,
        /// jwt, opaque, or default (follow the API)
        #[arg(long)]
        format: Option<FormatSetting>,
        /// Static claims for its tokens, a JSON object ('{}' removes them)
        #[arg(long)]
        claims: Option<String>,
    },
    /// List clients
    List,
    /// Show one client (never its secret)
    Show { id: String },
    /// Refuse the client's token requests until enabled again
    Disable { id: String },
    /// Accept the client's token requests again
    Enable { id: String },
    /// Delete the client and its grants
    Delete { id: String },
    /// Add a new secret; the old one keeps working for the overlap
    RotateSecret {
        id: String,
        /// How long the old secret keeps working, e.g. 24h, 30m; 0 revokes it at once
        #[arg(long, default_value = "24h", value_parser = parse_overlap)]
        overlap: Duration,
    },
    /// Revoke one secret at once (ids are listed by `client show`)
    RevokeSecret { id: String, secret_id: i64 },
}

/// `--format` on update: a format, or back to the default.
#[derive(Debug, Clone, Copy)]
struct FormatSetting(Option<TokenFormat>);

impl std::str::FromStr for FormatSetting {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "default" => Ok(Self(None)),
            other => Ok(Self(Some(
                other
                    .parse()
                    .map_err(|e: String| format!("{e}, or default"))?,
            ))),
        }
    }
}

fn parse_overlap(s: &str) -> std::result::Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("'{s}': {e} (e.g. 24h, 30m, 0)"))
}

#[derive(Debug, Subcommand)]
enum ApiCommand {
    /// Register an API (an audience, RFC 8707 resource)
    Create {
        /// Absolute URI that tokens name in `aud`
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        name: Option<String>,
        /// Scopes the API defines, space-delimited
        #[arg(long, default_value = "")]
        scope: String,
        /// Token lifetime in seconds
        #[arg(long)]
        lifetime: Option<u64>,
        /// Longest lifetime any token for this API may have, in seconds
        #[arg(long)]
        max_lifetime: Option<u64>,
        /// Signing algorithm: ES256, RS256 or EdDSA
        #[arg(long, default_value = "ES256")]
        algorithm: Algorithm,
        /// Access token format: jwt (default) or opaque
        #[arg(long)]
        format: Option<TokenFormat>,
        /// JWT claims profile: standard (default) or auth0 (gty, azp, sub=<id>@clients)
        #[arg(long)]
        claims: Option<ClaimsProfile>,
    },
    /// Change an API's settings
    Update {
        identifier: String,
        /// jwt, opaque, or default (jwt)
        #[arg(long)]
        format: Option<FormatSetting>,
        /// standard or auth0
        #[arg(long)]
        claims: Option<ClaimsProfile>,
    },
    List,
    Show {
        identifier: String,
    },
    Delete {
        identifier: String,
    },
}

#[derive(Debug, Subcommand)]
enum GrantCommand {
    /// Let a client receive some of an API's scopes
    Create {
        #[arg(long)]
        client: String,
        #[arg(long)]
        api: String,
        /// Scopes of the API, space-delimited
        #[arg(long)]
        scope: String,
    },
    List {
        #[arg(long)]
        client: Option<String>,
    },
    Delete {
        #[arg(long)]
        client: String,
        #[arg(long)]
        api: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Start signing with new keys; old ones stay published until their tokens expire
    Rotate {
        #[arg(long)]
        algorithm: Option<Algorithm>,
    },
    List,
}

/// A CLI failure: one line on stderr.
#[derive(Debug)]
struct CliError(String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

type Result<T> = std::result::Result<T, CliError>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(CliError(message.into()))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, as text or one JSON object a line. Audit events use the
/// target `audit`, so they can be routed or filtered on their own
/// (`RUST_LOG=info,audit=off`). The management commands log warnings and
/// audit events only.
///
/// Lines are written by a background thread, so a request never waits on a
/// write to stderr; nothing is dropped (a full queue makes the logger wait),
/// and the returned guard flushes what is queued when it is dropped.
fn init_logging(serving: bool, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if serving { "info" } else { "warn,audit=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(true)
            .try_init(),
    };
    guard
}

async fn run(cli: Cli) -> Result<()> {
    let mut overrides = Overrides {
        config: cli.global.config.clone(),
        database: cli.global.database.clone(),
        ..Default::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.listen = args.listen.clone();
        overrides.issuer = args.issuer.clone();
        overrides.tls_cert = args.tls_cert.clone();
        overrides.tls_key = args.tls_key.clone();
    }
    let config = Config::resolve(&overrides)?;
    let _log = init_logging(matches!(cli.command, Command::Serve(_)), config.log_format);
    if let Command::Serve(_) = cli.command {
        return serve(config).await;
    }
    let (store, master) = server::open(&config).await?;
    let out = Output {
        json: cli.global.json,
    };
    let ctx = Ctx {
        store: &store,
        master: &master,
        config: &config,
        now: SystemClock.now(),
        out,
    };
    let result = match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::Client(c) => ctx.client(c).await,
        Command::Api(c) => ctx.api(c).await,
        Command::Grant(c) => ctx.grant(c).await,
        Command::Key(c) => ctx.key(c).await,
    };
    store.close().await;
    result
}

async fn serve(config: Config) -> Result<()> {
    let running = server::start(config, Arc::new(SystemClock)).await?;
    survive_file_size_limit();
    let stop = running.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    running.wait().await?;
    Ok(())
}

/// A write past a file size limit (`ulimit -f`) raises SIGXFSZ, which would
/// kill the server between a commit and its answers. Handled, the write just
/// fails (EFBIG), the store reports it, and requests that write get 503, as
/// with a full disk; PostgreSQL ignores the signal for the same reason.
fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut xfsz) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            tokio::spawn(async move {
                let mut said: Option<std::time::Instant> = None;
                while xfsz.recv().await.is_some() {
                    // Once a minute at most: every refused write raises it.
                    if said.is_none_or(|t| t.elapsed().as_secs() >= 60) {
                        said = Some(std::time::Instant::now());
                        tracing::error!("a write went past the file size limit (SIGXFSZ)");
                    }
                }
            });
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    /// JSON for scripts, or the same fields as aligned `key: value` lines.
    fn print(&self, value: &Value) {
        if self.json {
            println!("{value}");
            return;
        }
        match value {
            Value::Array(items) if items.is_empty() => println!("(none)"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    print_fields(item);
                }
            }
            other => print_fields(other),
        }
    }
}

fn print_fields(value: &Value) {
    let Value::Object(map) = value else {
        println!("{value}");
        return;
    };
    let width = map.keys().map(String::len).max().unwrap_or(0) + 1;
    for (k, v) in map {
        let shown = match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        println!("{:width$} {shown}", format!("{k}:"));
    }
}

/// Audit event for a change made through the CLI: what, to what, by whom.
fn audit(event: &str, subject: &str) {
    let by = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    tracing::info!(target: "audit", event, subject, by = %by, via = "cli", outcome = "ok");
}

struct Ctx<'a> {
    store: &'a Store,
    master: &'a MasterKey,
    config: &'a Config,
    now: i64,
    out: Output,
}

fn positive(what: &str, v: Option<u64>) -> Result<Option<u64>> {
    match v {
        Some(0) => fail(format!("{what} must be a positive number of seconds")),
        v => Ok(v),
    }
}

impl Ctx<'_> {
    async fn client(&self, command: ClientCommand) -> Result<()> {
        match command {
            ClientCommand::Create {
                name,
                scope,
                default_scope,
                public,
                lifetime,
                grant_types,
                format,
            } => {
                if name.trim().is_empty() {
                    return fail("--name must not be empty");
                }
                let scopes = parse_scope_patterns(&scope)?;
                let default_scope = match default_scope {
                    None => None,
                    Some(d) => {
                        let d = parse_scope_patterns(&d)?;
                        if let Some(bad) = d.iter().find(|s| s.contains('*')) {
                            return fail(format!("default scope '{bad}' must not be a pattern"));
                        }
                        if let Some(bad) = d.iter().find(|s| !allowed(&scopes, s)) {
                            return fail(format!(
                                "default scope '{bad}' is not among the client's scopes"
                            ));
                        }
                        Some(d)
                    }
                };
                let mut grant_types: Vec<String> = grant_types
                    .iter()
                    .flat_map(|g| g.split([' ', ',']))
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect();
                grant_types.dedup();
                if let Some(bad) = grant_types.iter().find(|g| *g != GRANT_TYPE) {
                    return fail(format!(
                        "unknown grant type '{bad}': Writ supports client_credentials"
                    ));
                }
                let record = ClientRecord {
                    id: hex(&random_bytes::<16>()),
                    name,
                    public,
                    scopes,
                    default_scope,
                    lifetime: positive("--lifetime", lifetime)?,
                    grant_types,
                    enabled: true,
                    created_at: self.now,
                    token_format: format,
                    claims: None,
                };
                let secret = (!public).then(generate_secret);
                let hash = secret
                    .as_deref()
                    .map(|s| self.master.secret_hasher().hash(s));
                self.store
                    .create_client(&record, hash.as_ref().map(|h| &h[..]))
                    .await?;
                audit("client.created", &record.id);
                let mut shown = client_json(&record);
                if let Some(secret) = secret {
                    shown["client_secret"] = json!(secret);
                    if !self.out.json {
                        eprintln!("The client secret is shown only now: store it safely.");
                    }
                }
                self.out.print(&shown);
            }
            ClientCommand::List => {
                let clients = self.store.clients().await?;
                self.out
                    .print(&Value::Array(clients.iter().map(client_json).collect()));
            }
            ClientCommand::Show { id } => {
                let client = self.store.client(&id).await?;
                let mut shown = client_json(&client);
                let grants: Vec<Value> = self
                    .store
                    .grants()
                    .await?
                    .into_iter()
                    .filter(|g| g.client_id == id)
                    .map(|g| json!({"api": g.api, "scope": g.scopes.join(" ")}))
                    .collect();
                shown["grants"] = json!(grants);
                let secrets = self.store.secrets(&id).await?;
                shown["secrets"] = json!(secrets);
                self.out.print(&shown);
            }
            ClientCommand::Disable { id } => {
                self.store.set_client_enabled(&id, false).await?;
                audit("client.disabled", &id);
                self.out.print(&json!({"client_id": id, "enabled": false}));
            }
            ClientCommand::Enable { id } => {
                self.store.set_client_enabled(&id, true).await?;
                audit("client.enabled", &id);
                self.out.print(&json!({"client_id": id, "enabled": true}));
            }
            ClientCommand::Delete { id } => {
                self.store.delete_client(&id).await?;
                audit("client.deleted", &id);
                self.out.print(&json!({"client_id": id, "deleted": true}));
            }
            ClientCommand::Update { id, format, claims } => {
                // Validate everything before changing anything.
                let claims = claims.map(|text| static_claims(&text)).transpose()?;
                if let Some(FormatSetting(format)) = format {
                    self.store.set_client_format(&id, format).await?;
                }
                if let Some(claims) = claims {
                    let claims = (!claims.is_empty()).then_some(&claims);
                    self.store.set_client_claims(&id, claims).await?;
                }
                audit("client.updated", &id);
                self.out.print(&client_json(&self.store.client(&id).await?));
            }
            ClientCommand::RotateSecret { id, overlap } => {
                let secret = generate_secret();
                let hash = self.master.secret_hasher().hash(&secret);
                let overlap = overlap.as_secs().min(i64::MAX as u64 / 4) as i64;
                self.store
                    .rotate_secret(&id, &hash, self.now, overlap)
                    .await?;
                audit("client.secret_rotated", &id);
                if !self.out.json {
                    if overlap == 0 {
                        eprintln!("The old secret no longer works.");
                    } else {
                        eprintln!(
                            "The old secret keeps working for {}.",
                            humantime::format_duration(Duration::from_secs(overlap as u64))
                        );
                    }
                    eprintln!("The new secret is shown only now: store it safely.");
                }
                let old_until = (overlap > 0).then_some(self.now + overlap);
                self.out.print(&json!({
                    "client_id": id,
                    "client_secret": secret,
                    "previous_secrets_expire_at": old_until,
                }));
            }
            ClientCommand::RevokeSecret { id, secret_id } => {
                self.store.revoke_secret(&id, secret_id).await?;
                audit("client.secret_revoked", &id);
                self.out
                    .print(&json!({"client_id": id, "secret_id": secret_id, "revoked": true}));
            }
        }
        Ok(())
    }

    async fn api(&self, command: ApiCommand) -> Result<()> {
        match command {
            ApiCommand::Create {
                identifier,
                name,
                scope,
                lifetime,
                max_lifetime,
                algorithm,
                format,
                claims,
            } => {
                validate_identifier(&identifier)?;
                let scopes = parse_scope_patterns(&scope)?;
                if let Some(bad) = scopes.iter().find(|s| s.contains('*')) {
                    return fail(format!("API scope '{bad}' must not be a pattern"));
                }
                let lifetime = positive("--lifetime", lifetime)?;
                let max_lifetime = positive("--max-lifetime", max_lifetime)?;
                if let (Some(l), Some(m)) = (lifetime, max_lifetime) {
                    if l > m {
                        return fail("--lifetime must not exceed --max-lifetime");
                    }
                }
                let record = ApiRecord {
                    name: name.unwrap_or_else(|| identifier.clone()),
                    identifier,
                    scopes,
                    lifetime,
                    max_lifetime,
                    algorithm,
                    created_at: self.now,
                    token_format: format,
                    claims_profile: claims,
                };
                self.store.create_api(&record).await?;
                audit("api.created", &record.identifier);
                ensure_signing_keys(self.store, self.master, &[algorithm], self.now).await?;
                self.out.print(&json!(record));
            }
            ApiCommand::Update {
                identifier,
                format,
                claims,
            } => {
                if let Some(FormatSetting(format)) = format {
                    self.store.set_api_format(&identifier, format).await?;
                }
                if let Some(profile) = claims {
                    self.store
                        .set_api_claims_profile(&identifier, Some(profile))
                        .await?;
                }
                audit("api.updated", &identifier);
                self.out.print(&json!(self.store.api(&identifier).await?));
            }
            ApiCommand::List => self.out.print(&json!(self.store.apis().await?)),
            ApiCommand::Show { identifier } => {
                self.out.print(&json!(self.store.api(&identifier).await?))
            }
            ApiCommand::Delete { identifier } => {
                self.store.delete_api(&identifier).await?;
                audit("api.deleted", &identifier);
                self.out
                    .print(&json!({"identifier": identifier, "deleted": true}));
            }
        }
        Ok(())
    }

    async fn grant(&self, command: GrantCommand) -> Result<()> {
        match command {
            GrantCommand::Create { client, api, scope } => {
                self.store.client(&client).await?;
                let target = self.store.api(&api).await?;
                let scopes = parse_scope_patterns(&scope)?;
                if let Some(bad) = scopes.iter().find(|s| !target.scopes.contains(s)) {
                    return fail(format!("API '{api}' defines no scope '{bad}'"));
                }
                let record = GrantRecord {
                    client_id: client,
                    api,
                    scopes,
                    created_at: self.now,
                };
                self.store.create_grant(&record).await?;
                audit(
                    "grant.created",
                    &format!("{} {}", record.client_id, record.api),
                );
                self.out.print(&json!(record));
            }
            GrantCommand::List { client } => {
                let grants: Vec<GrantRecord> = self
                    .store
                    .grants()
                    .await?
                    .into_iter()
                    .filter(|g| client.as_ref().is_none_or(|c| *c == g.client_id))
                    .collect();
                self.out.print(&json!(grants));
            }
            GrantCommand::Delete { client, api } => {
                self.store.delete_grant(&client, &api).await?;
                audit("grant.deleted", &format!("{client} {api}"));
                self.out
                    .print(&json!({"client_id": client, "api": api, "deleted": true}));
            }
        }
        Ok(())
    }

    async fn key(&self, command: KeyCommand) -> Result<()> {
        match command {
            KeyCommand::Rotate { algorithm } => {
                let created = rotate(
                    self.store,
                    self.master,
                    algorithm,
                    self.config.token_lifetime,
                    self.now,
                )
                .await?;
                for kid in &created {
                    audit("key.rotated", kid);
                }
                self.out.print(&json!({"activated": created}));
            }
            KeyCommand::List => {
                let keys: Vec<Value> = self
                    .store
                    .keys()
                    .await?
                    .into_iter()
                    .map(|k| {
                        let mut v = json!(k);
                        v["state"] = json!(k.state(self.now).as_str());
                        v
                    })
                    .collect();
                self.out.print(&json!(keys));
            }
        }
        Ok(())
    }
}

fn client_json(c: &ClientRecord) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.public,
        "scope": c.scopes.join(" "),
        "default_scope": c.default_scope.as_ref().map(|d| d.join(" ")),
        "lifetime": c.lifetime,
        "grant_types": c.grant_types,
        "enabled": c.enabled,
        "format": c.token_format.map(|f| f.as_str()),
        "claims": c.claims,
        "created_at": c.created_at,
    })
}

/// A JSON object of extra claims, none of them a name Writ sets itself.
fn static_claims(text: &str) -> Result<serde_json::Map<String, Value>> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return fail(format!("--claims must be a JSON object, got: {text}"));
    };
    if let Some(name) = map
        .keys()
        .find(|k| crate::token::jwt::RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return fail(format!("claim '{name}' is reserved: Writ sets it itself"));
    }
    Ok(map)
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn validate_identifier(identifier: &str) -> Result<()> {
    match url::Url::parse(identifier) {
        Ok(u) if u.fragment().is_none() && !identifier.contains('#') => Ok(()),
        Ok(_) => fail(format!(
            "API identifier '{identifier}' must not contain a fragment (RFC 8707 §2)"
        )),
        Err(e) => fail(format!(
            "API identifier '{identifier}' is not an absolute URI: {e}"
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
