//! Caps on open connections, in all and from one address: past either, a
//! new connection is closed at once, before any byte of it is read.

use std::collections::HashMap;
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
    /// handshake (it is reloaded on renewal); `None`: plain HTTP.
    pub fn new(
        tls: Option<RustlsConfig>,
        permits: Arc<Semaphore>,
        per_address: Arc<PerAddress>,
    ) -> Self {
        Self {
            tls,
            permits,
            per_address,
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
        let counted = |inner| Counted {
            inner,
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

/// A connection that gives its slots back when it closes.
pub struct Counted<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
