//! The management CLI, run as a real process against a real database.

use crate::harness::{run_writ, writ_command, Writ};

#[test]
fn client_lifecycle_and_secret_shown_once() {
    let w = Writ::new();
    let created = w.cli(&[
        "client",
        "create",
        "--name",
        "billing",
        "--scope",
        "market:* read",
        "--default-scope",
        "market:all",
        "--lifetime",
        "900",
    ]);
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("writ_sk_"));
    assert_eq!(created["scope"], "market:* read");
    assert_eq!(created["default_scope"], "market:all");
    assert_eq!(created["lifetime"], 900);

    let list = w.cli(&["client", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["client_id"], id);

    let show = w.cli_raw(&["client", "show", id], true);
    let text = String::from_utf8(show.stdout).unwrap();
    assert!(!text.contains(secret), "secret must never be shown again");
    let show: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(show["name"], "billing");
    assert_eq!(show["secrets"].as_array().unwrap().len(), 1);
    assert!(show["secrets"][0].get("hash").is_none());

    assert_eq!(w.cli(&["client", "disable", id])["enabled"], false);
    assert_eq!(w.cli(&["client", "show", id])["enabled"], false);
    assert_eq!(w.cli(&["client", "enable", id])["enabled"], true);

    let rotated = w.cli(&["client", "rotate-secret", id]);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(new_secret.starts_with("writ_sk_"));

    w.cli(&["client", "delete", id]);
    assert_eq!(w.cli(&["client", "list"]), serde_json::json!([]));

    // The database holds no secret in plain text.
    let raw = std::fs::read(w.db_path()).unwrap();
    let contains = |needle: &str| {
        raw.windows(needle.len())
            .any(|win| win == needle.as_bytes())
    };
    assert!(!contains(secret) && !contains(new_secret));
}

#[test]
fn public_client_has_no_secret() {
    let w = Writ::new();
    let created = w.cli(&["client", "create", "--name", "storefront", "--public"]);
    assert!(created.get("client_secret").is_none());
    assert_eq!(created["public"], true);
    let err = w.cli_err(&[
        "client",
        "rotate-secret",
        created["client_id"].as_str().unwrap(),
    ]);
    assert!(err.contains("public"), "{err}");
}

#[test]
fn global_flags_go_before_or_after_the_subcommand() {
    let w = Writ::new();
    w.cli(&["init"]);
    let db = w.database();
    let out = run_writ(writ_command().args([
        "--json",
        "--database",
        &db,
        "client",
        "create",
        "--name",
        "a",
    ]));
    assert!(out.status.success());
    let out = run_writ(writ_command().args(["client", "list", "--database", &db, "--json"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Without --json: human-readable lines.
    let out = run_writ(writ_command().args(["client", "list", "--database", &db]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("CLIENT_ID") && text.contains("NAME") && text.contains(" a "),
        "{text}"
    );
    // The database can also come from the environment.
    let out = run_writ(
        writ_command()
            .args(["client", "list", "--json"])
            .env("WRIT_DATABASE_URL", &db),
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let w = Writ::new();
    let one_line = |err: &str| {
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    };
    let err = w.cli_err(&["client", "show", "nope"]);
    one_line(&err);
    assert!(err.contains("no client 'nope'"));
    one_line(&w.cli_err(&["client", "disable", "nope"]));

    w.cli(&["api", "create", "--identifier", "https://api.example/"]);
    let err = w.cli_err(&["api", "create", "--identifier", "https://api.example/"]);
    one_line(&err);
    assert!(err.contains("already exists"), "{err}");

    let err = w.cli_err(&["client", "create", "--name", "x", "--scope", "a*b"]);
    one_line(&err);
    assert!(err.contains("malformed scope 'a*b'"), "{err}");
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--scope",
        "a",
        "--default-scope",
        "b",
    ]);
    one_line(&err);
    let err = w.cli_err(&["api", "create", "--identifier", "not a uri"]);
    one_line(&err);
    let err = w.cli_err(&["api", "create", "--identifier", "https://a/#frag"]);
    one_line(&err);
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--grant-types",
        "password",
    ]);
    one_line(&err);

    let c = w.cli(&["client", "create", "--name", "c"]);
    let id = c["client_id"].as_str().unwrap();
    let err = w.cli_err(&[
        "grant",
        "create",
        "--client",
        id,
        "--api",
        "https://api.example/",
        "--scope",
        "admin",
    ]);
    one_line(&err);
    assert!(err.contains("defines no scope 'admin'"), "{err}");
    one_line(&w.cli_err(&[
        "grant",
        "create",
        "--client",
        id,
        "--api",
        "https://none/",
        "--scope",
        "",
    ]));

    // Database unreachable: a folder that does not exist.
    let out = run_writ(writ_command().args([
        "client",
        "list",
        "--database",
        "sqlite:///nonexistent-writ-dir/x/writ.db",
    ]));
    assert!(!out.status.success());
    one_line(&String::from_utf8(out.stderr).unwrap());
}

#[test]
fn config_file_unknown_key_is_named() {
    let w = Writ::new();
    let path = w.dir.path().join("writ.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\ntoken_lifetme = 5\n").unwrap();
    let out = run_writ(
        writ_command()
            .args(["client", "list", "--config"])
            .arg(&path)
            .arg("--database")
            .arg(w.database()),
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("token_lifetme"), "{err}");
}

#[test]
fn grants_and_apis_round_trip() {
    let w = Writ::new();
    let api = w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://orders/",
        "--name",
        "Orders",
        "--scope",
        "read:orders write:orders",
        "--lifetime",
        "60",
        "--max-lifetime",
        "120",
        "--algorithm",
        "EdDSA",
    ]);
    assert_eq!(api["algorithm"], "EdDSA");
    assert_eq!(w.cli(&["api", "show", "https://orders/"])["name"], "Orders");
    let c = w.cli(&["client", "create", "--name", "c"]);
    let id = c["client_id"].as_str().unwrap();
    w.cli(&[
        "grant",
        "create",
        "--client",
        id,
        "--api",
        "https://orders/",
        "--scope",
        "read:orders",
    ]);
    let grants = w.cli(&["grant", "list", "--client", id]);
    assert_eq!(grants[0]["scopes"], serde_json::json!(["read:orders"]));
    let err = w.cli_err(&[
        "grant",
        "create",
        "--client",
        id,
        "--api",
        "https://orders/",
        "--scope",
        "read:orders",
    ]);
    assert!(err.contains("already has a grant"), "{err}");
    w.cli(&[
        "grant",
        "delete",
        "--client",
        id,
        "--api",
        "https://orders/",
    ]);
    assert_eq!(w.cli(&["grant", "list"]), serde_json::json!([]));
    // An EdDSA key was made for the API, beside the default ES256 one.
    let keys = w.cli(&["key", "list"]);
    let mut algs: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    algs.sort();
    assert!(algs.contains(&"EdDSA"), "{keys}");
    w.cli(&["api", "delete", "https://orders/"]);
    w.cli_err(&["api", "show", "https://orders/"]);
}

#[test]
fn master_key_is_never_shown_in_help() {
    let key = crate::pg::MASTER_KEY;
    for args in [
        &["--help"][..],
        &["client", "list", "--help"],
        &["serve", "--help"],
    ] {
        let out = writ_command()
            .args(args)
            .env("WRIT_MASTER_KEY", key)
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(!help.contains(key), "{args:?}: {help}");
        assert!(!help.contains("WRIT_MASTER_KEY"), "{args:?}: {help}");
    }
}

/// Runs `writ ARGS` (no `--json`) on `w`'s database; returns (exit code, stdout, stderr).
fn plain(w: &Writ, args: &[&str]) -> (i32, String, String) {
    let out = w.cli_raw(args, false);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_are_one_line_and_serve_offers_no_json() {
    let w = Writ::new();
    for args in [
        &["client", "create", "--name", "x", "--lifetime", "banana"][..],
        &["client", "create"],
        &["client", "frobnicate"],
        &["--bogus"],
    ] {
        let (code, _, err) = plain(&w, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    let (_, _, err) = plain(
        &w,
        &["client", "create", "--name", "x", "--lifetime", "banana"],
    );
    assert!(
        err.contains("banana") && err.contains("--lifetime"),
        "{err}"
    );
    let (_, _, err) = plain(&w, &["client", "create"]);
    assert!(
        err.contains("--name"),
        "the missing argument is named: {err}"
    );

    let help = run_writ(writ_command().args(["serve", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--listen") && !help.contains("--json"),
        "{help}"
    );
    let out = run_writ(writ_command().args(["serve", "--json", "--database", &w.database()]));
    assert!(!out.status.success());
}

#[test]
fn help_texts_say_what_each_input_is() {
    for (args, expected) in [
        (&["client", "create", "--help"][..], "A name for people"),
        (&["grant", "create", "--help"], "The client's id"),
        (&["grant", "create", "--help"], "The API's identifier"),
        (&["grant", "--help"], "List grants"),
        (&["grant", "--help"], "Take a grant away"),
        (&["key", "--help"], "List signing keys"),
        (&["client", "list", "--help"], "postgres://"),
    ] {
        let out = run_writ(writ_command().args(args));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(expected),
            "{args:?} lacks {expected:?}: {help}"
        );
    }
}

#[test]
fn clients_and_apis_can_be_changed_after_creation() {
    let w = Writ::new();
    let c = w.client(&["--scope", "read write", "--default-scope", "read"]);
    let changed = w.cli(&[
        "client",
        "update",
        &c.id,
        "--name",
        "renamed",
        "--scope",
        "read write admin",
        "--default-scope",
        "read write",
        "--lifetime",
        "600",
        "--grant-types",
        "client_credentials",
    ]);
    assert_eq!(changed["name"], "renamed");
    assert_eq!(changed["scope"], "read write admin");
    assert_eq!(changed["default_scope"], "read write");
    assert_eq!(changed["lifetime"], 600);
    assert_eq!(w.cli(&["client", "show", &c.id])["name"], "renamed");
    // The default scope must stay within the allowed scopes: refused, and
    // nothing changed.
    let err = w.cli_err(&["client", "update", &c.id, "--scope", "admin"]);
    assert!(err.contains("default scope 'read' is not among"), "{err}");
    assert_eq!(
        w.cli(&["client", "show", &c.id])["scope"],
        "read write admin"
    );
    let cleared = w.cli(&["client", "update", &c.id, "--default-scope", ""]);
    assert_eq!(cleared["default_scope"], serde_json::Value::Null);
    let err = w.cli_err(&["client", "update", &c.id, "--grant-types", "password"]);
    assert!(err.contains("unknown grant type"), "{err}");

    // An API: scopes a grant names must stay; lifetimes within the longest;
    // a new algorithm gets its keys at once.
    w.cli(&[
        "api",
        "create",
        "--identifier",
        "https://orders/",
        "--scope",
        "read:o write:o",
    ]);
    w.grant(&c, "https://orders/", "read:o");
    let err = w.cli_err(&["api", "update", "https://orders/", "--scope", "write:o"]);
    assert!(err.contains("'read:o' is granted to client"), "{err}");
    let api = w.cli(&[
        "api",
        "update",
        "https://orders/",
        "--scope",
        "read:o admin:o",
        "--name",
        "Orders",
        "--max-lifetime",
        "900",
        "--lifetime",
        "300",
        "--algorithm",
        "EdDSA",
    ]);
    assert_eq!(
        (
            api["name"].clone(),
            api["scopes"].clone(),
            api["algorithm"].clone()
        ),
        (
            "Orders".into(),
            serde_json::json!(["read:o", "admin:o"]),
            "EdDSA".into()
        )
    );
    let err = w.cli_err(&["api", "update", "https://orders/", "--lifetime", "901"]);
    assert!(
        err.contains("--lifetime must not exceed --max-lifetime"),
        "{err}"
    );
    let keys = w.cli(&["key", "list"]);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["algorithm"] == "EdDSA"),
        "{keys}"
    );
}

#[test]
fn lookups_of_missing_clients_say_so_and_durations_read_well() {
    let w = Writ::new();
    let err = w.cli_err(&["grant", "list", "--client", "nosuch"]);
    assert!(err.contains("no client 'nosuch'"), "{err}");
    let err = w.cli_err(&["client", "revoke-secret", "nosuch", "1"]);
    assert!(err.contains("no client 'nosuch'"), "{err}");

    let c = w.client(&[]);
    let (code, _, err) = plain(&w, &["client", "rotate-secret", &c.id]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keeps working for 24h"), "{err}");
    crate::harness::transcript::secrets_in(&err);
}

#[test]
fn revoking_the_last_secret_warns() {
    let w = Writ::new();
    let c = w.client(&[]);
    let secret_id = w.cli(&["client", "show", &c.id])["secrets"][0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let out = w.cli_raw(&["client", "revoke-secret", &c.id, &secret_id], true);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no secret left"), "{err}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["secrets_left"], 0);
}

#[test]
fn a_key_published_moments_ago_is_activated_only_with_force() {
    let w = Writ::new();
    w.cli(&["api", "create", "--identifier", "https://a/"]);
    let err = w.cli_err(&["key", "rotate"]);
    assert!(
        err.contains("published") && err.contains("--force"),
        "{err}"
    );
    let before = w.cli(&["key", "list"]);
    let activated = w.cli(&["key", "rotate", "--force"])["activated"].clone();
    assert_eq!(activated.as_array().unwrap().len(), 1, "{activated}");
    assert_ne!(before, w.cli(&["key", "list"]));
}

#[test]
fn bounds_on_lifetimes_and_overlaps() {
    let w = Writ::new();
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--lifetime",
        "99999999999999",
    ]);
    assert!(err.contains("--lifetime must be at most"), "{err}");
    let c = w.client(&[]);
    let err = w.cli_err(&["client", "rotate-secret", &c.id, "--overlap", "100000d"]);
    assert!(err.contains("--overlap must be at most"), "{err}");
    let err = w.cli_err(&[
        "api",
        "create",
        "--identifier",
        "https://a/",
        "--max-lifetime",
        "99999999999",
    ]);
    assert!(err.contains("--max-lifetime must be at most"), "{err}");
}

#[test]
fn rfc7662_2_1_public_clients_cannot_introspect() {
    let w = Writ::new();
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--public",
        "--scope",
        "writ:introspect",
    ]);
    assert!(
        err.contains("public client cannot hold 'writ:introspect'"),
        "{err}"
    );
    let p = w.client(&["--public", "--scope", "read"]);
    let err = w.cli_err(&["client", "update", &p.id, "--scope", "read writ:introspect"]);
    assert!(err.contains("public client cannot hold"), "{err}");
}

#[test]
fn audit_events_name_the_operator_without_user() {
    let w = Writ::new();
    w.cli(&["init"]);
    let out = run_writ(
        writ_command()
            .args([
                "client",
                "create",
                "--name",
                "x",
                "--json",
                "--database",
                &w.database(),
            ])
            .env_remove("USER")
            .env_remove("LOGNAME"),
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("client.created") && err.contains("uid:"),
        "{err}"
    );
    assert!(!err.contains("unknown"), "{err}");
}

#[test]
fn client_list_is_one_line_per_client_and_show_has_secret_rows() {
    let w = Writ::new();
    let ids: Vec<String> = (0..3).map(|_| w.client(&["--scope", "read"]).id).collect();
    let (code, out, _) = plain(&w, &["client", "list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "a header and one line each: {out}");
    assert!(
        lines[0].starts_with("CLIENT_ID") && lines[0].contains("STATE"),
        "{out}"
    );
    for id in &ids {
        let line = lines.iter().find(|l| l.starts_with(id.as_str())).unwrap();
        assert!(line.contains("enabled") && line.ends_with("read"), "{line}");
    }
    let (_, out, _) = plain(&w, &["client", "show", &ids[0]]);
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("id 1"))
        .unwrap();
    assert!(
        row.contains("created 20") && row.contains("last used -"),
        "{out}"
    );
}

#[test]
fn only_serve_and_init_create_a_database() {
    let w = Writ::new();
    let typo = w.dir.path().join("typo.db");
    let url = format!("sqlite://{}", typo.display());
    for args in [
        &["client", "list"][..],
        &["client", "create", "--name", "x"],
        &["key", "list"],
    ] {
        let out = run_writ(writ_command().args(args).args(["--database", &url]));
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("no database at {}", typo.display())),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    assert!(!typo.exists(), "no database was made");
    assert!(!w.dir.path().join("typo.db.key").exists(), "nor a key");
    for _ in 0..2 {
        let out = run_writ(writ_command().args(["init", "--json", "--database", &url]));
        assert!(out.status.success(), "{out:?}");
    }
    let out = run_writ(writ_command().args(["client", "list", "--json", "--database", &url]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}
