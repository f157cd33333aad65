//! The `writ` command: `serve`, and the management commands that work
//! directly on the same database as the server. Each management command
//! only translates: flags → an operation of `admin` → printed output, or
//! one line on stderr.

mod args;
mod logging;
mod output;
mod serve;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};

use crate::admin::{
    Actor, Admin, AdminError, ApiChanges, ClientChanges, Field, NewApi, NewClient, NewGrant,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Overrides};
use crate::server::{self, StartError};
use crate::store::Location;
use crate::types::Algorithm;
use args::*;
use output::Output;

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
