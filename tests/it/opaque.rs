//! Opaque tokens, introspection (RFC 7662), revocation (RFC 7009), secret
//! rotation with overlap, and the key lifecycle, on SQLite.

use std::time::Duration;

use serde_json::json;

use crate::harness::{claims, eventually, kid_of, Reply, Writ, NO_LIMITS};

const NOW: i64 = 1_800_000_000;
const LIMIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_token_introspects_and_revokes() {
    let mut w = Writ::new();
    let holder = w.client(&["--format", "opaque", "--scope", "read"]);
    let other = w.client(&[]);
    let rs = w.client(&["--scope", "writ:introspect"]);
    w.start_fixed(NOW).await;

    let r = w.token(&holder, "scope=read").await;
    let token = r.access_token().to_owned();
    assert!(
        token.starts_with("writ_at_") && token.len() >= 8 + 43,
        "{token}"
    );
    assert_eq!(r.json["expires"], NOW + 3600);

    let i = w.introspect(&holder, &token).await;
    assert_eq!(i.status, 200);
    assert_eq!(i.header("cache-control"), Some("no-store"));
    let jti = i.json["jti"].as_str().unwrap().to_owned();
    assert_eq!(
        i.json,
        json!({
            "active": true, "client_id": holder.id, "sub": holder.id, "aud": w.base,
            "iss": w.base, "exp": NOW + 3600, "iat": NOW, "jti": jti,
            "token_type": "Bearer", "scope": "read",
        })
    );
    // The selector part is public: the rest of the token must match too.
    let mut guessed = token.clone();
    let last = if token.ends_with('A') { "B" } else { "A" };
    guessed.replace_range(token.len() - 1.., last);
    assert_eq!(
        w.introspect(&holder, &guessed).await.json,
        json!({"active": false})
    );
    // Another client sees nothing; a resource server with writ:introspect does.
    assert_eq!(
        w.introspect(&other, &token).await.json,
        json!({"active": false})
    );
    assert_eq!(w.introspect(&rs, &token).await.json["active"], true);
    // JSON bodies work too.
    let i = w
        .post_json(
            "/oauth/introspect",
            json!({"client_id": rs.id, "client_secret": rs.secret, "token": token,
                   "token_type_hint": "access_token"}),
        )
        .await;
    assert_eq!(i.json["active"], true);

    // Only the holder (or writ:introspect) may revoke.
    w.revoke(&other, &token)
        .await
        .assert_error(400, "unauthorized_client");
    assert_eq!(w.introspect(&holder, &token).await.json["active"], true);
    let r = w.revoke(&holder, &token).await;
    assert_eq!((r.status, r.json.clone()), (200, json!({})));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        w.introspect(&holder, &token).await.json,
        json!({"active": false})
    );
    // Revoking again, or an unknown token, is fine.
    assert_eq!(w.revoke(&holder, &token).await.status, 200);
    assert_eq!(w.revoke(&holder, "writ_at_unknown").await.status, 200);
    assert_eq!(w.revoke(&holder, "garbage").await.status, 200);

    // The token itself is never stored.
    drop(w.server.take().unwrap().shutdown().await);
    let raw = std::fs::read(w.db_path()).unwrap();
    let wal = std::fs::read(w.dir.path().join("writ.db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        assert!(!bytes
            .windows(token.len())
            .any(|win| win == token.as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_introspection_expiry_and_revocation_by_jti() {
    let mut w = Writ::new();
    let c = w.client(&["--scope", "read"]);
    let clock = w.start_fixed(NOW).await;
    let token = w
        .token(&c, "validity_period=60")
        .await
        .access_token()
        .to_owned();
    let i = w.introspect(&c, &token).await;
    assert_eq!(i.json["active"], true);
    assert_eq!(i.json["jti"], claims(&token)["jti"]);
    assert_eq!(i.json["exp"], NOW + 60);

    // Tampered, malformed, or from another issuer: inactive.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [forged.as_str(), "a.b.c", "", "x"] {
        let r = w.introspect(&c, bad).await;
        if bad.is_empty() {
            r.assert_error(400, "invalid_request");
        } else {
            assert_eq!(r.json, json!({"active": false}), "{bad}");
        }
    }

    clock.advance(60);
    assert_eq!(
        w.introspect(&c, &token).await.json,
        json!({"active": false})
    );
    clock.advance(-60);

    assert_eq!(w.revoke(&c, &token).await.status, 200);
    assert_eq!(
        w.introspect(&c, &token).await.json,
        json!({"active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_revocation_authenticate_the_caller() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let token = w.token(&c, "").await.access_token().to_owned();
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        w.post_form(path, &format!("token={token}"))
            .await
            .assert_error(401, "invalid_client");
        w.post_form(
            path,
            &format!("token={token}&client_id={}&client_secret=x", c.id),
        )
        .await
        .assert_error(401, "invalid_client");
        w.post_form(
            path,
            &format!("client_id={}&client_secret={}", c.id, c.secret),
        )
        .await
        .assert_error(400, "invalid_request");
        let r = w.get(path).await;
        assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_follows_api_unless_the_client_sets_one() {
    let mut w = Writ::new();
    let plain = w.client(&[]);
    let jwt_client = w.client(&["--format", "jwt"]);
    w.api_granted_to(&plain, "https://o/", "r", &["--format", "opaque"]);
    w.grant(&jwt_client, "https://o/", "r");
    w.start().await;
    let is_opaque = |r: &Reply| r.access_token().starts_with("writ_at_");
    assert!(!is_opaque(&w.token(&plain, "").await));
    assert!(is_opaque(&w.token(&plain, "audience=https://o/").await));
    assert!(!is_opaque(
        &w.token(&jwt_client, "audience=https://o/").await
    ));

    w.cli(&["client", "update", &plain.id, "--format", "jwt"]);
    eventually(LIMIT, || async {
        !is_opaque(&w.token(&plain, "audience=https://o/").await)
    })
    .await;
    w.cli(&["api", "update", "https://o/", "--format", "default"]);
    w.cli(&["client", "update", &jwt_client.id, "--format", "opaque"]);
    eventually(LIMIT, || async {
        is_opaque(&w.token(&jwt_client, "").await)
    })
    .await;
    let shown = w.cli(&["client", "show", &jwt_client.id]);
    assert_eq!(shown["format"], "opaque");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_survive_a_restart() {
    let mut w = Writ::new();
    let c = w.client(&["--format", "opaque"]);
    // A restart keeps the issuer (the default one names the port, which
    // changes here); under another issuer the tokens would be inactive.
    let config = writ::config::Config {
        issuer: Some("https://auth.example.test".into()),
        ..w.config()
    };
    w.start_configured(config.clone()).await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(w.token(&c, "").await.access_token().to_owned());
    }
    w.server.take().unwrap().shutdown().await.unwrap();
    w.start_configured(config).await;
    for t in &tokens {
        assert_eq!(w.introspect(&c, t).await.json["active"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opaque_requests_all_get_durable_tokens() {
    let mut w = Writ::new();
    let c = w.client(&["--format", "opaque"]);
    // 200 at once from one client is past the default per-client burst.
    let config = w.config_with_file(NO_LIMITS);
    w.start_configured(config).await;
    let w = std::sync::Arc::new(w);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (w, c) = (w.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            w.token(&c, "").await.access_token().to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 200);
    for t in tokens.iter().step_by(10) {
        assert_eq!(w.introspect(&c, t).await.json["active"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_with_overlap_and_usage() {
    let mut w = Writ::new();
    let old = w.client(&[]);
    w.start().await;
    assert_eq!(w.token(&old, "").await.status, 200);

    let new = w.rotate_secret(&old, &["--overlap", "1h"]);
    eventually(LIMIT, || async { w.token(&new, "").await.status == 200 }).await;
    assert_eq!(
        w.token(&old, "").await.status,
        200,
        "old secret still works"
    );

    // `client show` lists both, without values, with expiry and last use.
    let shown = eventually_show(&w, &old.id, |s| {
        s.iter().filter(|x| !x["last_used_at"].is_null()).count() == 2
    })
    .await;
    let secrets = shown.as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets[0]["expires_at"].is_i64());
    assert!(secrets[1]["expires_at"].is_null());
    let text = serde_json::to_string(&shown).unwrap();
    assert!(!text.contains(&old.secret) && !text.contains(&new.secret));

    // Retire the old one explicitly.
    let old_id = secrets[0]["id"].as_i64().unwrap().to_string();
    w.cli(&["client", "revoke-secret", &old.id, &old_id]);
    eventually(LIMIT, || async { w.token(&old, "").await.status == 401 }).await;
    assert_eq!(w.token(&new, "").await.status, 200);
}

async fn eventually_show(
    w: &Writ,
    id: &str,
    check: impl Fn(&Vec<serde_json::Value>) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..40 {
        last = w.cli(&["client", "show", id])["secrets"].clone();
        if check(last.as_array().unwrap()) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("secrets never matched: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_key_is_published_before_it_signs_and_rotation_promotes_it() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    w.start().await;
    let keys = w.cli(&["key", "list"]);
    let kid_in = |state: &str, keys: &serde_json::Value| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["state"] == state)
            .map(|k| k["kid"].as_str().unwrap().to_owned())
    };
    let active = kid_in("active", &keys).unwrap();
    let next = kid_in("next", &keys).unwrap();
    let jwks = w.jwks().await.to_string();
    assert!(jwks.contains(&active) && jwks.contains(&next));
    let signed_by = |r: Reply| kid_of(r.access_token());
    assert_eq!(signed_by(w.token(&c, "").await), active);

    let rotated = w.cli(&["key", "rotate", "--force"]);
    assert_eq!(rotated["activated"][0], next.as_str());
    eventually(LIMIT, || async { signed_by(w.token(&c, "").await) == next }).await;
    let keys = w.cli(&["key", "list"]);
    assert_eq!(kid_in("retiring", &keys).unwrap(), active);
    let new_next = kid_in("next", &keys).unwrap();
    eventually(LIMIT, || async {
        w.jwks().await.to_string().contains(&new_next)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_on_schedule() {
    let mut w = Writ::new();
    let c = w.client(&[]);
    let config = w.config_with_file("[keys]\nrotate_every = \"1h\"\n");
    let clock = std::sync::Arc::new(writ::clock::FixedClock::new(NOW));
    w.start_with(config, clock.clone()).await;
    let first = kid_of(w.token(&c, "").await.access_token());
    clock.advance(3601);
    eventually(Duration::from_secs(5), || async {
        kid_of(w.token(&c, "").await.access_token()) != first
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_a_disabled_or_deleted_client_introspect_inactive() {
    let mut w = Writ::new();
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    let rs = w.client(&["--scope", "writ:introspect"]);
    w.start_fixed(NOW).await;
    let tokens = [
        (
            &opaque,
            w.token(&opaque, "").await.access_token().to_owned(),
        ),
        (&jwt, w.token(&jwt, "").await.access_token().to_owned()),
    ];
    let active = |r: Reply| r.json["active"] == true;
    for (_, t) in &tokens {
        assert!(active(w.introspect(&rs, t).await));
    }
    // A client disabled (say, because its secret leaked): its tokens stop.
    w.cli(&["client", "disable", &opaque.id]);
    w.cli(&["client", "disable", &jwt.id]);
    for (_, t) in &tokens {
        let t = t.clone();
        eventually(LIMIT, || async {
            w.introspect(&rs, &t).await.json == json!({"active": false})
        })
        .await;
    }
    // Enabled again, they come back; deleted, they are gone for good.
    w.cli(&["client", "enable", &opaque.id]);
    let t = tokens[0].1.clone();
    eventually(LIMIT, || async { active(w.introspect(&rs, &t).await) }).await;
    w.cli(&["client", "delete", &opaque.id]);
    eventually(LIMIT, || async {
        w.introspect(&rs, &t).await.json == json!({"active": false})
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_under_another_issuer_are_inactive_whatever_their_format() {
    let w = Writ::new();
    let opaque = w.client(&["--format", "opaque"]);
    let jwt = w.client(&[]);
    // Two servers on one database, each with its own issuer (as after a
    // restore under a new `--issuer`).
    let a = w.spawn(&["--issuer", "https://a.example.test"], &[]);
    let b = w.spawn(&["--issuer", "https://b.example.test"], &[]);
    let (a, b) = (a.remote(), b.remote());
    for c in [&opaque, &jwt] {
        let from_a = a.request_token(c).await.access_token().to_owned();
        let seen = a.introspect(c, &from_a).await.json;
        assert_eq!(
            (&seen["active"], &seen["iss"]),
            (&json!(true), &json!("https://a.example.test")),
            "{seen}"
        );
        assert_eq!(
            b.introspect(c, &from_a).await.json,
            json!({"active": false})
        );
        let from_b = b.request_token(c).await.access_token().to_owned();
        assert_eq!(
            b.introspect(c, &from_b).await.json["iss"],
            "https://b.example.test"
        );
        assert_eq!(
            a.introspect(c, &from_b).await.json,
            json!({"active": false})
        );
    }
}

/// A JWT's verification is reused for a second (a resource server
/// introspecting on every call); what can change since is still read on
/// every introspection: its expiry, its revocation, its claims unaltered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_introspected_again_is_still_checked_for_expiry_and_revocation() {
    let mut w = Writ::new();
    let holder = w.client(&["--lifetime", "60"]);
    let clock = w.start_fixed(NOW).await;

    let token = w.token(&holder, "").await.access_token().to_owned();
    for _ in 0..3 {
        let i = w.introspect(&holder, &token).await;
        assert_eq!(i.json["active"], true, "{}", i.text);
        assert_eq!(i.json["exp"], NOW + 60);
    }
    // The same claims with another signature, or another payload with the
    // same signature, are not the token that verified.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut other_signature = signature.to_owned().into_bytes();
    other_signature[3] = if other_signature[3] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let forged = format!("{signed}.{}", String::from_utf8(other_signature).unwrap());
    assert_eq!(
        w.introspect(&holder, &forged).await.json,
        json!({"active": false})
    );
    let second = w.token(&holder, "").await.access_token().to_owned();
    let (_, second_payload_signed) = second.rsplit_once('.').unwrap();
    let spliced = format!("{signed}.{second_payload_signed}");
    assert_eq!(
        w.introspect(&holder, &spliced).await.json,
        json!({"active": false})
    );

    // Revoked: inactive at once, though its verification was reused.
    assert_eq!(w.revoke(&holder, &token).await.status, 200);
    assert_eq!(
        w.introspect(&holder, &token).await.json,
        json!({"active": false})
    );

    // Expired: inactive once the clock passes `exp`, within the second too.
    assert_eq!(w.introspect(&holder, &second).await.json["active"], true);
    clock.advance(60);
    assert_eq!(
        w.introspect(&holder, &second).await.json,
        json!({"active": false})
    );
}

/// An issued token's selector begins with a millisecond of the second it
/// expires, which the purge deletes by: kept the second before, gone at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_token_is_purged_the_second_it_expires() {
    let mut w = Writ::new();
    let holder = w.client(&["--format", "opaque", "--lifetime", "600"]);
    w.start_fixed(NOW).await;
    let token = w.token(&holder, "").await.access_token().to_owned();
    let selector = writ::token::opaque::selector(&token).expect("an opaque token");
    let store = writ::store::Store::open(&writ::store::Location::Sqlite(w.db_path()))
        .await
        .unwrap();
    let expires_at = NOW + 600;
    store.purge_expired(expires_at - 1, 100).await.unwrap();
    assert_eq!(
        store.token(&selector).await.unwrap().map(|t| t.expires_at),
        Some(expires_at)
    );
    assert_eq!(store.purge_expired(expires_at, 100).await.unwrap(), 1);
    assert_eq!(store.token(&selector).await.unwrap(), None);
}
