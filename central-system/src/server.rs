//! The listener: accepts TCP connections (optionally TLS), limits how many are open, and serves
//! HTTP/1.1 with upgrades, so OCPP WebSockets and the REST API share one port.
//!
//! Connection limit: a semaphore permit is taken before `accept`, so at the limit new chargers
//! wait in the kernel's backlog instead of being half-served; an upgraded WebSocket keeps its
//! permit for its whole life (it travels in the request's extensions into the session).
//!
//! Shutdown: when the token is cancelled the accept loop stops, idle HTTP connections finish
//! gracefully, and sessions close their sockets with 1001; the [`TaskTracker`] lets the caller
//! wait for all of them.

use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Who the TLS client certificate says the peer is (security profile 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common name of the client certificate.
    pub common_name: Option<String>,
}

/// The TCP peer's address (limits on unknown stations count attempts per address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// A connection-limit permit, carried by requests so an upgraded socket can keep it.
#[derive(Debug, Clone)]
pub struct ConnectionPermit(pub Arc<OwnedSemaphorePermit>);

/// Accepts connections until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let limit = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => Arc::new(p), Err(_) => break },
        };
        let (stream, addr) = tokio::select! {
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
        let router = router.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(stream), router, None, addr, permit, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let identity = PeerIdentity {
                            common_name: client_common_name(&tls_stream),
                        };
                        serve_connection(TokioIo::new(tls_stream), router, Some(identity), addr, permit, shutdown)
                            .await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(peer = %addr, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::info!(peer = %addr, "TLS handshake timed out"),
                },
            }
        });
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    router: Router,
    identity: Option<PeerIdentity>,
    addr: std::net::SocketAddr,
    permit: Arc<OwnedSemaphorePermit>,
    shutdown: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if let Some(identity) = &identity {
            req.extensions_mut().insert(identity.clone());
        }
        req.extensions_mut().insert(ConnectionPermit(permit.clone()));
        req.extensions_mut().insert(ClientAddr(addr));
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
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

fn client_common_name<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> Option<String> {
    let der = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}
