//! Real clients: the `oauth2` crate, and the curl commands of the four seed
//! pages (Moltin, Commerce Layer, Auth0, WSO2) adapted to the local address.

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use crate::harness::{basic, claims, curl, transcript, verify, Writ};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_crate_client_credentials_exchange() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read write"]);
    w.start().await;
    let client = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_token_uri(TokenUrl::new(w.url("/oauth/token")).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .unwrap();
    transcript::secret(token.access_token().secret());
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);
    assert_eq!(token.scopes().unwrap(), &vec![Scope::new("read".into())]);
    let cl = verify(
        token.access_token().secret(),
        &w.jwks().await,
        &w.base,
        &w.base,
    );
    assert_eq!(cl["sub"], c.id.as_str());

    // A wrong secret surfaces as the RFC error the library understands.
    let bad = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new("wrong".into()))
        .set_token_uri(TokenUrl::new(w.url("/oauth/token")).unwrap());
    let err = bad
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap_err();
    match err {
        oauth2::RequestTokenError::ServerResponse(e) => {
            assert_eq!(
                e.error(),
                &oauth2::basic::BasicErrorResponseType::InvalidClient
            )
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

// curl blocks its thread; the server needs another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_pages_curl_commands() {
    let mut w = Writ::new();
    let conf = w.client(&["--scope", "market:* test", "--default-scope", "market:all"]);
    let sales = w.client(&[
        "--public",
        "--scope",
        "market:*",
        "--default-scope",
        "market:all",
    ]);
    w.api_granted_to(&conf, "https://api.example.com/", "read:products", &[]);
    w.start().await;
    let base = w.base.clone();

    // Moltin: form body to /oauth/access_token.
    let r = curl(&[
        "-X",
        "POST",
        &format!("{base}/oauth/access_token"),
        "-d",
        &format!("client_id={}", conf.id),
        "-d",
        &format!("client_secret={}", conf.secret),
        "-d",
        "grant_type=client_credentials",
    ]);
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(
        r["expires"].as_i64().unwrap() - r["created_at"].as_i64().unwrap(),
        3600
    );

    // Commerce Layer, sales channel: JSON, no secret, a market scope.
    let r = curl(&[
        "-X",
        "POST",
        &format!("{base}/oauth/token"),
        "-H",
        "Accept: application/json",
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(
            r#"{{"grant_type": "client_credentials", "client_id": "{}", "scope": "market:1234"}}"#,
            sales.id
        ),
    ]);
    assert_eq!(r["scope"], "market:1234");
    assert!(r["created_at"].is_i64());
    // Commerce Layer, integration: JSON with secret, default scope.
    let r = curl(&[
        "-X",
        "POST",
        &format!("{base}/oauth/token"),
        "-H",
        "Accept: application/json",
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(
            r#"{{"grant_type": "client_credentials", "client_id": "{}", "client_secret": "{}"}}"#,
            conf.id, conf.secret
        ),
    ]);
    assert_eq!(r["scope"], "market:all");

    // Auth0: audience names the API; a JWT for it.
    let r = curl(&[
        "--request", "POST",
        "--url", &format!("{base}/oauth/token"),
        "--header", "content-type: application/x-www-form-urlencoded",
        "--data", &format!("audience=https://api.example.com/&grant_type=client_credentials&client_id={}&client_secret={}", conf.id, conf.secret),
    ]);
    let token = r["access_token"].as_str().unwrap();
    verify(token, &w.jwks().await, "https://api.example.com/", &base);
    assert_eq!(claims(token)["scope"], "read:products");

    // WSO2: Basic, /token, scope, validity_period.
    let auth = format!("Authorization: {}", basic(&conf.id, &conf.secret));
    let r = curl(&[
        "-k",
        "-d",
        "grant_type=client_credentials",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        &format!("{base}/token"),
    ]);
    assert_eq!(r["token_type"], "Bearer");
    let r = curl(&[
        "-k",
        "-d",
        "grant_type=client_credentials&scope=test",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        &format!("{base}/token"),
    ]);
    assert_eq!(r["scope"], "test");
    let r = curl(&[
        "-X",
        "POST",
        "-k",
        "-H",
        &auth,
        "-d",
        "grant_type=client_credentials&validity_period=3200",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        &format!("{base}/token"),
    ]);
    assert_eq!(r["expires_in"], 3200);
}
