//! `writ serve` as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{transcript, writ_command, Remote};

/// `writ serve` as a child process; killed on drop.
pub struct Process {
    pub child: Child,
    pub base: String,
    pub log: Vec<String>,
    /// Everything the server printed after start-up.
    pub rest: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// All the server printed so far, start-up included.
    pub fn output(&self) -> String {
        let mut all = self.log.join("");
        for line in self.rest.lock().unwrap().iter() {
            all.push_str(line);
            all.push('\n');
        }
        all
    }

    pub fn spawn_on(database: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_command(writ_command(), database, extra, env)
    }

    /// `writ serve` started by `launcher`: the writ binary itself, or a
    /// command that runs it (with limits, say).
    pub fn spawn_command(
        mut launcher: Command,
        database: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = launcher
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut log = Vec::new();
        let mut base = None;
        // Read until the start-up lines are out (bounded: the process ends
        // the stream if it fails to start).
        for _ in 0..50 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            // Text or JSON logs: look at the message either way.
            let message = if line.starts_with('{') {
                serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v["fields"]["message"].as_str().map(str::to_owned))
            } else {
                None
            }
            .unwrap_or_else(|| line.clone());
            if let Some(rest) = message.split("listening on ").nth(1) {
                base = Some(rest.trim().to_owned());
            }
            let done = message.contains(" ready ") || message == "ready";
            log.push(line);
            if done {
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        let rest = Arc::new(Mutex::new(Vec::new()));
        let sink = rest.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let base = base.unwrap_or_else(|| panic!("server did not start: {log:?}"));
        Self {
            child,
            base,
            log,
            rest,
        }
    }

    /// This server, called over HTTP with Basic authentication.
    pub fn remote(&self) -> Remote {
        Remote::new(&self.base)
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "writ serve exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("writ serve did not stop on SIGTERM");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What is still in the pipe arrives once the process is gone.
        std::thread::sleep(Duration::from_millis(20));
        transcript::log(&self.output());
    }
}
