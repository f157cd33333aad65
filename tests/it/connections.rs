//! Connections: ones that send nothing, or go quiet after an answer (HTTP/1
//! or HTTP/2), are closed; one address cannot hold every slot.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{eventually, send, Writ};

/// A connection to `addr` from the loopback address `source` (127.0.0.2 is
/// another host as far as the server can tell).
async fn connect_from(source: &str, addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// Reads until the server closes the connection, at most `limit`; whether it
/// closed, and what it sent.
async fn closed_within(mut s: TcpStream, limit: Duration) -> (bool, String) {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (closed, String::from_utf8_lossy(&got).into_owned())
}

/// One keep-alive `GET /healthz`; the start of the answer.
async fn healthz(s: &mut TcpStream) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_nothing_are_closed() {
    let mut w = Writ::new();
    let config = w.config_with_file("[limits]\nrequest_timeout = \"1s\"\n");
    w.start_configured(config).await;
    let addr = w.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    // Twenty connections that never send a byte, and one that goes quiet
    // after a keep-alive request.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    assert!(healthz(&mut kept).await.starts_with("HTTP/1.1 200"));
    idle.push(kept);
    let waits = idle
        .into_iter()
        .map(|s| tokio::spawn(closed_within(s, Duration::from_secs(5))));
    for wait in waits {
        let (closed, answer) = wait.await.unwrap();
        assert!(closed, "an idle connection was left open");
        assert!(!answer.contains("HTTP/1.1 4"), "{answer}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let mut w = Writ::new();
    let config = w.config_with_file(
        "[limits]\nmax_connections = 6\nmax_connections_per_address = 3\nrequest_timeout = \"30s\"\n",
    );
    w.start_configured(config).await;
    let addr = w.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", &addr).await;
        assert!(healthz(&mut s).await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // A fourth from the same address is closed at once…
    let extra = connect_from("127.0.0.1", &addr).await;
    let (closed, answer) = closed_within(extra, Duration::from_secs(2)).await;
    assert!(closed && answer.is_empty(), "{answer}");
    // …while another address still gets in.
    let mut other = connect_from("127.0.0.2", &addr).await;
    assert!(healthz(&mut other).await.starts_with("HTTP/1.1 200"));
    // A slot comes back when one of the first address's connections closes.
    drop(held.pop());
    eventually(Duration::from_secs(3), || {
        let addr = addr.clone();
        async move {
            let mut s = connect_from("127.0.0.1", &addr).await;
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await,
                Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 200")
            )
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed() {
    let mut w = Writ::new();
    let config =
        w.config_with_file("[limits]\nmax_connections_per_address = 1\nrequest_timeout = \"1s\"\n");
    w.start_configured(config).await;
    let addr = w.base.trim_start_matches("http://").to_owned();
    // One request over HTTP/2, its connection kept in the pool, and no more.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .local_address("127.0.0.1".parse::<std::net::IpAddr>().unwrap())
        .pool_idle_timeout(None)
        .build()
        .unwrap();
    let r = send(h2.get(w.url("/healthz"))).await;
    assert_eq!((r.status, r.version), (200, reqwest::Version::HTTP_2));
    let quiet = Instant::now();
    // While it is open it holds the address's only slot…
    let extra = connect_from("127.0.0.1", &addr).await;
    let (closed, answer) = closed_within(extra, Duration::from_secs(2)).await;
    assert!(closed && answer.is_empty(), "{answer}");
    // …until the server closes it for being idle.
    eventually(Duration::from_secs(5), || {
        let addr = addr.clone();
        async move {
            let mut s = connect_from("127.0.0.1", &addr).await;
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await,
                Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 200")
            )
        }
    })
    .await;
    assert!(
        quiet.elapsed() >= Duration::from_millis(900),
        "freed after {:?}, before the idle timeout",
        quiet.elapsed()
    );
    drop(h2);
}
