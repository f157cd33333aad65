//! HTTPS: rustls, HTTP/1.1 and HTTP/2, https URLs in the metadata, a real
//! OAuth client over TLS, and a certificate reloaded without a restart.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, TokenUrl};

use crate::harness::{
    basic, certificate, curl, eventually, send, transcript, try_send, verify, Remote, Writ,
};

fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start_tls(w: &mut Writ) -> String {
    let (tls, pem) = certificate(w.dir.path());
    let mut config = w.config();
    config.tls = Some(tls);
    w.start_configured(config).await;
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
    let meta = send(http.get(w.url("/.well-known/oauth-authorization-server")))
        .await
        .json;
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
        let node = Remote::with_client(&w.base, client);
        let r = node.request_token(&c).await;
        assert_eq!(r.version, version);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let jwks = Remote::with_client(&w.base, http.clone()).jwks().await;
        verify(r.access_token(), &jwks, &w.base, &w.base);
    }

    // A real OAuth client over TLS.
    let token = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_token_uri(TokenUrl::new(w.url("/oauth/token")).unwrap())
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    transcript::secret(oauth2::TokenResponse::access_token(&token).secret());
    assert_eq!(
        oauth2::TokenResponse::expires_in(&token).unwrap().as_secs(),
        3600
    );

    // Plain HTTP on the TLS port is refused.
    let plain =
        try_send(reqwest::Client::new().post(w.url("/oauth/token").replace("https://", "http://")))
            .await;
    assert!(plain.is_err() || plain.unwrap().status != 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wso2_curl_commands_over_https() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "test"]);
    start_tls(&mut w).await;
    let url = w.url("/token");
    let r = curl(&[
        "-k",
        "-d",
        "grant_type=client_credentials&scope=test",
        "-H",
        &format!("Authorization: {}", basic(&c.id, &c.secret)),
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        &url,
    ]);
    assert_eq!(r["scope"], "test");
    assert_eq!(r["token_type"], "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_is_reloaded_when_its_files_change() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let first = start_tls(&mut w).await;
    // The status of a token request over a connection that trusts `pem`.
    let token = |pem: &str| {
        let node = Remote::with_client(&w.base, client_trusting(pem));
        let c = c.clone();
        async move { try_send(node.token_request(&c)).await.map(|r| r.status) }
    };
    assert_eq!(token(&first).await.unwrap(), 200);
    let (_, second) = certificate(w.dir.path());
    // New connections get the new certificate; no restart.
    eventually(Duration::from_secs(6), || async {
        token(&second).await.is_ok_and(|s| s == 200)
    })
    .await;
    assert!(token(&first).await.is_err(), "the old certificate is gone");
}
