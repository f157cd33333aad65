//! A table-driven sweep of malformed requests over every endpoint: each gets
//! the exact status and RFC error its endpoint owes it, the server keeps
//! serving, and nothing stored changes.

use serde_json::Value;

use crate::harness::{Writ, NO_LIMITS};

fn state(w: &Writ) -> Vec<Value> {
    ["client", "api", "grant", "key"]
        .iter()
        .map(|what| w.cli(&[what, "list"]))
        .collect()
}

/// What is wrong with a request, which decides each endpoint's answer.
/// The POST endpoints read the body as a whole first; the token endpoint
/// then checks some parameters before it authenticates the client.
#[derive(Clone, Copy, Debug)]
enum Wrong {
    /// The body is no set of parameters (its encoding, syntax or size, a
    /// repeated name): `invalid_request` from every POST endpoint.
    Body,
    /// Readable, from no client that authenticates: the token endpoint's
    /// code is given; introspection and revocation say `invalid_client`.
    Anonymous(&'static str),
    /// An authenticated client's token request with a bad parameter: the
    /// token endpoint's code is given; introspection and revocation, which
    /// ignore the parameter, find their `token` missing.
    Parameter(&'static str),
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Token,
    /// Introspection and revocation: a client authenticates and names a token.
    TokenUse,
    /// The metadata, the JWKS, health, readiness, metrics: no POST at all.
    Get,
}

/// RFC 6749 §5.2: `invalid_client` is 401, the other errors 400.
fn status_of(code: &str) -> u16 {
    if code == "invalid_client" {
        401
    } else {
        400
    }
}

/// The status and `error` code `endpoint` owes a POST that is `wrong`; no
/// code where the answer is not an OAuth error.
fn expected(endpoint: Endpoint, wrong: Wrong) -> (u16, Option<&'static str>) {
    let code = match (endpoint, wrong) {
        (Endpoint::Get, _) => return (405, None),
        (_, Wrong::Body) => "invalid_request",
        (Endpoint::Token, Wrong::Anonymous(code) | Wrong::Parameter(code)) => code,
        (Endpoint::TokenUse, Wrong::Anonymous(_)) => "invalid_client",
        (Endpoint::TokenUse, Wrong::Parameter(_)) => "invalid_request",
    };
    (status_of(code), Some(code))
}

const ENDPOINTS: [(&str, Endpoint); 10] = [
    ("/oauth/token", Endpoint::Token),
    ("/oauth/access_token", Endpoint::Token),
    ("/token", Endpoint::Token),
    ("/oauth/introspect", Endpoint::TokenUse),
    ("/oauth/revoke", Endpoint::TokenUse),
    ("/.well-known/oauth-authorization-server", Endpoint::Get),
    ("/.well-known/jwks.json", Endpoint::Get),
    ("/healthz", Endpoint::Get),
    ("/readyz", Endpoint::Get),
    ("/metrics", Endpoint::Get),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_exact_error_of_every_endpoint() {
    use Wrong::*;
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let config = w.config_with_file(NO_LIMITS);
    w.start_configured(config).await;
    // Keys are made on first start: compare from here.
    let before = state(&w);
    let auth = format!("client_id={}&client_secret={}", c.id, c.secret);
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let scopes: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    let cases: Vec<(&str, Vec<u8>, Wrong)> = vec![
        (
            form,
            b"grant_type=client_credentials&client_id=".to_vec(),
            Anonymous("invalid_client"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=%").into_bytes(),
            Parameter("invalid_scope"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=%ZZ").into_bytes(),
            Parameter("invalid_scope"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=%C3").into_bytes(),
            Body,
        ),
        (
            form,
            b"grant_type=client_credentials&client_id=\xff\xfe".to_vec(),
            Body,
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=a%00b").into_bytes(),
            Parameter("invalid_scope"),
        ),
        (
            form,
            format!("grant_type=client_credentials\0&{auth}").into_bytes(),
            Parameter("unsupported_grant_type"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&validity_period=1e309").into_bytes(),
            Parameter("invalid_request"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&validity_period=-0").into_bytes(),
            Parameter("invalid_request"),
        ),
        (
            form,
            format!(
                "grant_type=client_credentials&{auth}&scope={}",
                scopes.join("+")
            )
            .into_bytes(),
            Body,
        ),
        (
            form,
            format!(
                "grant_type=client_credentials&{auth}&scope={}",
                scopes[..500].join("+")
            )
            .into_bytes(),
            Parameter("invalid_scope"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&scope=read%0D%0ASet-Cookie:x=1")
                .into_bytes(),
            Parameter("invalid_scope"),
        ),
        (
            form,
            format!("grant_type=client_credentials&{auth}&audience=https://x/%0D%0AX:1")
                .into_bytes(),
            Parameter("invalid_target"),
        ),
        (
            json,
            br#"{"grant_type":"client_credentials""#.to_vec(),
            Body,
        ),
        (
            json,
            br#"{"grant_type":"client_credentials","client_id":"\ud800"}"#.to_vec(),
            Body,
        ),
        (
            json,
            br#"{"grant_type":"client_credentials","client_id":null,"client_id":null}"#.to_vec(),
            Body,
        ),
        (json, br#"{"validity_period":1e999}"#.to_vec(), Body),
        // The token endpoint reads validity_period before it looks for a client.
        (
            json,
            br#"{"validity_period":18446744073709551616000}"#.to_vec(),
            Anonymous("invalid_request"),
        ),
        (json, b"\xef\xbb\xbf{}".to_vec(), Body),
        (json, b"{\"a\":\"\0\"}".to_vec(), Body),
        (
            json,
            br#"{"grant_type":"client_credentials","client_id":"a\u0000b"}"#.to_vec(),
            Anonymous("invalid_client"),
        ),
        (json, vec![b'['; 10_000], Body),
    ];
    for (path, endpoint) in ENDPOINTS {
        for (ct, body, wrong) in &cases {
            // A GET endpoint answers a POST without reading its body, so a
            // large body may meet a reset connection, not the 405: only the
            // small cases go there.
            if matches!(endpoint, Endpoint::Get) && body.len() > 4096 {
                continue;
            }
            let r = w
                .send(
                    w.http
                        .post(w.url(path))
                        .header("content-type", *ct)
                        .body(body.clone()),
                )
                .await;
            let what = format!(
                "{path} {wrong:?} {:?}: {} {}",
                String::from_utf8_lossy(&body[..body.len().min(120)]),
                r.status,
                r.text
            );
            match expected(endpoint, *wrong) {
                (status, Some(code)) => {
                    assert_eq!(
                        (r.status, r.json["error"].as_str()),
                        (status, Some(code)),
                        "{what}"
                    );
                    r.assert_error(status, code);
                    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
                }
                (status, None) => {
                    assert_eq!(r.status, status, "{what}");
                    assert_eq!(r.header("allow"), Some("GET,HEAD"), "{what}");
                    assert!(r.text.is_empty(), "{what}");
                }
            }
        }
        // Header injection in every header a client controls is refused or
        // ignored: the POST endpoints refuse Basic credentials that are not
        // ASCII as a malformed request (400, no challenge), the GET
        // endpoints do not read them.
        let bad_basic = reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap();
        let r = match endpoint {
            Endpoint::Get => {
                w.send(w.http.get(w.url(path)).header("authorization", bad_basic))
                    .await
            }
            Endpoint::Token | Endpoint::TokenUse => {
                w.send(
                    w.http
                        .post(w.url(path))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("authorization", bad_basic)
                        .body(auth.clone()),
                )
                .await
            }
        };
        match endpoint {
            Endpoint::Get => assert_eq!(r.status, 200, "{path}: {}", r.text),
            Endpoint::Token | Endpoint::TokenUse => {
                r.assert_error(400, "invalid_request");
                assert!(r.header("www-authenticate").is_none(), "{path}");
            }
        }
        assert!(r.header("set-cookie").is_none());
    }
    // Still serving, and nothing stored changed.
    assert_eq!(w.token(&c, "scope=read").await.status, 200);
    assert_eq!(state(&w), before);
}
