//! What vendor-minded clients and resource servers rely on: the Auth0 claim
//! profile, an issuer with a trailing slash, and static client claims.

use std::time::Duration;

use serde_json::json;

use crate::harness::{claims, eventually, verify, Writ};

const LIMIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_claims_profile_and_trailing_slash_issuer() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://orders.example/",
        "--scope",
        "read:orders",
        "--claims",
        "auth0",
    ]);
    w.grant(&c, "https://orders.example/", "read:orders");
    w.api_granted_to(&c, "https://plain.example/", "read:orders", &[]);
    let mut config = w.config();
    // Auth0 tenants' issuers end in a slash; Writ uses the issuer verbatim.
    config.issuer = Some("https://tenant.example.com/".into());
    w.start_configured(config).await;

    let token = w
        .token(&c, "audience=https://orders.example/")
        .await
        .access_token()
        .to_owned();
    let cl = verify(
        &token,
        &w.jwks().await,
        "https://orders.example/",
        "https://tenant.example.com/",
    );
    assert_eq!(cl["iss"], "https://tenant.example.com/");
    assert_eq!(cl["sub"], format!("{}@clients", c.id));
    assert_eq!(cl["azp"], c.id.as_str());
    assert_eq!(cl["gty"], "client-credentials");
    assert_eq!(cl["scope"], "read:orders");

    let plain = w.token(&c, "audience=https://plain.example/").await;
    let cl = claims(plain.access_token());
    assert_eq!(cl["sub"], c.id.as_str());
    assert!(cl.get("gty").is_none() && cl.get("azp").is_none());

    let meta = w.get("/.well-known/oauth-authorization-server").await.json;
    assert_eq!(meta["issuer"], "https://tenant.example.com/");
    assert_eq!(
        meta["token_endpoint"],
        "https://tenant.example.com/oauth/token"
    );

    // Switching the profile off takes effect like any other change.
    w.cli(&[
        "api",
        "update",
        "https://orders.example/",
        "--claims",
        "standard",
    ]);
    eventually(LIMIT, || async {
        let t = w.token(&c, "audience=https://orders.example/").await;
        claims(t.access_token()).get("gty").is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_client_claims_in_jwts_and_introspection() {
    let mut w = Writ::new();
    let jwt = w.client(&[]);
    let opaque = w.client(&["--format", "opaque"]);
    for c in [&jwt, &opaque] {
        let shown = w.cli(&[
            "client",
            "update",
            &c.id,
            "--claims",
            r#"{"tenant":"acme","tier":2}"#,
        ]);
        assert_eq!(shown["claims"], json!({"tenant": "acme", "tier": 2}));
    }
    for bad in [
        r#"{"sub":"someone"}"#,
        r#"{"scope":"admin"}"#,
        "[1]",
        "not json",
    ] {
        let err = w.cli_err(&["client", "update", &jwt.id, "--claims", bad]);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    w.start().await;

    let cl = claims(w.token(&jwt, "").await.access_token());
    assert_eq!(
        (cl["tenant"].clone(), cl["tier"].clone()),
        (json!("acme"), json!(2))
    );
    assert_eq!(
        cl["sub"],
        jwt.id.as_str(),
        "static claims never replace Writ's"
    );

    for c in [&jwt, &opaque] {
        let token = w.token(c, "").await.access_token().to_owned();
        let i = w.introspect(c, &token).await;
        assert_eq!(i.json["active"], true);
        assert_eq!(i.json["tenant"], "acme");
        assert_eq!(i.json["tier"], 2);
    }

    w.cli(&["client", "update", &jwt.id, "--claims", "{}"]);
    eventually(LIMIT, || async {
        claims(w.token(&jwt, "").await.access_token())
            .get("tenant")
            .is_none()
    })
    .await;
}
