//! HTTPS: rustls, HTTP/1.1 and HTTP/2, https URLs in the metadata, a real
//! OAuth client over TLS, and a certificate reloaded without a restart.

use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, TokenUrl};

use crate::harness::{eventually, verify, Writ};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn certificate(w: &Writ) -> (writ::config::Tls, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let tls = writ::config::Tls {
        cert: w.dir.path().join("cert.pem"),
        key: w.dir.path().join("key.pem"),
    };
    // Write the key first: a reload sees the pair only once the cert changes.
    std::fs::write(&tls.key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(&tls.cert, ck.cert.pem()).unwrap();
    (tls, ck.cert.pem())
}

fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start_tls(w: &mut Writ) -> String {
    let (tls, pem) = certificate(w);
    let mut config = w.config();
    config.tls = Some(tls);
    w.start_with(config, Arc::new(writ::clock::SystemClock))
        .await;
    w.base = w.base.replace("http://", "https://");
    pem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_http1_and_http2_with_https_metadata() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let pem = start_tls(&mut w).await;
    assert!(w
        .server
        .as_ref()
        .unwrap()
        .issuer
        .starts_with("https://127.0.0.1:"));

    let http = client_trusting(&pem);
    let meta: serde_json::Value = http
        .get(w.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], w.base.as_str());
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", w.base));
    assert!(meta["jwks_uri"].as_str().unwrap().starts_with("https://"));

    for (client, version) in [
        (
            reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
                .http1_only()
                .build()
                .unwrap(),
            reqwest::Version::HTTP_11,
        ),
        (http.clone(), reqwest::Version::HTTP_2), // ALPN offers h2 first
    ] {
        let r = client
            .post(w.url("/oauth/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), version);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: serde_json::Value = r.json().await.unwrap();
        let jwks = http
            .get(w.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        let jwks: serde_json::Value = jwks.json().await.unwrap();
        verify(
            body["access_token"].as_str().unwrap(),
            &jwks,
            &w.base,
            &w.base,
        );
    }

    // A real OAuth client over TLS.
    let token = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_token_uri(TokenUrl::new(w.url("/oauth/token")).unwrap())
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        oauth2::TokenResponse::expires_in(&token).unwrap().as_secs(),
        3600
    );

    // Plain HTTP on the TLS port is refused.
    let plain = reqwest::Client::new()
        .post(w.url("/oauth/token").replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wso2_curl_commands_over_https() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "test"]);
    start_tls(&mut w).await;
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", c.id, c.secret),
    );
    let url = w.url("/token");
    let out = crate::harness::blocking(|| {
        std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "-k",
                "-d",
                "grant_type=client_credentials&scope=test",
            ])
            .args(["-H", &format!("Authorization: Basic {basic}")])
            .args([
                "-H",
                "Content-Type: application/x-www-form-urlencoded",
                &url,
            ])
            .output()
            .unwrap()
    });
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["scope"], "test");
    assert_eq!(r["token_type"], "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_is_reloaded_when_its_files_change() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let first = start_tls(&mut w).await;
    let token = |http: reqwest::Client| {
        let (url, c) = (w.url("/oauth/token"), c.clone());
        async move {
            http.post(url)
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    assert_eq!(token(client_trusting(&first)).await.unwrap(), 200);
    let (_, second) = certificate(&w);
    // New connections get the new certificate; no restart.
    eventually(Duration::from_secs(6), || async {
        token(client_trusting(&second))
            .await
            .is_ok_and(|s| s == 200)
    })
    .await;
    assert!(
        token(client_trusting(&first)).await.is_err(),
        "the old certificate is gone"
    );
}
