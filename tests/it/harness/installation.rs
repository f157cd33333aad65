//! A Writ installation for one test: its database, the CLI bound to it, and
//! a server, in this process or as a child.

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use serde_json::Value;
use writ::clock::{Clock, FixedClock, SystemClock};
use writ::config::Config;
use writ::server::RunningServer;

use super::http::{send, Remote, Reply};
use super::{run_writ, writ_command, Process};

/// A Writ installation in a temporary folder: its database, the CLI bound to
/// it, and (once started) a server on an ephemeral port.
pub struct Writ {
    pub dir: tempfile::TempDir,
    /// The SQLite file, `writ.db` in `dir` unless a test puts it elsewhere.
    pub sqlite: PathBuf,
    /// A PostgreSQL URL; `None`: the SQLite file.
    pub postgres: Option<String>,
    pub server: Option<RunningServer>,
    pub base: String,
    pub http: reqwest::Client,
}

/// A confidential client as the CLI printed it.
#[derive(Debug, Clone)]
pub struct Creds {
    pub id: String,
    pub secret: String,
}

/// A config file's settings that switch the rate limits off, for tests that
/// send one client's requests flat out from one address.
pub const NO_LIMITS: &str = "[limits]\nenabled = false\n";

impl Default for Writ {
    fn default() -> Self {
        Self::new()
    }
}

impl Writ {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            sqlite: dir.path().join("writ.db"),
            dir,
            postgres: None,
            server: None,
            base: String::new(),
            http: reqwest::Client::new(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.sqlite.clone()
    }

    /// The same CLI and server on a PostgreSQL database, with the shared master key.
    pub fn on_postgres(url: &str) -> Self {
        Self {
            postgres: Some(url.to_owned()),
            ..Self::new()
        }
    }

    pub fn database(&self) -> String {
        match &self.postgres {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.sqlite.display()),
        }
    }

    /// What a process on this database needs in its environment.
    fn env(&self) -> Vec<(&'static str, &'static str)> {
        match self.postgres {
            Some(_) => vec![("WRIT_MASTER_KEY", crate::pg::MASTER_KEY)],
            None => Vec::new(),
        }
    }

    /// Runs the CLI with `--json` on this database; returns the parsed output.
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = self.cli_raw(args, true);
        assert!(
            out.status.success(),
            "writ {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "writ {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs the CLI expecting failure; returns its stderr.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli_raw(args, false);
        assert!(!out.status.success(), "writ {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn cli_raw(&self, args: &[&str], json: bool) -> Output {
        // Management commands refuse a database that does not exist: make
        // it first, as an operator would with `writ init`.
        if self.postgres.is_none() && !self.sqlite.exists() && args.first() != Some(&"init") {
            let init = run_writ(writ_command().args(["init", "--database", &self.database()]));
            assert!(init.status.success(), "writ init: {init:?}");
        }
        let mut cmd = writ_command();
        cmd.arg("--database")
            .arg(self.database())
            .args(args)
            .envs(self.env());
        if json {
            cmd.arg("--json");
        }
        run_writ(&mut cmd)
    }

    pub fn client(&self, args: &[&str]) -> Creds {
        let mut all = vec!["client", "create"];
        all.extend_from_slice(args);
        if !args.contains(&"--name") {
            all.extend_from_slice(&["--name", "test-service"]);
        }
        let v = self.cli(&all);
        Creds {
            id: v["client_id"].as_str().unwrap().to_owned(),
            secret: v["client_secret"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// `client rotate-secret` with `args` (`--overlap`, say): the new secret.
    pub fn rotate_secret(&self, c: &Creds, args: &[&str]) -> Creds {
        let mut all = vec!["client", "rotate-secret", &c.id];
        all.extend_from_slice(args);
        let rotated = self.cli(&all);
        Creds {
            id: c.id.clone(),
            secret: rotated["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// An API, and a grant of `scope` on it to `client`.
    pub fn api_granted_to(&self, client: &Creds, identifier: &str, scope: &str, args: &[&str]) {
        let mut all = vec![
            "api",
            "create",
            "--identifier",
            identifier,
            "--scope",
            scope,
        ];
        all.extend_from_slice(args);
        self.cli(&all);
        self.grant(client, identifier, scope);
    }

    pub fn grant(&self, client: &Creds, api: &str, scope: &str) {
        self.cli(&[
            "grant", "create", "--client", &client.id, "--api", api, "--scope", scope,
        ]);
    }

    pub fn config(&self) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: self.database(),
            master_key: self
                .postgres
                .as_ref()
                .map(|_| crate::pg::MASTER_KEY.to_owned()),
            ..Config::default()
        }
    }

    /// Writes a TOML config file named `name` into the test's folder.
    pub fn config_file(&self, name: &str, toml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// The test's settings plus a TOML config file with `toml` in it.
    pub fn config_with_file(&self, toml: &str) -> Config {
        let mut config = Config::resolve(&writ::config::Overrides {
            config: Some(self.config_file("writ.toml", toml)),
            database: Some(self.database()),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        })
        .unwrap();
        config.master_key = self.config().master_key;
        config
    }

    pub async fn start(&mut self) {
        self.start_configured(self.config()).await;
    }

    pub async fn start_configured(&mut self, config: Config) {
        self.start_with(config, Arc::new(SystemClock)).await;
    }

    pub async fn start_with(&mut self, config: Config, clock: Arc<dyn Clock>) {
        let server = writ::server::start(config, clock).await.unwrap();
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    /// Starts with a clock that only moves when the test moves it.
    pub async fn start_fixed(&mut self, now: i64) -> Arc<FixedClock> {
        let clock = Arc::new(FixedClock::new(now));
        self.start_with(self.config(), clock.clone()).await;
        clock
    }

    /// `writ serve` on this database as a child process, with `extra`
    /// arguments and `env` (and the master key on PostgreSQL).
    pub fn spawn(&self, extra: &[&str], env: &[(&str, &str)]) -> Process {
        let mut all = self.env();
        all.extend_from_slice(env);
        Process::spawn_on(&self.database(), extra, &all)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The running server as a client with Basic authentication sees it.
    pub fn remote(&self) -> Remote {
        Remote::with_client(&self.base, self.http.clone())
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post_form(&self, path: &str, body: &str) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned()),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        send(request).await
    }

    /// A form token request with `client_secret_post`.
    pub async fn token(&self, creds: &Creds, extra: &str) -> Reply {
        let mut body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            creds.id, creds.secret
        );
        if !extra.is_empty() {
            body.push('&');
            body.push_str(extra);
        }
        self.post_form("/oauth/token", &body).await
    }

    /// Introspection (RFC 7662) by `caller`, with `client_secret_post`.
    pub async fn introspect(&self, caller: &Creds, token: &str) -> Reply {
        self.token_call("/oauth/introspect", caller, token).await
    }

    /// Revocation (RFC 7009) by `caller`, with `client_secret_post`.
    pub async fn revoke(&self, caller: &Creds, token: &str) -> Reply {
        self.token_call("/oauth/revoke", caller, token).await
    }

    async fn token_call(&self, path: &str, caller: &Creds, token: &str) -> Reply {
        self.post_form(
            path,
            &format!(
                "client_id={}&client_secret={}&token={token}",
                caller.id, caller.secret
            ),
        )
        .await
    }

    pub async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json").await.json
    }

    /// Runs `writ serve` on this database, expecting it to refuse to start;
    /// returns what it printed.
    pub fn serve_fails(&self) -> String {
        let out = run_writ(writ_command().args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &self.database(),
        ]));
        assert!(!out.status.success(), "writ serve started");
        String::from_utf8(out.stderr).unwrap()
    }

    /// The `kid`s the JWKS publishes.
    pub async fn published_kids(&self) -> Vec<String> {
        let jwks = self.jwks().await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }
}
