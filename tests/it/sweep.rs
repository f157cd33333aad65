//! A table-driven sweep of malformed requests over every POST endpoint: each
//! gets a precise 4xx RFC error, the server keeps serving, and nothing
//! stored changes.

use serde_json::Value;

use crate::harness::Writ;

fn state(w: &Writ) -> Vec<Value> {
    ["client", "api", "grant", "key"]
        .iter()
        .map(|what| w.cli(&[what, "list"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_over_every_endpoint() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let config = w.config_with_file("[limits]\nenabled = false\n");
    w.start_with(config, std::sync::Arc::new(writ::clock::SystemClock))
        .await;
    // Keys are made on first start: compare from here.
    let before = state(&w);
    let auth = format!("client_id={}&client_secret={}", c.id, c.secret);
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let scopes: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            form,
            b"grant_type=client_credentials&client_id=".to_vec(),
            "invalid_client",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=%").into_bytes(),
            "invalid_scope",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=%ZZ").into_bytes(),
            "invalid_scope",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=%C3").into_bytes(),
            "invalid_request",
        ),
        (
            form,
            b"grant_type=client_credentials&client_id=\xff\xfe".to_vec(),
            "invalid_request",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=a%00b").into_bytes(),
            "invalid_scope",
        ),
        (
            form,
            format!("grant_type=client_credentials\0&{auth}").into_bytes(),
            "unsupported_grant_type",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&validity_period=1e309").into_bytes(),
            "invalid_request",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&validity_period=-0").into_bytes(),
            "invalid_request",
        ),
        (
            form,
            format!(
                "grant_type=client_credentials&{auth}&scope={}",
                scopes.join("+")
            )
            .into_bytes(),
            "invalid_request",
        ),
        (
            form,
            format!(
                "grant_type=client_credentials&{auth}&scope={}",
                scopes[..500].join("+")
            )
            .into_bytes(),
            "invalid_scope",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=read%0D%0ASet-Cookie:x=1")
                .into_bytes(),
            "invalid_scope",
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&audience=https://x/%0D%0AX:1")
                .into_bytes(),
            "invalid_target",
        ),
        (
            json,
            br#"{"grant_type":"client_credentials""#.to_vec(),
            "invalid_request",
        ),
        (
            json,
            br#"{"grant_type":"client_credentials","client_id":"\ud800"}"#.to_vec(),
            "invalid_request",
        ),
        (
            json,
            br#"{"grant_type":"client_credentials","client_id":null,"client_id":null}"#.to_vec(),
            "invalid_request",
        ),
        (
            json,
            br#"{"validity_period":1e999}"#.to_vec(),
            "invalid_request",
        ),
        (
            json,
            br#"{"validity_period":18446744073709551616000}"#.to_vec(),
            "invalid_request",
        ),
        (json, b"\xef\xbb\xbf{}".to_vec(), "invalid_request"),
        (json, b"{\"a\":\"\0\"}".to_vec(), "invalid_request"),
        (
            json,
            br#"{"grant_type":"client_credentials","client_id":"a\u0000b"}"#.to_vec(),
            "invalid_client",
        ),
        (json, vec![b'['; 10_000], "invalid_request"),
    ];
    for path in [
        "/oauth/token",
        "/oauth/access_token",
        "/token",
        "/oauth/introspect",
        "/oauth/revoke",
    ] {
        for (ct, body, expected) in &cases {
            let r = w
                .send(
                    w.http
                        .post(w.url(path))
                        .header("content-type", *ct)
                        .body(body.clone()),
                )
                .await;
            assert!(
                (400..500).contains(&r.status),
                "{path} {:?}: {} {}",
                String::from_utf8_lossy(body),
                r.status,
                r.text
            );
            assert!(r.json["error"].is_string(), "{path}: {}", r.text);
            if path.contains("token") {
                assert_eq!(
                    r.json["error"],
                    *expected,
                    "{path} {:?}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(120)]),
                    r.text
                );
            }
        }
        // Header injection in every header a client controls is refused or ignored.
        let r = w
            .send(
                w.http
                    .post(w.url(path))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header(
                        "authorization",
                        reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap(),
                    )
                    .body(auth.clone()),
            )
            .await;
        assert!((400..500).contains(&r.status), "{path}: {}", r.text);
        assert!(r.header("set-cookie").is_none());
    }
    // Still serving, and nothing stored changed.
    assert_eq!(w.token(&c, "scope=read").await.status, 200);
    assert_eq!(state(&w), before);
}
