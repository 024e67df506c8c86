//! The accept loop both services use: a connection limit, a header-read timeout that also ends
//! idle keep-alive connections, the peer address on every request, and graceful shutdown.
//!
//! Connection limit: a semaphore permit is taken before `accept`, so at the limit new clients
//! wait in the kernel's backlog (which costs this process no file descriptor) instead of being
//! half-served. The permit travels in the request's extensions ([`ConnectionPermit`]), so a
//! connection upgraded to a WebSocket keeps it for its whole life.
//!
//! Timeouts: hyper starts the header-read timer whenever the connection waits for a request head,
//! on a new connection and again after every response. A client that sends nothing, sends its
//! head slowly, or keeps a connection open between requests longer than the timeout is closed;
//! without it, 1,050 silent connections to the booking API stayed open for good.
//!
//! Shutdown: when the token is cancelled the accept loop stops and open HTTP connections finish
//! their request; the [`TaskTracker`] lets the caller wait for them.

use axum::http::Extensions;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How many connections, and how long a connection may take to send a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most simultaneous connections before new ones wait in the backlog.
    pub max_connections: usize,
    /// Time to receive a complete request head, counted from when the connection starts
    /// waiting for one (so it is the keep-alive idle timeout too).
    pub header_read_timeout: Duration,
}

/// A connection-limit permit, carried by requests so an upgraded socket can keep it.
#[derive(Debug, Clone)]
pub struct ConnectionPermit(pub Arc<OwnedSemaphorePermit>);

/// The TCP peer of the connection a request came on (in every request's extensions; read it
/// with [`PeerAddr::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl PeerAddr {
    /// The peer of a request served by [`serve`] (`None` for a request built in a test).
    pub fn of(extensions: &Extensions) -> Option<SocketAddr> {
        extensions.get::<PeerAddr>().map(|p| p.0)
    }
}

/// Turns an accepted TCP stream into the stream HTTP is served on (plain, or after a TLS
/// handshake), with extensions every request on it carries. `None` drops the connection.
pub trait Handshake: Clone + Send + Sync + 'static {
    /// The stream served.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Runs the handshake.
    fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = Option<(Self::Io, Extensions)>> + Send;
}

/// Plain TCP: no handshake.
#[derive(Debug, Clone, Copy)]
pub struct PlainTcp;

impl Handshake for PlainTcp {
    type Io = TcpStream;
    async fn handshake(&self, stream: TcpStream, _peer: SocketAddr) -> Option<(TcpStream, Extensions)> {
        Some((stream, Extensions::new()))
    }
}

/// Accepts connections until `shutdown` is cancelled.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    router: Router,
    handshake: H,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let limit = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => Arc::new(p), Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning on a full descriptor table.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (router, handshake, shutdown) = (router.clone(), handshake.clone(), shutdown.clone());
        tracker.spawn(async move {
            let Some((io, mut extensions)) = handshake.handshake(stream, peer).await else {
                return;
            };
            extensions.insert(PeerAddr(peer));
            extensions.insert(ConnectionPermit(permit));
            serve_connection(TokioIo::new(io), router, extensions, limits, shutdown).await;
        });
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    router: Router,
    extensions: Extensions,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().extend(extensions.clone());
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Raises this process's open-file soft limit to its hard limit (a no-op where it already is,
/// or off Unix), so the connection limits, not the descriptor table, decide who waits. Returns
/// the soft limit in effect.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_connection_is_closed_and_frees_its_place_for_the_next() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = Router::new().route(
            "/peer",
            get(|ext: Extensions| async move { PeerAddr::of(&ext).map(|a| a.ip().to_string()).unwrap_or_default() }),
        );
        let limits = ConnectionLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(1),
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            router,
            PlainTcp,
            limits,
            shutdown.clone(),
            TaskTracker::new(),
        ));

        // A takes the only place and sends nothing.
        let started = std::time::Instant::now();
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        // B's connection completes in the kernel's backlog; its request waits for A's place.
        let mut waiting = TcpStream::connect(addr).await.expect("connect");
        waiting
            .write_all(b"GET /peer HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let answered = tokio::spawn(async move {
            let mut response = String::new();
            waiting.read_to_string(&mut response).await.expect("read");
            (started.elapsed(), response)
        });
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf))
            .await
            .expect("the silent connection is closed by the header timeout")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        let (answered_at, response) = tokio::time::timeout(Duration::from_secs(30), answered)
            .await
            .expect("B is served once A's place is free")
            .expect("task");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("127.0.0.1"), "the handler sees the peer: {response}");
        // A lower bound only (a loaded machine makes it later, never earlier): B could not be
        // served before A's header timeout freed the one place.
        assert!(
            answered_at >= Duration::from_millis(950),
            "B was served only after A's header timeout: {answered_at:?}"
        );
        shutdown.cancel();
        server.await.expect("server");
    }
}
