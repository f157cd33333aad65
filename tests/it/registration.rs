//! RFC 7591 dynamic client registration and RFC 7592 management.

use serde_json::{json, Value};

use crate::harness::{transcript, Creds, Reply, Writ};

async fn call(
    w: &Writ,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = w.http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = w.send(req).await;
    transcript::secrets_in(&r.text);
    for field in ["client_secret", "registration_access_token"] {
        if let Some(s) = r.json[field].as_str() {
            transcript::secret(s);
        }
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7591_a_machine_client_registers_itself_and_rfc7592_manages_it() {
    let mut w = Writ::new();
    let registrar = w.client(&["--scope", "writ:register"]);
    let other = w.client(&["--scope", "read"]);
    w.start().await;
    let meta = w.get("/.well-known/oauth-authorization-server").await.json;
    let endpoint = meta["registration_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(endpoint, w.url("/oauth/register"));

    // An initial access token is needed, with the scope writ:register.
    let body = json!({"client_name": "inventory", "scope": "read", "grant_types": ["client_credentials"], "logo_uri": "ignored"});
    let r = call(
        &w,
        reqwest::Method::POST,
        &endpoint,
        "nope",
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"].clone()),
        (401, json!("invalid_token")),
        "{}",
        r.text
    );
    let wrong = w
        .token(&other, "scope=read")
        .await
        .access_token()
        .to_owned();
    let r = call(
        &w,
        reqwest::Method::POST,
        &endpoint,
        &wrong,
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"].clone()),
        (403, json!("insufficient_scope")),
        "{}",
        r.text
    );

    let initial = w
        .token(&registrar, "scope=writ:register")
        .await
        .access_token()
        .to_owned();
    let r = call(&w, reqwest::Method::POST, &endpoint, &initial, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json.clone();
    assert_eq!(
        (
            j["client_name"].clone(),
            j["scope"].clone(),
            j["client_secret_expires_at"].clone(),
            j["token_endpoint_auth_method"].clone()
        ),
        (
            json!("inventory"),
            json!("read"),
            json!(0),
            json!("client_secret_basic")
        )
    );
    assert!(j.get("logo_uri").is_none(), "unknown metadata is ignored");
    let client = Creds {
        id: j["client_id"].as_str().unwrap().into(),
        secret: j["client_secret"].as_str().unwrap().into(),
    };
    // Usable by the very next request.
    assert_eq!(w.token(&client, "scope=read").await.status, 200);
    let rat = j["registration_access_token"].as_str().unwrap().to_owned();
    let uri = j["registration_client_uri"].as_str().unwrap().to_owned();

    // RFC 7592: read, update, delete with the registration access token only.
    let r = call(&w, reqwest::Method::GET, &uri, &rat, None).await;
    assert_eq!(
        (r.status, r.json["client_name"].clone()),
        (200, json!("inventory")),
        "{}",
        r.text
    );
    assert!(r.json.get("client_secret").is_none());
    let r = call(&w, reqwest::Method::GET, &uri, &initial, None).await;
    assert_eq!(r.status, 401, "another token does not manage it");
    let r = call(
        &w,
        reqwest::Method::PUT,
        &uri,
        &rat,
        Some(json!({"client_id": client.id, "client_name": "inventory-eu", "scope": "read"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["client_name"].clone()),
        (200, json!("inventory-eu")),
        "{}",
        r.text
    );
    let r = call(
        &w,
        reqwest::Method::PUT,
        &uri,
        &rat,
        Some(json!({"client_id": "someone-else"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"].clone()),
        (400, json!("invalid_client_metadata"))
    );
    let r = call(&w, reqwest::Method::DELETE, &uri, &rat, None).await;
    assert_eq!(r.status, 204);
    let r = call(&w, reqwest::Method::GET, &uri, &rat, None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7591_3_2_2_metadata_writ_cannot_serve_is_refused() {
    let mut w = Writ::new();
    let registrar = w.client(&["--scope", "writ:register"]);
    w.start().await;
    let initial = w
        .token(&registrar, "scope=writ:register")
        .await
        .access_token()
        .to_owned();
    let endpoint = w.url("/oauth/register");
    for body in [
        json!({"grant_types": ["authorization_code"]}),
        json!({"response_types": ["code"]}),
        json!({"token_endpoint_auth_method": "tls_client_auth"}),
        json!({"scope": "a*b"}),
        json!({"client_name": "x".repeat(201)}),
        json!({"token_endpoint_auth_method": "none", "scope": "writ:introspect"}),
        json!("not an object"),
    ] {
        let r = call(
            &w,
            reqwest::Method::POST,
            &endpoint,
            &initial,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (r.status, r.json["error"].clone()),
            (400, json!("invalid_client_metadata")),
            "{body}: {}",
            r.text
        );
    }
    // A public client: no secret.
    let r = call(
        &w,
        reqwest::Method::POST,
        &endpoint,
        &initial,
        Some(json!({"token_endpoint_auth_method": "none"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json.get("client_secret").is_none());
}
