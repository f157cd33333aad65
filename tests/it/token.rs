//! The token endpoint's rules, over HTTP.

use serde_json::json;

use crate::harness::{basic, claims, Reply, Writ};

const NOW: i64 = 1_800_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6749_4_4_3_success_response_on_every_path() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "market:* read", "--default-scope", "market:all"]);
    w.start_fixed(NOW).await;
    for path in ["/oauth/token", "/oauth/access_token", "/token"] {
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            c.id, c.secret
        );
        let r = w.post_form(path, &body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let token = r.access_token().to_owned();
        let mut expected = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "market:all",
            "created_at": NOW,
            "expires": NOW + 3600,
            "identifier": "client_credentials",
        });
        assert_eq!(r.json, expected, "{path}");
        let cl = claims(&token);
        let jti = cl["jti"].as_str().unwrap().to_owned();
        assert!(jti.len() >= 16);
        expected = json!({
            "iss": w.base,
            "sub": c.id,
            "client_id": c.id,
            "aud": w.base,
            "iat": NOW,
            "exp": NOW + 3600,
            "jti": jti,
            "scope": "market:all",
        });
        assert_eq!(cl, expected);
        assert!(r.json.get("refresh_token").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jti_is_unique_per_token() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let r = w.token(&c, "").await;
        assert!(seen.insert(claims(r.access_token())["jti"].to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6749_2_3_1_basic_credentials_are_form_urlencoded() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    w.start().await;
    // '-' and '_' percent-encoded must decode to the same secret.
    let encoded = c.secret.replace('-', "%2D").replace('_', "%5F");
    let r = w
        .send(
            w.http
                .post(w.url("/token"))
                .header("authorization", basic(&c.id, &encoded))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=read"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["scope"], "read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6749_2_3_two_authentication_methods_are_invalid_request() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let r = w
        .send(
            w.http
                .post(w.url("/oauth/token"))
                .header("authorization", basic(&c.id, &c.secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&client_secret={}",
                    c.secret
                )),
        )
        .await;
    r.assert_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6749_5_2_invalid_client_never_says_why() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let disabled = w.client(&[]);
    w.cli(&["client", "disable", &disabled.id]);
    let public = w.client(&["--public"]);
    w.start().await;

    let cases = [
        format!("client_id={}&client_secret=wrong", c.id),
        format!("client_id=nobody&client_secret={}", c.secret),
        format!(
            "client_id={}&client_secret={}",
            disabled.id, disabled.secret
        ),
        format!("client_id={}&client_secret={}", public.id, c.secret),
        format!("client_id={}", c.id),
        String::new(),
    ];
    let mut bodies = Vec::new();
    for creds in cases {
        let r = w
            .post_form(
                "/oauth/token",
                &format!("grant_type=client_credentials&{creds}"),
            )
            .await;
        r.assert_error(401, "invalid_client");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.header("www-authenticate").is_none(), "no Basic was used");
        bodies.push(r.text);
    }
    // The first five are authentication failures and read exactly alike.
    assert!(bodies[..5].iter().all(|b| *b == bodies[0]), "{bodies:?}");

    let r = w
        .send(
            w.http
                .post(w.url("/oauth/token"))
                .header("authorization", basic(&c.id, "wrong"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(r.text, bodies[0]);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Basic realm="writ", charset="UTF-8""#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_client_json_body_commerce_layer_style() {
    let mut w = Writ::new();
    let p = w.client(&[
        "--public",
        "--scope",
        "market:*",
        "--default-scope",
        "market:all",
    ]);
    w.start_fixed(NOW).await;
    let r = w
        .post_json(
            "/oauth/token",
            json!({"grant_type": "client_credentials", "client_id": p.id, "scope": "market:1234"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["scope"], "market:1234");
    assert_eq!(r.json["created_at"], NOW);
    let r = w
        .post_json(
            "/oauth/token",
            json!({"grant_type": "client_credentials", "client_id": p.id}),
        )
        .await;
    assert_eq!(r.json["scope"], "market:all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moltin_implicit_for_public_clients() {
    let mut w = Writ::new();
    let p = w.client(&[
        "--public",
        "--scope",
        "market:* read",
        "--default-scope",
        "read",
    ]);
    let c = w.client(&[]);
    w.start_fixed(NOW).await;
    // What @moltin/sdk sends without a secret.
    let r = w
        .post_form(
            "/oauth/access_token",
            &format!("grant_type=implicit&client_id={}", p.id),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["identifier"], "implicit");
    assert_eq!(r.json["scope"], "read");
    assert_eq!(r.json["expires"], NOW + 3600);
    w.post_form(
        "/oauth/access_token",
        &format!(
            "grant_type=implicit&client_id={}&client_secret={}",
            c.id, c.secret
        ),
    )
    .await
    .assert_error(400, "unauthorized_client");
    // Moltin's implicit belongs to Moltin's path: discovery lists only
    // client_credentials, and the other paths keep to that.
    for path in ["/oauth/token", "/token"] {
        w.post_form(path, &format!("grant_type=implicit&client_id={}", p.id))
            .await
            .assert_error(400, "unsupported_grant_type");
        w.post_json(
            path,
            serde_json::json!({"grant_type": "implicit", "client_id": p.id}),
        )
        .await
        .assert_error(400, "unsupported_grant_type");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_answers_are_neither_framed_nor_sniffed() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start_fixed(NOW).await;
    let token = w.token(&c, "").await;
    let body = format!("client_id={}&client_secret={}&token=x", c.id, c.secret);
    let answers = [
        ("token", token),
        (
            "token error",
            w.post_form("/oauth/token", "grant_type=x").await,
        ),
        ("introspect", w.post_form("/oauth/introspect", &body).await),
        ("revoke", w.post_form("/oauth/revoke", &body).await),
        (
            "405",
            w.send(w.http.get(w.url("/oauth/access_token"))).await,
        ),
    ];
    for (what, r) in answers {
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_layer_json_errors_carry_an_errors_array() {
    let mut w = Writ::new();
    let p = w.client(&["--public", "--scope", "market:*"]);
    w.start().await;
    let r = w
        .post_json(
            "/oauth/token",
            json!({"grant_type": "client_credentials", "client_id": p.id, "scope": "admin"}),
        )
        .await;
    r.assert_error(400, "invalid_scope");
    assert_eq!(r.json["errors"][0]["code"], "INVALID_SCOPE");
    let r = w
        .post_json(
            "/oauth/token",
            json!({"grant_type": "client_credentials", "client_id": "nobody"}),
        )
        .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(r.json["errors"][0]["status"], "401");
    // Form requests get the plain RFC 6749 §5.2 body.
    let r = w
        .post_form(
            "/oauth/token",
            "grant_type=client_credentials&client_id=nobody",
        )
        .await;
    assert!(r.json.get("errors").is_none(), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6749_5_2_grant_type_errors() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let none = w.client(&["--grant-types", ""]);
    w.start().await;
    let auth = format!("client_id={}&client_secret={}", c.id, c.secret);
    w.post_form("/oauth/token", &format!("grant_type=password&{auth}"))
        .await
        .assert_error(400, "unsupported_grant_type");
    w.post_form("/oauth/token", &auth)
        .await
        .assert_error(400, "invalid_request");
    w.token(&none, "")
        .await
        .assert_error(400, "unauthorized_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6749_3_3_scope_rules() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "market:* read"]);
    w.start().await;
    let r = w.token(&c, "scope=market:1234%20read").await;
    assert_eq!(r.json["scope"], "market:1234 read");
    assert_eq!(claims(r.access_token())["scope"], "market:1234 read");
    // No silent down-scoping.
    let r = w.token(&c, "scope=read%20admin").await;
    r.assert_error(400, "invalid_scope");
    assert_eq!(
        r.json["error_description"],
        "the scope 'admin' is not allowed for this client"
    );
    w.token(&c, "scope=market:*")
        .await
        .assert_error(400, "invalid_scope");
    w.token(&c, "scope=a%22b")
        .await
        .assert_error(400, "invalid_scope");
    // No default scope configured: the client's literal scopes.
    assert_eq!(w.token(&c, "").await.json["scope"], "read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_scope_is_omitted_from_response_and_token() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let r = w.token(&c, "").await;
    assert!(r.json.get("scope").is_none(), "{}", r.text);
    assert!(claims(r.access_token()).get("scope").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8707_audience_and_resource() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "x"]);
    let other = w.client(&[]);
    w.api_granted_to(
        &c,
        "https://api.example.com/",
        "read:products write:products",
        &["--lifetime", "600"],
    );
    w.start_fixed(NOW).await;

    for param in ["audience", "resource"] {
        let r = w
            .token(&c, &format!("{param}=https%3A%2F%2Fapi.example.com%2F"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["expires_in"], 600);
        assert_eq!(r.json["scope"], "read:products write:products");
        let cl = claims(r.access_token());
        assert_eq!(cl["aud"], "https://api.example.com/");
        assert_eq!(cl["exp"], NOW + 600);
    }
    let r = w
        .token(&c, "audience=https://api.example.com/&scope=read:products")
        .await;
    assert_eq!(r.json["scope"], "read:products");
    w.token(&c, "audience=https://api.example.com/&scope=x")
        .await
        .assert_error(400, "invalid_scope");
    w.token(&c, "audience=https://unknown.example/")
        .await
        .assert_error(400, "invalid_target");
    w.token(&other, "audience=https://api.example.com/")
        .await
        .assert_error(400, "invalid_target");
    w.token(&c, "resource=https://api.example.com/&resource=https://b/")
        .await
        .assert_error(400, "invalid_target");
    w.token(
        &c,
        "audience=https://api.example.com/&resource=https://api.example.com/",
    )
    .await
    .assert_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_rules_and_validity_period() {
    let mut w = Writ::new();
    let plain = w.client(&[]);
    let short = w.client(&["--lifetime", "120"]);
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://capped/",
        "--lifetime",
        "300",
        "--max-lifetime",
        "900",
    ]);
    w.grant(&short, "https://capped/", "");
    let long = w.client(&["--lifetime", "5000"]);
    w.grant(&long, "https://capped/", "");
    w.start_fixed(NOW).await;

    let exp = |r: &Reply| {
        assert_eq!(
            r.json["expires"].as_i64().unwrap() - NOW,
            r.json["expires_in"].as_i64().unwrap()
        );
        r.json["expires_in"].as_i64().unwrap()
    };
    assert_eq!(exp(&w.token(&plain, "").await), 3600);
    assert_eq!(exp(&w.token(&short, "").await), 120);
    assert_eq!(exp(&w.token(&short, "audience=https://capped/").await), 120);
    assert_eq!(exp(&w.token(&long, "audience=https://capped/").await), 900);
    assert_eq!(exp(&w.token(&plain, "validity_period=30").await), 30);
    assert_eq!(exp(&w.token(&plain, "validity_period=999999").await), 3600);
    assert_eq!(
        exp(&w
            .token(&plain, "validity_period=99999999999999999999999999")
            .await),
        3600
    );
    let r = w
        .post_json(
            "/token",
            json!({"grant_type": "client_credentials", "client_id": plain.id,
                   "client_secret": plain.secret, "validity_period": 45}),
        )
        .await;
    assert_eq!(exp(&r), 45);
    for bad in ["0", "-1", "1.5", "soon"] {
        w.token(&plain, &format!("validity_period={bad}"))
            .await
            .assert_error(400, "invalid_request");
    }
    w.post_json(
        "/token",
        json!({"grant_type": "client_credentials", "client_id": plain.id,
               "client_secret": plain.secret, "validity_period": -3}),
    )
    .await
    .assert_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_precise_errors() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let auth = format!("client_id={}&client_secret={}", c.id, c.secret);

    // RFC 6749 §3.2: repeated parameters.
    w.post_form(
        "/oauth/token",
        &format!("grant_type=client_credentials&grant_type=client_credentials&{auth}"),
    )
    .await
    .assert_error(400, "invalid_request");
    let r = w
        .send(
            w.http
                .post(w.url("/oauth/token"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"grant_type":"client_credentials","client_id":"{0}","client_id":"{0}","client_secret":"{1}"}}"#,
                    c.id, c.secret
                )),
        )
        .await;
    r.assert_error(400, "invalid_request");
    assert_eq!(
        r.json["error_description"],
        "parameter 'client_id' is repeated"
    );

    for (ct, body) in [
        ("application/json", "{not json"),
        ("application/json", "[1,2]"),
        (
            "application/json",
            r#"{"grant_type":["client_credentials"]}"#,
        ),
        (
            "application/json",
            r#"{"grant_type":"client_credentials"} trailing"#,
        ),
        ("text/plain", "grant_type=client_credentials"),
        ("application/x-www-form-urlencoded", "grant_type=%FF%FE"),
    ] {
        let r = w
            .send(
                w.http
                    .post(w.url("/oauth/token"))
                    .header("content-type", ct)
                    .body(body),
            )
            .await;
        r.assert_error(400, "invalid_request");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{body}");
    }
    // No content type at all.
    w.send(
        w.http
            .post(w.url("/oauth/token"))
            .body("grant_type=client_credentials"),
    )
    .await
    .assert_error(400, "invalid_request");
    // Invalid UTF-8 bytes in the raw body.
    w.send(
        w.http
            .post(w.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a', b'=', 0xff]),
    )
    .await
    .assert_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_and_wrong_method_is_405() {
    let mut w = Writ::new();
    w.start().await;
    // A connection whose request was refused for its size may be closed
    // after the answer: use a fresh one for every request.
    w.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(70 * 1024)
    );
    let r = w.post_form("/oauth/token", &big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_request");
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // Chunked, with no Content-Length to refuse it early.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b'a'; 1024])).collect();
    let r = w
        .send(
            w.http
                .post(w.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                ))),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);

    for path in ["/oauth/token", "/oauth/access_token", "/token"] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let r = w.send(w.http.request(method.clone(), w.url(path))).await;
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("POST"));
            assert_eq!(r.header("cache-control"), Some("no-store"));
            assert_eq!(r.json["error"], "invalid_request");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_grant_is_unsupported_grant_type() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let config = w.config_with_file("[grant_types.client_credentials]\nenabled = false\n");
    w.start_configured(config).await;
    let r = w.token(&c, "").await;
    r.assert_error(400, "unsupported_grant_type");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let meta = w.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta.json["grant_types_supported"], json!([]));
}

/// A request refused before its body matters (a wrong content type, the
/// address over its budget) still has its body read, so a client sending
/// a large one gets the answer rather than a reset connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_body_still_reach_the_client() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let config = w.config_with_file("[limits]\nper_address = 1\nper_address_burst = 1\n");
    w.start_configured(config).await;
    w.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(900 * 1024)
    );
    assert_eq!(w.token(&c, "").await.status, 200);
    for _ in 0..20 {
        let r = w
            .send(
                w.http
                    .post(w.url("/oauth/token"))
                    .header("content-type", "text/plain")
                    .body(big.clone()),
            )
            .await;
        // The budget is spent: 429 (or 400 for the content type once a
        // token has dripped back in); never a reset.
        assert!(
            r.status == 429 || r.status == 400,
            "{} {}",
            r.status,
            r.text
        );
        let r = w.post_form("/oauth/introspect", &big).await;
        assert!(
            r.status == 429 || r.status == 401,
            "{} {}",
            r.status,
            r.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start_fixed(NOW).await;
    let addr = w.base.trim_start_matches("http://").to_owned();
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        c.id, c.secret
    );
    // Some tools and proxies send the whole request, then shut down their
    // sending side (a TCP half-close) and wait for the answer.
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            s.read_to_end(&mut answer),
        )
        .await
        .expect("answered in time")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        let token = answer.split("\"access_token\":\"").nth(1).unwrap();
        crate::harness::transcript::secret(token.split('"').next().unwrap());
    }
}
