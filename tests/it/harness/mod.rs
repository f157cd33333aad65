//! What every test uses: a Writ installation (`Writ`), `writ serve` as a
//! child process (`Process`), HTTP to either (`Reply`, `Remote`), and the
//! transcript that `tests/scan-logs` reads. Every secret and token a helper
//! here hands to a test is recorded in the transcript.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

mod database;
mod http;
mod installation;
mod process;
pub mod transcript;

pub use self::database::{assert_sqlite_intact, change_keys};
pub use self::http::{send, try_send, Remote, Reply};
pub use self::installation::{Creds, Writ, NO_LIMITS};
pub use self::process::Process;

pub const BIN: &str = env!("CARGO_BIN_EXE_writ");

/// Runs blocking work (a child process) without stalling an in-process
/// server that shares this test's runtime: its tasks move to another worker.
/// Runs `interop/install` (the third-party clients, from their registries,
/// into a cache outside the source tree); returns that cache's path.
pub fn install_interop() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let install = blocking(|| {
        std::process::Command::new("bash")
            .arg(format!("{root}/interop/install"))
            .output()
            .unwrap()
    });
    assert!(
        install.status.success(),
        "interop/install failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let out = String::from_utf8(install.stdout).unwrap();
    out.trim().lines().last().unwrap().to_owned()
}

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

/// Runs a `writ` command to its end. What it printed goes to the
/// transcript: its stderr as log lines, the secrets in its stdout as secrets.
pub fn run_writ(cmd: &mut Command) -> Output {
    let out = blocking(|| cmd.output().unwrap());
    transcript::log(&String::from_utf8_lossy(&out.stderr));
    transcript::secrets_in(&String::from_utf8_lossy(&out.stdout));
    out
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

/// The `kid` in a JWT's header.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// An `Authorization` header value for HTTP Basic authentication.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Runs curl with `args` (it blocks its thread: the server needs another);
/// returns the JSON it printed. A token in it is recorded.
pub fn curl(args: &[&str]) -> Value {
    let out = blocking(|| {
        Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .args(args)
            .output()
            .expect("curl is installed")
    });
    assert!(out.status.success(), "curl {args:?}");
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    transcript::token_in(&answer);
    answer
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM
/// files into `dir`; returns them and the certificate's PEM text.
pub fn certificate(dir: &Path) -> (writ::config::Tls, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let tls = writ::config::Tls {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    // Write the key first: a reload sees the pair only once the cert changes.
    std::fs::write(&tls.key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(&tls.cert, ck.cert.pem()).unwrap();
    (tls, ck.cert.pem())
}
