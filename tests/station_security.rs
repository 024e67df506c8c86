//! Station security end to end: HTTP Basic auth (security profile 1), the unknown-station
//! policies and `require_auth`, handshake refusals (station id, subprotocol), TLS with a server
//! certificate (profile 2) and TLS client certificates (profile 3).
//!
//! The PKI is generated here with rcgen: a test CA, a server certificate for
//! `localhost`/127.0.0.1 and station client certificates signed by it, and a second, untrusted
//! CA with a client certificate of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use central_system::config::UnknownStations;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::pki::{Leaf, Pki};
use support::*;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// A valid station password (16-40 printable ASCII characters).
const PASSWORD: &str = "s3cret-Station-pass!";
/// Another valid one, for password changes.
const NEW_PASSWORD: &str = "an0ther-Station-pass#2";

/// Upper bound for any single connection attempt, so a hang fails instead of stalling the suite.
const ATTEMPT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// WebSocket helpers that work over any stream (plain TCP or our own rustls client stream).
// ---------------------------------------------------------------------------------------------

/// Plain `ws://` upgrade; returns the socket and the 101 response.
async fn upgrade(url: &str, protocols: Option<&str>, basic: Option<(&str, &str)>) -> Result<(Ws, Response), WsError> {
    let request = ws_request(url, protocols, basic);
    tokio::time::timeout(ATTEMPT, tokio_tungstenite::connect_async(request))
        .await
        .expect("upgrade attempt timed out")
}

/// Expects the upgrade to be refused with `status`; returns the refusal response. When the body
/// arrived with the head (it normally does), its problem `code` must be `code`.
fn expect_refused<T>(result: Result<T, WsError>, status: u16, code: &str, what: &str) -> Response {
    let err = match result {
        Ok(_) => panic!("{what}: upgrade succeeded, expected {status} {code}"),
        Err(e) => e,
    };
    assert_eq!(refused_status(&err), Some(status), "{what}: {err:?}");
    let WsError::Http(response) = err else { unreachable!() };
    if let Some(body) = response.body().as_ref().filter(|b| !b.is_empty()) {
        let problem: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{what}: refusal body is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        assert_eq!(problem["code"], code, "{what}: {problem}");
    }
    *response
}

/// Asserts a 401 that asks for Basic credentials.
fn expect_401<T>(result: Result<T, WsError>, what: &str) {
    let response = expect_refused(result, 401, "UNAUTHORIZED", what);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: 401 without WWW-Authenticate"))
        .to_str()
        .unwrap();
    assert!(
        challenge.to_ascii_lowercase().starts_with("basic"),
        "{what}: challenge {challenge:?}"
    );
}

/// Sends a CALL and returns the answer frame (any stream type).
async fn call_any<S>(ws: &mut WebSocketStream<S>, id: &str, action: &str, payload: Value) -> Value
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let text = serde_json::to_string(&json!([2, id, action, payload])).unwrap();
    ws.send(Message::Text(text.into())).await.expect("send");
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("timed out waiting for a frame");
        match msg.expect("socket closed").expect("socket error") {
            Message::Text(t) => {
                let answer: Value = serde_json::from_str(&t).expect("server sent invalid JSON");
                assert_eq!(answer[1], id, "answer to another id: {answer}");
                return answer;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// A 1.6 BootNotification; returns the CALLRESULT payload.
async fn boot_any<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let answer = call_any(
        ws,
        "boot",
        "BootNotification",
        json!({"chargePointVendor": "TestVendor", "chargePointModel": "TM-1"}),
    )
    .await;
    assert_eq!(answer[0], 3, "BootNotification: {answer}");
    answer[2].clone()
}

/// Closes a socket and waits until the server has seen it go (so the next connection of the
/// same station is not a takeover).
async fn close_any<S>(mut ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Connects with Basic credentials, boots, expects Accepted, disconnects.
async fn boots_accepted(server: &TestServer, id: &str, basic: Option<(&str, &str)>, what: &str) {
    let (mut ws, _) = upgrade(&server.ws_url(id), Some("ocpp1.6"), basic)
        .await
        .unwrap_or_else(|e| panic!("{what}: upgrade failed: {e:?}"));
    let boot = boot_any(&mut ws).await;
    assert_eq!(boot["status"], "Accepted", "{what}: {boot}");
    close_any(ws).await;
}

// ---------------------------------------------------------------------------------------------
// TLS client (the PKI is in support::pki).
// ---------------------------------------------------------------------------------------------

/// How a `wss://` attempt failed.
#[derive(Debug)]
enum WssFailure {
    /// The TLS handshake itself failed (client side).
    Tls(std::io::Error),
    /// TLS came up (from the client's view) but the WebSocket upgrade failed.
    Ws(WsError),
}

impl WssFailure {
    fn status(&self) -> Option<u16> {
        match self {
            WssFailure::Ws(e) => refused_status(e),
            WssFailure::Tls(_) => None,
        }
    }
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A rustls client connection to the server as `localhost`, trusting `roots`, optionally
/// presenting a client certificate.
async fn tls_connect(
    addr: SocketAddr,
    roots: &[CertificateDer<'static>],
    client: Option<&Leaf>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(store);
    let mut config = match client {
        Some(leaf) => {
            let (chain, key) = leaf.identity();
            builder.with_client_auth_cert(chain, key).expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// A `wss://localhost:port/ocpp/{id}` upgrade offering ocpp1.6.
async fn wss_upgrade(
    server: &TestServer,
    roots: &[CertificateDer<'static>],
    client: Option<&Leaf>,
    id: &str,
    basic: Option<(&str, &str)>,
) -> Result<(Wss, Response), WssFailure> {
    let attempt = async {
        let stream = tls_connect(server.addr, roots, client).await.map_err(WssFailure::Tls)?;
        let url = format!("wss://localhost:{}/ocpp/{id}", server.addr.port());
        tokio_tungstenite::client_async(ws_request(&url, Some("ocpp1.6"), basic), stream)
            .await
            .map_err(WssFailure::Ws)
    };
    tokio::time::timeout(ATTEMPT, attempt)
        .await
        .expect("wss attempt timed out")
}

/// The REST API over HTTPS (the one listener serves both), as admin.
async fn https_admin(
    server: &TestServer,
    roots: &[CertificateDer<'static>],
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let stream = tls_connect(server.addr, roots, None)
        .await
        .expect("TLS connect for the API");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("localhost:{}", server.addr.port()))
        .header("authorization", format!("Bearer {}", server.token(Role::Admin)));
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            bytes::Bytes::from(serde_json::to_vec(&b).unwrap())
        }
        None => bytes::Bytes::new(),
    };
    let response = sender
        .send_request(req.body(Full::new(bytes)).unwrap())
        .await
        .expect("HTTPS request");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Security profile 1: HTTP Basic auth over ws://.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn profile1_basic_auth() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let id = "CP-SP1";
        let created = server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": id, "password": PASSWORD})),
                201,
            )
            .await;
        assert_eq!(created["hasPassword"], true, "{backend}: {created}");
        let ws_url = server.ws_url(id);

        boots_accepted(
            &server,
            id,
            Some((id, PASSWORD)),
            &format!("{backend}: right credentials"),
        )
        .await;
        expect_401(
            upgrade(&ws_url, Some("ocpp1.6"), Some((id, "wrong-password-123456"))).await,
            &format!("{backend}: wrong password"),
        );
        expect_401(
            upgrade(&ws_url, Some("ocpp1.6"), None).await,
            &format!("{backend}: no credentials"),
        );
        expect_401(
            upgrade(&ws_url, Some("ocpp1.6"), Some(("CP-OTHER", PASSWORD))).await,
            &format!("{backend}: user is not the station id"),
        );
        // Also with the 2.0.1 subprotocol: authentication does not depend on the version.
        expect_401(
            upgrade(&ws_url, Some("ocpp2.0.1"), Some((id, NEW_PASSWORD))).await,
            &format!("{backend}: 2.0.1 wrong password"),
        );

        // A password change applies to the next connection.
        let patched = server
            .admin(
                "PATCH",
                &format!("/api/v1/stations/{id}"),
                Some(json!({"password": NEW_PASSWORD})),
                200,
            )
            .await;
        assert_eq!(patched["hasPassword"], true, "{backend}: {patched}");
        expect_401(
            upgrade(&ws_url, Some("ocpp1.6"), Some((id, PASSWORD))).await,
            &format!("{backend}: old password after change"),
        );
        boots_accepted(
            &server,
            id,
            Some((id, NEW_PASSWORD)),
            &format!("{backend}: new password"),
        )
        .await;

        // Invalid passwords are refused by the API and leave the current one in place.
        let (status, body) = server
            .api(
                "PATCH",
                &format!("/api/v1/stations/{id}"),
                Some(Role::Admin),
                Some(json!({"password": "short"})),
            )
            .await;
        assert_eq!(status, 400, "{backend}: short password: {body}");
        assert_eq!(body["code"], "VALIDATION_FAILED", "{backend}: {body}");
        boots_accepted(
            &server,
            id,
            Some((id, NEW_PASSWORD)),
            &format!("{backend}: password kept after invalid patch"),
        )
        .await;

        // `null` removes it: the station connects without credentials.
        let patched = server
            .admin(
                "PATCH",
                &format!("/api/v1/stations/{id}"),
                Some(json!({"password": null})),
                200,
            )
            .await;
        assert_eq!(patched["hasPassword"], false, "{backend}: {patched}");
        boots_accepted(&server, id, None, &format!("{backend}: password removed")).await;

        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Unknown stations and `require_auth`.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_station_policies_and_require_auth() {
    for (backend, url) in backends().await {
        // reject: 404, and nothing is registered.
        let server = TestServer::start_with(backend, url, |c| c.unknown_stations = UnknownStations::Reject).await;
        expect_refused(
            upgrade(&server.ws_url("CP-STRANGER"), Some("ocpp1.6"), None).await,
            404,
            "UNKNOWN_STATION",
            backend,
        );
        server.admin("GET", "/api/v1/stations/CP-STRANGER", None, 404).await;
        // A registered station still connects under `reject`.
        server
            .admin("POST", "/api/v1/stations", Some(json!({"id": "CP-KNOWN"})), 201)
            .await;
        boots_accepted(
            &server,
            "CP-KNOWN",
            None,
            &format!("{backend}: registered under reject"),
        )
        .await;
        server.stop_and_clean().await;

        // Each server gets its own database: PostgreSQL needs a fresh one per start.
        let url = fresh_url(backend).await;

        // pending: connects, its boot is answered Pending until an operator accepts it.
        let server = TestServer::start_with(backend, url, |c| c.unknown_stations = UnknownStations::Pending).await;
        let id = "CP-NEWCOMER";
        let (mut ws, _) = upgrade(&server.ws_url(id), Some("ocpp1.6"), None)
            .await
            .expect("pending station connects");
        let boot = boot_any(&mut ws).await;
        assert_eq!(boot["status"], "Pending", "{backend}: {boot}");
        assert_eq!(
            boot["interval"], server.state.config.boot_retry_interval,
            "{backend}: {boot}"
        );
        let station = server.admin("GET", &format!("/api/v1/stations/{id}"), None, 200).await;
        assert_eq!(station["registrationStatus"], "Pending", "{backend}: {station}");
        assert_eq!(station["hasPassword"], false, "{backend}: {station}");
        // Until accepted, nothing but BootNotification is served.
        let hb = call_any(&mut ws, "hb1", "Heartbeat", json!({})).await;
        assert_eq!(hb[0], 4, "{backend}: Heartbeat while Pending: {hb}");
        assert_eq!(hb[2], "SecurityError", "{backend}: {hb}");
        let station = server
            .admin(
                "PATCH",
                &format!("/api/v1/stations/{id}"),
                Some(json!({"registrationStatus": "Accepted"})),
                200,
            )
            .await;
        assert_eq!(station["registrationStatus"], "Accepted", "{backend}: {station}");
        // The charger retries its boot on the same connection.
        let boot = boot_any(&mut ws).await;
        assert_eq!(boot["status"], "Accepted", "{backend}: {boot}");
        assert_eq!(
            boot["interval"], server.state.config.heartbeat_interval,
            "{backend}: {boot}"
        );
        let hb = call_any(&mut ws, "hb2", "Heartbeat", json!({})).await;
        assert_eq!(hb[0], 3, "{backend}: Heartbeat after acceptance: {hb}");
        close_any(ws).await;
        // And on a new connection.
        boots_accepted(&server, id, None, &format!("{backend}: accepted station reconnects")).await;
        server.stop_and_clean().await;

        let url = fresh_url(backend).await;

        // accept: registered Accepted at once.
        let server = TestServer::start_with(backend, url, |c| c.unknown_stations = UnknownStations::Accept).await;
        boots_accepted(&server, "CP-WELCOME", None, &format!("{backend}: accept policy")).await;
        let station = server.admin("GET", "/api/v1/stations/CP-WELCOME", None, 200).await;
        assert_eq!(station["registrationStatus"], "Accepted", "{backend}: {station}");
        server.stop_and_clean().await;

        let url = fresh_url(backend).await;

        // require_auth: a registered station without password (and no certificate) is refused.
        let server = TestServer::start_with(backend, url, |c| {
            c.unknown_stations = UnknownStations::Reject;
            c.require_auth = true;
        })
        .await;
        server
            .admin("POST", "/api/v1/stations", Some(json!({"id": "CP-OPEN"})), 201)
            .await;
        server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": "CP-LOCKED", "password": PASSWORD})),
                201,
            )
            .await;
        expect_401(
            upgrade(&server.ws_url("CP-OPEN"), Some("ocpp1.6"), None).await,
            &format!("{backend}: require_auth, no password"),
        );
        // Credentials offered for a station that has no password do not help.
        expect_401(
            upgrade(&server.ws_url("CP-OPEN"), Some("ocpp1.6"), Some(("CP-OPEN", PASSWORD))).await,
            &format!("{backend}: require_auth, credentials but no stored password"),
        );
        boots_accepted(
            &server,
            "CP-LOCKED",
            Some(("CP-LOCKED", PASSWORD)),
            &format!("{backend}: require_auth with password"),
        )
        .await;
        expect_401(
            upgrade(&server.ws_url("CP-LOCKED"), Some("ocpp1.6"), None).await,
            &format!("{backend}: require_auth, missing credentials"),
        );
        // Giving the open station a password lets it in.
        server
            .admin(
                "PATCH",
                "/api/v1/stations/CP-OPEN",
                Some(json!({"password": NEW_PASSWORD})),
                200,
            )
            .await;
        boots_accepted(
            &server,
            "CP-OPEN",
            Some(("CP-OPEN", NEW_PASSWORD)),
            &format!("{backend}: require_auth after setting a password"),
        )
        .await;
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Handshake refusals and subprotocol selection.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn handshake_refusals_and_subprotocol_selection() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let ws_url = server.ws_url("CP-HS");

        expect_refused(
            upgrade(&ws_url, None, None).await,
            400,
            "UNSUPPORTED_SUBPROTOCOL",
            &format!("{backend}: no subprotocol"),
        );
        expect_refused(
            upgrade(&ws_url, Some("ocpp1.5"), None).await,
            400,
            "UNSUPPORTED_SUBPROTOCOL",
            &format!("{backend}: ocpp1.5"),
        );
        expect_refused(
            upgrade(&ws_url, Some("ocpp1.5, ocpp2.0"), None).await,
            400,
            "UNSUPPORTED_SUBPROTOCOL",
            &format!("{backend}: ocpp1.5, ocpp2.0"),
        );
        let long_id = "x".repeat(49);
        expect_refused(
            upgrade(&server.ws_url(&long_id), Some("ocpp1.6"), None).await,
            400,
            "INVALID_STATION_ID",
            &format!("{backend}: 49-character id"),
        );
        expect_refused(
            upgrade(&server.ws_url("bad%20id"), Some("ocpp1.6"), None).await,
            400,
            "INVALID_STATION_ID",
            &format!("{backend}: id with a space"),
        );
        // Refused handshakes register nothing (the default policy would auto-accept).
        let (status, _) = server
            .api("GET", &format!("/api/v1/stations/{long_id}"), Some(Role::Admin), None)
            .await;
        assert_ne!(status, 200, "{backend}: an invalid id was registered");
        server.admin("GET", "/api/v1/stations/CP-HS", None, 404).await;

        // A plain GET (no WebSocket upgrade) is refused and registers nothing, although the
        // default policy would auto-register a station that really connects.
        let (status, body) = plain_get(server.addr, "/ocpp/CP-PROBE", &[("sec-websocket-protocol", "ocpp1.6")])
            .await
            .expect("plain GET");
        assert_eq!(status, 400, "{backend}: plain GET on /ocpp: {body}");
        assert!(body.contains("NOT_A_WEBSOCKET"), "{backend}: {body}");
        server.admin("GET", "/api/v1/stations/CP-PROBE", None, 404).await;

        // 48 characters is still a valid id.
        let max_id = "y".repeat(48);
        boots_accepted(&server, &max_id, None, &format!("{backend}: 48-character id")).await;

        // Both offered: the server prefers 2.0.1 and says so.
        let (mut ws, response) = upgrade(&ws_url, Some("ocpp1.6, ocpp2.0.1"), None)
            .await
            .expect("upgrade with both versions");
        let selected = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(selected.as_deref(), Some("ocpp2.0.1"), "{backend}");
        let boot = call_any(
            &mut ws,
            "boot",
            "BootNotification",
            json!({"reason": "PowerUp", "chargingStation": {"vendorName": "TestVendor", "model": "TM-2"}}),
        )
        .await;
        assert_eq!(boot[0], 3, "{backend}: 2.0.1 boot: {boot}");
        assert_eq!(boot[2]["status"], "Accepted", "{backend}: {boot}");
        close_any(ws).await;
        let station = server.admin("GET", "/api/v1/stations/CP-HS", None, 200).await;
        assert_eq!(station["ocppVersion"], "2.0.1", "{backend}: {station}");

        // Offered as two header lines, in the other order: still 2.0.1.
        let mut request = ws_request(&ws_url, Some("ocpp2.0.1"), None);
        request
            .headers_mut()
            .append("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
        let result = tokio::time::timeout(ATTEMPT, tokio_tungstenite::connect_async(request))
            .await
            .expect("timed out");
        let (ws, response) = result.expect("upgrade with two header lines");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            "ocpp2.0.1",
            "{backend}"
        );
        close_any(ws).await;

        // Only 1.6 offered (among unknown ones): 1.6.
        let (ws, response) = upgrade(&ws_url, Some("wamp, ocpp1.6"), None)
            .await
            .expect("upgrade with 1.6");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            "ocpp1.6",
            "{backend}"
        );
        close_any(ws).await;

        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Security profile 2: TLS server certificate + Basic auth.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn profile2_tls_with_basic_auth() {
    let pki = Pki::new();
    let roots = [pki.ca.der().clone()];
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| pki.configure(c, false)).await;
        let id = "CP-SP2";
        let (status, created) = https_admin(
            &server,
            &roots,
            "POST",
            "/api/v1/stations",
            Some(json!({"id": id, "password": PASSWORD})),
        )
        .await;
        assert_eq!(status, 201, "{backend}: register over HTTPS: {created}");

        let (mut ws, _) = wss_upgrade(&server, &roots, None, id, Some((id, PASSWORD)))
            .await
            .unwrap_or_else(|e| panic!("{backend}: wss with Basic auth failed: {e:?}"));
        let boot = boot_any(&mut ws).await;
        assert_eq!(boot["status"], "Accepted", "{backend}: {boot}");
        let hb = call_any(&mut ws, "hb", "Heartbeat", json!({})).await;
        assert_eq!(hb[0], 3, "{backend}: {hb}");
        close_any(ws).await;

        // Basic auth still applies over TLS.
        let refused = wss_upgrade(&server, &roots, None, id, Some((id, NEW_PASSWORD)))
            .await
            .map(|_| ());
        assert_eq!(
            refused.as_ref().err().and_then(WssFailure::status),
            Some(401),
            "{backend}: wrong password over TLS: {refused:?}"
        );
        let refused = wss_upgrade(&server, &roots, None, id, None).await.map(|_| ());
        assert_eq!(
            refused.as_ref().err().and_then(WssFailure::status),
            Some(401),
            "{backend}: no credentials over TLS: {refused:?}"
        );

        // A plain (non-TLS) client on the TLS port gets no WebSocket and no HTTP answer.
        let plain = upgrade(&server.ws_url(id), Some("ocpp1.6"), Some((id, PASSWORD))).await;
        match plain {
            Ok(_) => panic!("{backend}: plain ws:// upgrade succeeded on the TLS port"),
            Err(e) => assert_eq!(
                refused_status(&e),
                None,
                "{backend}: plain client got an HTTP answer: {e:?}"
            ),
        }
        // Nor does the plain REST API.
        let plain_api = tokio::time::timeout(ATTEMPT, plain_http_status(server.addr))
            .await
            .expect("plain HTTP timed out");
        assert!(
            plain_api.is_err(),
            "{backend}: plain HTTP got an answer on the TLS port: {plain_api:?}"
        );

        // A client that does not trust the test CA refuses the server.
        let distrust = [pki.rogue_ca.der().clone()];
        let failed = wss_upgrade(&server, &distrust, None, id, Some((id, PASSWORD)))
            .await
            .map(|_| ());
        match &failed {
            Err(WssFailure::Tls(e)) => {
                assert!(e.to_string().contains("UnknownIssuer"), "{backend}: {e}")
            }
            other => panic!("{backend}: untrusted server cert accepted: {other:?}"),
        }

        // The server still serves after all those failed handshakes.
        let (mut ws, _) = wss_upgrade(&server, &roots, None, id, Some((id, PASSWORD)))
            .await
            .expect("wss after failures");
        assert_eq!(boot_any(&mut ws).await["status"], "Accepted", "{backend}");
        close_any(ws).await;

        server.stop_and_clean().await;
    }
}

/// A plain HTTP/1.1 GET over TCP; Err when no HTTP response comes back.
async fn plain_http_status(addr: SocketAddr) -> Result<u16, String> {
    plain_get(addr, "/api/v1/stations", &[]).await.map(|(status, _)| status)
}

/// A plain HTTP/1.1 GET with extra headers; status and body text, Err when no HTTP response.
async fn plain_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Empty};
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().uri(path).header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = sender
        .send_request(req.body(Empty::<bytes::Bytes>::new()).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

// ---------------------------------------------------------------------------------------------
// 5. Security profile 3: TLS client certificates.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn profile3_client_certificates() {
    let pki = Pki::new();
    let roots = [pki.ca.der().clone()];
    let cert_a = pki.client("CP-SP3-A");
    let cert_b = pki.client("CP-SP3-B");
    let rogue_a = pki.rogue_client("CP-SP3-A");
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| {
            pki.configure(c, true);
            c.unknown_stations = UnknownStations::Reject;
        })
        .await;
        for body in [
            json!({"id": "CP-SP3-A"}),
            json!({"id": "CP-SP3-B"}),
            json!({"id": "CP-SP2-C", "password": PASSWORD}),
        ] {
            let (status, created) = https_admin(&server, &roots, "POST", "/api/v1/stations", Some(body)).await;
            assert_eq!(status, 201, "{backend}: {created}");
        }

        // The certificate names the station, which has no password: accepted.
        let (mut ws, _) = wss_upgrade(&server, &roots, Some(&cert_a), "CP-SP3-A", None)
            .await
            .unwrap_or_else(|e| panic!("{backend}: profile 3 connection failed: {e:?}"));
        let boot = boot_any(&mut ws).await;
        assert_eq!(boot["status"], "Accepted", "{backend}: {boot}");
        close_any(ws).await;
        let (status, station) = https_admin(&server, &roots, "GET", "/api/v1/stations/CP-SP3-A", None).await;
        assert_eq!(status, 200, "{backend}: {station}");
        assert_eq!(station["vendor"], "TestVendor", "{backend}: {station}");

        // A certificate of another station: 403.
        let mismatch = wss_upgrade(&server, &roots, Some(&cert_b), "CP-SP3-A", None)
            .await
            .map(|_| ());
        match mismatch {
            Err(WssFailure::Ws(e)) => {
                expect_refused::<()>(
                    Err(e),
                    403,
                    "CERTIFICATE_MISMATCH",
                    &format!("{backend}: certificate of CP-SP3-B"),
                );
            }
            other => {
                panic!("{backend}: expected 403 for another station's certificate, got {other:?}")
            }
        }
        // Even with that station's correct password.
        let mismatch = wss_upgrade(&server, &roots, Some(&cert_b), "CP-SP2-C", Some(("CP-SP2-C", PASSWORD)))
            .await
            .map(|_| ());
        assert_eq!(
            mismatch.as_ref().err().and_then(WssFailure::status),
            Some(403),
            "{backend}: mismatched certificate with a password: {mismatch:?}"
        );

        // A certificate from an untrusted CA: the TLS handshake fails, no HTTP answer at all.
        let rogue = wss_upgrade(&server, &roots, Some(&rogue_a), "CP-SP3-A", None)
            .await
            .map(|_| ());
        match &rogue {
            Ok(()) => panic!("{backend}: certificate from an untrusted CA accepted"),
            // TLS 1.2: the handshake fails on the client's side too.
            Err(WssFailure::Tls(e)) => {
                assert!(e.to_string().contains("alert"), "{backend}: {e}")
            }
            // TLS 1.3: the client finishes first; the server's alert arrives on the first read.
            Err(WssFailure::Ws(WsError::Io(e))) => {
                let text = e.to_string();
                assert!(text.contains("alert"), "{backend}: {text}");
            }
            Err(other) => panic!("{backend}: expected a TLS failure for an untrusted certificate, got {other:?}"),
        }

        // No certificate: profile 2 on the same listener, with the password.
        let (mut ws, _) = wss_upgrade(&server, &roots, None, "CP-SP2-C", Some(("CP-SP2-C", PASSWORD)))
            .await
            .unwrap_or_else(|e| panic!("{backend}: profile 2 on the profile 3 listener failed: {e:?}"));
        assert_eq!(boot_any(&mut ws).await["status"], "Accepted", "{backend}");
        close_any(ws).await;
        // Without certificate and without password the profile 2 station is refused...
        let refused = wss_upgrade(&server, &roots, None, "CP-SP2-C", None).await.map(|_| ());
        assert_eq!(
            refused.as_ref().err().and_then(WssFailure::status),
            Some(401),
            "{backend}: {refused:?}"
        );
        // ...but with its own certificate it is a profile 3 station: the certificate is the
        // credential and Basic is ignored, so even a stale password does not lock it out.
        let cert_c = pki.client("CP-SP2-C");
        let (mut ws, _) = wss_upgrade(
            &server,
            &roots,
            Some(&cert_c),
            "CP-SP2-C",
            Some(("CP-SP2-C", NEW_PASSWORD)),
        )
        .await
        .unwrap_or_else(|e| panic!("{backend}: certificate-bound station refused: {e:?}"));
        assert_eq!(boot_any(&mut ws).await["status"], "Accepted", "{backend}");
        close_any(ws).await;

        // The certificate-bound station still works after the failures.
        let (mut ws, _) = wss_upgrade(&server, &roots, Some(&cert_a), "CP-SP3-A", None)
            .await
            .expect("profile 3 again");
        assert_eq!(boot_any(&mut ws).await["status"], "Accepted", "{backend}");
        close_any(ws).await;

        server.stop_and_clean().await;
    }
}
