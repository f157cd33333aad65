//! The admin HTTP API, driven over HTTP as an outside tool would: Writ's
//! own tokens, problem details, cursors with `Link`, `ETag`/`If-Match`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{eventually, transcript, Creds, Reply, Writ};

/// An admin API caller: a base URL and a bearer token.
struct Admin<'w> {
    w: &'w Writ,
    token: String,
}

impl Admin<'_> {
    fn url(&self, path: &str) -> String {
        if path.starts_with("/admin/") {
            self.w.url(path)
        } else {
            self.w.url(&format!("/admin/v1{path}"))
        }
    }
    async fn get(&self, path: &str) -> Reply {
        self.w
            .send(self.w.http.get(self.url(path)).bearer_auth(&self.token))
            .await
    }
    async fn post(&self, path: &str, body: Value) -> Reply {
        let r = self
            .w
            .send(
                self.w
                    .http
                    .post(self.url(path))
                    .bearer_auth(&self.token)
                    .json(&body),
            )
            .await;
        transcript::secrets_in(&r.text);
        r
    }
    async fn patch(&self, path: &str, body: Value, if_match: Option<&str>) -> Reply {
        let mut req = self
            .w
            .http
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(etag) = if_match {
            req = req.header("if-match", etag);
        }
        self.w.send(req).await
    }
    async fn delete(&self, path: &str) -> Reply {
        self.w
            .send(self.w.http.delete(self.url(path)).bearer_auth(&self.token))
            .await
    }
}

/// A client with `scope`, and a token for it.
async fn admin<'w>(w: &'w Writ, creds: &Creds, scope: &str) -> Admin<'w> {
    let token = w
        .token(creds, &format!("scope={scope}"))
        .await
        .access_token()
        .to_owned();
    Admin { w, token }
}

fn problem(r: &Reply, status: u16) -> &Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    assert_eq!(r.json["status"], status);
    assert!(r.json["title"].is_string() && r.json["detail"].is_string());
    &r.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6750_writs_own_tokens_guard_the_admin_api() {
    let mut w = Writ::new();
    let ops = w.client(&["--scope", "writ:admin writ:admin:read read"]);
    let viewer = w.client(&["--scope", "writ:admin:read"]);
    w.start().await;

    let r = w.get("/admin/v1/clients").await;
    problem(&r, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="writ""#));
    let r = w
        .send(
            w.http
                .get(w.url("/admin/v1/clients"))
                .bearer_auth("not-a-token"),
        )
        .await;
    problem(&r, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_token""#));

    // A token without an admin scope, and a read-only token that writes.
    let plain = admin(&w, &ops, "read").await;
    let r = plain.get("/clients").await;
    problem(&r, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    let reader = admin(&w, &viewer, "writ:admin:read").await;
    assert_eq!(reader.get("/clients").await.status, 200);
    let r = reader.post("/clients", json!({"name": "x"})).await;
    problem(&r, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"scope="writ:admin""#));

    // A disabled admin client's token stops working.
    let writer = admin(&w, &ops, "writ:admin").await;
    assert_eq!(writer.get("/keys").await.status, 200);
    w.cli(&["client", "disable", &ops.id]);
    eventually(Duration::from_secs(2), || async {
        writer.get("/keys").await.status == 401
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_created_read_updated_and_deleted_over_http() {
    let mut w = Writ::new();
    let ops = w.client(&["--scope", "writ:admin"]);
    w.start().await;
    let a = admin(&w, &ops, "writ:admin").await;

    let r = a
        .post(
            "/clients",
            json!({"name": "billing", "scope": "read write"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("/admin/v1/clients/{id}").as_str())
    );
    let created = Creds {
        id: id.clone(),
        secret: r.json["client_secret"].as_str().unwrap().to_owned(),
    };
    // Usable by the very next request.
    assert_eq!(w.token(&created, "scope=read").await.status, 200);

    let r = a.get(&format!("/clients/{id}")).await;
    assert_eq!(r.json["scope"], "read write");
    assert!(r.json.get("client_secret").is_none());
    assert_eq!(r.json["secrets"].as_array().unwrap().len(), 1);
    let etag = r.header("etag").unwrap().to_owned();

    // An update from the ETag read; then the same ETag is stale: 412.
    let r = a
        .patch(
            &format!("/clients/{id}"),
            json!({"name": "billing-eu", "lifetime": 600}),
            Some(&etag),
        )
        .await;
    assert_eq!(
        (r.status, r.json["name"].clone()),
        (200, json!("billing-eu")),
        "{}",
        r.text
    );
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    let r = a
        .patch(
            &format!("/clients/{id}"),
            json!({"name": "lost"}),
            Some(&etag),
        )
        .await;
    problem(&r, 412);
    assert_eq!(
        a.get(&format!("/clients/{id}")).await.json["name"],
        "billing-eu"
    );

    // Rules are the CLI's, and name the field.
    let r = a
        .patch(
            &format!("/clients/{id}"),
            json!({"scope": "other", "default_scope": "read"}),
            None,
        )
        .await;
    assert_eq!(problem(&r, 422)["field"], "default_scope");
    let r = a.post("/clients", json!({"name": " "})).await;
    assert_eq!(problem(&r, 422)["field"], "name");
    let r = a.post("/clients", json!({"name": "x".repeat(201)})).await;
    assert_eq!(problem(&r, 422)["field"], "name");
    problem(&a.post("/clients", json!({"nom": "x"})).await, 400);
    problem(&a.get("/clients/nosuch").await, 404);

    // Secrets: rotate with overlap, revoke one.
    let r = a
        .post(
            &format!("/clients/{id}/secrets"),
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rotated = Creds {
        id: id.clone(),
        secret: r.json["client_secret"].as_str().unwrap().to_owned(),
    };
    eventually(Duration::from_secs(2), || async {
        w.token(&created, "").await.status == 401
    })
    .await;
    assert_eq!(w.token(&rotated, "").await.status, 200);
    let secret_id = a.get(&format!("/clients/{id}")).await.json["secrets"][0]["id"]
        .as_i64()
        .unwrap();
    let r = a
        .delete(&format!("/clients/{id}/secrets/{secret_id}"))
        .await;
    assert_eq!(
        (r.status, r.json["secrets_left"].clone()),
        (200, json!(0)),
        "{}",
        r.text
    );

    // Disable, then delete.
    let r = a
        .patch(&format!("/clients/{id}"), json!({"enabled": false}), None)
        .await;
    assert_eq!(r.json["enabled"], false);
    assert_eq!(a.delete(&format!("/clients/{id}")).await.status, 204);
    problem(&a.delete(&format!("/clients/{id}")).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_walk_sees_every_client_once_and_ends() {
    let mut w = Writ::new();
    let ops = w.client(&["--scope", "writ:admin"]);
    for i in 0..6 {
        w.client(&["--name", &format!("shop {i}")]);
    }
    w.start().await;
    let a = admin(&w, &ops, "writ:admin").await;
    let mut seen = Vec::new();
    let mut next = Some("/admin/v1/clients?limit=2".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        assert!(pages < 20, "the walk does not end");
        let r = a.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for c in r.json["items"].as_array().unwrap() {
            seen.push(c["client_id"].as_str().unwrap().to_owned());
        }
        if pages == 1 {
            // Created during the walk: seen once, at the end.
            a.post("/clients", json!({"name": "late"})).await;
        }
        next = r.header("link").map(|l| {
            assert!(l.ends_with(r#">; rel="next""#), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{seen:?}");
    let r = a.get("/clients?name_prefix=shop&limit=100").await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 6);
    assert!(r.header("link").is_none(), "no next after the last page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apis_grants_and_keys_over_http() {
    let mut w = Writ::new();
    let ops = w.client(&["--scope", "writ:admin"]);
    let svc = w.client(&[]);
    w.start().await;
    let a = admin(&w, &ops, "writ:admin").await;
    let r = a
        .post("/apis", json!({"identifier": "https://orders.example/", "scope": "read:o write:o", "algorithm": "EdDSA"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    problem(
        &a.post("/apis", json!({"identifier": "https://orders.example/"}))
            .await,
        409,
    );
    let r = a.post("/apis", json!({"identifier": "not a uri"})).await;
    assert_eq!(problem(&r, 422)["field"], "identifier");
    let path = "/apis/https%3A%2F%2Forders.example%2F";
    let r = a.get(path).await;
    assert_eq!(
        (r.status, r.json["algorithm"].clone()),
        (200, json!("EdDSA")),
        "{}",
        r.text
    );

    let r = a
        .post(
            &format!("/clients/{}/grants", svc.id),
            json!({"api": "https://orders.example/", "scope": "read:o"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Usable at once.
    let t = w.token(&svc, "audience=https://orders.example/").await;
    assert_eq!(t.json["scope"], "read:o", "{}", t.text);
    let r = a.patch(path, json!({"scope": "write:o"}), None).await;
    assert_eq!(problem(&r, 422)["field"], "scope");
    let r = a.get(&format!("/clients/{}/grants", svc.id)).await;
    assert_eq!(r.json["items"][0]["api"], "https://orders.example/");
    let r = a
        .delete(&format!(
            "/clients/{}/grants?api=https%3A%2F%2Forders.example%2F",
            svc.id
        ))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let keys = a.get("/keys").await;
    assert!(keys.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["algorithm"] == "EdDSA"));
    problem(&a.post("/keys/rotate", json!({})).await, 409);
    let r = a
        .post("/keys/rotate", json!({"algorithm": "ES256", "force": true}))
        .await;
    assert_eq!(
        r.json["activated"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    assert_eq!(a.delete(path).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_operation() {
    let mut w = Writ::new();
    w.start().await;
    let doc = w.get("/admin/v1/openapi.json").await.json;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}"));
            ids.push(id.to_owned());
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
    for id in [
        "list_clients",
        "create_client",
        "update_client",
        "rotate_secret",
        "create_api",
        "rotate_keys",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing: {ids:?}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_openapi_document_manages_clients() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cache = crate::harness::install_interop();

    let mut w = Writ::new();
    let ops = w.client(&["--scope", "writ:admin"]);
    w.start().await;
    let a = admin(&w, &ops, "writ:admin").await;
    let work = tempfile::tempdir().unwrap();
    let out = crate::harness::blocking(|| {
        std::process::Command::new("python3")
            .arg(format!("{root}/interop/openapi/admin_client.py"))
            .args([
                w.base.as_str(),
                a.token.as_str(),
                work.path().to_str().unwrap(),
            ])
            .env("PYTHONPATH", format!("{cache}/openapi/lib"))
            .output()
            .unwrap()
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines().filter_map(|l| l.strip_prefix("SECRET ")) {
        transcript::secret(line);
    }
    assert!(out.status.success(), "the generated client failed:\n{text}");
    assert!(text.contains("OK 5"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_creates_tokens_and_the_audit_trail() {
    let mut w = Writ::new();
    let ops = w.client(&["--scope", "writ:admin"]);
    let svc = w.client(&["--format", "opaque"]);
    w.start().await;
    let a = admin(&w, &ops, "writ:admin").await;

    // The same Idempotency-Key answers the same, once: one client made.
    let create = |key: &'static str, name: &'static str| {
        let req = w
            .http
            .post(a.url("/clients"))
            .bearer_auth(&a.token)
            .header("idempotency-key", key)
            .json(&json!({"name": name}));
        w.send(req)
    };
    let first = create("k-1", "once").await;
    transcript::secrets_in(&first.text);
    let again = create("k-1", "once").await;
    assert_eq!((first.status, again.status), (201, 201), "{}", again.text);
    assert_eq!(first.json, again.json, "the same answer, secret included");
    assert_eq!(
        a.get("/clients?name_prefix=once").await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    problem(&create("k-1", "other").await, 422);
    assert_eq!(create("k-2", "once").await.status, 201);

    // A client's opaque tokens, and revoking any token by its value.
    let t = w.token(&svc, "").await.access_token().to_owned();
    let listed = a.get(&format!("/clients/{}/tokens", svc.id)).await;
    assert_eq!(
        listed.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.text
    );
    assert!(
        listed.header("link").is_none(),
        "one window holds every token"
    );
    for bad in ["not-a-cursor", "AAAA"] {
        let r = a
            .get(&format!("/clients/{}/tokens?before={bad}", svc.id))
            .await;
        problem(&r, 400);
    }
    let r = a.post("/tokens/revoke", json!({"token": t})).await;
    assert_eq!(
        (r.json["revoked"].clone(), r.json["client_id"].clone()),
        (json!(true), json!(svc.id))
    );
    assert_eq!(w.introspect(&svc, &t).await.json, json!({"active": false}));
    assert!(
        a.get(&format!("/clients/{}/tokens", svc.id)).await.json["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The audit trail names who did what, through which door.
    let events = a.get("/audit?limit=100").await.json;
    let items = events["items"].as_array().unwrap();
    assert!(
        items.iter().any(|e| e["event"] == "client.created"
            && e["actor"] == ops.id.as_str()
            && e["via"] == "api"),
        "{events}"
    );
    assert!(
        items
            .iter()
            .any(|e| e["event"] == "client.created" && e["via"] == "cli"),
        "{events}"
    );
    let newest_first = items
        .windows(2)
        .all(|p| p[0]["id"].as_i64() > p[1]["id"].as_i64());
    assert!(newest_first, "{events}");
    let page = a.get("/audit?limit=1").await;
    assert!(page.header("link").unwrap().contains("before="));
}
