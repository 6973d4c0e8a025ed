//! The accept loop: one hyper HTTP/1 connection per socket, each with a kill switch
//! ([`ConnControl`]) so that a fault can tear the TCP connection down without an answer. Every
//! request goes to [`protocol::handle`].

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connection::ConnControl;
use crate::protocol;
use crate::state::State;

/// A TCP stream that sets `SO_LINGER=0` before closing when its connection was reset, so the
/// peer sees a RST rather than an orderly FIN.
struct ControlledStream {
    inner: TcpStream,
    control: Arc<ConnControl>,
}

impl Drop for ControlledStream {
    fn drop(&mut self) {
        if self.control.was_reset() {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ControlledStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ControlledStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
}

/// Accepts connections until `shutdown` changes; then drops every open connection.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                state.count(|s| s.connections += 1);
                let control = Arc::new(ConnControl::default());
                let io = TokioIo::new(ControlledStream { inner: stream, control: control.clone() });
                let state = state.clone();
                let service_control = control.clone();
                let service = service_fn(move |request| {
                    let (state, control) = (state.clone(), service_control.clone());
                    async move { Ok::<_, Infallible>(protocol::handle(state, control, peer, request).await) }
                });
                connections.spawn(async move {
                    let connection = http1::Builder::new().serve_connection(io, service);
                    tokio::select! {
                        result = connection => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        () = control.killed() => {
                            tracing::debug!(%peer, "connection reset by fault");
                        }
                    }
                });
            }
        }
    }
    connections.shutdown().await;
}
