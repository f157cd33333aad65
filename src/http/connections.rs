//! Caps on open connections, in all and from one address: past either, a
//! new connection is closed at once, before any byte of it is read. An open
//! connection on which nothing moves for a while is closed, so that its
//! slots come back.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// A TLS handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections, plain or TLS (one path for both), while fewer than
/// the caps are open.
#[derive(Clone)]
pub struct Acceptor {
    tls: Option<RustlsConfig>,
    permits: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
    idle_timeout: Duration,
}

/// Open connections by peer address, so that one host cannot hold every
/// slot. A trusted proxy carries many clients' connections: it is exempt.
pub struct PerAddress {
    max: usize,
    exempt: Vec<ipnet::IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    pub fn new(max: usize, exempt: Vec<ipnet::IpNet>) -> Self {
        Self {
            max,
            exempt,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for `ip`, given back when the returned guard drops; `None`
    /// when the address already holds its share.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            return Some(AddressSlot { table: None, ip });
        }
        let mut open = self.open.lock().expect("not poisoned");
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: Some(self.clone()),
            ip,
        })
    }
}

/// One connection's place in its address's count.
pub struct AddressSlot {
    table: Option<Arc<PerAddress>>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(table) = &self.table else { return };
        let mut open = table.open.lock().expect("not poisoned");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Acceptor {
    /// `tls`: serve HTTPS with the configuration as it is at each
    /// handshake (it is reloaded on renewal); `None`: plain HTTP. A
    /// connection on which no byte is read or written for `idle_timeout`
    /// is closed.
    pub fn new(
        tls: Option<RustlsConfig>,
        permits: Arc<Semaphore>,
        per_address: Arc<PerAddress>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            tls,
            permits,
            per_address,
            idle_timeout,
        }
    }
}

impl<S> Accept<TcpStream, S> for Acceptor
where
    S: Send + 'static,
{
    type Stream = Counted<Either<TcpStream, TlsStream<TcpStream>>>;
    type Service = S;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let refuse = |stream, service, why| -> Self::Future {
            metrics::counter!("writ_connections_refused_total").increment(1);
            drop((stream, service));
            Box::pin(async move { Err(io::Error::other(why)) })
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return refuse(stream, service, "connection limit reached");
        };
        let slot = match stream.peer_addr() {
            Ok(peer) => self.per_address.take(peer.ip().to_canonical()),
            Err(_) => None,
        };
        let Some(slot) = slot else {
            return refuse(stream, service, "connection limit of the address reached");
        };
        let idle_timeout = self.idle_timeout;
        let counted = move |inner| Counted {
            inner,
            idle: Idle::new(idle_timeout),
            _permit: permit,
            _slot: slot,
        };
        match &self.tls {
            None => Box::pin(async move { Ok((counted(Either::Left(stream)), service)) }),
            Some(tls) => {
                let handshake = TlsAcceptor::from(tls.get_inner()).accept(stream);
                Box::pin(async move {
                    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                        .await
                        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))??;
                    Ok((counted(Either::Right(stream)), service))
                })
            }
        }
    }
}

/// A connection that gives its slots back when it closes, and fails with
/// `TimedOut` once no byte has been read or written on it for its idle
/// timeout (or up to a quarter more: see `Idle`).
///
/// hyper closes an HTTP/1 connection that is silent between requests (its
/// header timeout), but has no idle timeout for HTTP/2: without this, an
/// HTTP/2 connection left open after one request would keep its slots for
/// good. Server PINGs would not help: a client that answers them would look
/// busy. Cutting at the byte level covers both protocols, plain or TLS (the
/// bytes counted are the decrypted ones); frames that carry no request,
/// such as a client's own PINGs, do count as activity. A request in
/// progress is not cut: Writ answers within a few seconds (the store gives
/// up waiting for a database connection after 3 s), well inside
/// `request_timeout`.
pub struct Counted<T> {
    inner: T,
    idle: Idle,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
}

/// How many timer ticks make up the idle timeout.
const TICKS: u8 = 4;

/// The idle deadline, kept without reading the clock for each read and
/// write (two clock reads a request, on the hottest path): a byte moved
/// only sets a flag. The timer fires every `timeout / TICKS`; a tick that
/// finds the flag set clears it and starts counting again, and the
/// `TICKS`th tick in a row that finds it clear cuts the connection. So a
/// connection is cut between one and 1 + 1/`TICKS` timeouts after its last
/// byte, never sooner.
struct Idle {
    tick: Duration,
    /// A byte was read or written since the last tick.
    moved: bool,
    /// Ticks in a row that found nothing moved.
    silent: u8,
    // Boxed once per connection so that `Counted` stays `Unpin`.
    timer: Pin<Box<Sleep>>,
}

impl Idle {
    fn new(timeout: Duration) -> Self {
        let tick = timeout / u32::from(TICKS);
        Self {
            tick,
            moved: false,
            silent: 0,
            timer: Box::pin(tokio::time::sleep(tick)),
        }
    }

    fn active(&mut self) {
        self.moved = true;
    }

    /// Ready with an error once the connection has been idle too long;
    /// otherwise Pending, with `cx` woken at the next tick.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.timer.as_mut().poll(cx).is_ready() {
            if std::mem::take(&mut self.moved) {
                self.silent = 0;
            } else {
                self.silent += 1;
                if self.silent >= TICKS {
                    return Poll::Ready(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for too long",
                    ));
                }
            }
            // From now, not from the deadline: a tick observed late still
            // stands for one tick's time.
            self.timer.as_mut().reset(Instant::now() + self.tick);
        }
        Poll::Pending
    }

    /// `poll` as it is, unless it is Pending past the deadline.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => self.poll_expired(cx).map(Err),
            ready => ready,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            this.idle.active();
        }
        this.idle.check(cx, poll)
    }
}

// A write that stays Pending (a client that does not read its answers) is
// bounded by the same deadline.
impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            if n > 0 {
                this.idle.active();
            }
        }
        this.idle.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            if n > 0 {
                this.idle.active();
            }
        }
        this.idle.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.idle.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connection_is_cut_only_once_idle() {
        let timeout = Duration::from_millis(300);
        let (mut client, server) = tokio::io::duplex(64);
        let mut counted = Counted {
            inner: server,
            idle: Idle::new(timeout),
            _permit: Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
            _slot: AddressSlot {
                table: None,
                ip: IpAddr::from([127, 0, 0, 1]),
            },
        };
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let mut got = 0;
            loop {
                match counted.read(&mut buf).await {
                    Ok(n) => got += n,
                    Err(e) => return (got, e.kind(), Instant::now()),
                }
            }
        });
        // A byte every 100 ms keeps it open past its first deadline…
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.write_all(b"x").await.unwrap();
        }
        let quiet = Instant::now();
        // …and silence closes it.
        let (got, kind, at) = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("cut within the bound")
            .unwrap();
        assert_eq!((got, kind), (6, io::ErrorKind::TimedOut));
        // Never before the timeout; within a tick after it (and slack for
        // a busy machine).
        assert!(
            at >= quiet + timeout - Duration::from_millis(20),
            "{:?}",
            at - quiet
        );
        assert!(
            at < quiet + timeout + timeout / u32::from(TICKS) + Duration::from_millis(150),
            "{:?}",
            at - quiet
        );
    }
}
