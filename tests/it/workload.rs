//! Workload identity: a client that trusts external issuers (tokens shaped
//! like GitHub Actions' and Kubernetes service accounts') instead of holding
//! keys. The issuers run on 127.0.0.1 (`issuer.rs`) and count the requests
//! Writ sends them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::assertions::TestKey;
use crate::harness::Writ;
use crate::issuer::TestIssuer;
use crate::jwks_uri::{assert_refused, start, token_with, NOW};

const BRANCHES: &str = "repo:acme/app:ref:refs/heads/*";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:prod:ci";
const K8S_AUDIENCE: &str = "writ-k8s";

fn jti() -> String {
    writ::keys::b64url(&writ::keys::random_bytes::<16>())
}

/// A GitHub Actions OIDC token's claims (a push to `git_ref` of acme/app).
fn github(issuer: &str, aud: &str, git_ref: &str, now: i64) -> Value {
    json!({"jti": jti(), "sub": format!("repo:acme/app:ref:{git_ref}"), "aud": aud,
        "ref": git_ref, "sha": "0123456789abcdef", "repository": "acme/app",
        "repository_owner": "acme", "repository_owner_id": "42", "run_id": "7",
        "run_number": "3", "workflow": "ci", "event_name": "push",
        "job_workflow_ref": format!("acme/app/.github/workflows/ci.yml@{git_ref}"),
        "iss": issuer, "nbf": now - 5, "iat": now - 5, "exp": now + 300})
}

/// A Kubernetes projected service-account token's claims.
fn kubernetes(issuer: &str, aud: &str, namespace: &str, now: i64) -> Value {
    json!({"aud": [aud], "exp": now + 600, "iat": now, "nbf": now, "iss": issuer,
        "jti": jti(),
        "kubernetes.io": {"namespace": namespace,
            "pod": {"name": "ci-7d9f", "uid": "6f1c"},
            "serviceaccount": {"name": "ci", "uid": "a1b2"}},
        "sub": format!("system:serviceaccount:{namespace}:ci")})
}

/// A client trusting GitHub-shaped tokens of acme/app's branches (issuer
/// `gh`) and the `ci` service account of namespace `prod` (issuer `k8s`,
/// audience `writ-k8s`).
fn register(w: &Writ, gh: &TestIssuer, k8s: &TestIssuer) -> String {
    let created = w.cli(&[
        "client",
        "create",
        "--name",
        "ci",
        "--scope",
        "read",
        "--trust-issuer",
        &gh.url,
        "--trust-subject",
        BRANCHES,
        "--trust-claim",
        "repository_owner=acme",
    ]);
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["auth_methods"], json!(["private_key_jwt"]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let added = w.cli(&[
        "client",
        "trust-add",
        &id,
        "--trust-issuer",
        &k8s.url,
        "--trust-subject",
        SERVICE_ACCOUNT,
        "--trust-audience",
        K8S_AUDIENCE,
        "--trust-claim",
        "/kubernetes.io/namespace=prod",
    ]);
    assert!(added["trust_rule_id"].is_i64(), "{added}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_trusted_issuers_authenticate_when_a_rule_matches() {
    let gh_key = TestKey::new("RS256", "gh-1");
    let k8s_key = TestKey::new("ES256", "k8s-1");
    let gh = TestIssuer::start(&[&gh_key]).await;
    let k8s = TestIssuer::start(&[&k8s_key]).await;
    let mut w = Writ::new();
    let id = register(&w, &gh, &k8s);
    let shown = w.cli(&["client", "show", &id]);
    assert_eq!(shown["trust"][0]["issuer"], gh.url.as_str(), "{shown}");
    assert_eq!(shown["trust"][0]["subject"], BRANCHES);
    assert_eq!(shown["trust"][1]["audience"], K8S_AUDIENCE);
    assert_eq!(
        shown["trust"][1]["claims"]["/kubernetes.io/namespace"],
        "prod"
    );
    start(&mut w).await;
    let writ = w.base.clone();
    // Each shape gets a token.
    let r = token_with(
        &w,
        &id,
        &gh_key.sign(&github(&gh.url, &writ, "refs/heads/main", NOW)),
    )
    .await;
    let claims = crate::harness::claims(r.access_token());
    assert_eq!(claims["client_id"], id.as_str());
    let pod = k8s_key.sign(&kubernetes(&k8s.url, K8S_AUDIENCE, "prod", NOW));
    token_with(&w, &id, &pod).await.access_token();
    // A token is used once (its jti is recorded).
    assert_refused(&token_with(&w, &id, &pod).await, "a replayed token");
    // Another branch matches the pattern too.
    token_with(
        &w,
        &id,
        &gh_key.sign(&github(&gh.url, &writ, "refs/heads/feature/x", NOW)),
    )
    .await
    .access_token();
    let refused = [
        (
            "a tag: outside the pattern",
            gh_key.sign(&github(&gh.url, &writ, "refs/tags/v1", NOW)),
        ),
        ("another repository with the same prefix", {
            let mut c = github(&gh.url, &writ, "refs/heads/main", NOW);
            c["sub"] = json!("repo:acme/app-fork:ref:refs/heads/main");
            gh_key.sign(&c)
        }),
        ("a claim condition that fails", {
            let mut c = github(&gh.url, &writ, "refs/heads/main", NOW);
            c["repository_owner"] = json!("evil");
            gh_key.sign(&c)
        }),
        (
            "another service account's subject",
            k8s_key.sign(&kubernetes(&k8s.url, K8S_AUDIENCE, "dev", NOW)),
        ),
        (
            "the default audience where the rule names another",
            k8s_key.sign(&kubernetes(&k8s.url, &writ, "prod", NOW)),
        ),
        (
            "another audience where the rule has the default",
            gh_key.sign(&github(
                &gh.url,
                "https://github.com/acme",
                "refs/heads/main",
                NOW,
            )),
        ),
        (
            "expired",
            gh_key.sign(&github(&gh.url, &writ, "refs/heads/main", NOW - 600)),
        ),
        ("a lifetime over an hour", {
            let mut c = kubernetes(&k8s.url, K8S_AUDIENCE, "prod", NOW);
            c["exp"] = json!(NOW + 48 * 3600);
            k8s_key.sign(&c)
        }),
    ];
    for (case, token) in &refused {
        assert_refused(&token_with(&w, &id, token).await, case);
    }
    // Without client_id the token names no client.
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_assertion_type", crate::jwks_uri::JWT_BEARER),
            (
                "client_assertion",
                &gh_key.sign(&github(&gh.url, &writ, "refs/heads/main", NOW)),
            ),
        ])
        .finish();
    assert_refused(&w.post_form("/oauth/token", &body).await, "no client_id");
    // One discovery and one JWKS fetch per issuer served all of that.
    assert_eq!(gh.requests(), (1, 1));
    assert_eq!(k8s.requests(), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_and_keys_never_cross_issuers() {
    let a1 = TestKey::new("RS256", "a-1");
    let a2 = TestKey::new("RS256", "a-2");
    let b1 = TestKey::new("ES256", "b-1");
    let a = TestIssuer::start(&[&a1]).await;
    let b = TestIssuer::start(&[&b1]).await;
    let mut w = Writ::new();
    let id = register(&w, &a, &b);
    let clock = start(&mut w).await;
    let writ = w.base.clone();
    let push = |key: &TestKey, now| key.sign(&github(&a.url, &writ, "refs/heads/main", now));
    token_with(&w, &id, &push(&a1, NOW)).await.access_token();
    // The issuer rotates to a-2. Within the minute after a fetch the new
    // kid is refused without asking again; after it, fetched and accepted.
    a.publish(&[&a1, &a2]);
    assert_refused(
        &token_with(&w, &id, &push(&a2, NOW)).await,
        "within the minute",
    );
    assert_eq!(a.requests(), (1, 1));
    clock.advance(61);
    token_with(&w, &id, &push(&a2, NOW + 61))
        .await
        .access_token();
    assert_eq!(a.requests(), (2, 2));
    // A's key and kid, the token claiming to be B's: B's keys are fetched
    // and lack a-2, so it is refused; A's keys are never consulted.
    let mut as_b = kubernetes(&b.url, K8S_AUDIENCE, "prod", NOW + 61);
    as_b["iss"] = json!(b.url);
    let r = token_with(&w, &id, &a2.sign(&as_b)).await;
    assert_refused(&r, "issuer A's kid presented as issuer B");
    assert_eq!(b.requests(), (1, 1));
    // B's own key for the same claims works.
    token_with(
        &w,
        &id,
        &b1.sign(&kubernetes(&b.url, K8S_AUDIENCE, "prod", NOW + 61)),
    )
    .await
    .access_token();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_the_client_does_not_trust_is_never_fetched() {
    let trusted_key = TestKey::new("RS256", "t-1");
    let other_key = TestKey::new("RS256", "o-1");
    let trusted = TestIssuer::start(&[&trusted_key]).await;
    let k8s = TestIssuer::start(&[&trusted_key]).await;
    let other = TestIssuer::start(&[&other_key]).await;
    let mut w = Writ::new();
    let id = register(&w, &trusted, &k8s);
    start(&mut w).await;
    let token = other_key.sign(&github(&other.url, &w.base, "refs/heads/main", NOW));
    assert_refused(&token_with(&w, &id, &token).await, "an untrusted issuer");
    assert_eq!(other.requests(), (0, 0), "nothing fetched from it");
    assert_eq!(trusted.requests(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_issuer_costs_a_bounded_wait_and_stalls_nobody_else() {
    let key = TestKey::new("RS256", "s-1");
    let slow = TestIssuer::start(&[&key]).await;
    slow.delay(Duration::from_secs(30));
    let dead = TestIssuer::start(&[&key]).await;
    dead.stop();
    let mut w = Writ::new();
    let id = register(&w, &slow, &dead);
    let other = w.client(&["--scope", "read"]);
    start(&mut w).await;
    let w = Arc::new(w);
    let started = Instant::now();
    let waiting = {
        let w = w.clone();
        let id = id.clone();
        let jwt = key.sign(&github(&slow.url, &w.base, "refs/heads/main", NOW));
        tokio::spawn(async move { token_with(&w, &id, &jwt).await })
    };
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
    assert_refused(
        &waiting.await.unwrap(),
        "a discovery document that never comes",
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    let t = Instant::now();
    let jwt = key.sign(&kubernetes(&dead.url, K8S_AUDIENCE, "prod", NOW));
    assert_refused(&token_with(&w, &id, &jwt).await, "an issuer that is down");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn trust_rules_must_name_a_fetchable_issuer_and_narrow_its_tokens() {
    let w = Writ::new();
    let create = |extra: &[&str]| {
        let mut args = vec!["client", "create", "--name", "ci"];
        args.extend_from_slice(extra);
        w.cli_err(&args)
    };
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--trust-issuer",
                "https://token.actions.githubusercontent.com",
            ],
            "needs a subject or a claim condition",
        ),
        (
            &[
                "--trust-issuer",
                "https://token.actions.githubusercontent.com",
                "--trust-subject",
                "*",
            ],
            "must start with literal text",
        ),
        (
            &[
                "--trust-issuer",
                "http://issuer.example.com",
                "--trust-subject",
                "x",
            ],
            "must be an https URL",
        ),
        (
            &[
                "--trust-issuer",
                "https://issuer.example.com",
                "--trust-claim",
                "aud=writ",
            ],
            "cannot be a condition",
        ),
        (
            &[
                "--public",
                "--trust-issuer",
                "https://issuer.example.com",
                "--trust-subject",
                "x",
            ],
            "public client trusts no issuer",
        ),
    ];
    for (args, expected) in cases {
        let err = create(args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // A client with a secret keeps its secret and trusts nobody.
    let secret = w.client(&[]);
    let err = w.cli_err(&[
        "client",
        "trust-add",
        &secret.id,
        "--trust-issuer",
        "https://issuer.example.com",
        "--trust-subject",
        "x",
    ]);
    assert!(err.contains("only a client without a secret"), "{err}");
    // Rules are removed by id.
    let created = w.cli(&[
        "client",
        "create",
        "--name",
        "ci",
        "--trust-issuer",
        "https://issuer.example.com",
        "--trust-subject",
        "x",
    ]);
    let id = created["client_id"].as_str().unwrap();
    let shown = w.cli(&["client", "show", id]);
    let rule = shown["trust"][0]["id"].as_i64().unwrap().to_string();
    w.cli(&["client", "trust-remove", id, &rule]);
    assert!(w.cli(&["client", "show", id]).get("trust").is_none());
}
