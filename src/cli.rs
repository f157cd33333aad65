//! The `writ` command: `serve`, and the management commands that work
//! directly on the same database as the server. Each management command
//! only translates: flags → an operation of `admin` → printed output, or
//! one line on stderr.

mod logging;
mod output;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::admin::{
    Actor, Admin, AdminError, ApiChanges, ClientChanges, Field, FormatSetting, NewApi, NewClient,
    NewGrant, NewTrustRule,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Overrides};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::server::{self, StartError};
use crate::store::Location;
use crate::types::{Algorithm, AuthMethod, ClaimsProfile, TokenFormat};
use output::Output;

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
    /// Database URL: sqlite://PATH (the default, sqlite://writ.db) or
    /// postgres://USER@HOST/DATABASE
    #[arg(long, global = true, env = "WRIT_DATABASE_URL")]
    database: Option<String>,
    /// TOML configuration file
    #[arg(long, global = true, env = "WRIT_CONFIG")]
    config: Option<PathBuf>,
    /// Print one JSON object or array on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Log format, text or json (overrides `log_format` in the file)
    #[arg(long, global = true, env = "WRIT_LOG_FORMAT", hide = true)]
    log_format: Option<String>,
    /// Master key, base64 of 32 bytes. Meant for the environment: a flag
    /// would show in the process list.
    #[arg(
        long,
        global = true,
        env = "WRIT_MASTER_KEY",
        hide = true,
        hide_env_values = true
    )]
    master_key: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server (creates the database on first start)
    Serve(ServeArgs),
    /// Create the database and its master key without serving; other
    /// management commands refuse a database that does not exist
    Init,
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
    /// Print a one-time link that signs in to the web console (valid for
    /// 5 minutes, once)
    Console(ConsoleArgs),
    /// Copy the SQLite database consistently, also while servers run
    Backup {
        /// The file to write; an existing file is never overwritten
        path: PathBuf,
    },
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
    /// The global `--json` does nothing for `serve`: declared here, hidden,
    /// so that serve's help does not offer it, and refused if given.
    #[arg(long, hide = true)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConsoleArgs {
    /// The server's public URL, as a browser reaches it (default: the
    /// issuer, else http(s)://<listen address>)
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The issuer, where the configuration has none: the same variable as
    /// `serve` reads, so the link names the server's public URL.
    #[arg(long, env = "WRIT_ISSUER", hide = true)]
    issuer: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and, once only, its secret
    Create(ClientCreateArgs),
    /// Change a client's settings
    Update(ClientUpdateArgs),
    /// List clients, oldest first, a page at a time
    List(ClientListArgs),
    /// Register clients from JSON Lines (FILE, or - for standard input),
    /// keeping the ids and secrets they bring
    Import {
        /// One client a line: {"client_id", "client_secret", "name", "scope", "public"}
        file: PathBuf,
    },
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
    RevokeSecret {
        id: String,
        /// The secret's id, from `client show`
        secret_id: i64,
    },
    /// Trust another issuer's tokens for a client without a secret
    /// (workload identity); prints the rule's id
    TrustAdd {
        id: String,
        #[command(flatten)]
        rule: TrustArgs,
    },
    /// Remove a trust rule (ids are listed by `client show`)
    TrustRemove {
        id: String,
        /// The rule's id, from `client show`
        rule_id: i64,
    },
}

#[derive(Debug, Args)]
struct TrustArgs {
    /// The issuer whose tokens authenticate the client (https; its keys
    /// come from its OpenID Connect discovery document)
    #[arg(long = "trust-issuer", value_name = "URL", required = true)]
    issuer: Option<String>,
    /// The tokens' `sub`, exactly or as a pattern: * is any run of
    /// characters (repo:acme/app:ref:refs/heads/*)
    #[arg(long = "trust-subject", value_name = "SUBJECT", requires = "issuer")]
    subject: Option<String>,
    /// The `aud` the tokens must carry (default: Writ's issuer)
    #[arg(long = "trust-audience", value_name = "AUD", requires = "issuer")]
    audience: Option<String>,
    /// A further condition, NAME=VALUE (VALUE may be a pattern; a NAME
    /// starting with / is a JSON pointer: /kubernetes.io/namespace=prod)
    #[arg(long = "trust-claim", value_name = "NAME=VALUE", requires = "issuer", value_parser = parse_claim_condition)]
    claims: Vec<(String, String)>,
}

impl TrustArgs {
    fn rule(self) -> Option<NewTrustRule> {
        Some(NewTrustRule {
            issuer: self.issuer?,
            subject: self.subject,
            audience: self.audience,
            claims: self.claims,
        })
    }
}

fn parse_claim_condition(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}

#[derive(Debug, Args)]
struct OptionalTrustArgs {
    /// An issuer whose tokens authenticate the client instead of a secret
    /// (workload identity; https; more with `client trust-add`)
    #[arg(long = "trust-issuer", value_name = "URL")]
    issuer: Option<String>,
    /// The tokens' `sub`, exactly or as a pattern: * is any run of
    /// characters (repo:acme/app:ref:refs/heads/*)
    #[arg(long = "trust-subject", value_name = "SUBJECT", requires = "issuer")]
    subject: Option<String>,
    /// The `aud` the tokens must carry (default: Writ's issuer)
    #[arg(long = "trust-audience", value_name = "AUD", requires = "issuer")]
    audience: Option<String>,
    /// A further condition on the tokens, NAME=VALUE (see `client trust-add`)
    #[arg(long = "trust-claim", value_name = "NAME=VALUE", requires = "issuer", value_parser = parse_claim_condition)]
    claims: Vec<(String, String)>,
}

// No doc comments on these argument structs: the subcommand's help text
// comes from its variant above.
#[derive(Debug, Args)]
struct ClientListArgs {
    /// Clients on a page
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// Start after this client id (the last one of the previous page)
    #[arg(long)]
    after: Option<String>,
    /// Only clients whose name starts with this
    #[arg(long)]
    name_prefix: Option<String>,
}

#[derive(Debug, Args)]
struct ClientCreateArgs {
    /// A name for people: the service it is
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
    /// The client's public keys, a JWK Set file: it authenticates with JWTs
    /// it signs (private_key_jwt) and gets no secret
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// Or the https URL of its JWK Set, which the server fetches and caches
    #[arg(long, value_name = "URL", conflicts_with = "jwks")]
    jwks_uri: Option<String>,
    /// How it may authenticate: client_secret_basic, client_secret_post,
    /// private_key_jwt, none (default: what its kind allows)
    #[arg(long = "auth-method", value_delimiter = ',', num_args = 1..)]
    auth_methods: Vec<AuthMethod>,
    #[command(flatten)]
    trust: OptionalTrustArgs,
}

#[derive(Debug, Args)]
struct ClientUpdateArgs {
    id: String,
    /// A name for people: the service it is
    #[arg(long)]
    name: Option<String>,
    /// Allowed scopes, space-delimited; a trailing * is a wildcard (market:*)
    #[arg(long)]
    scope: Option<String>,
    /// Scope given when a request names none; "" removes it
    #[arg(long)]
    default_scope: Option<String>,
    /// Token lifetime in seconds
    #[arg(long)]
    lifetime: Option<u64>,
    /// Grant types the client may use
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    grant_types: Option<Vec<String>>,
    /// jwt, opaque, or default (follow the API)
    #[arg(long)]
    format: Option<FormatSetting>,
    /// Static claims for its tokens, a JSON object ('{}' removes them)
    #[arg(long)]
    claims: Option<String>,
    /// Replace its public keys with this JWK Set file (a client with keys)
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// Replace its keys with the https URL of a JWK Set (a client with keys)
    #[arg(long, value_name = "URL", conflicts_with = "jwks")]
    jwks_uri: Option<String>,
    /// Limit how it may authenticate (comma-separated); "" for what its kind allows
    #[arg(long = "auth-method", value_delimiter = ',', num_args = 0..)]
    auth_methods: Option<Vec<AuthMethodSetting>>,
}

/// An `--auth-method` of `client update`, where an empty one resets.
#[derive(Debug, Clone, Copy)]
struct AuthMethodSetting(Option<AuthMethod>);

impl std::str::FromStr for AuthMethodSetting {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            Ok(Self(None))
        } else {
            s.parse().map(|m| Self(Some(m)))
        }
    }
}

/// The text of a `--jwks` file.
fn read_jwks(path: Option<&std::path::Path>) -> Result<Option<String>> {
    path.map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| CliError(format!("cannot read {}: {e}", p.display())))
    })
    .transpose()
}

/// A list flag (`--grant-types`), split at commas or spaces.
fn split_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|g| g.split([' ', ',']))
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
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
    Create(ApiCreateArgs),
    /// Change an API's settings
    Update(ApiUpdateArgs),
    /// List APIs
    List,
    /// Show one API
    Show {
        /// The API's identifier (its URI)
        identifier: String,
    },
    /// Delete the API and every grant for it
    Delete {
        /// The API's identifier (its URI)
        identifier: String,
    },
}

#[derive(Debug, Args)]
struct ApiCreateArgs {
    /// Absolute URI that tokens name in `aud`
    #[arg(long)]
    identifier: String,
    /// A name for people (default: the identifier)
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
}

#[derive(Debug, Args)]
struct ApiUpdateArgs {
    /// The API's identifier (its URI)
    identifier: String,
    /// A name for people
    #[arg(long)]
    name: Option<String>,
    /// Scopes the API defines, space-delimited; granted ones must stay
    #[arg(long)]
    scope: Option<String>,
    /// Token lifetime in seconds
    #[arg(long)]
    lifetime: Option<u64>,
    /// Longest lifetime any token for this API may have, in seconds
    #[arg(long)]
    max_lifetime: Option<u64>,
    /// Signing algorithm: ES256, RS256 or EdDSA
    #[arg(long)]
    algorithm: Option<Algorithm>,
    /// jwt, opaque, or default (jwt)
    #[arg(long)]
    format: Option<FormatSetting>,
    /// standard or auth0
    #[arg(long)]
    claims: Option<ClaimsProfile>,
}

#[derive(Debug, Subcommand)]
enum GrantCommand {
    /// Let a client receive some of an API's scopes
    Create {
        /// The client's id
        #[arg(long)]
        client: String,
        /// The API's identifier (its URI)
        #[arg(long)]
        api: String,
        /// Scopes of the API, space-delimited
        #[arg(long)]
        scope: String,
    },
    /// List grants, of every client or of one
    List {
        /// Only this client's grants
        #[arg(long)]
        client: Option<String>,
    },
    /// Take a grant away: the client can no longer ask for that API
    Delete {
        /// The client's id
        #[arg(long)]
        client: String,
        /// The API's identifier (its URI)
        #[arg(long)]
        api: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Start signing with new keys; old ones stay published until their tokens expire
    Rotate {
        /// Only this algorithm's keys (default: every algorithm in use)
        #[arg(long)]
        algorithm: Option<Algorithm>,
        /// Activate a next key even if it was published only moments ago
        #[arg(long)]
        force: bool,
    },
    /// List signing keys with their state: next, active, retiring
    List,
}

/// A CLI failure: one line on stderr.
#[derive(Debug)]
pub struct CliError(String);

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self(e.to_string())
    }
}

impl From<StartError> for CliError {
    fn from(e: StartError) -> Self {
        Self(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(invalid) => Self(invalid.message(flag)),
            other => Self(other.to_string()),
        }
    }
}

/// How the command line names an operation's input.
fn flag(field: Field) -> &'static str {
    match field {
        Field::Name => "--name",
        Field::Scope => "--scope",
        Field::DefaultScope => "--default-scope",
        Field::GrantTypes => "--grant-types",
        Field::Lifetime => "--lifetime",
        Field::MaxLifetime => "--max-lifetime",
        Field::Claims => "--claims",
        Field::Identifier => "--identifier",
        Field::Algorithm => "--algorithm",
        Field::Overlap => "--overlap",
        Field::AuthMethods => "--auth-method",
        Field::Jwks => "--jwks",
        Field::JwksUri => "--jwks-uri",
        Field::Trust => "--trust-issuer",
    }
}

type Result<T> = std::result::Result<T, CliError>;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
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

async fn run(cli: Cli) -> Result<()> {
    let config = Config::resolve(&overrides(&cli))?;
    if let Command::Serve(ServeArgs { json: true, .. }) = cli.command {
        return Err(CliError(
            "--json is not used by serve; it prints logs only".into(),
        ));
    }
    let serving = matches!(cli.command, Command::Serve(_));
    let _log = logging::init(serving, config.log_format);
    if serving {
        config.check_serving()?;
        return serve::serve(config).await;
    }
    if !matches!(cli.command, Command::Init) {
        refuse_missing_database(&config.database)?;
    }
    if let Command::Backup { path } = &cli.command {
        return backup(&config, path, cli.global.json).await;
    }
    let (store, master) = server::open(&config).await?;
    let ctx = Ctx {
        admin: Admin::new(&store, &master, operator(), SystemClock.now()),
        out: Output {
            json: cli.global.json,
        },
        now: SystemClock.now(),
        config: &config,
    };
    let result = ctx.manage(cli.command).await;
    store.close().await;
    result
}

/// Only `serve` and `init` create a database: a typo in `--database`, or a
/// command run in another directory than the server, must not quietly make
/// an empty one (and a new master key) and report "(none)".
fn refuse_missing_database(database: &str) -> Result<()> {
    if let Ok(Location::Sqlite(path)) = Location::parse(database) {
        if !path.exists() {
            return Err(CliError(format!(
                "no database at {}: check --database, or create it with `writ init` (`writ serve` also does)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// `writ backup PATH`: needs neither the master key nor a migration, and
/// reminds of the key file, without which the copy is of no use.
async fn backup(config: &Config, path: &std::path::Path, json: bool) -> Result<()> {
    let location = crate::store::Location::parse(&config.database).map_err(StartError::from)?;
    crate::store::backup(&location, path)
        .await
        .map_err(StartError::from)?;
    let key_file = match (&location, &config.master_key) {
        (crate::store::Location::Sqlite(db), None) => Some(server::key_file_for(db)),
        _ => None,
    };
    let out = Output { json };
    match &key_file {
        Some(key) => out.note(&format!(
            "Keep the master key file {} with the backup: restore both together.",
            key.display()
        )),
        None => out.note("Keep WRIT_MASTER_KEY with the backup: restore both together."),
    }
    out.print(&json!({"backup": path, "key_file": key_file}));
    Ok(())
}

/// Flags and environment (clap has merged those two) for `Config::resolve`.
fn overrides(cli: &Cli) -> Overrides {
    let global = &cli.global;
    let mut overrides = Overrides {
        config: global.config.clone(),
        database: global.database.clone(),
        log_format: global.log_format.clone(),
        master_key: global.master_key.clone(),
        ..Default::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.listen = args.listen.clone();
        overrides.issuer = args.issuer.clone();
        overrides.tls_cert = args.tls_cert.clone();
        overrides.tls_key = args.tls_key.clone();
    }
    if let Command::Console(args) = &cli.command {
        overrides.issuer = args.issuer.clone();
    }
    overrides
}

/// Changes made here are audited as the login user's, via `cli`.
fn operator() -> Actor {
    Actor {
        by: Admin::operator_name(),
        via: "cli",
    }
}

/// Help and version print as clap renders them; a usage error is one line
/// on stderr, like every other error, with clap's exit code.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = e.print();
        return ExitCode::from(e.exit_code() as u8);
    }
    eprintln!("error: {}", one_line(&e.to_string()));
    ExitCode::from(e.exit_code() as u8)
}

/// clap's message without its usage and "try --help" lines, on one line.
fn one_line(message: &str) -> String {
    let text: Vec<&str> = message
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let text = text.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see --help)")
}

struct Ctx<'a> {
    admin: Admin<'a>,
    out: Output,
    now: i64,
    config: &'a Config,
}

impl Ctx<'_> {
    async fn manage(&self, command: Command) -> Result<()> {
        match command {
            Command::Serve(_) => unreachable!("served before opening the store"),
            Command::Init => {
                self.out
                    .print(&json!({"database": self.config.database, "ready": true}));
                Ok(())
            }
            Command::Backup { .. } => unreachable!("backed up without opening the store"),
            Command::Client(c) => match c {
                ClientCommand::Create(args) => self.client_create(args).await,
                ClientCommand::Update(args) => self.client_update(args).await,
                ClientCommand::List(args) => self.client_list(args).await,
                ClientCommand::Import { file } => self.client_import(&file).await,
                ClientCommand::Show { id } => self.client_show(&id).await,
                ClientCommand::Disable { id } => self.client_disable(&id).await,
                ClientCommand::Enable { id } => self.client_enable(&id).await,
                ClientCommand::Delete { id } => self.client_delete(&id).await,
                ClientCommand::RotateSecret { id, overlap } => {
                    self.client_rotate_secret(&id, overlap).await
                }
                ClientCommand::TrustAdd { id, rule } => self.client_trust_add(&id, rule).await,
                ClientCommand::TrustRemove { id, rule_id } => {
                    self.client_trust_remove(&id, rule_id).await
                }
                ClientCommand::RevokeSecret { id, secret_id } => {
                    self.client_revoke_secret(&id, secret_id).await
                }
            },
            Command::Api(c) => match c {
                ApiCommand::Create(args) => self.api_create(args).await,
                ApiCommand::Update(args) => self.api_update(args).await,
                ApiCommand::List => self.api_list().await,
                ApiCommand::Show { identifier } => self.api_show(&identifier).await,
                ApiCommand::Delete { identifier } => self.api_delete(&identifier).await,
            },
            Command::Grant(c) => match c {
                GrantCommand::Create { client, api, scope } => {
                    self.grant_create(client, api, scope).await
                }
                GrantCommand::List { client } => self.grant_list(client.as_deref()).await,
                GrantCommand::Delete { client, api } => self.grant_delete(&client, &api).await,
            },
            Command::Key(c) => match c {
                KeyCommand::Rotate { algorithm, force } => self.key_rotate(algorithm, force).await,
                KeyCommand::List => self.key_list().await,
            },
            Command::Console(args) => self.console_link(args.base_url.as_deref()).await,
        }
    }

    async fn client_create(&self, args: ClientCreateArgs) -> Result<()> {
        let grant_types = split_list(&args.grant_types);
        let new = NewClient {
            name: args.name,
            scope: args.scope,
            default_scope: args.default_scope,
            public: args.public,
            lifetime: args.lifetime,
            grant_types,
            format: args.format,
            auth_methods: args.auth_methods,
            jwks: read_jwks(args.jwks.as_deref())?,
            jwks_uri: args.jwks_uri,
            trust: TrustArgs {
                issuer: args.trust.issuer,
                subject: args.trust.subject,
                audience: args.trust.audience,
                claims: args.trust.claims,
            }
            .rule()
            .into_iter()
            .collect(),
        };
        let created = self.admin.create_client(new, self.now).await?;
        let mut shown = output::client(&created.client);
        if let Some(secret) = created.secret {
            shown["client_secret"] = json!(secret);
            self.out
                .note("The client secret is shown only now: store it safely.");
        }
        self.out.print(&shown);
        Ok(())
    }

    async fn client_update(&self, args: ClientUpdateArgs) -> Result<()> {
        let changes = ClientChanges {
            name: args.name,
            scope: args.scope,
            default_scope: args.default_scope,
            lifetime: args.lifetime,
            grant_types: args.grant_types.map(|g| split_list(&g)),
            format: args.format,
            claims: args.claims,
            auth_methods: args
                .auth_methods
                .map(|m| m.into_iter().filter_map(|m| m.0).collect()),
            jwks: read_jwks(args.jwks.as_deref())?,
            jwks_uri: args.jwks_uri,
        };
        let client = self.admin.update_client(&args.id, changes).await?;
        self.out.print(&output::client(&client));
        Ok(())
    }

    /// One line per client, oldest first, a page at a time; `--json` for
    /// every field.
    async fn client_list(&self, args: ClientListArgs) -> Result<()> {
        let page = self
            .admin
            .clients_page(
                args.after.as_deref(),
                args.name_prefix.as_deref(),
                args.limit,
            )
            .await?;
        if page.len() == args.limit as usize {
            if let Some(last) = page.last() {
                self.out.note(&format!(
                    "(more: --after {}{})",
                    last.id,
                    args.name_prefix
                        .as_ref()
                        .map_or(String::new(), |p| format!(" --name-prefix '{p}'"))
                ));
            }
        }
        let clients: Vec<Value> = page.iter().map(output::client).collect();
        self.out.table(
            &clients,
            &[
                ("CLIENT_ID", |c| output::text(&c["client_id"])),
                ("NAME", |c| output::text(&c["name"])),
                ("STATE", |c| {
                    if c["enabled"] == true {
                        "enabled"
                    } else {
                        "disabled"
                    }
                    .into()
                }),
                ("KIND", |c| {
                    if c["public"] == true {
                        "public"
                    } else {
                        "confidential"
                    }
                    .into()
                }),
                ("CREATED", |c| output::time(&c["created_at"])),
                ("SCOPE", |c| output::text(&c["scope"])),
            ],
        );
        Ok(())
    }

    async fn client_import(&self, file: &std::path::Path) -> Result<()> {
        use std::io::IsTerminal;
        let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(file)
                .map_err(|e| CliError(format!("cannot read {}: {e}", file.display())))?;
            Box::new(std::io::BufReader::with_capacity(1 << 16, f))
        };
        let terminal = std::io::stderr().is_terminal();
        let started = std::time::Instant::now();
        let result = self
            .admin
            .import_clients(input, self.now, |n| {
                if terminal {
                    let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    eprint!("\rimported {n} clients ({rate:.0}/s)");
                }
            })
            .await;
        if terminal {
            eprintln!();
        }
        let imported = result.map_err(|e| CliError(e.to_string()))?;
        if !imported.generated.is_empty() {
            self.out.note(&format!(
                "{} clients came without a secret: theirs are shown only now.",
                imported.generated.len()
            ));
        }
        if self.out.json {
            let generated: Vec<Value> = imported
                .generated
                .iter()
                .map(|g| json!({"client_id": g.client_id, "client_secret": g.client_secret}))
                .collect();
            let mut shown = json!({"imported": imported.count});
            if !generated.is_empty() {
                shown["generated"] = json!(generated);
            }
            println!("{shown}");
        } else {
            println!("imported: {}", imported.count);
            for g in &imported.generated {
                println!("{} {}", g.client_id, g.client_secret);
            }
        }
        Ok(())
    }

    async fn client_trust_add(&self, id: &str, rule: TrustArgs) -> Result<()> {
        let rule = rule.rule().expect("clap requires --trust-issuer");
        let rule_id = self.admin.add_trust_rule(id, rule, self.now).await?;
        self.out
            .print(&json!({"client_id": id, "trust_rule_id": rule_id}));
        Ok(())
    }

    async fn client_trust_remove(&self, id: &str, rule_id: i64) -> Result<()> {
        self.admin.remove_trust_rule(id, rule_id).await?;
        self.out
            .print(&json!({"client_id": id, "trust_rule_removed": rule_id}));
        Ok(())
    }

    async fn client_show(&self, id: &str) -> Result<()> {
        let details = self.admin.client(id).await?;
        self.out.print(&output::client_details(&details));
        Ok(())
    }

    async fn client_disable(&self, id: &str) -> Result<()> {
        self.admin.set_client_enabled(id, false).await?;
        self.out.print(&json!({"client_id": id, "enabled": false}));
        Ok(())
    }

    async fn client_enable(&self, id: &str) -> Result<()> {
        self.admin.set_client_enabled(id, true).await?;
        self.out.print(&json!({"client_id": id, "enabled": true}));
        Ok(())
    }

    async fn client_delete(&self, id: &str) -> Result<()> {
        self.admin.delete_client(id).await?;
        self.out.print(&json!({"client_id": id, "deleted": true}));
        Ok(())
    }

    async fn client_rotate_secret(&self, id: &str, overlap: Duration) -> Result<()> {
        let rotated = self.admin.rotate_secret(id, overlap, self.now).await?;
        if rotated.overlap.is_zero() {
            self.out.note("The old secret no longer works.");
        } else {
            self.out.note(&format!(
                "The old secret keeps working for {}.",
                output::duration(rotated.overlap)
            ));
        }
        self.out
            .note("The new secret is shown only now: store it safely.");
        self.out.print(&json!({
            "client_id": id,
            "client_secret": rotated.secret,
            "previous_secrets_expire_at": rotated.previous_secrets_expire_at,
        }));
        Ok(())
    }

    async fn client_revoke_secret(&self, id: &str, secret_id: i64) -> Result<()> {
        let left = self.admin.revoke_secret(id, secret_id, self.now).await?;
        if left == 0 && !self.admin.client(id).await?.client.public {
            self.out.warn(&format!(
                "client {id} has no secret left: it gets no token until `writ client rotate-secret {id}` makes one"
            ));
        }
        self.out.print(
            &json!({"client_id": id, "secret_id": secret_id, "revoked": true, "secrets_left": left}),
        );
        Ok(())
    }

    async fn api_create(&self, args: ApiCreateArgs) -> Result<()> {
        let new = NewApi {
            identifier: args.identifier,
            name: args.name,
            scope: args.scope,
            lifetime: args.lifetime,
            max_lifetime: args.max_lifetime,
            algorithm: args.algorithm,
            format: args.format,
            claims_profile: args.claims,
        };
        let api = self.admin.create_api(new, self.now).await?;
        self.out.print(&json!(api));
        Ok(())
    }

    async fn api_update(&self, args: ApiUpdateArgs) -> Result<()> {
        let changes = ApiChanges {
            name: args.name,
            scope: args.scope,
            lifetime: args.lifetime,
            max_lifetime: args.max_lifetime,
            algorithm: args.algorithm,
            format: args.format,
            claims_profile: args.claims,
        };
        let api = self
            .admin
            .update_api(&args.identifier, changes, self.now)
            .await?;
        self.out.print(&json!(api));
        Ok(())
    }

    async fn api_list(&self) -> Result<()> {
        self.out.print(&json!(self.admin.apis().await?));
        Ok(())
    }

    async fn api_show(&self, identifier: &str) -> Result<()> {
        self.out.print(&json!(self.admin.api(identifier).await?));
        Ok(())
    }

    async fn api_delete(&self, identifier: &str) -> Result<()> {
        self.admin.delete_api(identifier).await?;
        self.out
            .print(&json!({"identifier": identifier, "deleted": true}));
        Ok(())
    }

    async fn grant_create(&self, client_id: String, api: String, scope: String) -> Result<()> {
        let new = NewGrant {
            client_id,
            api,
            scope,
        };
        let grant = self.admin.create_grant(new, self.now).await?;
        self.out.print(&json!(grant));
        Ok(())
    }

    async fn grant_list(&self, client_id: Option<&str>) -> Result<()> {
        self.out.print(&json!(self.admin.grants(client_id).await?));
        Ok(())
    }

    async fn grant_delete(&self, client_id: &str, api: &str) -> Result<()> {
        self.admin.delete_grant(client_id, api).await?;
        self.out
            .print(&json!({"client_id": client_id, "api": api, "deleted": true}));
        Ok(())
    }

    async fn key_rotate(&self, algorithm: Option<Algorithm>, force: bool) -> Result<()> {
        let activated = self
            .admin
            .rotate_keys(algorithm, self.config.token_lifetime, force, self.now)
            .await?;
        self.out.print(&json!({"activated": activated}));
        Ok(())
    }

    async fn key_list(&self) -> Result<()> {
        let keys: Vec<Value> = self
            .admin
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
        Ok(())
    }

    /// One line: the sign-in link; with `--json`, the link and when it
    /// expires. The link is the secret here, so only stdout carries it.
    async fn console_link(&self, base_url: Option<&str>) -> Result<()> {
        let base = console_base(self.config, base_url)?;
        let link = self.admin.create_signin_link().await?;
        let url = format!("{base}/console/signin?token={}", link.token);
        if self.out.json {
            println!(
                "{}",
                json!({"url": url, "expires_at": rfc3339(link.expires_at)})
            );
        } else {
            println!("{url}");
        }
        Ok(())
    }
}

/// Where a browser reaches the server: `--base-url`, else the issuer, else
/// the listen address; without a trailing slash.
fn console_base(config: &Config, base_url: Option<&str>) -> Result<String> {
    let base = match (base_url, &config.issuer) {
        (Some(url), _) => url.to_owned(),
        (None, Some(issuer)) => issuer.clone(),
        (None, None) => {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", config.listen)
        }
    };
    match url::Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(base.trim_end_matches('/').to_owned())
        }
        _ => Err(CliError(format!(
            "--base-url '{base}' is not an http or https URL"
        ))),
    }
}

/// Seconds since the epoch as RFC 3339, UTC.
fn rfc3339(at: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(at.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
