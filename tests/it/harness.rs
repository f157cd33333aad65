use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use writ::clock::{Clock, FixedClock, SystemClock};
use writ::config::Config;
use writ::server::RunningServer;

pub const BIN: &str = env!("CARGO_BIN_EXE_writ");

/// What the whole test run saw, for `tests/scan-logs` to check once it is
/// over: everything Writ printed to its logs (servers and CLI runs), and
/// every secret and token it handed out. One pair of files per test process.
pub mod transcript {
    use std::io::Write;
    use std::path::PathBuf;

    fn append(kind: &str, text: &str) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transcripts");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.{kind}", std::process::id())))
        {
            let _ = writeln!(f, "{text}");
        }
    }

    /// Lines Writ logged.
    pub fn log(text: &str) {
        if !text.is_empty() {
            append("log", text);
        }
    }

    /// A secret or token that must never appear in a log.
    pub fn secret(value: &str) {
        for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
            append("secrets", line);
        }
    }

    /// Every `writ_sk_…` secret in a CLI's printed output.
    pub fn secrets_in(output: &str) {
        for (i, _) in output.match_indices("writ_sk_") {
            let found: String = output[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            secret(&found);
        }
    }
}

/// A Writ installation in a temporary folder: its database, the CLI bound to
/// it, and (once started) a server on an ephemeral port.
pub struct Writ {
    pub dir: tempfile::TempDir,
    /// A PostgreSQL URL; `None`: a SQLite file in `dir`.
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

impl Writ {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres: None,
            server: None,
            base: String::new(),
            http: reqwest::Client::new(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("writ.db")
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
            None => format!("sqlite://{}", self.db_path().display()),
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
        let mut cmd = writ_command();
        cmd.arg("--database").arg(self.database()).args(args);
        if self.postgres.is_some() {
            cmd.env("WRIT_MASTER_KEY", crate::pg::MASTER_KEY);
        }
        if json {
            cmd.arg("--json");
        }
        let out = blocking(|| cmd.output().unwrap());
        transcript::log(&String::from_utf8_lossy(&out.stderr));
        transcript::secrets_in(&String::from_utf8_lossy(&out.stdout));
        out
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

    /// The test's settings plus a TOML config file with `toml` in it.
    pub fn config_with_file(&self, toml: &str) -> Config {
        let path = self.dir.path().join("writ.toml");
        std::fs::write(&path, toml).unwrap();
        let mut config = Config::resolve(&writ::config::Overrides {
            config: Some(path),
            database: Some(self.database()),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        })
        .unwrap();
        config.master_key = self.config().master_key;
        config
    }

    pub async fn start(&mut self) {
        self.start_with(self.config(), Arc::new(SystemClock)).await;
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(token) = json["access_token"].as_str() {
            transcript::secret(token);
        }
        Reply {
            status,
            headers,
            text,
            json,
        }
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

    pub async fn jwks(&self) -> Value {
        self.send(self.http.get(self.url("/.well-known/jwks.json")))
            .await
            .json
    }

    /// Runs `writ serve` on this database, expecting it to refuse to start;
    /// returns what it printed.
    pub fn serve_fails(&self) -> String {
        let out = writ_command()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                &self.database(),
            ])
            .output()
            .unwrap();
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

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 6749 §5.2 error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["error"], code, "{}", self.text);
        assert!(
            self.json["error_description"].is_string(),
            "error_description missing: {}",
            self.text
        );
        // Besides the RFC members, only the `errors` array that JSON
        // (Commerce Layer) requests also get, saying the same thing.
        let object = self.json.as_object().unwrap();
        for key in object.keys() {
            assert!(
                ["error", "error_description", "errors"].contains(&key.as_str()),
                "unexpected member {key}: {}",
                self.text
            );
        }
        if let Some(errors) = object.get("errors") {
            assert_eq!(errors[0]["title"], code, "{}", self.text);
            assert_eq!(errors[0]["detail"], self.json["error_description"]);
            assert_eq!(errors[0]["status"], status.to_string());
        }
    }

    pub fn access_token(&self) -> &str {
        assert_eq!(self.status, 200, "{}", self.text);
        self.json["access_token"].as_str().unwrap()
    }
}

/// Runs blocking work (a child process) without stalling an in-process
/// server that shares this test's runtime: its tasks move to another worker.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The `writ` binary with no Writ settings inherited from the environment.
pub fn writ_command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "WRIT_DATABASE_URL",
        "WRIT_CONFIG",
        "WRIT_LISTEN",
        "WRIT_ISSUER",
        "WRIT_MASTER_KEY",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The claims of a JWT, without checking the signature (see `verify` for that).
pub fn claims(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims
}

/// Verifies a token the way an independent resource server would: the key
/// comes from the served JWKS by `kid`, `typ` must be `at+jwt` (RFC 9068 §4).
pub fn verify(token: &str, jwks: &Value, audience: &str, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = header.kid.expect("kid");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `writ serve` as a child process; killed on drop.
pub struct Process {
    pub child: Child,
    pub base: String,
    pub log: Vec<String>,
    /// Everything the server printed after start-up.
    pub rest: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    pub fn spawn(db: &Path, extra: &[&str]) -> Self {
        Self::spawn_on(&format!("sqlite://{}", db.display()), extra, &[])
    }

    /// All the server printed so far, start-up included.
    pub fn output(&self) -> String {
        let mut all = self.log.join("");
        for line in self.rest.lock().unwrap().iter() {
            all.push_str(line);
            all.push('\n');
        }
        all
    }

    pub fn spawn_on(database: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_command(writ_command(), database, extra, env)
    }

    /// `writ serve` started by `launcher`: the writ binary itself, or a
    /// command that runs it (with limits, say).
    pub fn spawn_command(
        mut launcher: Command,
        database: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = launcher
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut log = Vec::new();
        let mut base = None;
        // Read until the start-up lines are out (bounded: the process ends
        // the stream if it fails to start).
        for _ in 0..50 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            // Text or JSON logs: look at the message either way.
            let message = if line.starts_with('{') {
                serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v["fields"]["message"].as_str().map(str::to_owned))
            } else {
                None
            }
            .unwrap_or_else(|| line.clone());
            if let Some(rest) = message.split("listening on ").nth(1) {
                base = Some(rest.trim().to_owned());
            }
            let done = message.contains(" ready ") || message == "ready";
            log.push(line);
            if done {
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        let rest = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = rest.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let base = base.unwrap_or_else(|| panic!("server did not start: {log:?}"));
        Self {
            child,
            base,
            log,
            rest,
        }
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "writ serve exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("writ serve did not stop on SIGTERM");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What is still in the pipe arrives once the process is gone.
        std::thread::sleep(Duration::from_millis(20));
        transcript::log(&self.output());
    }
}
