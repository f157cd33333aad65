//! What the whole test run saw, for `tests/scan-logs` to check once it is
//! over: everything Writ printed to its logs (servers and CLI runs), and
//! every secret and token it handed out. One pair of files per test process.

use std::io::Write;
use std::path::PathBuf;

fn append(kind: &str, text: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transcripts");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.{kind}", std::process::id())))
    {
        let _ = writeln!(f, "{text}");
    }
}

/// Lines Writ logged.
pub fn log(text: &str) {
    if !text.is_empty() {
        append("log", text);
    }
}

/// A secret or token that must never appear in a log.
pub fn secret(value: &str) {
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        append("secrets", line);
    }
}

/// Every `writ_sk_…` secret in a CLI's printed output.
pub fn secrets_in(output: &str) {
    for (i, _) in output.match_indices("writ_sk_") {
        let found: String = output[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        secret(&found);
    }
}

/// The access token in a JSON answer, if it has one.
pub fn token_in(answer: &serde_json::Value) {
    if let Some(token) = answer["access_token"].as_str() {
        secret(token);
    }
}
