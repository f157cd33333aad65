//! The interoperability matrix: vendor SDKs and standard OAuth clients in
//! Node and Python, unchanged but for the base URL, against a real Writ on
//! plain HTTP and on HTTPS. `interop/install` fetches them from their
//! registries into a cache outside the source tree (once).

use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use crate::harness::{blocking, certificate, install_interop, Writ};

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

/// PKCS#8 DER as PEM.
fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let text = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    crate::harness::transcript::secret(&text);
    text
}

/// A client registered with the public halves of a fresh ES256 and RS256
/// key: its id and the private keys as PEM.
fn key_client(w: &Writ) -> (String, String, String) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{
        EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    };
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let point = ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])},
        {"kty": "RSA",
         "n": b64(rsa.public_key().modulus().big_endian_without_leading_zero()),
         "e": b64(rsa.public_key().exponent().big_endian_without_leading_zero())},
    ]});
    let file = w.dir.path().join("python-client.jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let created = w.cli(&[
        "client",
        "create",
        "--name",
        "python-jwt",
        "--scope",
        "read",
        "--jwks",
        file.to_str().unwrap(),
    ]);
    (
        created["client_id"].as_str().unwrap().to_owned(),
        pem(ec.to_pkcs8v1().unwrap().as_ref()),
        pem(rsa.as_der().unwrap().as_ref()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_sdks_and_standard_clients() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cache = install_interop();

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
    // A private_key_jwt client with an ES256 and an RS256 key; Python gets
    // the private halves as PEM (recorded: they must never be logged).
    let (jwt_client, ec_pem, rsa_pem) = key_client(&w);

    // Plain HTTP and HTTPS listeners on one database, each its own issuer.
    let (tls, _) = certificate(w.dir.path());
    let cert = tls.cert.clone();
    let mut config = w.config();
    w.start_configured(config.clone()).await;
    config.tls = Some(tls);
    // The HTTPS listener also takes the token endpoint as an assertion's `aud`.
    config.assertion_token_endpoint_audience = true;
    let tls = writ::server::start(config, Arc::new(writ::clock::SystemClock))
        .await
        .unwrap();
    let https = format!("https://{}", tls.addr);

    let clients = json!({
        "conf": {"id": conf.id, "secret": conf.secret},
        "pub": {"id": public.id},
        "jwt": {"id": jwt_client, "ec_pem": ec_pem, "rsa_pem": rsa_pem},
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
        "node: @moltin/sdk, @commercelayer/js-auth, auth0, openid-client (secret and private_key_jwt), simple-oauth2, jose",
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
