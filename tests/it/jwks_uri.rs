//! `private_key_jwt` with keys fetched from the client's `jwks_uri` (RFC
//! 7591 §2): cached, fetched again for an unknown `kid` at most once a
//! minute, and a slow or dead endpoint costs a bounded wait and a refusal
//! for that client only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use writ::clock::FixedClock;

use crate::assertions::TestKey;
use crate::harness::{Reply, Writ};
use crate::issuer::TestIssuer;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Fetching over plain http from 127.0.0.1 (the test issuers), and no
/// back-off, so that each refusal is judged on its own.
pub const LOCAL_FETCHES: &str =
    "[client_assertions]\nallow_insecure_jwks_localhost = true\n[limits]\nenabled = false\n";
pub const NOW: i64 = 1_900_000_000;

/// A server on a clock the test moves.
pub async fn start(w: &mut Writ) -> Arc<FixedClock> {
    let clock = Arc::new(FixedClock::new(NOW));
    let config = w.config_with_file(LOCAL_FETCHES);
    w.start_with(config, clock.clone()).await;
    clock
}

/// A client assertion's claims at `now`.
pub fn claims_at(client_id: &str, audience: &str, now: i64) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
           "exp": now + 60, "jti": writ::keys::b64url(&writ::keys::random_bytes::<16>())})
}

/// A token request authenticated by `assertion`, naming `client_id`.
pub async fn token_with(w: &Writ, client_id: &str, assertion: &str) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ])
        .finish();
    w.post_form("/oauth/token", &body).await
}

#[track_caller]
pub fn assert_refused(r: &Reply, case: &str) {
    assert_eq!(r.status, 401, "{case}: {}", r.text);
    assert_eq!(r.json["error"], "invalid_client", "{case}: {}", r.text);
}

fn register(w: &Writ, uri: &str) -> String {
    let created = w.cli(&[
        "client",
        "create",
        "--name",
        "fetching",
        "--scope",
        "read",
        "--jwks-uri",
        uri,
    ]);
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["auth_methods"], json!(["private_key_jwt"]));
    assert_eq!(created["jwks_uri"], uri);
    created["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_at_a_jwks_uri_are_cached_and_refetched_for_a_new_kid_once_a_minute() {
    let k1 = TestKey::new("ES256", "k1");
    let k2 = TestKey::new("RS256", "k2");
    let issuer = TestIssuer::start(&[&k1]).await;
    let mut w = Writ::new();
    let id = register(&w, &issuer.jwks_url());
    let clock = start(&mut w).await;
    let aud = w.base.clone();
    token_with(&w, &id, &k1.sign(&claims_at(&id, &aud, NOW)))
        .await
        .access_token();
    token_with(&w, &id, &k1.sign(&claims_at(&id, &aud, NOW)))
        .await
        .access_token();
    assert_eq!(issuer.requests(), (0, 1), "the keys are cached");
    // The client rotates to k2. Just fetched: the unknown kid is refused
    // without another fetch.
    issuer.publish(&[&k2]);
    let r = token_with(&w, &id, &k2.sign(&claims_at(&id, &aud, NOW + 1))).await;
    assert_refused(&r, "a kid unknown within the minute");
    assert_eq!(issuer.requests(), (0, 1));
    // A minute on, the unknown kid makes Writ fetch again, and it works.
    clock.advance(61);
    let now = NOW + 61;
    token_with(&w, &id, &k2.sign(&claims_at(&id, &aud, now)))
        .await
        .access_token();
    assert_eq!(issuer.requests(), (0, 2));
    // A kid nobody publishes: refused, and no fetch within the minute
    // however often it is sent.
    let forged = TestKey::new("ES256", "k9");
    for _ in 0..5 {
        let r = token_with(&w, &id, &forged.sign(&claims_at(&id, &aud, now))).await;
        assert_refused(&r, "an unpublished kid");
    }
    assert_eq!(issuer.requests(), (0, 2));
    // The old key is gone from the client's set.
    clock.advance(61);
    let r = token_with(&w, &id, &k1.sign(&claims_at(&id, &aud, NOW + 122))).await;
    assert_refused(&r, "a key the client withdrew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_jwks_endpoint_costs_a_bounded_wait_and_stalls_nobody_else() {
    let key = TestKey::new("ES256", "k1");
    let slow = TestIssuer::start(&[&key]).await;
    slow.delay(Duration::from_secs(30));
    let dead = TestIssuer::start(&[&key]).await;
    dead.stop();
    let mut w = Writ::new();
    let slow_id = register(&w, &slow.jwks_url());
    let dead_id = register(&w, &dead.jwks_url());
    let other = w.client(&["--scope", "read"]);
    start(&mut w).await;
    let aud = w.base.clone();
    let w = Arc::new(w);
    let started = Instant::now();
    let waiting = {
        let w = w.clone();
        let jwt = key.sign(&claims_at(&slow_id, &aud, NOW));
        tokio::spawn(async move { token_with(&w, &slow_id, &jwt).await })
    };
    // Meanwhile another client is served at once, again and again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let t = Instant::now();
        w.token(&other, "").await.access_token();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    let r = waiting.await.unwrap();
    assert_refused(&r, "a JWKS endpoint that does not answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // A second request within the minute is refused without waiting again.
    let t = Instant::now();
    let r = token_with(&w, &dead_id, &key.sign(&claims_at(&dead_id, &aud, NOW))).await;
    assert_refused(&r, "a JWKS endpoint that is down");
    let r = token_with(&w, &dead_id, &key.sign(&claims_at(&dead_id, &aud, NOW))).await;
    assert_refused(&r, "a JWKS endpoint that is down, again");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_jwks_uri_must_be_https_or_loopback_and_not_beside_inline_keys() {
    let w = Writ::new();
    for bad in [
        "http://keys.example.com/jwks",
        "ftp://keys.example.com/jwks",
        "not a url",
    ] {
        let err = w.cli_err(&["client", "create", "--name", "c", "--jwks-uri", bad]);
        assert!(
            err.contains("must be an https URL") || err.contains("is not a URL"),
            "{bad}: {err}"
        );
    }
    let id = register(&w, "https://keys.example.com/jwks");
    let shown = w.cli(&["client", "show", &id]);
    assert_eq!(shown["jwks_uri"], "https://keys.example.com/jwks");
    // Replaced by another URL; a client with a secret cannot get one.
    let updated = w.cli(&[
        "client",
        "update",
        &id,
        "--jwks-uri",
        "https://keys.example.com/v2/jwks",
    ]);
    assert_eq!(updated["jwks_uri"], "https://keys.example.com/v2/jwks");
    let secret = w.client(&[]);
    let err = w.cli_err(&[
        "client",
        "update",
        &secret.id,
        "--jwks-uri",
        "https://keys.example.com/jwks",
    ]);
    assert!(err.contains("only a client registered with keys"), "{err}");
    let err = w.cli_err(&["client", "rotate-secret", &id]);
    assert!(err.contains("has no secret"), "{err}");
}
