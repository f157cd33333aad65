//! RFC 7591 dynamic client registration and RFC 7592 management.

use serde_json::{json, Value};

use crate::assertions::{claims, TestKey};
use crate::harness::{transcript, Creds, Reply, Writ};
use crate::jwks_uri::JWT_BEARER;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7591_2_a_client_registers_its_keys_and_signs_its_assertions() {
    let mut w = Writ::new();
    let registrar = w.client(&["--scope", "writ:register"]);
    w.start().await;
    let initial = w
        .token(&registrar, "scope=writ:register")
        .await
        .access_token()
        .to_owned();
    let endpoint = w.url("/oauth/register");
    let key = TestKey::new("ES256", "k1");
    let jwks = json!({"keys": [key.jwk.clone()]});
    let body = json!({"client_name": "signer", "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
        "token_endpoint_auth_signing_alg": "ES256"});
    let r = call(&w, reqwest::Method::POST, &endpoint, &initial, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json.get("client_secret").is_none(), "{}", r.text);
    assert!(r.json.get("client_secret_expires_at").is_none());
    assert_eq!(r.json["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(r.json["jwks"], jwks);
    let id = r.json["client_id"].as_str().unwrap().to_owned();
    let rat = r.json["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = r.json["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();

    // The next request authenticates with an assertion signed by that key.
    let assertion = key.sign(&claims(&id, &w.base));
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .finish();
    let r = w.post_form("/oauth/token", &form).await;
    assert_eq!(
        crate::harness::claims(r.access_token())["client_id"],
        id.as_str()
    );

    // RFC 7592 §2.1: the read shows the keys; §2.2: an update replaces them.
    let r = call(&w, reqwest::Method::GET, &uri, &rat, None).await;
    assert_eq!(
        (
            r.status,
            r.json["token_endpoint_auth_method"].clone(),
            r.json["jwks"].clone()
        ),
        (200, json!("private_key_jwt"), jwks),
        "{}",
        r.text
    );
    let rotated = TestKey::new("EdDSA", "k2");
    let update = json!({"client_id": id, "client_name": "signer", "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [rotated.jwk.clone()]}});
    let r = call(&w, reqwest::Method::PUT, &uri, &rat, Some(update)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["jwks"]["keys"][0]["kid"], "k2");
    let r = call(
        &w,
        reqwest::Method::PUT,
        &uri,
        &rat,
        Some(json!({"client_id": id, "token_endpoint_auth_method": "client_secret_basic"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"].clone()),
        (400, json!("invalid_client_metadata")),
        "{}",
        r.text
    );

    // At a URL instead.
    let body = json!({"token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": "https://signer.example.com/jwks"});
    let r = call(&w, reqwest::Method::POST, &endpoint, &initial, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["jwks_uri"], "https://signer.example.com/jwks");
    assert!(r.json.get("jwks").is_none());

    // invalid_client_metadata: both, neither, keys that are no keys, keys
    // beside a secret, an algorithm no key allows or Writ never verifies.
    let jwks = json!({"keys": [key.jwk.clone()]});
    let mut private = key.jwk.clone();
    private["d"] = json!("AAAA");
    for body in [
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
            "jwks_uri": "https://signer.example.com/jwks"}),
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [private]}}),
        json!({"token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "http://signer.example.com/jwks"}),
        json!({"token_endpoint_auth_method": "client_secret_basic", "jwks": jwks}),
        json!({"jwks_uri": "https://signer.example.com/jwks"}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
            "token_endpoint_auth_signing_alg": "RS256"}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
            "token_endpoint_auth_signing_alg": "HS256"}),
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
}
