//! Changes made by the CLI while the server runs, key rotation, and restarts.

use std::time::Duration;

use crate::harness::{eventually, kid_of, verify, Writ};

const LIMIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_reach_the_running_server_within_two_seconds() {
    let mut w = Writ::new();
    w.start().await;

    // create
    let c = w.client(&["--scope", "read"]);
    let took = eventually(LIMIT, || async { w.token(&c, "").await.status == 200 }).await;
    println!("create visible after {took:?}");

    // disable / enable
    w.cli(&["client", "disable", &c.id]);
    eventually(LIMIT, || async { w.token(&c, "").await.status == 401 }).await;
    w.cli(&["client", "enable", &c.id]);
    eventually(LIMIT, || async { w.token(&c, "").await.status == 200 }).await;

    // rotate without overlap: the old secret stops, the new one works
    let new = w.rotate_secret(&c, &["--overlap", "0"]);
    eventually(LIMIT, || async { w.token(&new, "").await.status == 200 }).await;
    assert_eq!(w.token(&c, "").await.status, 401);

    // grant: a new audience becomes available
    w.api_granted_to(&c, "https://late/", "x", &[]);
    eventually(LIMIT, || async {
        w.token(&new, "audience=https://late/").await.status == 200
    })
    .await;
    w.cli(&[
        "grant",
        "delete",
        "--client",
        &c.id,
        "--api",
        "https://late/",
    ]);
    eventually(LIMIT, || async {
        w.token(&new, "audience=https://late/").await.status == 400
    })
    .await;

    // delete
    w.cli(&["client", "delete", &c.id]);
    eventually(LIMIT, || async { w.token(&new, "").await.status == 401 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_serves_new_key_and_keeps_old_one_published() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let before = w.token(&c, "").await.access_token().to_owned();
    let old_kid = kid_of(&before);

    let rotated = w.cli(&["key", "rotate", "--force"]);
    let new_kid = rotated["activated"][0].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    eventually(LIMIT, || async {
        kid_of(w.token(&c, "").await.access_token()) == new_kid
    })
    .await;
    let kids = w.published_kids().await;
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid));
    let jwks = w.jwks().await;
    // A token signed before the rotation still verifies.
    verify(&before, &jwks, &w.base, &w.base);
    let after = w.token(&c, "").await.access_token().to_owned();
    verify(&after, &jwks, &w.base, &w.base);

    let keys = w.cli(&["key", "list"]);
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 1);
    assert_eq!(states.iter().filter(|s| **s == "retiring").count(), 1);
    assert_eq!(states.iter().filter(|s| **s == "next").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_key_leaves_the_jwks_after_its_tokens_expire() {
    let mut w = Writ::new();
    let c = w.client(&["--lifetime", "60"]);
    let now = writ::clock::Clock::now(&writ::clock::SystemClock);
    let clock = w.start_fixed(now).await;
    let old = w.token(&c, "").await.access_token().to_owned();
    let old_kid = kid_of(&old);
    w.cli(&["key", "rotate", "--force"]);
    let has_old = |jwks: serde_json::Value| {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == old_kid.as_str())
    };
    eventually(LIMIT, || async {
        w.jwks().await["keys"].as_array().unwrap().len() == 2
    })
    .await;
    assert!(has_old(w.jwks().await));
    // The CLI computed the window from the longest lifetime (3600 s default)
    // plus clock skew; move past it.
    clock.advance(3600 + 61);
    eventually(LIMIT, || async { !has_old(w.jwks().await) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything_and_old_tokens_verify() {
    let w = Writ::new();
    let mut first = w.spawn(&[], &[]);
    let log = first.log.join("");
    assert!(log.contains("listening on http://127.0.0.1:"), "{log}");
    assert!(log.contains("issuer="), "{log}");
    assert!(
        log.contains("no client exists yet; create one with: /"),
        "{log}"
    );
    assert!(
        log.contains("writ client create --name my-service --database sqlite://"),
        "{log}"
    );
    let key_file = w.dir.path().join("writ.db.key");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let c = w.client(&["--scope", "read"]);
    w.api_granted_to(&c, "https://kept/", "r", &["--algorithm", "RS256"]);
    let node = first.remote();
    eventually(LIMIT, || async {
        node.request_token(&c).await.status == 200
    })
    .await;
    let token = node.request_token(&c).await.access_token().to_owned();
    let issuer_before = node.base.clone();
    first.terminate();

    let second = w.spawn(&["--issuer", &issuer_before], &[]);
    assert!(!second.log.join("").contains("no client exists yet"));
    let node = second.remote();
    let jwks = node.jwks().await;
    verify(&token, &jwks, &issuer_before, &issuer_before);
    let r = node.request_token(&c).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = node
        .send(
            node.http
                .post(node.url("/oauth/token"))
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("audience", "https://kept/"),
                ]),
        )
        .await;
    let t = r.json["access_token"]
        .as_str()
        .expect("token for the kept API");
    assert_eq!(
        jsonwebtoken::decode_header(t).unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    verify(t, &jwks, "https://kept/", &issuer_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_master_key_is_a_clear_start_error() {
    let w = Writ::new();
    w.client(&[]);
    w.cli(&["key", "rotate", "--algorithm", "ES256", "--force"]);
    std::fs::write(
        w.dir.path().join("writ.db.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    .unwrap();
    let err = w.serve_fails();
    assert!(err.contains("master key is not this database's"), "{err}");
}
