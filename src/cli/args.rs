//! The command line as clap reads it: every command, flag and argument,
//! with the help text an operator sees.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::{CliError, Result};
use crate::admin::{FormatSetting, NewTrustRule};
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::types::{Algorithm, AuthMethod, ClaimsProfile, TokenFormat};

#[derive(Debug, Parser)]
#[command(
    name = "writ",
    version,
    about = "An OAuth 2.0 authorization server for machine-to-machine tokens"
)]
pub struct Cli {
    #[command(flatten)]
    pub(super) global: Global,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Args)]
pub(super) struct Global {
    /// Database URL: sqlite://PATH (the default, sqlite://writ.db) or
    /// postgres://USER@HOST/DATABASE
    #[arg(long, global = true, env = "WRIT_DATABASE_URL")]
    pub(super) database: Option<String>,
    /// TOML configuration file
    #[arg(long, global = true, env = "WRIT_CONFIG")]
    pub(super) config: Option<PathBuf>,
    /// Print one JSON object or array on stdout
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// Log format, text or json (overrides `log_format` in the file)
    #[arg(long, global = true, env = "WRIT_LOG_FORMAT", hide = true)]
    pub(super) log_format: Option<String>,
    /// Master key, base64 of 32 bytes. Meant for the environment: a flag
    /// would show in the process list.
    #[arg(
        long,
        global = true,
        env = "WRIT_MASTER_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub(super) master_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
pub(super) struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "WRIT_LISTEN")]
    pub(super) listen: Option<String>,
    /// Issuer URL (default: http(s)://<listen address>)
    #[arg(long, env = "WRIT_ISSUER")]
    pub(super) issuer: Option<String>,
    /// Serve HTTPS: certificate chain (PEM); reloaded when the file changes
    #[arg(long, env = "WRIT_TLS_CERT", requires = "tls_key")]
    pub(super) tls_cert: Option<PathBuf>,
    /// Serve HTTPS: private key (PEM)
    #[arg(long, env = "WRIT_TLS_KEY", requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
    /// The global `--json` does nothing for `serve`: declared here, hidden,
    /// so that serve's help does not offer it, and refused if given.
    #[arg(long, hide = true)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub(super) struct ConsoleArgs {
    /// The server's public URL, as a browser reaches it (default: the
    /// issuer, else http(s)://<listen address>)
    #[arg(long, value_name = "URL")]
    pub(super) base_url: Option<String>,
    /// The issuer, where the configuration has none: the same variable as
    /// `serve` reads, so the link names the server's public URL.
    #[arg(long, env = "WRIT_ISSUER", hide = true)]
    pub(super) issuer: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(super) enum ClientCommand {
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
pub(super) struct TrustArgs {
    /// The issuer whose tokens authenticate the client (https; its keys
    /// come from its OpenID Connect discovery document), or a SPIFFE trust
    /// domain, spiffe://example.org, for JWT-SVIDs (its bundle endpoint is
    /// set in [spiffe] bundles)
    #[arg(long = "trust-issuer", value_name = "URL", required = true)]
    pub(super) issuer: Option<String>,
    /// The tokens' `sub`, exactly or as a pattern: * is any run of
    /// characters (repo:acme/app:ref:refs/heads/*); for a SPIFFE trust
    /// domain, a SPIFFE ID (spiffe://example.org/ns/prod/sa/billing)
    #[arg(long = "trust-subject", value_name = "SUBJECT", requires = "issuer")]
    pub(super) subject: Option<String>,
    /// The `aud` the tokens must carry (default: Writ's issuer)
    #[arg(long = "trust-audience", value_name = "AUD", requires = "issuer")]
    pub(super) audience: Option<String>,
    /// A further condition, NAME=VALUE (VALUE may be a pattern; a NAME
    /// starting with / is a JSON pointer: /kubernetes.io/namespace=prod)
    #[arg(long = "trust-claim", value_name = "NAME=VALUE", requires = "issuer", value_parser = parse_claim_condition)]
    pub(super) claims: Vec<(String, String)>,
}

impl TrustArgs {
    pub(super) fn rule(self) -> Option<NewTrustRule> {
        Some(NewTrustRule {
            issuer: self.issuer?,
            subject: self.subject,
            audience: self.audience,
            claims: self.claims,
        })
    }
}

pub(super) fn parse_claim_condition(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}

#[derive(Debug, Args)]
pub(super) struct OptionalTrustArgs {
    /// An issuer whose tokens authenticate the client instead of a secret
    /// (workload identity; https, or spiffe://TRUST-DOMAIN for SPIFFE
    /// JWT-SVIDs; more with `client trust-add`)
    #[arg(long = "trust-issuer", value_name = "URL")]
    pub(super) issuer: Option<String>,
    /// The tokens' `sub`, exactly or as a pattern: * is any run of
    /// characters (repo:acme/app:ref:refs/heads/*)
    #[arg(long = "trust-subject", value_name = "SUBJECT", requires = "issuer")]
    pub(super) subject: Option<String>,
    /// The `aud` the tokens must carry (default: Writ's issuer)
    #[arg(long = "trust-audience", value_name = "AUD", requires = "issuer")]
    pub(super) audience: Option<String>,
    /// A further condition on the tokens, NAME=VALUE (see `client trust-add`)
    #[arg(long = "trust-claim", value_name = "NAME=VALUE", requires = "issuer", value_parser = parse_claim_condition)]
    pub(super) claims: Vec<(String, String)>,
}

// No doc comments on these argument structs: the subcommand's help text
// comes from its variant above.
#[derive(Debug, Args)]
pub(super) struct ClientListArgs {
    /// Clients on a page
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) limit: u32,
    /// Start after this client id (the last one of the previous page)
    #[arg(long)]
    pub(super) after: Option<String>,
    /// Only clients whose name starts with this
    #[arg(long)]
    pub(super) name_prefix: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct ClientCreateArgs {
    /// A name for people: the service it is
    #[arg(long)]
    pub(super) name: String,
    /// Allowed scopes, space-delimited; a trailing * is a wildcard (market:*)
    #[arg(long, default_value = "")]
    pub(super) scope: String,
    /// Scope given when a request names none
    #[arg(long)]
    pub(super) default_scope: Option<String>,
    /// A public client: no secret, authenticates with its client_id alone
    #[arg(long)]
    pub(super) public: bool,
    /// Token lifetime in seconds
    #[arg(long)]
    pub(super) lifetime: Option<u64>,
    /// Grant types the client may use
    #[arg(long, value_delimiter = ',', num_args = 1.., default_value = GRANT_TYPE)]
    pub(super) grant_types: Vec<String>,
    /// Access token format: jwt or opaque (default: the API's, else jwt)
    #[arg(long)]
    pub(super) format: Option<TokenFormat>,
    /// The client's public keys, a JWK Set file: it authenticates with JWTs
    /// it signs (private_key_jwt) and gets no secret
    #[arg(long, value_name = "FILE")]
    pub(super) jwks: Option<PathBuf>,
    /// Or the https URL of its JWK Set, which the server fetches and caches
    #[arg(long, value_name = "URL", conflicts_with = "jwks")]
    pub(super) jwks_uri: Option<String>,
    /// How it may authenticate: client_secret_basic, client_secret_post,
    /// private_key_jwt, none (default: what its kind allows)
    #[arg(long = "auth-method", value_delimiter = ',', num_args = 1..)]
    pub(super) auth_methods: Vec<AuthMethod>,
    #[command(flatten)]
    pub(super) trust: OptionalTrustArgs,
}

#[derive(Debug, Args)]
pub(super) struct ClientUpdateArgs {
    pub(super) id: String,
    /// A name for people: the service it is
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Allowed scopes, space-delimited; a trailing * is a wildcard (market:*)
    #[arg(long)]
    pub(super) scope: Option<String>,
    /// Scope given when a request names none; "" removes it
    #[arg(long)]
    pub(super) default_scope: Option<String>,
    /// Token lifetime in seconds
    #[arg(long)]
    pub(super) lifetime: Option<u64>,
    /// Grant types the client may use
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub(super) grant_types: Option<Vec<String>>,
    /// jwt, opaque, or default (follow the API)
    #[arg(long)]
    pub(super) format: Option<FormatSetting>,
    /// Static claims for its tokens, a JSON object ('{}' removes them)
    #[arg(long)]
    pub(super) claims: Option<String>,
    /// Replace its public keys with this JWK Set file (a client with keys)
    #[arg(long, value_name = "FILE")]
    pub(super) jwks: Option<PathBuf>,
    /// Replace its keys with the https URL of a JWK Set (a client with keys)
    #[arg(long, value_name = "URL", conflicts_with = "jwks")]
    pub(super) jwks_uri: Option<String>,
    /// Limit how it may authenticate (comma-separated); "" for what its kind allows
    #[arg(long = "auth-method", value_delimiter = ',', num_args = 0..)]
    pub(super) auth_methods: Option<Vec<AuthMethodSetting>>,
}

/// An `--auth-method` of `client update`, where an empty one resets.
#[derive(Debug, Clone, Copy)]
pub(super) struct AuthMethodSetting(pub(super) Option<AuthMethod>);

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
pub(super) fn read_jwks(path: Option<&std::path::Path>) -> Result<Option<String>> {
    path.map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| CliError(format!("cannot read {}: {e}", p.display())))
    })
    .transpose()
}

/// A list flag (`--grant-types`), split at commas or spaces.
pub(super) fn split_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|g| g.split([' ', ',']))
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn parse_overlap(s: &str) -> std::result::Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("'{s}': {e} (e.g. 24h, 30m, 0)"))
}

#[derive(Debug, Subcommand)]
pub(super) enum ApiCommand {
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
pub(super) struct ApiCreateArgs {
    /// Absolute URI that tokens name in `aud`
    #[arg(long)]
    pub(super) identifier: String,
    /// A name for people (default: the identifier)
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Scopes the API defines, space-delimited
    #[arg(long, default_value = "")]
    pub(super) scope: String,
    /// Token lifetime in seconds
    #[arg(long)]
    pub(super) lifetime: Option<u64>,
    /// Longest lifetime any token for this API may have, in seconds
    #[arg(long)]
    pub(super) max_lifetime: Option<u64>,
    /// Signing algorithm: ES256, RS256 or EdDSA
    #[arg(long, default_value = "ES256")]
    pub(super) algorithm: Algorithm,
    /// Access token format: jwt (default) or opaque
    #[arg(long)]
    pub(super) format: Option<TokenFormat>,
    /// JWT claims profile: standard (default) or auth0 (gty, azp, sub=<id>@clients)
    #[arg(long)]
    pub(super) claims: Option<ClaimsProfile>,
}

#[derive(Debug, Args)]
pub(super) struct ApiUpdateArgs {
    /// The API's identifier (its URI)
    pub(super) identifier: String,
    /// A name for people
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Scopes the API defines, space-delimited; granted ones must stay
    #[arg(long)]
    pub(super) scope: Option<String>,
    /// Token lifetime in seconds
    #[arg(long)]
    pub(super) lifetime: Option<u64>,
    /// Longest lifetime any token for this API may have, in seconds
    #[arg(long)]
    pub(super) max_lifetime: Option<u64>,
    /// Signing algorithm: ES256, RS256 or EdDSA
    #[arg(long)]
    pub(super) algorithm: Option<Algorithm>,
    /// jwt, opaque, or default (jwt)
    #[arg(long)]
    pub(super) format: Option<FormatSetting>,
    /// standard or auth0
    #[arg(long)]
    pub(super) claims: Option<ClaimsProfile>,
}

#[derive(Debug, Subcommand)]
pub(super) enum GrantCommand {
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
pub(super) enum KeyCommand {
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
