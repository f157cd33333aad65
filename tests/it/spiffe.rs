//! SPIFFE JWT-SVIDs as client assertions (draft-ietf-oauth-spiffe-client-auth):
//! trust bundles served on 127.0.0.1 the way a SPIFFE bundle endpoint serves
//! them (keys with `"use": "jwt-svid"` and no `alg`, `spiffe_sequence`,
//! `spiffe_refresh_hint`), and clients trusting SPIFFE IDs of a trust domain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use writ::clock::FixedClock;

use crate::assertions::TestKey;
use crate::harness::{claims, Reply, Writ};
use crate::jwks_uri::{assert_refused, JWT_BEARER, NOW};

const JWT_SPIFFE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
const TRUST_DOMAIN: &str = "spiffe://example.org";
const BILLING: &str = "spiffe://example.org/ns/prod/sa/billing";

#[derive(Default)]
struct Served {
    bundle: Mutex<Value>,
    delay: Mutex<Duration>,
    requests: AtomicUsize,
}

/// A SPIFFE bundle endpoint on 127.0.0.1 that a test can rotate, slow down
/// or take down, counting the requests it is sent.
struct TestBundle {
    url: String,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl TestBundle {
    async fn start(keys: &[&TestKey], refresh_hint: i64) -> Self {
        let served = Arc::new(Served::default());
        let app = Router::new()
            .route("/bundle", get(bundle))
            .with_state(served.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bundle", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let bundle = Self { url, served, task };
        bundle.publish(keys, 1, refresh_hint);
        bundle
    }

    /// The bundle as SPIFFE Trust Domain and Bundle §4 shapes it: the
    /// JWT-SVID keys without `alg`, beside an X.509 authority Writ leaves out.
    fn publish(&self, keys: &[&TestKey], sequence: u64, refresh_hint: i64) {
        let mut jwks: Vec<Value> = keys
            .iter()
            .map(|k| {
                let mut jwk = k.jwk.clone();
                jwk.as_object_mut().unwrap().remove("alg");
                jwk["use"] = "jwt-svid".into();
                jwk
            })
            .collect();
        let mut authority = TestKey::new("ES256", "ca").jwk;
        authority.as_object_mut().unwrap().remove("kid");
        authority.as_object_mut().unwrap().remove("alg");
        authority["use"] = "x509-svid".into();
        authority["x5c"] = json!(["MIIB"]);
        jwks.push(authority);
        *self.served.bundle.lock().unwrap() = json!({"keys": jwks,
            "spiffe_sequence": sequence, "spiffe_refresh_hint": refresh_hint});
    }

    fn delay(&self, d: Duration) {
        *self.served.delay.lock().unwrap() = d;
    }

    fn requests(&self) -> usize {
        self.served.requests.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TestBundle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bundle(State(served): State<Arc<Served>>) -> Response {
    served.requests.fetch_add(1, Ordering::SeqCst);
    let delay = *served.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = served.bundle.lock().unwrap().clone();
    Json(body).into_response()
}

/// A server on a clock the test moves, with these trust domains' bundle
/// endpoints, fetching over http from 127.0.0.1, and no back-off (so each
/// refusal is judged on its own).
async fn start(w: &mut Writ, bundles: &[(&str, &TestBundle)]) -> Arc<FixedClock> {
    let bundles: Vec<String> = bundles
        .iter()
        .map(|(domain, b)| format!("\"{domain}\" = \"{}\"", b.url))
        .collect();
    let toml = format!(
        "[client_assertions]\nallow_insecure_jwks_localhost = true\n[limits]\nenabled = false\n[spiffe]\nbundles = {{ {} }}\n",
        bundles.join(", ")
    );
    let clock = Arc::new(FixedClock::new(NOW));
    let config = w.config_with_file(&toml);
    w.start_with(config, clock.clone()).await;
    clock
}

/// A JWT-SVID's claims as SPIRE issues them: `sub`, `aud`, `exp`, `iat`;
/// no `iss`, no `jti`.
fn svid(spiffe_id: &str, aud: &str, now: i64) -> Value {
    json!({"sub": spiffe_id, "aud": [aud], "iat": now, "exp": now + 300})
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

async fn token_with(w: &Writ, client_id: Option<&str>, kind: &str, svid: &str) -> Reply {
    let body = {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("grant_type", "client_credentials");
        if let Some(id) = client_id {
            body.append_pair("client_id", id);
        }
        body.append_pair("client_assertion_type", kind)
            .append_pair("client_assertion", svid);
        body.finish()
    };
    w.post_form("/oauth/token", &body).await
}

async fn present(w: &Writ, client_id: &str, svid: &str) -> Reply {
    token_with(w, Some(client_id), JWT_SPIFFE, svid).await
}

/// A client trusting the billing workload, and the batch namespace's.
fn register(w: &Writ) -> String {
    let created = w.cli(&[
        "client",
        "create",
        "--name",
        "billing",
        "--scope",
        "read",
        "--trust-issuer",
        TRUST_DOMAIN,
        "--trust-subject",
        BILLING,
    ]);
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["auth_methods"], json!(["private_key_jwt"]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    w.cli(&[
        "client",
        "trust-add",
        &id,
        "--trust-issuer",
        TRUST_DOMAIN,
        "--trust-subject",
        "spiffe://example.org/ns/batch/*",
    ]);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_svid_of_a_trusted_spiffe_id_authenticates_and_may_be_presented_again() {
    let key = TestKey::new("ES256", "example-1");
    let other_key = TestKey::new("EdDSA", "other-1");
    let example = TestBundle::start(&[&key], 300).await;
    let other = TestBundle::start(&[&other_key], 300).await;
    let mut w = Writ::new();
    let id = register(&w);
    let shown = w.cli(&["client", "show", &id]);
    assert_eq!(shown["trust"][0]["issuer"], TRUST_DOMAIN, "{shown}");
    assert_eq!(shown["trust"][0]["subject"], BILLING);
    assert_eq!(
        shown["trust"][1]["subject"],
        "spiffe://example.org/ns/batch/*"
    );
    let ops = w.client(&["--scope", "writ:admin"]);
    start(&mut w, &[("example.org", &example), ("other.org", &other)]).await;
    let aud = w.base.clone();

    let presented = key.sign(&svid(BILLING, &aud, NOW));
    let r = present(&w, &id, &presented).await;
    assert_eq!(claims(r.access_token())["client_id"], id.as_str());
    // SPIFFE agents hand out one cached SVID until it nears expiry: the
    // same SVID, and one with a `jti`, work again (no single use).
    present(&w, &id, &presented).await.access_token();
    let with_jti = key.sign(&with(svid(BILLING, &aud, NOW), "jti", json!("j-1")));
    present(&w, &id, &with_jti).await.access_token();
    present(&w, &id, &with_jti).await.access_token();
    // A pattern rule, an `iss`, the explicit JOSE type and a single `aud` string.
    let batch = svid("spiffe://example.org/ns/batch/sa/report", &aud, NOW);
    let batch = with(batch, "iss", json!("https://spire.example.org"));
    let batch = with(batch, "aud", json!(aud));
    let jose = key.sign_raw(
        &json!({"alg": "ES256", "kid": key.kid, "typ": "JOSE"}),
        &batch,
    );
    present(&w, &id, &jose).await.access_token();
    assert_eq!(example.requests(), 1, "the bundle is cached");

    let cases = [
        (
            "a trust domain the client does not trust",
            other_key.sign(&svid("spiffe://other.org/ns/prod/sa/billing", &aud, NOW)),
        ),
        (
            "a SPIFFE ID no rule matches",
            key.sign(&svid("spiffe://example.org/ns/dev/sa/billing", &aud, NOW)),
        ),
        (
            "a SPIFFE ID that only starts like the rule's",
            key.sign(&svid(&format!("{BILLING}/x"), &aud, NOW)),
        ),
        (
            "another trust domain's key and kid",
            other_key.sign(&svid(BILLING, &aud, NOW)),
        ),
        (
            "another trust domain's key under this one's kid",
            other_key.sign_raw(
                &json!({"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}),
                &svid(BILLING, &aud, NOW),
            ),
        ),
        ("expired", key.sign(&svid(BILLING, &aud, NOW - 400))),
        (
            "an exp too far ahead",
            key.sign(&with(svid(BILLING, &aud, NOW), "exp", json!(NOW + 7200))),
        ),
        (
            "no exp",
            key.sign(&with(svid(BILLING, &aud, NOW), "exp", json!(null))),
        ),
        (
            "an aud of another service",
            key.sign(&svid(BILLING, "spiffe://example.org/reports", NOW)),
        ),
        (
            "an aud with a second value",
            key.sign(&with(
                svid(BILLING, &aud, NOW),
                "aud",
                json!([aud, "spiffe://example.org/reports"]),
            )),
        ),
        (
            "no aud",
            key.sign(&with(svid(BILLING, &aud, NOW), "aud", json!(null))),
        ),
        (
            "a sub that is no SPIFFE ID",
            key.sign(&svid("billing", &aud, NOW)),
        ),
        (
            "a typ of another kind of token",
            key.sign_raw(
                &json!({"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}),
                &svid(BILLING, &aud, NOW),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                writ::keys::b64url(json!({"alg": "none"}).to_string().as_bytes()),
                writ::keys::b64url(svid(BILLING, &aud, NOW).to_string().as_bytes())
            ),
        ),
    ];
    for (case, jwt) in &cases {
        assert_refused(&present(&w, &id, jwt).await, case);
    }
    // The other trust domain's bundle was never fetched: no rule names it.
    assert_eq!(other.requests(), 0);
    // An SVID is not a jwt-bearer assertion, and names no client by itself.
    assert_refused(
        &token_with(&w, Some(&id), JWT_BEARER, &presented).await,
        "an SVID sent as jwt-bearer",
    );
    assert_refused(
        &token_with(&w, None, JWT_SPIFFE, &presented).await,
        "an SVID without client_id",
    );

    // The admin API takes and shows SPIFFE rules like other trust rules.
    let admin = w
        .token(&ops, "scope=writ:admin")
        .await
        .access_token()
        .to_owned();
    let body = json!({"name": "reports", "scope": "read",
        "trust": [{"issuer": TRUST_DOMAIN, "subject": "spiffe://example.org/ns/prod/sa/reports"}]});
    let r = w
        .send(
            w.http
                .post(w.url("/admin/v1/clients"))
                .bearer_auth(&admin)
                .json(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let reports = r.json["client_id"].as_str().unwrap().to_owned();
    let r = w
        .send(
            w.http
                .get(w.url(&format!("/admin/v1/clients/{reports}")))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(r.json["trust"][0]["issuer"], TRUST_DOMAIN, "{}", r.text);
    let svid_reports = key.sign(&svid("spiffe://example.org/ns/prod/sa/reports", &aud, NOW));
    present(&w, &reports, &svid_reports).await.access_token();
    let bad = json!({"name": "any", "trust": [{"issuer": TRUST_DOMAIN, "subject": "spiffe://example.org/*"}]});
    let r = w
        .send(
            w.http
                .post(w.url("/admin/v1/clients"))
                .bearer_auth(&admin)
                .json(&bad),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["field"], "trust");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_bundle_key_is_picked_up_and_the_refresh_hint_is_honored() {
    let k1 = TestKey::new("ES256", "k1");
    let k2 = TestKey::new("RS256", "k2");
    let bundle = TestBundle::start(&[&k1], 120).await;
    let mut w = Writ::new();
    let id = register(&w);
    let clock = start(&mut w, &[("example.org", &bundle)]).await;
    let aud = w.base.clone();
    present(&w, &id, &k1.sign(&svid(BILLING, &aud, NOW)))
        .await
        .access_token();
    assert_eq!(bundle.requests(), 1);
    // The trust domain rotates to k2. Just fetched: its kid is refused
    // without another fetch.
    bundle.publish(&[&k2], 2, 120);
    let r = present(&w, &id, &k2.sign(&svid(BILLING, &aud, NOW + 1))).await;
    assert_refused(&r, "a kid unknown within the minute");
    assert_eq!(bundle.requests(), 1);
    // A minute on, the unknown kid makes Writ fetch the bundle again.
    clock.advance(61);
    let now = NOW + 61;
    present(&w, &id, &k2.sign(&svid(BILLING, &aud, now)))
        .await
        .access_token();
    assert_eq!(bundle.requests(), 2);
    // A kid nobody publishes, however often: no fetch within the minute.
    let forged = TestKey::new("ES256", "k9");
    for _ in 0..5 {
        let r = present(&w, &id, &forged.sign(&svid(BILLING, &aud, now))).await;
        assert_refused(&r, "an unpublished kid");
    }
    assert_eq!(bundle.requests(), 2);
    // The withdrawn key no longer verifies.
    let r = present(&w, &id, &k1.sign(&svid(BILLING, &aud, now))).await;
    assert_refused(&r, "a withdrawn key");
    // Within the refresh hint (120 s) a known kid needs no fetch; past it,
    // the bundle is fetched again.
    clock.advance(60);
    present(&w, &id, &k2.sign(&svid(BILLING, &aud, now + 60)))
        .await
        .access_token();
    assert_eq!(bundle.requests(), 2);
    clock.advance(61);
    present(&w, &id, &k2.sign(&svid(BILLING, &aud, now + 121)))
        .await
        .access_token();
    assert_eq!(bundle.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_bundle_endpoint_costs_a_bounded_wait_and_stalls_nobody_else() {
    let key = TestKey::new("ES256", "k1");
    let slow = TestBundle::start(&[&key], 300).await;
    slow.delay(Duration::from_secs(30));
    let dead = TestBundle::start(&[&key], 300).await;
    dead.stop();
    let mut w = Writ::new();
    let trusting = |domain: &str| {
        let created = w.cli(&[
            "client",
            "create",
            "--name",
            domain,
            "--trust-issuer",
            &format!("spiffe://{domain}"),
            "--trust-subject",
            &format!("spiffe://{domain}/billing"),
        ]);
        created["client_id"].as_str().unwrap().to_owned()
    };
    let slow_id = trusting("slow.example");
    let dead_id = trusting("dead.example");
    let other = w.client(&["--scope", "read"]);
    start(&mut w, &[("slow.example", &slow), ("dead.example", &dead)]).await;
    let aud = w.base.clone();
    let w = Arc::new(w);
    let started = Instant::now();
    let waiting = {
        let w = w.clone();
        let jwt = key.sign(&svid("spiffe://slow.example/billing", &aud, NOW));
        tokio::spawn(async move { present(&w, &slow_id, &jwt).await })
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
    assert_refused(&r, "a bundle endpoint that does not answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // A dead endpoint: refused at once, and again without another wait.
    let t = Instant::now();
    let jwt = key.sign(&svid("spiffe://dead.example/billing", &aud, NOW));
    assert_refused(&present(&w, &dead_id, &jwt).await, "a dead bundle endpoint");
    assert_refused(
        &present(&w, &dead_id, &jwt).await,
        "a dead bundle endpoint, again",
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn spiffe_trust_rules_need_a_spiffe_id_of_their_trust_domain() {
    let w = Writ::new();
    let create = |extra: &[&str]| {
        let mut args = vec!["client", "create", "--name", "svc", "--trust-issuer"];
        args.extend_from_slice(extra);
        w.cli_err(&args)
    };
    let cases: [(&[&str], &str); 5] = [
        (&[TRUST_DOMAIN], "needs --trust-subject"),
        (
            &[TRUST_DOMAIN, "--trust-subject", "spiffe://example.org/*"],
            "must be a SPIFFE ID of example.org",
        ),
        (
            &[
                TRUST_DOMAIN,
                "--trust-subject",
                "spiffe://other.org/billing",
            ],
            "must be a SPIFFE ID of example.org",
        ),
        (
            &["spiffe://example.org/ns", "--trust-subject", BILLING],
            "is not a SPIFFE trust domain ID",
        ),
        (
            &[
                TRUST_DOMAIN,
                "--trust-subject",
                BILLING,
                "--trust-audience",
                "spiffe://example.org/writ",
            ],
            "takes no audience",
        ),
    ];
    for (args, expected) in cases {
        let err = create(args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
