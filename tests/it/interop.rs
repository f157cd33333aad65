//! The interoperability matrix: vendor SDKs and standard OAuth clients in
//! Node and Python, unchanged but for the base URL, against a real Writ on
//! plain HTTP and on HTTPS. `interop/install` fetches them from their
//! registries into a cache outside the source tree (once).

use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use crate::harness::{blocking, certificate, Writ};

const API: &str = "https://orders.interop.test/";

fn run(cmd: &mut Command, what: &str) {
    let out = blocking(|| cmd.output().unwrap_or_else(|e| panic!("{what}: {e}")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("---- {what} ----\n{text}");
    assert!(out.status.success(), "{what} failed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_sdks_and_standard_clients() {
    let root = env!("CARGO_MANIFEST_DIR");
    let install = blocking(|| {
        Command::new("bash")
            .arg(format!("{root}/interop/install"))
            .output()
            .unwrap()
    });
    assert!(
        install.status.success(),
        "interop/install failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let cache = String::from_utf8(install.stdout).unwrap();
    let cache = cache.trim().lines().last().unwrap().to_owned();

    let mut w = Writ::new();
    let conf = w.client(&["--scope", "read market:*", "--default-scope", "market:all"]);
    let public = w.client(&[
        "--public",
        "--scope",
        "market:* read",
        "--default-scope",
        "read",
    ]);
    w.cli(&[
        "api",
        "create",
        "--identifier",
        API,
        "--scope",
        "read:orders",
        "--lifetime",
        "600",
        "--claims",
        "auth0",
    ]);
    w.grant(&conf, API, "read:orders");

    // Plain HTTP and HTTPS listeners on one database, each its own issuer.
    let (tls, _) = certificate(w.dir.path());
    let cert = tls.cert.clone();
    let mut config = w.config();
    w.start_configured(config.clone()).await;
    config.tls = Some(tls);
    let tls = writ::server::start(config, Arc::new(writ::clock::SystemClock))
        .await
        .unwrap();
    let https = format!("https://{}", tls.addr);

    let clients = json!({
        "conf": {"id": conf.id, "secret": conf.secret},
        "pub": {"id": public.id},
        "api": API,
    })
    .to_string();
    let env = [
        ("WRIT_HTTP", w.base.as_str()),
        ("WRIT_HTTPS", https.as_str()),
        ("WRIT_CLIENTS", clients.as_str()),
    ];

    run(
        Command::new("node")
            .args(["--test", "--test-reporter=spec"])
            .arg(format!("{cache}/node/interop.test.mjs"))
            .envs(env)
            .env("NODE_EXTRA_CA_CERTS", &cert),
        "node: @moltin/sdk, @commercelayer/js-auth, auth0, openid-client, simple-oauth2, jose",
    );
    run(
        Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(format!("{root}/interop/python"))
            .envs(env)
            .env("PYTHONPATH", format!("{cache}/python/lib"))
            .env("REQUESTS_CA_BUNDLE", &cert),
        "python: authlib, requests-oauthlib, PyJWT",
    );
    tls.shutdown().await.unwrap();
}
