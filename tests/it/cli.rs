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
    assert!(text.contains("name:") && text.contains(" a"), "{text}");
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
