//! A cap on open connections: past it, a new connection is closed at once,
//! before any byte of it is read.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
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
/// the cap are open.
#[derive(Clone)]
pub struct Acceptor {
    tls: Option<RustlsConfig>,
    permits: Arc<Semaphore>,
}

impl Acceptor {
    /// `tls`: serve HTTPS with the configuration as it is at each
    /// handshake (it is reloaded on renewal); `None`: plain HTTP.
    pub fn new(tls: Option<RustlsConfig>, permits: Arc<Semaphore>) -> Self {
        Self { tls, permits }
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
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            metrics::counter!("writ_connections_refused_total").increment(1);
            drop((stream, service));
            return Box::pin(async { Err(io::Error::other("connection limit reached")) });
        };
        let counted = |inner| Counted {
            inner,
            _permit: permit,
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

/// A connection that gives its slot back when it closes.
pub struct Counted<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
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
