//! JWKS (RFC 7517), metadata (RFC 8414), and tokens verified by an
//! independent JOSE library against what the server publishes.

use serde_json::json;

use crate::harness::{claims, verify, Writ};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9068_tokens_verify_against_served_jwks_for_every_algorithm() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    for (alg, api) in [
        ("RS256", "https://rsa.example/"),
        ("EdDSA", "https://ed.example/"),
        ("ES256", "https://ec.example/"),
    ] {
        w.cli(&[
            "api",
            "create",
            "--identifier",
            api,
            "--algorithm",
            alg,
            "--scope",
            "read:x",
        ]);
        w.grant(&c, api, "read:x");
    }
    w.start().await;
    let jwks = w.jwks().await;
    let keys = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    // Each algorithm: the active key and the next one, published before it signs.
    assert_eq!(algs, ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k.get("d").is_none(), "no private material in the JWKS");
    }

    for (alg, api) in [
        ("RS256", "https://rsa.example/"),
        ("EdDSA", "https://ed.example/"),
        ("ES256", "https://ec.example/"),
    ] {
        let r = w.token(&c, &format!("audience={api}")).await;
        let token = r.access_token();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg);
        let cl = verify(token, &jwks, api, &w.base);
        assert_eq!(cl["scope"], "read:x");
        assert_eq!(cl["client_id"], c.id.as_str());
    }
    // Without an audience: ES256, aud = issuer.
    let token = w.token(&c, "").await.access_token().to_owned();
    verify(&token, &jwks, &w.base, &w.base);
    assert_eq!(
        w.get("/.well-known/jwks.json").await.header("content-type"),
        Some("application/jwk-set+json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9068_tampered_token_does_not_verify() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let token = w.token(&c, "").await.access_token().to_owned();
    let jwks = w.jwks().await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = claims(&token);
    payload["sub"] = json!("someone-else");
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        payload.to_string(),
    );
    let forged = parts.join(".");
    let result = std::panic::catch_unwind(|| verify(&forged, &jwks, &w.base, &w.base));
    assert!(result.is_err(), "a forged token must not verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8414_metadata() {
    let mut w = Writ::new();
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://api/",
        "--scope",
        "b a",
    ]);
    let mut config = w.config();
    config.issuer = Some("https://auth.example.com".into());
    w.start_configured(config).await;
    let r = w.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json,
        json!({
            "issuer": "https://auth.example.com",
            "token_endpoint": "https://auth.example.com/oauth/token",
            "jwks_uri": "https://auth.example.com/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
            "introspection_endpoint": "https://auth.example.com/oauth/introspect",
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "introspection_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
            "revocation_endpoint": "https://auth.example.com/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
            "registration_endpoint": "https://auth.example.com/oauth/register",
            "scopes_supported": ["a", "b"],
        })
    );
    let health = w.get("/healthz").await;
    assert_eq!((health.status, health.text.as_str()), (200, "ok"));
}

/// RFC 8414 §3.1: for an issuer with a path, the metadata is at the
/// well-known prefix inserted before the path; the endpoints it names are
/// under the path. Behind a proxy that strips the path, the plain paths
/// answer too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8414_3_1_issuer_with_a_path_is_discoverable() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let mut config = w.config();
    config.issuer = Some("https://auth.example.test/tenant1".into());
    w.start_configured(config).await;
    let r = w
        .get("/.well-known/oauth-authorization-server/tenant1")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["issuer"], "https://auth.example.test/tenant1");
    let token_endpoint = r.json["token_endpoint"].as_str().unwrap();
    assert_eq!(
        token_endpoint,
        "https://auth.example.test/tenant1/oauth/token"
    );
    // Every endpoint the metadata names, at its path on this server.
    for (member, expected) in [
        ("token_endpoint", 405),
        ("introspection_endpoint", 405),
        ("revocation_endpoint", 405),
        ("jwks_uri", 200),
    ] {
        let url = r.json[member].as_str().unwrap();
        let path = url.trim_start_matches("https://auth.example.test");
        assert!(path.starts_with("/tenant1/"), "{url}");
        assert_eq!(w.get(path).await.status, expected, "{member} {path}");
    }
    // A token through the issuer's path, and through a proxy that strips it.
    for path in ["/tenant1/oauth/token", "/oauth/token"] {
        let r = w
            .send(
                w.http
                    .post(w.url(path))
                    .basic_auth(&c.id, Some(&c.secret))
                    .form(&[("grant_type", "client_credentials"), ("scope", "read")]),
            )
            .await;
        let token = r.access_token();
        let jwks = w.get("/tenant1/.well-known/jwks.json").await.json;
        verify(
            token,
            &jwks,
            "https://auth.example.test/tenant1",
            "https://auth.example.test/tenant1",
        );
    }
    // The plain well-known path still answers (a proxy that strips the path).
    let plain = w.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(plain.json, r.json);
    // Another tenant's path is not this issuer's.
    assert_eq!(
        w.get("/.well-known/oauth-authorization-server/tenant2")
            .await
            .status,
        404
    );
}
