//! Log lines: a value a client sent cannot forge a line or a field, every
//! value is quoted alike, and nothing that looks like a secret or token is
//! written.

use std::time::Duration;

use crate::harness::{basic, blocking, Writ};

/// What a forger would like a log reader to see as a line of its own.
const FORGED: &str =
    "x\n2026-11-30T10:00:00Z  INFO audit: event=\"token.issued\" client_id=\"FORGED\"\r\n=1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_never_forge_a_log_line() {
    let w = Writ::new();
    let c = w.client(&["--scope", "a b"]);
    let mut node = w.spawn(&[], &[("RUST_LOG", "info,writ::http::error=debug")]);
    let remote = node.remote();
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let f = enc(FORGED);
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let json_key = serde_json::json!({ FORGED: 1 }).to_string();
    // (path, content type, Basic credentials, body, lines it logs): every
    // refusal of the token endpoint is an audit line and a debug line.
    let requests: Vec<(&str, &str, Option<String>, String, usize)> = vec![
        (
            "/oauth/token",
            form,
            None,
            format!("grant_type=client_credentials&client_id={f}&client_secret={f}&scope={f}&audience={f}"),
            2,
        ),
        ("/oauth/token", form, None, format!("{f}=1&{f}=2"), 2),
        ("/oauth/token", json, None, json_key.clone(), 2),
        ("/oauth/token", form, None, format!("grant_type={f}&client_id={}", c.id), 2),
        (
            "/oauth/token",
            form,
            Some(basic(FORGED, FORGED)),
            "grant_type=client_credentials".into(),
            2,
        ),
        (
            "/oauth/token",
            form,
            Some(basic(&c.id, &c.secret)),
            format!("grant_type=client_credentials&scope={f}&validity_period={f}"),
            2,
        ),
        (
            "/oauth/token",
            form,
            Some(basic(&c.id, &c.secret)),
            format!("grant_type=client_credentials&audience={f}"),
            2,
        ),
    ];
    let mut all = requests;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        all.push((
            path,
            form,
            None,
            format!("client_id={f}&client_secret={f}&token={f}&token_type_hint={f}"),
            1,
        ));
        all.push((path, form, None, format!("{f}=1&{f}=2"), 1));
        all.push((path, json, None, json_key.clone(), 1));
        all.push((
            path,
            form,
            Some(basic(FORGED, "s")),
            format!("token={f}"),
            1,
        ));
    }
    for (i, (path, content_type, auth, body, _)) in all.iter().enumerate() {
        let mut request = remote
            .http
            .post(remote.url(path))
            .header("content-type", *content_type)
            .header("x-request-id", format!("ctl-{i}"))
            .body(body.clone());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let r = remote.send(request).await;
        assert!(r.status >= 400, "{path} {body}: {}", r.text);
    }
    // One issued token, one refused for its secret: the same quoting.
    assert_eq!(
        remote
            .send(
                remote
                    .token_request(&c)
                    .form(&[("grant_type", "client_credentials"), ("scope", "a b")])
            )
            .await
            .status,
        200
    );
    let mut wrong = c.clone();
    wrong.secret = "wrong".into();
    assert_eq!(remote.request_token(&wrong).await.status, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocking(|| node.terminate());
    let log = node.output();
    let lines: Vec<&str> = log.lines().collect();
    // Every line is a whole event: a timestamp, a level, a target.
    for line in &lines {
        let mut words = line.split_whitespace();
        let (stamp, level) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        assert!(
            stamp.starts_with("20") && stamp.ends_with('Z') && stamp != "2026-11-30T10:00:00Z",
            "not a line of its own: {line:?}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "{line:?}"
        );
    }
    for (i, (path, _, _, body, expected)) in all.iter().enumerate() {
        let id = format!("request_id=\"ctl-{i}\"");
        let n = lines.iter().filter(|l| l.contains(&id)).count();
        assert_eq!(n, *expected, "{path} {body}: {n} lines in\n{log}");
    }
    // Every string value is quoted and escaped alike, whichever event has it.
    let issued = lines
        .iter()
        .find(|l| l.contains("event=\"token.issued\""))
        .unwrap();
    assert!(
        issued.contains(&format!("client_id=\"{}\"", c.id)),
        "{issued}"
    );
    assert!(issued.contains("scope=\"a b\""), "{issued}");
    let denied = lines
        .iter()
        .rev()
        .find(|l| l.contains("event=\"token.denied\""))
        .unwrap();
    assert!(
        denied.contains(&format!("client_id=\"{}\"", c.id)),
        "{denied}"
    );
    assert!(denied.contains("error=\"invalid_client\""), "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_or_token_sent_as_the_client_id_is_redacted() {
    let w = Writ::new();
    let c = w.client(&[]);
    let o = w.client(&["--format", "opaque"]);
    let mut node = w.spawn(&[], &[]);
    let remote = node.remote();
    let jwt = remote.request_token(&c).await.access_token().to_owned();
    let opaque = remote.request_token(&o).await.access_token().to_owned();
    // Swapped id and secret, as a form and as Basic; then tokens as ids.
    let swapped = crate::harness::Creds {
        id: c.secret.clone(),
        secret: c.id.clone(),
    };
    assert_eq!(remote.request_token(&swapped).await.status, 401);
    let r = remote
        .send(remote.http.post(remote.url("/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.secret.as_str()),
            ("client_secret", c.id.as_str()),
        ]))
        .await;
    assert_eq!(r.status, 401);
    for token in [&jwt, &opaque] {
        let r = remote
            .send(remote.http.post(remote.url("/oauth/token")).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", token.as_str()),
            ]))
            .await;
        assert_eq!(r.status, 401);
        let r = remote
            .send(remote.http.post(remote.url("/oauth/introspect")).form(&[
                ("client_id", token.as_str()),
                ("client_secret", c.secret.as_str()),
                ("token", "x"),
            ]))
            .await;
        assert_eq!(r.status, 401);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocking(|| node.terminate());
    let log = node.output();
    for value in [&c.secret, &jwt, &opaque] {
        assert!(
            !log.contains(value.as_str()),
            "a secret or token was logged"
        );
    }
    // A JWT without its signature is still the token's claims: none of it.
    assert!(!log.contains(jwt.split('.').nth(1).unwrap()));
    assert!(log.contains("client_id=\"writ_sk_…(redacted)\""), "{log}");
    assert!(log.contains("client_id=\"writ_at_…(redacted)\""), "{log}");
    assert!(log.contains("client_id=\"eyJ…(redacted)\""), "{log}");
}
