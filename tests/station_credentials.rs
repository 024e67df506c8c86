//! Station credentials end to end: Basic-auth password rotation (OCPP 2.0.1 A01; 1.6
//! ChangeConfiguration AuthorizationKey) and the security-profile floor (A05), on every
//! configured backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::pki::{Leaf, Pki};
use support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const PASSWORD: &str = "s3cret-Station-pass!";
/// 20 characters: the most a 1.6 AuthorizationKey (40 hex digits) carries.
const NEW_PASSWORD: &str = "an0ther-Station-p#20";

/// Connects a 1.6 or 2.0.1 station with Basic credentials and boots it.
async fn online(server: &TestServer, id: &str, subprotocol: &str, password: &str) -> Ws {
    let mut ws = connect(&server.ws_url(id), subprotocol, Some((id, password)))
        .await
        .unwrap_or_else(|e| panic!("{id} with {password}: {e:?}"));
    let boot = if subprotocol == "ocpp1.6" {
        boot16(&mut ws).await
    } else {
        boot201(&mut ws).await
    };
    assert_eq!(boot["status"], "Accepted", "{boot}");
    ws
}

/// Closes and waits until the server has seen the socket go.
async fn offline(mut ws: Ws) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// The status of a refused plain upgrade and its problem code.
async fn refused(server: &TestServer, id: &str, password: &str) -> (u16, String) {
    match connect(&server.ws_url(id), "ocpp1.6", Some((id, password))).await {
        Ok(ws) => {
            offline(ws).await;
            panic!("{id} with {password}: connection accepted")
        }
        Err(WsError::Http(response)) => {
            let code = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|p| p["code"].as_str().map(str::to_string))
                .unwrap_or_default();
            (response.status().as_u16(), code)
        }
        Err(e) => panic!("{id}: {e:?}"),
    }
}

/// Plays the station side of one rotation: answers the CSMS's call with `status` and returns
/// the call, while the API request runs; returns (call, API status, API body).
async fn rotate(server: &TestServer, ws: &mut Ws, id: &str, body: Option<Value>, status: &str) -> (Value, u16, Value) {
    let path = format!("/api/v1/stations/{id}/password-rotation");
    let api = server.api("POST", &path, Some(Role::Admin), body);
    let station = async {
        let call = recv(ws).await;
        assert_eq!(call[0], 2, "{call}");
        let answer = if call[2] == "ChangeConfiguration" {
            json!({"status": status})
        } else {
            json!({"setVariableResult": [{
                "attributeStatus": status,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }]})
        };
        send(ws, &json!([3, call[1], answer]).to_string()).await;
        call
    };
    let (call, (code, json)) = tokio::join!(station, api);
    (call, code, json)
}

#[tokio::test]
async fn password_rotation_accepted_keeps_old_until_first_use_of_new() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let id = "CP-ROT16";
        server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": id, "password": PASSWORD})),
                201,
            )
            .await;
        let mut ws = online(&server, id, "ocpp1.6", PASSWORD).await;
        let (call, status, body) = rotate(
            &server,
            &mut ws,
            id,
            Some(json!({"password": NEW_PASSWORD})),
            "Accepted",
        )
        .await;
        assert_eq!(call[2], "ChangeConfiguration", "{backend}: {call}");
        // 1.6: the key's value is the password's bytes in hex.
        let hex: String = NEW_PASSWORD.bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(call[3], json!({"key": "AuthorizationKey", "value": hex}), "{backend}");
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["status"], "Accepted", "{backend}: {body}");
        assert_eq!(body["pending"], true, "{backend}: {body}");
        assert!(
            body.get("password").is_none(),
            "{backend}: a chosen password is not echoed: {body}"
        );
        offline(ws).await;
        let station = server.admin("GET", &format!("/api/v1/stations/{id}"), None, 200).await;
        assert_eq!(station["passwordRotationPending"], true, "{backend}: {station}");

        // Until the station has used the new password, the old one still opens the door.
        offline(online(&server, id, "ocpp1.6", PASSWORD).await).await;
        // The first connection with the new one completes the rotation...
        offline(online(&server, id, "ocpp1.6", NEW_PASSWORD).await).await;
        // ...after which the old one is refused and the new one keeps working.
        assert_eq!(
            refused(&server, id, PASSWORD).await,
            (401, "UNAUTHORIZED".into()),
            "{backend}"
        );
        offline(online(&server, id, "ocpp1.6", NEW_PASSWORD).await).await;
        let station = server.admin("GET", &format!("/api/v1/stations/{id}"), None, 200).await;
        assert_eq!(station["passwordRotationPending"], false, "{backend}: {station}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn password_rotation_generated_for_201_station() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let id = "CP-ROT201";
        server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": id, "password": PASSWORD})),
                201,
            )
            .await;
        let mut ws = online(&server, id, "ocpp2.0.1", PASSWORD).await;
        let (call, status, body) = rotate(&server, &mut ws, id, None, "Accepted").await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(call[2], "SetVariables", "{backend}: {call}");
        let generated = body["password"]
            .as_str()
            .expect("generated password returned once")
            .to_string();
        assert!((16..=40).contains(&generated.len()) && generated.chars().all(|c| c.is_ascii_graphic()));
        let data = &call[3]["setVariableData"][0];
        assert_eq!(data["component"]["name"], "SecurityCtrlr", "{backend}: {call}");
        assert_eq!(data["variable"]["name"], "BasicAuthPassword", "{backend}: {call}");
        assert_eq!(data["attributeValue"], generated.as_str(), "{backend}");
        offline(ws).await;
        offline(online(&server, id, "ocpp2.0.1", &generated).await).await;
        assert_eq!(refused(&server, id, PASSWORD).await.0, 401, "{backend}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn password_rotation_rejected_offline_and_roles() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let id = "CP-ROTREJ";
        let path = format!("/api/v1/stations/{id}/password-rotation");
        server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": id, "password": PASSWORD})),
                201,
            )
            .await;

        // Offline: 409 and nothing changes.
        let (status, body) = server.api("POST", &path, Some(Role::Admin), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("STATION_OFFLINE")),
            "{backend}: {body}"
        );
        // Roles: operators may not change credentials; no token is 401.
        let (status, _) = server.api("POST", &path, Some(Role::Operator), None).await;
        assert_eq!(status, 403, "{backend}");
        let (status, _) = server.api("POST", &path, None, None).await;
        assert_eq!(status, 401, "{backend}");
        let (status, _) = server
            .api(
                "POST",
                "/api/v1/stations/NOPE/password-rotation",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, 404, "{backend}");

        // Rejected: the old password stays, the new one never works.
        let mut ws = online(&server, id, "ocpp1.6", PASSWORD).await;
        // Invalid passwords are refused before anything is sent: too short, and too long for
        // a 1.6 AuthorizationKey (20 bytes).
        for bad in ["short", "a-password-of-21-chr"] {
            let bad = if bad == "short" {
                bad.to_string()
            } else {
                format!("{bad}s")
            };
            let (status, body) = server
                .api("POST", &path, Some(Role::Admin), Some(json!({"password": bad})))
                .await;
            assert_eq!(status, 400, "{backend}: {bad}: {body}");
        }
        let (_, status, body) = rotate(
            &server,
            &mut ws,
            id,
            Some(json!({"password": NEW_PASSWORD})),
            "Rejected",
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(
            (body["status"].as_str(), body["pending"].as_bool()),
            (Some("Rejected"), Some(false)),
            "{backend}"
        );
        offline(ws).await;
        assert_eq!(refused(&server, id, NEW_PASSWORD).await.0, 401, "{backend}");
        offline(online(&server, id, "ocpp1.6", PASSWORD).await).await;
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn security_profile_floor_set_by_admin_over_ws() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let id = "CP-FLOOR1";
        let path = format!("/api/v1/stations/{id}");
        server
            .admin(
                "POST",
                "/api/v1/stations",
                Some(json!({"id": id, "password": PASSWORD})),
                201,
            )
            .await;
        offline(online(&server, id, "ocpp1.6", PASSWORD).await).await;
        let station = server.admin("GET", &path, None, 200).await;
        assert_eq!(station["securityProfile"], 1, "{backend}: {station}");
        assert_eq!(station["connectedSecurityProfile"], 1, "{backend}: {station}");

        // An admin raises the floor to 2 (as after SetNetworkProfile): plain ws is refused.
        server
            .admin("PATCH", &path, Some(json!({"securityProfile": 2})), 200)
            .await;
        assert_eq!(
            refused(&server, id, PASSWORD).await,
            (403, "SECURITY_PROFILE_DOWNGRADE".into()),
            "{backend}"
        );
        let metrics = http(server.addr, "GET", "/metrics", None, None).await.1;
        assert!(
            metrics
                .as_str()
                .is_some_and(|m| m.contains("security_profile_downgrades_total 1")),
            "{backend}: {metrics}"
        );
        let (status, _) = server
            .api(
                "PATCH",
                &path,
                Some(Role::Operator),
                Some(json!({"securityProfile": 0})),
            )
            .await;
        assert_eq!(status, 403, "{backend}: operators may not lower the floor");
        let (status, _) = server
            .api("PATCH", &path, Some(Role::Admin), Some(json!({"securityProfile": 4})))
            .await;
        assert_eq!(status, 400, "{backend}");
        // Lowered explicitly, the station may connect at 1 again.
        server
            .admin("PATCH", &path, Some(json!({"securityProfile": 1})), 200)
            .await;
        offline(online(&server, id, "ocpp1.6", PASSWORD).await).await;
        // Removing the password is the admin's choice to let the station in without
        // credentials: a Basic-auth floor goes with it.
        let station = server.admin("PATCH", &path, Some(json!({"password": null})), 200).await;
        assert_eq!(station["securityProfile"], 0, "{backend}: {station}");
        server.stop_and_clean().await;
    }
}

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A `wss://` upgrade as `id`, with an optional client certificate and Basic credentials.
async fn wss(
    server: &TestServer,
    roots: &[CertificateDer<'static>],
    client: Option<&Leaf>,
    id: &str,
    basic: Option<(&str, &str)>,
) -> Result<Wss, WsError> {
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
    let attempt = async {
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let url = format!("wss://localhost:{}/ocpp/{id}", server.addr.port());
        tokio_tungstenite::client_async(ws_request(&url, Some("ocpp1.6"), basic), stream)
            .await
            .map(|(ws, _)| ws)
    };
    tokio::time::timeout(Duration::from_secs(15), attempt)
        .await
        .expect("wss attempt timed out")
}

async fn wss_boot_and_close(mut ws: Wss) {
    let text = json!([2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]).to_string();
    ws.send(Message::Text(text.into())).await.expect("send");
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("answer")
        {
            Some(Ok(Message::Text(t))) => break serde_json::from_str::<Value>(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no answer: {other:?}"),
        }
    };
    assert_eq!(answer[2]["status"], "Accepted", "{answer}");
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

fn expect_downgrade(result: Result<Wss, WsError>, what: &str) {
    match result {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403, "{what}");
            let problem: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(problem["code"], "SECURITY_PROFILE_DOWNGRADE", "{what}: {problem}");
        }
        Ok(_) => panic!("{what}: connection accepted"),
        Err(e) => panic!("{what}: {e:?}"),
    }
}

#[tokio::test]
async fn security_profile_floor_over_tls() {
    let pki = Pki::new();
    let roots = [pki.ca.der().clone()];
    let cert = pki.client("CP-FLOOR3");
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| pki.configure(c, true)).await;
        let id = "CP-FLOOR3";
        let path = format!("/api/v1/stations/{id}");
        let (status, body) = https(
            &server,
            &roots,
            "POST",
            "/api/v1/stations",
            Some(json!({"id": id, "password": PASSWORD})),
        )
        .await;
        assert_eq!(status, 201, "{backend}: {body}");

        // Profile 2 (TLS + Basic), then 3 (client certificate): the floor follows upwards.
        wss_boot_and_close(
            wss(&server, &roots, None, id, Some((id, PASSWORD)))
                .await
                .expect("profile 2"),
        )
        .await;
        let (_, station) = https(&server, &roots, "GET", &path, None).await;
        assert_eq!(station["securityProfile"], 2, "{backend}: {station}");
        wss_boot_and_close(wss(&server, &roots, Some(&cert), id, None).await.expect("profile 3")).await;
        let (_, station) = https(&server, &roots, "GET", &path, None).await;
        assert_eq!(station["securityProfile"], 3, "{backend}: {station}");

        // Back to profile 2 with the right password: refused, and the floor stays.
        expect_downgrade(wss(&server, &roots, None, id, Some((id, PASSWORD))).await, backend);
        let (_, station) = https(&server, &roots, "GET", &path, None).await;
        assert_eq!(station["securityProfile"], 3, "{backend}: {station}");

        // An admin lowers the floor explicitly: profile 2 is allowed again.
        let (status, _) = https(&server, &roots, "PATCH", &path, Some(json!({"securityProfile": 2}))).await;
        assert_eq!(status, 200, "{backend}");
        wss_boot_and_close(
            wss(&server, &roots, None, id, Some((id, PASSWORD)))
                .await
                .expect("profile 2 again"),
        )
        .await;
        server.stop_and_clean().await;
    }
}

/// The REST API over HTTPS as admin.
async fn https(
    server: &TestServer,
    roots: &[CertificateDer<'static>],
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS");
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
        .expect("request");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}
