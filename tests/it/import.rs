//! `writ client import`: clients from another server keep their ids and
//! secrets; a bad line stops the import, naming it. And listing a page at
//! a time.

use std::io::Write;
use std::process::Stdio;

use crate::harness::{run_writ, transcript, writ_command, Creds, Writ};

fn import(w: &Writ, lines: &str) -> std::process::Output {
    let path = w.dir.path().join("clients.jsonl");
    std::fs::write(&path, lines).unwrap();
    w.cli_raw(&["client", "import", path.to_str().unwrap()], true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_clients_keep_their_ids_and_secrets() {
    let mut w = Writ::new();
    let secret = "legacy-secret-0123456789abcdef";
    transcript::secret(secret);
    let out = import(
        &w,
        &format!(
            "{{\"client_id\": \"legacy-billing\", \"client_secret\": \"{secret}\", \"name\": \"billing\", \"scope\": \"read write\"}}\n\
             \n\
             {{\"name\": \"generated\", \"scope\": \"read\"}}\n\
             {{\"client_id\": \"storefront\", \"name\": \"shop\", \"scope\": \"market:*\", \"public\": true}}\n"
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["imported"], 3, "{shown}");
    let generated = &shown["generated"][0];
    let made = Creds {
        id: generated["client_id"].as_str().unwrap().into(),
        secret: generated["client_secret"].as_str().unwrap().into(),
    };
    assert!(made.secret.starts_with("writ_sk_"));
    w.start().await;
    let legacy = Creds {
        id: "legacy-billing".into(),
        secret: secret.into(),
    };
    let r = w.token(&legacy, "scope=write").await;
    assert_eq!(r.json["scope"], "write", "{}", r.text);
    w.token(&made, "").await.access_token();
    let public = w
        .post_form(
            "/oauth/token",
            "grant_type=client_credentials&client_id=storefront&scope=market:1",
        )
        .await;
    assert_eq!(public.json["scope"], "market:1", "{}", public.text);
    let wrong = Creds {
        id: "legacy-billing".into(),
        secret: "not-it".into(),
    };
    w.token(&wrong, "")
        .await
        .assert_error(401, "invalid_client");
}

#[test]
fn a_bad_line_stops_the_import_and_is_named() {
    let w = Writ::new();
    let good =
        |i: usize| format!("{{\"client_id\": \"c{i}\", \"name\": \"n{i}\", \"public\": true}}\n");
    let count = || {
        w.cli(&["client", "list", "--limit", "10000"])
            .as_array()
            .unwrap()
            .len()
    };

    // Line 4 is broken: lines 1–3 go in, nothing from line 4 on.
    let text = format!(
        "{}{}{}{{\"name\": }}\n{}",
        good(1),
        good(2),
        good(3),
        good(5)
    );
    let out = import(&w, &text);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 4:") && err.contains("3 clients imported"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(count(), 3);

    // Resuming with a line for an id that exists already: refused, named.
    let out = import(&w, &format!("{}{}", good(6), good(2)));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2:") && err.contains("'c2' already exists"),
        "{err}"
    );
    assert_eq!(count(), 4, "the line before it went in");

    // Twice in one file; a public client with a secret; an unknown field.
    for (text, says) in [
        (format!("{}{}", good(7), good(7)), "appears twice"),
        (
            "{\"name\": \"p\", \"public\": true, \"client_secret\": \"abcdefgh\"}\n".into(),
            "public client has no client_secret",
        ),
        (
            "{\"name\": \"x\", \"colour\": \"red\"}\n".into(),
            "unknown field",
        ),
        (
            "{\"name\": \"x\", \"client_id\": \"has space\"}\n".into(),
            "visible ASCII",
        ),
    ] {
        let out = import(&w, &text);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{says}: {err}");
    }
    assert_eq!(count(), 5, "c7 (line 1) went in before its twin");
}

#[test]
fn import_reads_standard_input() {
    let w = Writ::new();
    w.cli(&["init"]);
    let mut child = writ_command()
        .args([
            "client",
            "import",
            "-",
            "--json",
            "--database",
            &w.database(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: String = (0..2500)
        .map(|i| format!("{{\"client_id\": \"s{i}\", \"name\": \"svc {i}\", \"public\": true}}\n"))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"imported":2500}"#
    );
}

#[test]
fn client_list_pages_by_a_stable_cursor() {
    let w = Writ::new();
    let lines: String = (0..7)
        .map(|i| {
            let name = if i % 2 == 0 { "shop" } else { "billing" };
            format!("{{\"client_id\": \"c{i}\", \"name\": \"{name} {i}\", \"public\": true}}\n")
        })
        .collect();
    assert!(import(&w, &lines).status.success());
    let page = |after: Option<&str>, prefix: Option<&str>| -> Vec<String> {
        let mut args = vec!["client", "list", "--limit", "3"];
        if let Some(a) = after {
            args.extend(["--after", a]);
        }
        if let Some(p) = prefix {
            args.extend(["--name-prefix", p]);
        }
        w.cli(&args)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // A walk sees every client exactly once, also while clients are added.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let ids = page(after.as_deref(), None);
        if seen.is_empty() {
            w.client(&["--name", "added during the walk"]);
        }
        if ids.is_empty() {
            break;
        }
        after = ids.last().cloned();
        seen.extend(ids);
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{seen:?}");
    assert_eq!(page(None, Some("shop")), ["c0", "c2", "c4"]);
    assert_eq!(page(Some("c4"), Some("shop")), ["c6"]);
    let out = run_writ(writ_command().args([
        "client",
        "list",
        "--limit",
        "0",
        "--database",
        &w.database(),
    ]));
    assert!(!out.status.success());
}
