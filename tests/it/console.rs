//! The web console at `/console`: the one-time sign-in link, the session
//! cookie, CSRF and the Content-Security-Policy over HTTP; then the whole
//! path in real headless Chromium through WebDriver.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use writ::store::{Location, Store};

use crate::harness::{eventually, transcript, Creds, Reply, Writ};

/// `writ console --json`: the link, recorded as a secret.
fn signin_link(w: &Writ) -> String {
    let out = w.cli(&["console", "--base-url", &w.base]);
    let url = out["url"].as_str().unwrap().to_owned();
    assert!(out["expires_at"].as_str().unwrap().ends_with('Z'), "{out}");
    transcript::secret(url.split("token=").nth(1).unwrap());
    url
}

/// A client that keeps cookies off: the tests set the cookie themselves.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str, cookie: Option<&str>) -> Reply {
    let mut request = http().get(url);
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    crate::harness::send(request).await
}

async fn post(url: &str, cookie: &str, body: &str) -> Reply {
    crate::harness::send(
        http()
            .post(url)
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned()),
    )
    .await
}

/// Signs in with a new link; returns the `Set-Cookie` header and the
/// `name=value` pair to send back.
async fn sign_in(w: &Writ) -> (String, String) {
    let r = get(&signin_link(w), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let set = r.header("set-cookie").unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    transcript::secret(pair.split_once('=').unwrap().1);
    (set, pair)
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

fn assert_console_headers(r: &Reply) {
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

async fn audit_actors(w: &Writ) -> Vec<(String, String, String)> {
    let store = Store::open(&Location::Sqlite(w.db_path())).await.unwrap();
    let events = store.audit_events(None, 100).await.unwrap();
    store.close().await;
    events
        .into_iter()
        .map(|e| (e.event, e.actor, e.via))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_signs_in_once_and_the_cookie_is_strict() {
    let mut w = Writ::new();
    w.start().await;
    let link = signin_link(&w);
    assert!(link.starts_with(&format!("{}/console/signin?token=writ_sl_", w.base)));

    let r = get(&link, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_console_headers(&r);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookie = r.header("set-cookie").unwrap().to_owned();
    transcript::secret(cookie.split(';').next().unwrap());
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attributes[0].starts_with("writ_console=writ_cs_"),
        "{cookie}"
    );
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(attributes.contains(&attribute), "{cookie}");
    }
    // Served over http here: a Secure cookie would never come back.
    assert!(!attributes.contains(&"Secure"), "{cookie}");
    // The page moves on to the clients page by itself, without script.
    assert!(r
        .text
        .contains("http-equiv=\"refresh\" content=\"0;url=/console/clients\""));

    // The same link again: refused, with a page that says why.
    let again = get(&link, None).await;
    assert_eq!(again.status, 403);
    assert!(
        again.text.contains("This sign-in link was used already"),
        "{}",
        again.text
    );
    assert!(again.header("set-cookie").is_none());
    assert_console_headers(&again);

    let nonsense = get(
        &format!("{}/console/signin?token=writ_sl_nope", w.base),
        None,
    )
    .await;
    assert_eq!(nonsense.status, 403);
    assert!(nonsense.text.contains("not valid"));

    // The session opens the clients page; without it, a page says how to sign in.
    let pair = cookie.split(';').next().unwrap();
    let clients = get(&w.url("/console/clients"), Some(pair)).await;
    assert_eq!(clients.status, 200, "{}", clients.text);
    assert_console_headers(&clients);
    let anonymous = get(&w.url("/console/clients"), None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.text.contains("writ console"));
    assert_console_headers(&anonymous);

    // Assets and unknown pages carry the policy too; no inline script anywhere.
    for path in [
        "/console/assets/console.css",
        "/console/assets/console.js",
        "/console/nope",
    ] {
        assert_console_headers(&get(&w.url(path), None).await);
    }
    assert_eq!(
        get(&w.url("/console/assets/console.js"), None)
            .await
            .header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(!clients.text.contains("<script>") && !clients.text.contains("style="));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_link_is_refused() {
    let mut w = Writ::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Made now by the CLI; the server's clock is six minutes on.
    w.start_fixed(now + 360).await;
    let r = get(&signin_link(&w), None).await;
    assert_eq!(r.status, 403);
    assert!(
        r.text.contains("This sign-in link has expired"),
        "{}",
        r.text
    );
    assert!(r.text.contains("5 minutes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secure_cookie_where_the_issuer_is_https() {
    let mut w = Writ::new();
    let mut config = w.config();
    config.issuer = Some("https://writ.example".into());
    w.start_configured(config).await;
    let (set, _) = sign_in(&w).await;
    assert!(set.split(';').any(|a| a.trim() == "Secure"), "{set}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_needs_the_sessions_csrf_token() {
    let mut w = Writ::new();
    w.start().await;
    let (_, cookie) = sign_in(&w).await;
    let page = get(&w.url("/console/clients/new"), Some(&cookie)).await;
    let csrf = csrf_of(&page.text);

    let create = w.url("/console/clients");
    for body in [
        "name=no-token&scope=read".to_owned(),
        "name=wrong-token&scope=read&csrf=AAAA".to_owned(),
    ] {
        let r = post(&create, &cookie, &body).await;
        assert_eq!(r.status, 403, "{body}: {}", r.text);
        assert!(r.text.contains("CSRF"));
        assert_console_headers(&r);
    }
    // Another session's token is not this one's.
    let (_, other) = sign_in(&w).await;
    let other_csrf = csrf_of(&get(&w.url("/console/clients/new"), Some(&other)).await.text);
    assert_ne!(other_csrf, csrf);
    let r = post(&create, &cookie, &format!("name=x&csrf={other_csrf}")).await;
    assert_eq!(r.status, 403);
    assert_eq!(w.cli(&["client", "list"]).as_array().unwrap().len(), 0);

    // With it: created, the secret shown once, audited as the session's.
    let r = post(
        &create,
        &cookie,
        &format!("name=svc&scope=read&kind=secret&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    transcript::secrets_in(&r.text);
    assert!(r.text.contains("value=\"writ_sk_"));
    // A broken rule shows the form again with the message, naming the field.
    let r = post(&create, &cookie, &format!("name=+&csrf={csrf}")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("Name must not be empty"), "{}", r.text);

    // Signing out needs the token as well, and ends the session for good.
    assert_eq!(
        post(&w.url("/console/signout"), &cookie, "").await.status,
        403
    );
    let out = post(&w.url("/console/signout"), &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        get(&w.url("/console/clients"), Some(&cookie)).await.status,
        401
    );

    let actors = audit_actors(&w).await;
    let by_session: Vec<&(String, String, String)> = actors
        .iter()
        .filter(|(_, _, via)| via == "console")
        .collect();
    let events: Vec<&str> = by_session.iter().map(|(e, _, _)| e.as_str()).collect();
    for event in ["console.signed_in", "client.created", "console.signed_out"] {
        assert!(events.contains(&event), "{actors:?}");
    }
    let created = by_session
        .iter()
        .find(|(e, _, _)| e == "client.created")
        .unwrap();
    assert!(
        created.1.starts_with("console:") && created.1.contains("/link-"),
        "{created:?}"
    );
    assert!(actors
        .iter()
        .any(|(e, _, via)| e == "console.signin_link_created" && via == "cli"));
}

/// The client's page grants APIs with check boxes through the grant
/// operations: a grant made, its scopes changed, taken away; bad input is
/// a page that says what is wrong, never a 500; every change is audited
/// as the session's.
#[tokio::test(flavor = "multi_thread")]
async fn console_grants_per_api_and_deleting_a_client() {
    let mut w = Writ::new();
    w.start().await;
    let c = w.client(&["--name", "billing", "--scope", "read write"]);
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://orders.example/",
        "--name",
        "Orders",
        "--scope",
        "read write",
    ]);
    let (_, cookie) = sign_in(&w).await;
    let here = w.url(&format!("/console/clients/{}", c.id));
    let page = get(&here, Some(&cookie)).await;
    assert!(
        page.text.contains("Grants per API") && page.text.contains("https://orders.example/"),
        "{}",
        page.text
    );
    let csrf = csrf_of(&page.text);
    let grants = format!("{here}/grants");
    let api = "api=https%3A%2F%2Forders.example%2F";

    let r = post(
        &grants,
        &cookie,
        &format!("{api}&granted=on&scope%3Aread=on"),
    )
    .await;
    assert_eq!(r.status, 403, "no CSRF token: refused");
    let r = post(
        &grants,
        &cookie,
        &format!("{api}&granted=on&scope%3Aread=on&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let scopes = || async {
        let g = w.cli(&["grant", "list", "--client", &c.id]);
        g.as_array()
            .unwrap()
            .iter()
            .map(|g| g["scopes"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(scopes().await, [serde_json::json!(["read"])]);
    // The client now gets a token for the API with that scope, and no other.
    let t = w
        .token(&c, "audience=https://orders.example/&scope=read")
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    w.token(&c, "audience=https://orders.example/&scope=write")
        .await
        .assert_error(400, "invalid_scope");

    let r = post(
        &grants,
        &cookie,
        &format!("{api}&granted=on&scope%3Aread=on&scope%3Awrite=on&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(scopes().await, [serde_json::json!(["read", "write"])]);
    let shown = get(&here, Some(&cookie)).await.text;
    assert!(
        shown.contains("name=\"scope:write\" value=\"on\" checked"),
        "{shown}"
    );

    // A scope the API does not define, an unknown API, no API: said, not a 500.
    let r = post(
        &grants,
        &cookie,
        &format!("{api}&granted=on&scope%3Aadmin=on&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text.contains("defines no scope &#39;admin&#39;")
            || r.text.contains("defines no scope 'admin'"),
        "{}",
        r.text
    );
    let r = post(
        &grants,
        &cookie,
        &format!("api=https%3A%2F%2Fnope%2F&granted=on&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = post(&grants, &cookie, &format!("granted=on&csrf={csrf}")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("Choose an API"));

    // Unticked: the grant is gone, and so is the token for that API.
    let r = post(
        &grants,
        &cookie,
        &format!("{api}&scope%3Aread=on&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(scopes().await.is_empty());
    eventually(Duration::from_secs(5), || async {
        w.token(&c, "audience=https://orders.example/").await.status != 200
    })
    .await;

    // Deleting asks first; the POST needs the token, then the client is gone.
    let confirm = get(&format!("{here}/delete"), Some(&cookie)).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text.contains("Delete billing?"), "{}", confirm.text);
    assert_eq!(
        post(&format!("{here}/delete"), &cookie, "").await.status,
        403
    );
    let r = post(&format!("{here}/delete"), &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/console/clients?done=deleted"));
    assert_eq!(get(&here, Some(&cookie)).await.status, 404);
    eventually(Duration::from_secs(5), || async {
        w.token(&c, "").await.status == 401
    })
    .await;

    let actors = audit_actors(&w).await;
    for event in [
        "grant.created",
        "grant.updated",
        "grant.deleted",
        "client.deleted",
    ] {
        assert!(
            actors.iter().any(|(e, by, via)| e == event
                && by.starts_with("console:")
                && by.contains("/link-")
                && via == "console"),
            "{event}: {actors:?}"
        );
    }
}

/// The APIs page: listed with identifier, scopes, lifetime and format;
/// created and its scopes edited through the API operations, whose rules
/// come back as a message on the form.
#[tokio::test(flavor = "multi_thread")]
async fn console_apis_are_listed_created_and_edited() {
    let mut w = Writ::new();
    w.start().await;
    let (_, cookie) = sign_in(&w).await;
    let list = get(&w.url("/console/apis"), Some(&cookie)).await;
    assert_eq!(list.status, 200);
    assert!(list.text.contains("No APIs yet"));
    let csrf = csrf_of(&get(&w.url("/console/apis/new"), Some(&cookie)).await.text);
    let create = w.url("/console/apis");
    let body = "identifier=https%3A%2F%2Fpay.example%2F&name=Payments&scope=pay%3Aread+pay%3Awrite&lifetime=600&max_lifetime=3600&format=opaque&claims=standard&algorithm=ES256";
    assert_eq!(post(&create, &cookie, body).await.status, 403);
    let r = post(&create, &cookie, &format!("{body}&csrf={csrf}")).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = w.url("/console/apis/https%3A%2F%2Fpay.example%2F");
    assert_eq!(
        r.header("location"),
        Some("/console/apis/https%3A%2F%2Fpay.example%2F?done=created")
    );
    let list = get(&w.url("/console/apis"), Some(&cookie)).await.text;
    for shown in [
        "Payments",
        "https://pay.example/",
        "pay:read",
        "pay:write",
        "600 s",
        "at most 3600 s",
        "opaque",
    ] {
        assert!(list.contains(shown), "{shown}: {list}");
    }
    let api = w.cli(&["api", "show", "https://pay.example/"]);
    assert_eq!(
        api["scopes"],
        serde_json::json!(["pay:read", "pay:write"]),
        "{api}"
    );

    // Broken rules: said on the form, nothing made.
    for (bad, says) in [
        ("identifier=not+a+uri&scope=a", "is not an absolute URI"),
        (
            "identifier=https%3A%2F%2Fx%2F&scope=a*",
            "must not be a pattern",
        ),
        (
            "identifier=https%3A%2F%2Fx%2F&lifetime=ten",
            "Token lifetime must be a whole number",
        ),
        (
            "identifier=https%3A%2F%2Fx%2F&lifetime=600&max_lifetime=60",
            "Token lifetime must not exceed Maximum lifetime",
        ),
        ("identifier=https%3A%2F%2Fx%2F&algorithm=HS256", "HS256"),
        ("identifier=https%3A%2F%2Fpay.example%2F", "exists"),
    ] {
        let r = post(&create, &cookie, &format!("{bad}&csrf={csrf}")).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert!(r.text.contains(says), "{bad}: {}", r.text);
    }

    // Scopes edited; a granted scope cannot go while a grant names it.
    let c = w.client(&["--name", "shop"]);
    w.grant(&c, "https://pay.example/", "pay:write");
    let r = post(
        &page,
        &cookie,
        &format!("name=Payments&scope=pay%3Aread&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("is granted to client"), "{}", r.text);
    let r = post(
        &page,
        &cookie,
        &format!("name=Payments&scope=pay%3Awrite+pay%3Arefund&format=jwt&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let api = w.cli(&["api", "show", "https://pay.example/"]);
    assert_eq!(
        api["scopes"],
        serde_json::json!(["pay:write", "pay:refund"]),
        "{api}"
    );
    assert_eq!(
        get(&w.url("/console/apis/https%3A%2F%2Fnope%2F"), Some(&cookie))
            .await
            .status,
        404
    );

    let actors = audit_actors(&w).await;
    for event in ["api.created", "api.updated"] {
        assert!(
            actors
                .iter()
                .any(|(e, by, via)| e == event && by.contains("/link-") && via == "console"),
            "{event}: {actors:?}"
        );
    }
}

/// The keys page: states and dates; rotating refuses a next key published
/// moments ago unless told, and then says when resource servers see what.
#[tokio::test(flavor = "multi_thread")]
async fn console_keys_rotate_and_say_when_resource_servers_see_them() {
    let mut w = Writ::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let clock = w.start_fixed(now).await;
    let (_, cookie) = sign_in(&w).await;
    let page = get(&w.url("/console/keys"), Some(&cookie)).await;
    assert_eq!(page.status, 200);
    let before = w.published_kids().await;
    assert_eq!(before.len(), 2, "an active and a next key");
    for kid in &before {
        assert!(page.text.contains(kid.as_str()), "{}", page.text);
    }
    assert!(
        page.text.contains(">active<") && page.text.contains(">next<"),
        "{}",
        page.text
    );
    let csrf = csrf_of(&page.text);
    let rotate = w.url("/console/keys/rotate");
    assert_eq!(post(&rotate, &cookie, "").await.status, 403);

    // The next key is brand new: refused, saying how to go on.
    let r = post(&rotate, &cookie, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text.contains("tick the box to rotate anyway"),
        "{}",
        r.text
    );
    let r = post(&rotate, &cookie, &format!("algorithm=XX256&csrf={csrf}")).await;
    assert_eq!(r.status, 422, "{}", r.text);

    // Eleven minutes on, it has been published long enough.
    clock.advance(11 * 60);
    let r = post(&rotate, &cookie, &format!("algorithm=ES256&csrf={csrf}")).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let shown = get(&w.url(r.header("location").unwrap()), Some(&cookie))
        .await
        .text;
    assert!(shown.contains("signs new tokens since"), "{shown}");
    assert!(
        shown.contains("Resource servers have seen it in the JWKS since"),
        "{shown}"
    );
    assert!(shown.contains("stays in the JWKS until"), "{shown}");
    assert!(shown.contains("rotate again no sooner than"), "{shown}");
    eventually(Duration::from_secs(5), || async {
        w.published_kids().await.len() == 3
    })
    .await;
    let after = w.published_kids().await;
    let new_next = after.iter().find(|k| !before.contains(k)).unwrap();
    assert!(shown.contains(new_next.as_str()), "{shown}");

    // At once again: only with the box ticked, and then it says the risk.
    let r = post(&rotate, &cookie, &format!("force=on&csrf={csrf}")).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let shown = get(&w.url(r.header("location").unwrap()), Some(&cookie))
        .await
        .text;
    assert!(shown.contains("It was published only"), "{shown}");

    let actors = audit_actors(&w).await;
    assert!(
        actors
            .iter()
            .any(|(e, by, via)| e == "key.rotated" && by.contains("/link-") && via == "console"),
        "{actors:?}"
    );
}

/// The text of the element with `id` in a page, its HTML escapes undone.
fn element_text(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {page}"));
    let start = at + page[at..].find('>').unwrap() + 1;
    let end = start + page[start..].find("</").unwrap();
    page[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The try-it panel: a test token issued without the secret, decoded; the
/// four dialects' curl commands, run here with the secret in
/// CLIENT_SECRET, get a token for the same API; refusals are said.
#[tokio::test(flavor = "multi_thread")]
async fn console_try_it_issues_a_test_token_and_curl_commands_that_work() {
    let mut w = Writ::new();
    w.start().await;
    let c = w.client(&["--name", "billing", "--scope", "orders:read"]);
    w.api_granted_to(
        &c,
        "https://orders.example/",
        "orders:read orders:write",
        &[],
    );
    let (_, cookie) = sign_in(&w).await;
    let here = w.url(&format!("/console/clients/{}", c.id));
    let page = get(&here, Some(&cookie)).await.text;
    assert!(page.contains("Try it"), "{page}");
    let csrf = csrf_of(&page);
    let try_it = format!("{here}/try");
    let body = "api=https%3A%2F%2Forders.example%2F&scope=orders%3Aread";
    assert_eq!(post(&try_it, &cookie, body).await.status, 403);
    let r = post(&try_it, &cookie, &format!("{body}&csrf={csrf}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = element_text(&r.text, "token");
    transcript::secret(&token);
    let claims =
        crate::harness::verify(&token, &w.jwks().await, "https://orders.example/", &w.base);
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(claims["scope"], "orders:read");
    let shown: serde_json::Value =
        serde_json::from_str(&element_text(&r.text, "jwt-claims")).unwrap();
    assert_eq!(shown, claims);
    let header: serde_json::Value =
        serde_json::from_str(&element_text(&r.text, "jwt-header")).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert!(r.text.contains("data-expires-at=\""), "{}", r.text);
    assert!(
        !r.text.contains(&c.secret),
        "the console never knows the secret"
    );

    // Each dialect's command, pasted into a shell with the secret set.
    for dialect in ["moltin", "commerce-layer", "auth0", "wso2"] {
        let command = element_text(&r.text, &format!("curl-{dialect}"));
        assert!(command.contains("$CLIENT_SECRET"), "{command}");
        let out = crate::harness::blocking(|| {
            std::process::Command::new("sh")
                .args(["-c", &command])
                .env("CLIENT_SECRET", &c.secret)
                .output()
                .unwrap()
        });
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{dialect}: {command}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let token = answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{dialect}: {answer}"));
        transcript::secret(token);
        let claims =
            crate::harness::verify(token, &w.jwks().await, "https://orders.example/", &w.base);
        assert_eq!(claims["scope"], "orders:read", "{dialect}");
    }
    assert!(element_text(&r.text, "curl-wso2").contains("-u '"));
    assert!(
        element_text(&r.text, "curl-auth0").contains("\"audience\":\"https://orders.example/\"")
    );
    assert!(element_text(&r.text, "curl-moltin").contains("/oauth/access_token"));

    // Refusals are said on the client's page, never a 500.
    let r = post(
        &try_it,
        &cookie,
        &format!("api=https%3A%2F%2Forders.example%2F&scope=admin&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text
            .contains("No token: its token request would be refused (invalid_scope)"),
        "{}",
        r.text
    );
    let r = post(
        &try_it,
        &cookie,
        &format!("api=https%3A%2F%2Felsewhere%2F&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("No token:"), "{}", r.text);
    w.cli(&["client", "disable", &c.id]);
    let r = post(&try_it, &cookie, &format!("{body}&csrf={csrf}")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("the client is disabled"), "{}", r.text);

    let actors = audit_actors(&w).await;
    assert!(
        actors.iter().any(|(e, by, via)| e == "token.test_issued"
            && by.contains("/link-")
            && via == "console"),
        "{actors:?}"
    );
}

/// The live view: tokens per second and refusals per client from the
/// token endpoint's own answers, and the recent audit events.
#[tokio::test(flavor = "multi_thread")]
async fn console_live_view_counts_tokens_and_refusals_per_client() {
    let mut w = Writ::new();
    w.start().await;
    let good = w.client(&["--name", "good"]);
    let bad = w.client(&["--name", "bad"]);
    let (_, cookie) = sign_in(&w).await;
    let page = get(&w.url("/console/live"), Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("data-refresh=\"/console/live/now\""),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("client.created"),
        "the audit events: {}",
        page.text
    );
    assert_eq!(get(&w.url("/console/live/now"), None).await.status, 401);

    for _ in 0..6 {
        assert_eq!(w.token(&good, "").await.status, 200);
    }
    let wrong = Creds {
        id: bad.id.clone(),
        secret: "writ_sk_wrong".into(),
    };
    for _ in 0..3 {
        assert_eq!(w.token(&wrong, "").await.status, 401);
    }
    // Within two samples, both show, each in its own list.
    let shows_both = |text: &str| {
        let refused = text.split("Tokens per client").next().unwrap_or_default();
        refused.contains(&bad.id) && !refused.contains(&good.id) && text.contains(&good.id)
    };
    eventually(Duration::from_secs(20), || async {
        shows_both(&get(&w.url("/console/live/now"), Some(&cookie)).await.text)
    })
    .await;
    let last = get(&w.url("/console/live/now"), Some(&cookie)).await.text;
    assert!(
        last.contains("class=\"issued\" points=") || last.contains("<circle class=\"issued\""),
        "{last}"
    );
    assert!(
        last.contains("9 issued") || last.contains("6 issued, 3 refused"),
        "{last}"
    );
}

/// Real headless Chromium through chromedriver: sign in, the link refused
/// a second time, a client created and its secret read from the page, an
/// API granted with its check boxes, a test token from the try-it panel
/// read decoded, the client disabled and its next token request refused,
/// a key rotated, the APIs and live pages (the live one refreshing itself
/// with the refusals), sign out. With WRIT_CONSOLE_SCREENSHOTS=1 the main
/// pages are saved into docs/.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser() {
    browse(Browser::Chromium).await;
}

/// The same in headless Firefox (Debian's firefox-esr) through geckodriver.
#[tokio::test(flavor = "multi_thread")]
async fn in_firefox() {
    browse(Browser::Firefox).await;
}

async fn browse(browser: Browser) {
    use fantoccini::{ClientBuilder, Locator};

    let mut w = Writ::new();
    w.start().await;
    let billing = w.client(&["--name", "billing", "--scope", "orders:read orders:write"]);
    let inventory = w.client(&[
        "--name",
        "inventory-sync",
        "--scope",
        "orders:read orders:write",
    ]);
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://orders.example/",
        "--name",
        "Orders",
        "--scope",
        "orders:read orders:write",
    ]);
    let driver = Driver::start(browser);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let b = ClientBuilder::new(connector)
        .capabilities(browser.capabilities())
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("{browser:?}'s WebDriver answers: {e}"));
    // The screenshots in docs/ are Chromium's.
    let shots = Screenshots::new(browser == Browser::Chromium);

    // Signing in lands on the clients page.
    let link = signin_link(&w);
    b.goto(&link).await.unwrap();
    let clients = w.url("/console/clients");
    eventually(Duration::from_secs(10), || async {
        b.current_url()
            .await
            .map(|u| u.as_str() == clients)
            .unwrap_or(false)
    })
    .await;
    b.wait().for_element(Locator::Css("table")).await.unwrap();
    let text = b
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("billing") && text.contains("inventory-sync"),
        "{text}"
    );
    shots.take(&b, "console-clients").await;

    // The same link again is refused.
    b.goto(&link).await.unwrap();
    let h1 = b
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(h1, "This sign-in link was used already");

    // A new client, from the keyboard: type, then Enter submits.
    b.goto(&w.url("/console/clients")).await.unwrap();
    b.find(Locator::LinkText("New client"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find(Locator::Id("scope"))
        .await
        .unwrap()
        .send_keys("orders:read")
        .await
        .unwrap();
    let name = b.find(Locator::Id("name")).await.unwrap();
    name.send_keys("reporting").await.unwrap();
    shots.take(&b, "console-new-client").await;
    name.send_keys("\u{E007}").await.unwrap();
    let secret_field = b.wait().for_element(Locator::Id("secret")).await.unwrap();
    let secret = secret_field.prop("value").await.unwrap().unwrap();
    transcript::secret(&secret);
    assert!(secret.starts_with("writ_sk_"), "{secret}");
    let id = b
        .find(Locator::Id("client-id"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    b.find(Locator::Css("button[data-copy]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(5), || async {
        match b.find(Locator::Css(".copied")).await {
            Ok(status) => status.text().await.is_ok_and(|s| !s.is_empty()),
            Err(_) => false,
        }
    })
    .await;
    shots.take(&b, "console-client-created").await;

    // The secret works, until the client is disabled.
    let creds = Creds {
        id: id.clone(),
        secret,
    };
    assert_eq!(w.token(&creds, "").await.status, 200);
    b.find(Locator::LinkText("Go to the client's page"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Id("settings-heading"))
        .await
        .unwrap();
    shots.take(&b, "console-client").await;

    // Grant the API with its switch and one scope's check box.
    b.find(Locator::Css("form.grant input[name=granted]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find(Locator::Css("form.grant input[name='scope:orders:read']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find(Locator::Css("form.grant button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let done = b.wait().for_element(Locator::Css(".done")).await.unwrap();
    assert_eq!(done.text().await.unwrap(), "The grant was saved.");
    // The answer lands on the grants, which are in view.
    shots.take(&b, "console-grants").await;

    // A test token for it, decoded, its expiry counting down.
    b.find(Locator::XPath("//button[text()='Get a test token']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let claims = b
        .wait()
        .for_element(Locator::Id("jwt-claims"))
        .await
        .unwrap();
    let claims: serde_json::Value = serde_json::from_str(&claims.text().await.unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://orders.example/", "{claims}");
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "orders:read");
    let token = b
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    transcript::secret(&token);
    assert_eq!(crate::harness::claims(&token), claims);
    // The module counts down: "in 59 min 59 s", not the page's "in 3600 s".
    eventually(Duration::from_secs(5), || async {
        match b.find(Locator::Css(".countdown")).await {
            Ok(c) => c.text().await.is_ok_and(|t| t.starts_with("in 59 min")),
            Err(_) => false,
        }
    })
    .await;
    let curl = b
        .find(Locator::Id("curl-wso2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        curl.contains("$CLIENT_SECRET") && !curl.contains(&creds.secret),
        "{curl}"
    );
    shots.take(&b, "console-try-it").await;
    b.find(Locator::LinkText("Back to the client's page"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Id("settings-heading"))
        .await
        .unwrap();
    b.find(Locator::XPath("//button[text()='Disable client']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let done = b.wait().for_element(Locator::Css(".done")).await.unwrap();
    assert!(done.text().await.unwrap().starts_with("Disabled"));
    eventually(Duration::from_secs(5), || async {
        w.token(&creds, "").await.status == 401
    })
    .await;
    w.token(&creds, "")
        .await
        .assert_error(401, "invalid_client");

    // Keys: rotated from the page (the next key is minutes old, so the box
    // is ticked), which says when resource servers see what.
    let kids = w.published_kids().await;
    b.find(Locator::LinkText("Keys"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Id("rotate-heading"))
        .await
        .unwrap();
    shots.take(&b, "console-keys").await;
    b.find(Locator::Css("input[name=force]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find(Locator::XPath("//button[text()='Rotate keys']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rotated = b
        .wait()
        .for_element(Locator::Id("rotated-heading"))
        .await
        .unwrap();
    let story = rotated
        .find(Locator::XPath(".."))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        kids.iter().any(|k| story.contains(k.as_str())) && story.contains("signs new tokens since"),
        "{story}"
    );
    eventually(Duration::from_secs(5), || async {
        w.published_kids().await.len() == 3
    })
    .await;

    // The APIs page lists the API.
    b.find(Locator::LinkText("APIs"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let table = b.wait().for_element(Locator::Css("table")).await.unwrap();
    assert!(table
        .text()
        .await
        .unwrap()
        .contains("https://orders.example/"));
    shots.take(&b, "console-apis").await;

    // Live: tokens and refusals made while it is open appear by themselves.
    b.find(Locator::LinkText("Live"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Id("traffic-heading"))
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(w.token(&billing, "").await.status, 200);
    }
    // A wrong secret (once: more would meet the back-off, refused
    // before the client is known).
    let wrong = Creds {
        id: inventory.id.clone(),
        secret: "writ_sk_wrong".into(),
    };
    assert_eq!(w.token(&wrong, "").await.status, 401);
    eventually(Duration::from_secs(30), || async {
        match b.find(Locator::Css("#live table.bars")).await {
            Ok(t) => t.text().await.is_ok_and(|t| t.contains(&inventory.id)),
            Err(_) => false,
        }
    })
    .await;
    // Three samples make a line worth a picture.
    eventually(Duration::from_secs(30), || async {
        match b.find(Locator::Css("polyline.issued")).await {
            Ok(l) => l
                .attr("points")
                .await
                .is_ok_and(|p| p.is_some_and(|p| p.split(' ').count() >= 3)),
            Err(_) => false,
        }
    })
    .await;
    shots.take(&b, "console-live").await;

    // On a narrow screen.
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&clients).await.unwrap();
    shots.take(&b, "console-clients-narrow").await;
    b.set_window_size(1280, 900).await.unwrap();

    // Signing out ends the session.
    b.find(Locator::XPath("//button[text()='Sign out']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page is replaced as it loads: an element found a moment ago may
    // be gone when read, which is "not yet".
    eventually(Duration::from_secs(5), || async {
        match b.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.is_ok_and(|t| t == "Signed out"),
            Err(_) => false,
        }
    })
    .await;
    b.goto(&clients).await.unwrap();
    let h1 = b
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(h1, "Not signed in");
    b.close().await.unwrap();

    let actors = audit_actors(&w).await;
    assert!(
        actors.iter().any(|(e, by, via)| e == "client.disabled"
            && by.starts_with("console:")
            && via == "console"),
        "{actors:?}"
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    fn binary(self) -> &'static str {
        let (candidates, what): (&[&str], _) = match self {
            Browser::Chromium => (
                &[
                    "/usr/bin/chromium",
                    "/usr/bin/chromium-browser",
                    "/usr/bin/google-chrome",
                ],
                "Chromium is installed (Debian's chromium; .ci/run installs it)",
            ),
            Browser::Firefox => (
                &["/usr/bin/firefox-esr", "/usr/bin/firefox"],
                "Firefox is installed (Debian's firefox-esr; .ci/run installs it)",
            ),
        };
        candidates
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(what)
    }

    fn capabilities(self) -> serde_json::Map<String, serde_json::Value> {
        let (key, options) = match self {
            Browser::Chromium => (
                "goog:chromeOptions",
                serde_json::json!({
                    "binary": self.binary(),
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--window-size=1280,900"],
                }),
            ),
            Browser::Firefox => (
                "moz:firefoxOptions",
                serde_json::json!({
                    "binary": self.binary(),
                    "args": ["-headless", "--width=1280", "--height=900"],
                }),
            ),
        };
        serde_json::Map::from_iter([(key.to_owned(), options)])
    }
}

/// The browser's WebDriver server (chromedriver, geckodriver) on a free
/// local port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    fn start(browser: Browser) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (program, args, what) = match browser {
            Browser::Chromium => (
                "chromedriver",
                vec![format!("--port={port}")],
                "chromedriver is installed (Debian's chromium-driver; .ci/run installs it)",
            ),
            Browser::Firefox => (
                "geckodriver",
                vec![
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                ],
                "geckodriver is installed (cargo install geckodriver; .ci/run installs it)",
            ),
        };
        let child = std::process::Command::new(program)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(what);
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{program} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Screenshots into docs/ when asked for (WRIT_CONSOLE_SCREENSHOTS=1), so
/// that an ordinary test run leaves the work tree as it was.
struct Screenshots(Option<std::path::PathBuf>);

impl Screenshots {
    fn new(saved: bool) -> Self {
        let wanted = saved && std::env::var_os("WRIT_CONSOLE_SCREENSHOTS").is_some();
        Self(wanted.then(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")))
    }

    async fn take(&self, b: &fantoccini::Client, name: &str) {
        let png = b.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        if let Some(dir) = &self.0 {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }
}

/// Every page and every form without a session: 401 and the page that says
/// how to sign in, and nothing changed (the CSRF check never gets a say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_form_needs_a_session() {
    let mut w = Writ::new();
    w.start().await;
    let c = w.client(&["--name", "kept"]);
    let api = "https://orders.example/";
    w.cli(&["api", "create", "--identifier", api, "--scope", "read"]);
    let api_path = format!("/console/apis/{}", urlencode(api));
    let id = &c.id;
    let pages = [
        "/console/clients".to_owned(),
        "/console/clients/new".to_owned(),
        format!("/console/clients/{id}"),
        format!("/console/clients/{id}/delete"),
        "/console/apis".to_owned(),
        "/console/apis/new".to_owned(),
        api_path.clone(),
        "/console/keys".to_owned(),
        "/console/live".to_owned(),
        "/console/live/now".to_owned(),
    ];
    for path in &pages {
        let r = get(&w.url(path), None).await;
        assert_eq!(r.status, 401, "GET {path}: {}", r.text);
        assert!(r.text.contains("writ console"), "GET {path}");
    }
    let forms = [
        ("/console/clients".to_owned(), "csrf=x&name=intruder"),
        (format!("/console/clients/{id}"), "csrf=x&name=renamed"),
        (
            format!("/console/clients/{id}/enabled"),
            "csrf=x&enabled=false",
        ),
        (format!("/console/clients/{id}/secrets"), "csrf=x&overlap=0"),
        (format!("/console/clients/{id}/secrets/1/revoke"), "csrf=x"),
        (
            format!("/console/clients/{id}/grants"),
            "csrf=x&api=https%3A%2F%2Forders.example%2F&granted=on",
        ),
        (
            format!("/console/clients/{id}/try"),
            "csrf=x&api=https%3A%2F%2Forders.example%2F",
        ),
        (format!("/console/clients/{id}/delete"), "csrf=x"),
        (
            "/console/apis".to_owned(),
            "csrf=x&identifier=https%3A%2F%2Fx.example%2F",
        ),
        (api_path.clone(), "csrf=x&scope=write"),
        ("/console/keys/rotate".to_owned(), "csrf=x&force=on"),
        ("/console/signout".to_owned(), "csrf=x"),
    ];
    let kids = w.published_kids().await;
    for (path, body) in &forms {
        let r = post(&w.url(path), "", body).await;
        assert_eq!(r.status, 401, "POST {path}: {}", r.text);
    }
    // Nothing changed: the client, its secret, grants and name; the API;
    // the keys; no API created.
    assert_eq!(w.token(&c, "").await.status, 200);
    let shown = w.cli(&["client", "show", id]);
    assert_eq!(shown["name"], "kept", "{shown}");
    assert_eq!(shown["enabled"], true, "{shown}");
    assert_eq!(w.published_kids().await, kids);
    let apis = w.cli(&["api", "list"]);
    assert_eq!(apis.as_array().map(Vec::len), Some(1), "{apis}");
    assert!(w
        .cli(&["grant", "list"])
        .as_array()
        .is_some_and(|g| g.is_empty()));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
