//! The listener: the shared accept loop ([`service_kit::server`]) with an optional TLS handshake,
//! so OCPP WebSockets and the REST API share one port.
//!
//! Connection limit and timeouts are service-kit's: a permit taken before `accept` (an upgraded
//! WebSocket keeps its permit for its whole life: it travels in the request's extensions into
//! the session) and a header-read timeout.
//!
//! Shutdown: when the token is cancelled the accept loop stops, idle HTTP connections finish
//! gracefully, and sessions close their sockets with 1001; the [`TaskTracker`] lets the caller
//! wait for all of them.

use axum::http::Extensions;
use axum::Router;
use service_kit::server::{ConnectionLimits, Handshake, PlainTcp};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use service_kit::server::{ConnectionPermit, PeerAddr as ClientAddr};

/// Who the TLS client certificate says the peer is (security profile 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common name of the client certificate.
    pub common_name: Option<String>,
}

/// TLS before HTTP; the client certificate's common name goes with every request.
#[derive(Clone)]
struct Tls(TlsAcceptor);

impl Handshake for Tls {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;

    async fn handshake(&self, stream: TcpStream, peer: SocketAddr) -> Option<(Self::Io, Extensions)> {
        match tokio::time::timeout(Duration::from_secs(10), self.0.accept(stream)).await {
            Ok(Ok(tls_stream)) => {
                let mut extensions = Extensions::new();
                extensions.insert(PeerIdentity {
                    common_name: client_common_name(&tls_stream),
                });
                Some((tls_stream, extensions))
            }
            Ok(Err(e)) => {
                tracing::info!(peer = %peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::info!(peer = %peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// Accepts connections until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    use service_kit::server::serve;
    match tls {
        None => serve(listener, router, PlainTcp, limits, shutdown, tracker).await,
        Some(acceptor) => serve(listener, router, Tls(acceptor), limits, shutdown, tracker).await,
    }
}

fn client_common_name<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> Option<String> {
    let der = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}
