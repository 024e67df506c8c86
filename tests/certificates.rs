//! Station certificate management end to end (OCPP 2.0.1 A02/A03 and M01-M06; the 1.6
//! security whitepaper's A02/A03 and M), on every configured backend: a station sends a real
//! CSR (generated here with rcgen), gets Accepted and then CertificateSigned, and connects with
//! the issued certificate under security profile 3; bad CSRs are refused and logged as
//! security events; the typed REST endpoints reach the station; renewal is triggered by the
//! operator and by the sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use futures_util::{SinkExt, StreamExt};
use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::pki::Pki;
use support::*;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The organization of the embedded default station CA, so the O a CSR must name.
const ORG: &str = "EVCS";

/// A CSR for `cn`/`org` and the key that signed it.
fn csr(cn: &str, org: &str) -> (String, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.distinguished_name.push(DnType::OrganizationName, org);
    let key = KeyPair::generate().unwrap();
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    (pem, key)
}

/// A CSR for `cn`/`org` whose signature covers a different subject (one byte of the CN
/// changed after signing).
fn tampered_csr(cn: &str, org: &str) -> String {
    use base64::Engine;
    let original = format!("{}X", &cn[..cn.len() - 1]);
    let (pem, _) = csr(&original, org);
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    let at = der
        .windows(original.len())
        .position(|w| w == original.as_bytes())
        .unwrap();
    der[at..at + cn.len()].copy_from_slice(cn.as_bytes());
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
}

async fn send_any<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, frame: Value) {
    ws.send(Message::Text(frame.to_string().into())).await.expect("send");
}

async fn recv_any<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("timed out waiting for a frame");
        match msg.expect("socket closed").expect("socket error") {
            Message::Text(t) => return serde_json::from_str(&t).expect("invalid JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Sends a CALL and returns the CALLRESULT payload.
async fn call_any<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    id: &str,
    action: &str,
    payload: Value,
) -> Value {
    send_any(ws, json!([2, id, action, payload])).await;
    let answer = recv_any(ws).await;
    assert_eq!(
        (answer[0].clone(), answer[1].clone()),
        (json!(3), json!(id)),
        "{action}: {answer}"
    );
    answer[2].clone()
}

async fn boot_any<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, subprotocol: &str) -> Value {
    let payload = if subprotocol == "ocpp1.6" {
        json!({"chargePointVendor": "TestVendor", "chargePointModel": "TM-1"})
    } else {
        json!({"reason": "PowerUp", "chargingStation": {"vendorName": "TestVendor", "model": "TM-2"}})
    };
    call_any(ws, "boot", "BootNotification", payload).await
}

/// Expects the central system's next CALL to be `action`; answers it with `answer` and
/// returns its payload.
async fn answer_call<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    action: &str,
    answer: Value,
) -> Value {
    let call = recv_any(ws).await;
    assert_eq!((call[0].clone(), call[2].clone()), (json!(2), json!(action)), "{call}");
    send_any(ws, json!([3, call[1], answer])).await;
    call[3].clone()
}

async fn close_any<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// A `wss://localhost:port/ocpp/{id}` upgrade trusting `root`, presenting `client` if given.
async fn wss(
    server: &TestServer,
    root: &CertificateDer<'static>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    id: &str,
    subprotocol: &str,
) -> Result<WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let attempt = async {
        let tcp = TcpStream::connect(server.addr).await.map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let url = format!("wss://localhost:{}/ocpp/{id}", server.addr.port());
        tokio_tungstenite::client_async(ws_request(&url, Some(subprotocol), None), tls)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| format!("upgrade: {e:?}"))
    };
    tokio::time::timeout(Duration::from_secs(15), attempt)
        .await
        .expect("wss attempt timed out")
}

/// The issued certificates of a station, newest first, straight from the store.
async fn issued(server: &TestServer, id: &str) -> Vec<central_system::store::certificates::IssuedCertificateRecord> {
    server.state.store.issued_certificates(id, None, 50).await.unwrap()
}

/// Plays A02/A03 on an open connection: sends a genuine CSR, expects Accepted, then
/// CertificateSigned with the station certificate and the CA; answers Accepted. Returns the
/// client identity (chain, key) for profile 3.
async fn sign_and_install<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    id: &str,
    subprotocol: &str,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let (pem, key) = csr(id, ORG);
    let mut request = json!({"csr": pem});
    if subprotocol != "ocpp1.6" {
        request["certificateType"] = json!("ChargingStationCertificate");
    }
    let answer = call_any(ws, "sign", "SignCertificate", request).await;
    assert_eq!(answer["status"], "Accepted", "{id}: {answer}");
    let signed = answer_call(ws, "CertificateSigned", json!({"status": "Accepted"})).await;
    if subprotocol == "ocpp1.6" {
        assert!(signed.get("certificateType").is_none(), "{signed}");
    } else {
        assert_eq!(signed["certificateType"], "ChargingStationCertificate", "{signed}");
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(signed["certificateChain"].as_str().unwrap().as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(chain.len(), 2, "station certificate + CA: {signed}");
    (chain, PrivatePkcs8KeyDer::from(key.serialize_der()).into())
}

#[tokio::test]
async fn a02_a03_signed_certificate_opens_security_profile_3() {
    let pki = Pki::new();
    let root = pki.ca.der().clone();
    for (backend, url) in backends().await {
        // TLS with the server certificate only: no --tls-client-ca, so the station CA alone
        // must make the issued certificate acceptable.
        let server = TestServer::start_with(backend, url, |c| pki.configure(c, false)).await;
        for (id, subprotocol) in [("CP-CERT16", "ocpp1.6"), ("CP-CERT201", "ocpp2.0.1")] {
            let what = format!("{backend} {subprotocol}");
            let mut ws = wss(&server, &root, None, id, subprotocol).await.unwrap();
            assert_eq!(boot_any(&mut ws, subprotocol).await["status"], "Accepted", "{what}");
            let identity = sign_and_install(&mut ws, id, subprotocol).await;
            let serial = eventually(|| async {
                issued(&server, id)
                    .await
                    .first()
                    .filter(|c| c.status == "Installed")
                    .map(|c| c.serial.clone())
            })
            .await;
            let record = &issued(&server, id).await[0];
            let expected_type = if subprotocol == "ocpp1.6" {
                "ChargePointCertificate"
            } else {
                "ChargingStationCertificate"
            };
            assert_eq!(record.certificate_type, expected_type, "{what}");
            let days = (record.not_after.0 - record.not_before.0) / 86_400_000;
            assert_eq!(days, 365, "{what}: default validity");
            close_any(ws).await;

            // Profile 3 with the issued certificate: no password, the certificate is the
            // credential, bound to the station id.
            let mut ws = wss(&server, &root, Some(identity), id, subprotocol)
                .await
                .unwrap_or_else(|e| panic!("{what}: profile 3 with the issued certificate refused: {e}"));
            assert_eq!(boot_any(&mut ws, subprotocol).await["status"], "Accepted", "{what}");
            let station = server.state.store.station(id).await.unwrap().unwrap();
            assert_eq!(station.connected_security_profile, Some(3), "{what} ({serial})");
            close_any(ws).await;
        }
        // Another station's certificate does not open this station's door.
        let mut ws = wss(&server, &root, None, "CP-OTHER", "ocpp2.0.1").await.unwrap();
        boot_any(&mut ws, "ocpp2.0.1").await;
        let identity = sign_and_install(&mut ws, "CP-OTHER", "ocpp2.0.1").await;
        close_any(ws).await;
        let refused = wss(&server, &root, Some(identity), "CP-CERT201", "ocpp2.0.1").await;
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("403")),
            "{backend}: {:?}",
            refused.map(|_| ())
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a02_bad_csrs_are_rejected_and_logged_as_security_events() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        for (id, subprotocol) in [("CP-BAD16", "ocpp1.6"), ("CP-BAD201", "ocpp2.0.1")] {
            let what = format!("{backend} {subprotocol}");
            let mut ws = connect(&server.ws_url(id), subprotocol, None).await.unwrap();
            assert_eq!(boot_any(&mut ws, subprotocol).await["status"], "Accepted", "{what}");
            let cases = [
                ("wrong CN", csr("CP-SOMEONE-ELSE", ORG).0, "InvalidCsrCommonName"),
                ("wrong O", csr(id, "Evil Corp").0, "InvalidCsrOrganization"),
                ("garbage", "not a CSR at all".to_string(), "InvalidCsrFormat"),
                ("bad signature", tampered_csr(id, ORG), "InvalidCsrSignature"),
            ];
            for (i, (case, pem, _)) in cases.iter().enumerate() {
                let answer = call_any(&mut ws, &format!("s{i}"), "SignCertificate", json!({"csr": pem})).await;
                assert_eq!(answer["status"], "Rejected", "{what} {case}: {answer}");
                if subprotocol == "ocpp2.0.1" {
                    assert_eq!(answer["statusInfo"]["reasonCode"], "InvalidCSR", "{what} {case}");
                }
            }
            if subprotocol == "ocpp2.0.1" {
                // A V2G certificate needs a V2G root this central system does not have.
                let request = json!({"csr": csr(id, ORG).0, "certificateType": "V2GCertificate"});
                let answer = call_any(&mut ws, "v2g", "SignCertificate", request).await;
                assert_eq!(answer["status"], "Rejected", "{what}: {answer}");
            }
            // Nothing was signed: the next frame is the answer to our own call, no
            // CertificateSigned in between.
            call_any(&mut ws, "hb", "Heartbeat", json!({})).await;
            assert!(issued(&server, id).await.is_empty(), "{what}");

            let (status, page) = server
                .api(
                    "GET",
                    &format!("/api/v1/security-events?stationId={id}"),
                    Some(Role::Operator),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{what}: {page}");
            let types: Vec<&str> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["eventType"].as_str().unwrap())
                .collect();
            let expected: Vec<&str> = cases.iter().rev().map(|c| c.2).collect();
            assert_eq!(types, expected, "{what}: newest first");
            assert!(page["items"].as_array().unwrap().iter().all(|e| e["source"] == "csms"));

            // A station's own SecurityEventNotification lands in the same list.
            call_any(
                &mut ws,
                "sec",
                "SecurityEventNotification",
                json!({"type": "TamperDetectionActivated", "timestamp": "2026-01-01T00:00:00Z", "techInfo": "lid"}),
            )
            .await;
            let page = server
                .admin(
                    "GET",
                    &format!("/api/v1/security-events?stationId={id}&limit=1"),
                    None,
                    200,
                )
                .await;
            assert_eq!(
                page["items"][0]["eventType"], "TamperDetectionActivated",
                "{what}: {page}"
            );
            assert_eq!(page["items"][0]["source"], "station", "{what}");
            close_any(ws).await;
        }
        let (status, _) = server.api("GET", "/api/v1/security-events", None, None).await;
        assert_eq!(status, 401, "{backend}: no token");
        // Retention counts from when an event was recorded, not the station's timestamp (2026-01-01 above).
        use central_system::store::types::Ts;
        let store = &server.state.store;
        let an_hour_ago = Ts::from_datetime(chrono::Utc::now() - chrono::Duration::hours(1));
        assert_eq!(store.prune_security_events(an_hour_ago).await.unwrap(), 0, "{backend}");
        let later = Ts::from_datetime(chrono::Utc::now() + chrono::Duration::seconds(1));
        assert_eq!(store.prune_security_events(later).await.unwrap(), 10, "{backend}");
        assert!(
            store.security_events(None, None, 50).await.unwrap().is_empty(),
            "{backend}"
        );
        server.stop_and_clean().await;
    }
}

/// Runs an API request while the station answers the call it causes; returns (call payload,
/// API status, API body).
async fn api_with_station<S: AsyncRead + AsyncWrite + Unpin>(
    server: &TestServer,
    ws: &mut WebSocketStream<S>,
    method: &str,
    path: &str,
    body: Option<Value>,
    action: &str,
    answer: Value,
) -> (Value, u16, Value) {
    let api = server.api(method, path, Some(Role::Operator), body);
    let station = answer_call(ws, action, answer);
    let (call, (status, json)) = tokio::join!(station, api);
    (call, status, json)
}

#[tokio::test]
async fn m_typed_certificate_endpoints_reach_both_versions() {
    let pki = Pki::new();
    let root_pem = pki.ca.pem();
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        for (id, subprotocol) in [("CP-M16", "ocpp1.6"), ("CP-M201", "ocpp2.0.1")] {
            let what = format!("{backend} {subprotocol}");
            let v16 = subprotocol == "ocpp1.6";
            let mut ws = connect(&server.ws_url(id), subprotocol, None).await.unwrap();
            boot_any(&mut ws, subprotocol).await;

            // InstallCertificate (M05): the CSMS root is named per version.
            let (call, status, body) = api_with_station(
                &server,
                &mut ws,
                "POST",
                &format!("/api/v1/stations/{id}/installed-certificates"),
                Some(json!({"certificateType": "CSMSRootCertificate", "certificate": root_pem})),
                "InstallCertificate",
                json!({"status": "Accepted"}),
            )
            .await;
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(body["response"]["status"], "Accepted", "{what}");
            let expected = if v16 {
                "CentralSystemRootCertificate"
            } else {
                "CSMSRootCertificate"
            };
            assert_eq!(call["certificateType"], expected, "{what}");

            // GetInstalledCertificateIds (M03).
            let hash =
                json!({"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01"});
            let answer = if v16 {
                json!({"status": "Accepted", "certificateHashData": [hash]})
            } else {
                json!({"status": "Accepted", "certificateHashDataChain": [{"certificateType": "CSMSRootCertificate", "certificateHashData": hash}]})
            };
            let (call, status, body) = api_with_station(
                &server,
                &mut ws,
                "GET",
                &format!("/api/v1/stations/{id}/installed-certificates?certificateType=CSMSRootCertificate"),
                None,
                "GetInstalledCertificateIds",
                answer,
            )
            .await;
            assert_eq!(status, 200, "{what}: {body}");
            if v16 {
                assert_eq!(
                    call,
                    json!({"certificateType": "CentralSystemRootCertificate"}),
                    "{what}"
                );
            } else {
                assert_eq!(call, json!({"certificateType": ["CSMSRootCertificate"]}), "{what}");
            }
            if v16 {
                // 1.6 asks for one type at a time.
                let (status, body) = server
                    .api(
                        "GET",
                        &format!("/api/v1/stations/{id}/installed-certificates"),
                        Some(Role::Admin),
                        None,
                    )
                    .await;
                assert_eq!(status, 400, "{what}: {body}");
            }

            // DeleteCertificate (M04).
            let (call, status, body) = api_with_station(
                &server,
                &mut ws,
                "POST",
                &format!("/api/v1/stations/{id}/installed-certificates/delete"),
                Some(hash.clone()),
                "DeleteCertificate",
                json!({"status": "Accepted"}),
            )
            .await;
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(call, json!({"certificateHashData": hash}), "{what}");

            // Operator-triggered renewal (A03 / 1.6 A03).
            let (action, requested) = if v16 {
                ("ExtendedTriggerMessage", "SignChargePointCertificate")
            } else {
                ("TriggerMessage", "SignChargingStationCertificate")
            };
            let (call, status, body) = api_with_station(
                &server,
                &mut ws,
                "POST",
                &format!("/api/v1/stations/{id}/certificates/renew"),
                None,
                action,
                json!({"status": "Accepted"}),
            )
            .await;
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(body["action"], action, "{what}");
            assert_eq!(call["requestedMessage"], requested, "{what}");

            // The station answers the trigger with a CSR; the issued certificate is listed.
            sign_and_install(&mut ws, id, subprotocol).await;
            let listed = eventually(|| async {
                let page = server
                    .admin("GET", &format!("/api/v1/stations/{id}/certificates"), None, 200)
                    .await;
                (page["items"][0]["status"] == "Installed").then_some(page)
            })
            .await;
            assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{what}: {listed}");
            assert!(listed["items"][0]["certificatePem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE"));
            close_any(ws).await;
        }
        // Edges: no token, unknown station, offline station.
        let (status, _) = server
            .api("POST", "/api/v1/stations/CP-M16/certificates/renew", None, None)
            .await;
        assert_eq!(status, 401, "{backend}");
        let (status, body) = server
            .api(
                "POST",
                "/api/v1/stations/NOPE/certificates/renew",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, 404, "{backend}: {body}");
        eventually(|| async { server.state.registry.get("CP-M16").is_none().then_some(()) }).await;
        let (status, body) = server
            .api(
                "POST",
                "/api/v1/stations/CP-M16/certificates/renew",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("STATION_OFFLINE")),
            "{backend}: {body}"
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a03_sweep_triggers_renewal_of_expiring_certificates() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        for (id, subprotocol) in [("CP-RN16", "ocpp1.6"), ("CP-RN201", "ocpp2.0.1")] {
            let what = format!("{backend} {subprotocol}");
            let mut ws = connect(&server.ws_url(id), subprotocol, None).await.unwrap();
            boot_any(&mut ws, subprotocol).await;
            sign_and_install(&mut ws, id, subprotocol).await;
            eventually(|| async { (issued(&server, id).await[0].status == "Installed").then_some(()) }).await;

            // Today the certificate (365 days) is not within the 30-day window...
            let now = chrono::Utc::now();
            let due = central_system::certificates::sweep_once(&server.state, now)
                .await
                .unwrap();
            assert!(!due.contains(&id.to_string()), "{what}: {due:?}");
            // ...340 days from now it is: the sweep asks the station for a new CSR.
            let later = now + chrono::Duration::days(340);
            let action = if subprotocol == "ocpp1.6" {
                "ExtendedTriggerMessage"
            } else {
                "TriggerMessage"
            };
            let sweep = central_system::certificates::sweep_once(&server.state, later);
            let station = answer_call(&mut ws, action, json!({"status": "Accepted"}));
            let (due, call) = tokio::join!(sweep, station);
            assert!(due.unwrap().contains(&id.to_string()), "{what}");
            assert!(
                call["requestedMessage"].as_str().unwrap().starts_with("Sign"),
                "{what}: {call}"
            );

            // The station sends its new CSR but refuses the certificate: it is recorded as
            // Rejected, the installed one stays the latest, and the next sweep asks again.
            let (pem, _) = csr(id, ORG);
            let answer = call_any(&mut ws, "renew", "SignCertificate", json!({"csr": pem})).await;
            assert_eq!(answer["status"], "Accepted", "{what}: {answer}");
            answer_call(&mut ws, "CertificateSigned", json!({"status": "Rejected"})).await;
            eventually(|| async { (issued(&server, id).await[0].status == "Rejected").then_some(()) }).await;
            let statuses: Vec<String> = issued(&server, id).await.into_iter().map(|c| c.status).collect();
            assert_eq!(statuses, ["Rejected", "Installed"], "{what}");
            let sweep = central_system::certificates::sweep_once(&server.state, later);
            let station = answer_call(&mut ws, action, json!({"status": "Accepted"}));
            let (due, _) = tokio::join!(sweep, station);
            assert!(due.unwrap().contains(&id.to_string()), "{what}: asked again");
            close_any(ws).await;
        }
        server.stop_and_clean().await;
    }
}
