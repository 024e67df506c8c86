//! The station's WebSocket: `ws://` or `wss://` (rustls with a custom CA and, under security
//! profile 3, the installed client certificate), HTTP Basic credentials (profiles 1 and 2), and
//! the OCPP subprotocol, which the server must accept.

use crate::charger::network::{Identity, Network};
use crate::spec::StationSpec;
use anyhow::{bail, Context};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// Any byte stream a WebSocket can run over (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open station WebSocket.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// Where the operating system keeps its CA bundle, used for `wss://` when no CA is configured.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Opens the station's WebSocket with the network profile in use and checks the negotiated
/// subprotocol.
pub async fn connect(spec: &StationSpec, network: &Network) -> anyhow::Result<Ws> {
    let profile = network.current().context("no network profile in the active slot")?;
    let url = format!("{}/{}", profile.url.trim_end_matches('/'), spec.id);
    let mut request = url.as_str().into_client_request().context("bad central-system url")?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(spec.version.subprotocol()),
    );
    // Profile 3 authenticates with the certificate alone.
    let client_identity = if profile.security_profile >= 3 {
        Some(
            network
                .identity
                .as_ref()
                .context("security profile 3 needs a client certificate")?,
        )
    } else {
        None
    };
    if let (Some(password), None) = (&network.password, client_identity) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", spec.id));
        request
            .headers_mut()
            .insert("Authorization", HeaderValue::from_str(&format!("Basic {token}"))?);
    }
    let uri = request.uri().clone();
    let host = uri
        .host()
        .context("url has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        other => bail!("unsupported url scheme {other:?} (ws or wss)"),
    };
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    tcp.set_nodelay(true)?;
    let stream: Box<dyn Io> = if tls {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(spec, client_identity)?));
        let name = ServerName::try_from(host.clone()).context("bad TLS server name")?;
        Box::new(connector.connect(name, tcp).await.context("TLS handshake")?)
    } else {
        Box::new(tcp)
    };
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    let agreed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if agreed != spec.version.subprotocol() {
        bail!(
            "server agreed to subprotocol {agreed:?}, not {}",
            spec.version.subprotocol()
        );
    }
    Ok(ws)
}

fn tls_config(spec: &StationSpec, identity: Option<&Identity>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = spec
        .security
        .ca
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(SYSTEM_CA_BUNDLE));
    for cert in CertificateDer::pem_file_iter(&ca).with_context(|| format!("reading CA {}", ca.display()))? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match identity {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .context("reading the client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).context("reading the client key")?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    })
}
