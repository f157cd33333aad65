//! `writ serve` as a process: SIGHUP, and a start that fails before it
//! writes anything.

use std::time::Duration;

use crate::harness::{blocking, eventually, run_writ, writ_command, Writ};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tls_files_stop_a_start_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("writ.db");
    let out = run_writ(writ_command().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &format!("sqlite://{}", db.display()),
        "--tls-cert",
        &dir.path().join("missing-cert.pem").display().to_string(),
        "--tls-key",
        &dir.path().join("missing-key.pem").display().to_string(),
    ]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "created before failing: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_keeps_serving() {
    let w = Writ::new();
    let (tls, pem) = crate::harness::certificate(w.dir.path());
    let (cert, key) = (
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    let mut node = w.spawn(&["--tls-cert", &cert, "--tls-key", &key], &[]);
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = node.base.clone();
    let healthy = || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    };
    assert!(healthy().await);
    for _ in 0..2 {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &node.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "SIGHUP ended the server"
        );
        assert!(healthy().await);
    }
    eventually(Duration::from_secs(3), || async {
        node.output().matches("SIGHUP").count() >= 2
    })
    .await;
    let log = node.output();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    blocking(|| node.terminate());
}
