//! The simulator as the station side of OCPP security against our central system, over real
//! sockets, for both versions and both storage backends: it gets its certificate signed
//! (A02 on request, A03 by itself before the certificate ends) and reconnects with it under
//! security profile 3; it takes a rotated password (A01) and reconnects with it; it refuses a
//! CertificateSigned that does not fit its key; it answers CustomerInformation (N09/N10); and
//! a fleet spreads over two central-system URLs round robin.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use central_system::ocpp_ws::registry::CallOutcome;
use firmware_sim::charger::{self, Control, Event, Handle};
use firmware_sim::spec::StationSpec;
use ocpp::Version;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::pki::Pki;
use support::*;
use tokio::sync::broadcast;

const VERSIONS: [Version; 2] = [Version::V16, Version::V201];
const PASSWORD: &str = "s3cret-Station-pass!";

/// A station with test-speed timing.
fn spec(url: &str, id: &str, version: Version) -> StationSpec {
    let mut s = StationSpec::new(id, version, url);
    s.timing.reconnect_min_ms = 100;
    s.timing.reconnect_max_ms = 1000;
    s.timing.call_timeout = 10;
    s.timing.reboot_ms = 200;
    s
}

fn ws_base(server: &TestServer) -> String {
    server.ws_url("").trim_end_matches('/').to_string()
}

fn wss_base(server: &TestServer) -> String {
    format!("wss://localhost:{}/ocpp", server.addr.port())
}

/// Waits for the first event `pred` accepts; panics with the events seen on timeout.
async fn expect(rx: &mut broadcast::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(Event::Frame(..))) => {}
            Ok(Ok(e)) => seen.push(format!("{e:?}")),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("{what}: events closed ({e})"),
            Err(_) => panic!("{what}: timed out; saw:\n{}", seen.join("\n")),
        }
    }
}

fn security(what: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Security(s) if s.starts_with(what))
}

fn booted(e: &Event) -> bool {
    matches!(e, Event::Booted(s) if s == "Accepted")
}

/// Starts a station and waits for its accepted boot.
async fn boot(spec: StationSpec) -> (Handle, broadcast::Receiver<Event>) {
    let (handle, mut rx) = charger::spawn(spec).unwrap();
    expect(&mut rx, "boot", booted).await;
    (handle, rx)
}

/// Calls the station through the central system (in process: a TLS server's REST API speaks
/// TLS, which the test's HTTP client does not) and returns its CALLRESULT payload.
async fn station_call(server: &TestServer, id: &str, action: &str, payload: Value) -> Value {
    match central_system::ocpp_ws::commands::call(&server.state, id, action, payload)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
    {
        CallOutcome::Result(answer) => answer,
        other => panic!("{action}: {other:?}"),
    }
}

async fn profile_of(server: &TestServer, id: &str) -> Option<i64> {
    server
        .state
        .store
        .station(id)
        .await
        .unwrap()
        .and_then(|s| s.connected_security_profile)
}

/// Registers `id` with `PASSWORD` through the store.
async fn register(server: &TestServer, id: &str) {
    let station = central_system::store::stations::NewStation {
        id: id.into(),
        description: None,
        password_hash: Some(server.state.passwords.hash(PASSWORD.into()).await.unwrap()),
        registration_status: "Accepted".into(),
    };
    server
        .state
        .store
        .create_station(station, central_system::store::types::Ts::now())
        .await
        .unwrap();
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a02_simulator_gets_its_certificate_signed_and_moves_to_profile_3() {
    let pki = Pki::new();
    let files = tempfile::tempdir().unwrap();
    let ca = write(files.path(), "ca.pem", &pki.ca.pem());
    for (backend, url) in backends().await {
        // TLS with the server certificate only: the central system's own station CA is what
        // makes the certificate it issues acceptable.
        let server = TestServer::start_with(backend, url, |c| pki.configure(c, false)).await;
        for version in VERSIONS {
            let what = format!("{backend} {}", version.label());
            let id = format!("SIMSEC-A02-{}", version.label());
            register(&server, &id).await;
            let state = tempfile::tempdir().unwrap();
            let mut s = spec(&wss_base(&server), &id, version);
            s.security.ca = Some(ca.clone());
            s.security.password = Some(PASSWORD.into());
            s.state_dir = Some(state.path().to_path_buf());
            let (station, mut rx) = boot(s.clone()).await;
            assert_eq!(profile_of(&server, &id).await, Some(2), "{what}: TLS + Basic first");

            // The operator's renewal: TriggerMessage / ExtendedTriggerMessage, a genuine CSR,
            // CertificateSigned, installed.
            let (action, outcome) = central_system::certificates::trigger_renewal(&server.state, &id)
                .await
                .unwrap();
            assert!(
                matches!(&outcome, CallOutcome::Result(a) if a["status"] == "Accepted"),
                "{what}: {action} {outcome:?}"
            );
            expect(&mut rx, "installed", security("certificate installed")).await;
            let issued = eventually(|| async {
                let all = server.state.store.issued_certificates(&id, None, 10).await.unwrap();
                all.into_iter().find(|c| c.status == "Installed")
            })
            .await;
            let stored = std::fs::read_to_string(state.path().join("station-cert.pem")).unwrap();
            assert!(
                stored.starts_with(issued.certificate_pem.trim()),
                "{what}: the station keeps the certificate it was issued"
            );
            assert!(state.path().join("station-key.pem").exists(), "{what}");
            assert_eq!(profile_of(&server, &id).await, Some(2), "{what}: no upgrade on its own");

            // Nothing lower than the profile in force is taken.
            let refused = if version == Version::V16 {
                station_call(
                    &server,
                    &id,
                    "ChangeConfiguration",
                    json!({"key": "SecurityProfile", "value": "1"}),
                )
                .await
            } else {
                station_call(
                    &server,
                    &id,
                    "SetNetworkProfile",
                    json!({"configurationSlot": 1, "connectionData": {"ocppVersion": "OCPP20",
                        "ocppTransport": "JSON", "ocppCsmsUrl": ws_base(&server), "messageTimeout": 30,
                        "securityProfile": 1, "ocppInterface": "Wired0"}}),
                )
                .await
            };
            assert_eq!(refused["status"], "Rejected", "{what}: {refused}");

            // The upgrade to profile 3: 1.6 ChangeConfiguration SecurityProfile reconnects at
            // once; 2.0.1 A05: SetNetworkProfile, NetworkConfigurationPriority, Reset.
            if version == Version::V16 {
                let a = station_call(
                    &server,
                    &id,
                    "ChangeConfiguration",
                    json!({"key": "SecurityProfile", "value": "3"}),
                )
                .await;
                assert_eq!(a["status"], "Accepted", "{what}: {a}");
            } else {
                let a = station_call(
                    &server,
                    &id,
                    "SetNetworkProfile",
                    json!({"configurationSlot": 1, "connectionData": {"ocppVersion": "OCPP20",
                        "ocppTransport": "JSON", "ocppCsmsUrl": wss_base(&server), "messageTimeout": 30,
                        "securityProfile": 3, "ocppInterface": "Wired0"}}),
                )
                .await;
                assert_eq!(a["status"], "Accepted", "{what}: {a}");
                let priority = |value: &str| {
                    json!({"setVariableData": [{"component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "NetworkConfigurationPriority"}, "attributeValue": value}]})
                };
                let a = station_call(&server, &id, "SetVariables", priority("7,0")).await;
                assert_eq!(a["setVariableResult"][0]["attributeStatus"], "Rejected", "{what}: {a}");
                let a = station_call(&server, &id, "SetVariables", priority("1,0")).await;
                assert_eq!(a["setVariableResult"][0]["attributeStatus"], "Accepted", "{what}: {a}");
                let a = station_call(&server, &id, "Reset", json!({"type": "Immediate"})).await;
                assert_eq!(a["status"], "Accepted", "{what}: {a}");
                expect(&mut rx, "reboot", |e| matches!(e, Event::Rebooting)).await;
            }
            expect(
                &mut rx,
                "profile 3",
                |e| matches!(e, Event::Security(s) if s.starts_with("connected with")),
            )
            .await;
            let profile = eventually(|| async { profile_of(&server, &id).await.filter(|p| *p == 3) }).await;
            assert_eq!(profile, 3, "{what}");
            station.shutdown().await.unwrap();

            // A restart keeps the certificate and the profile (the state directory).
            let (station, _) = boot(s).await;
            assert_eq!(profile_of(&server, &id).await, Some(3), "{what}: after a restart");
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

/// A client certificate from the test CA for `cn`, valid for `days` more days.
fn short_lived(pki: &Pki, cn: &str, days: i64) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::from_unix_timestamp(chrono::Utc::now().timestamp()).unwrap();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &pki.ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn a03_simulator_renews_its_certificate_before_it_ends() {
    let pki = Pki::new();
    let files = tempfile::tempdir().unwrap();
    let ca = write(files.path(), "ca.pem", &pki.ca.pem());
    for (backend, url) in backends().await {
        // Client certificates from the test CA open profile 3, as do the ones the central
        // system issues.
        let server = TestServer::start_with(backend, url, |c| pki.configure(c, true)).await;
        for version in VERSIONS {
            let what = format!("{backend} {}", version.label());
            let id = format!("SIMSEC-A03-{}", version.label());
            let (cert, key) = short_lived(&pki, &id, 2);
            let state = tempfile::tempdir().unwrap();
            let mut s = spec(&wss_base(&server), &id, version);
            s.security.ca = Some(ca.clone());
            s.security.client_cert = Some(write(files.path(), &format!("{id}.pem"), &cert));
            s.security.client_key = Some(write(files.path(), &format!("{id}-key.pem"), &key));
            s.state_dir = Some(state.path().to_path_buf());
            let (station, mut rx) = charger::spawn(s).unwrap();
            // Two days left, renewal 30 days ahead: the station asks by itself after its boot,
            // installs the new certificate and proves it on a new profile-3 connection.
            expect(
                &mut rx,
                "renewal",
                security("certificate requested (the certificate nears"),
            )
            .await;
            expect(&mut rx, "installed", security("certificate installed")).await;
            expect(&mut rx, "reconnected", security("connected with new certificate")).await;
            expect(&mut rx, "reconnected", |e| matches!(e, Event::Connected)).await;
            let issued = eventually(|| async {
                let all = server.state.store.issued_certificates(&id, None, 10).await.unwrap();
                all.into_iter().find(|c| c.status == "Installed")
            })
            .await;
            let days = (issued.not_after.0 - chrono::Utc::now().timestamp_millis()) / 86_400_000;
            assert!(
                days > 300,
                "{what}: the new certificate is the central system's: {days} days"
            );
            let now_held = std::fs::read_to_string(state.path().join("station-cert.pem")).unwrap();
            assert_ne!(now_held, cert, "{what}");
            let profile = eventually(|| async { profile_of(&server, &id).await.filter(|p| *p == 3) }).await;
            assert_eq!(profile, 3, "{what}");
            // One renewal, not a loop.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let all = server.state.store.issued_certificates(&id, None, 10).await.unwrap();
            assert_eq!(all.len(), 1, "{what}");
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a01_simulator_takes_a_rotated_password_and_reconnects_with_it() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        for version in VERSIONS {
            let what = format!("{backend} {}", version.label());
            let id = format!("SIMSEC-A01-{}", version.label());
            server
                .admin(
                    "POST",
                    "/api/v1/stations",
                    Some(json!({"id": id, "password": PASSWORD})),
                    201,
                )
                .await;
            let state = tempfile::tempdir().unwrap();
            let mut s = spec(&ws_base(&server), &id, version);
            s.security.password = Some(PASSWORD.into());
            s.state_dir = Some(state.path().to_path_buf());
            let (station, mut rx) = boot(s.clone()).await;

            // The operator rotates; the central system generates the password, the station
            // (SetVariables BasicAuthPassword / ChangeConfiguration AuthorizationKey in hex)
            // accepts it and reconnects with it.
            let body = server
                .admin("POST", &format!("/api/v1/stations/{id}/password-rotation"), None, 200)
                .await;
            assert_eq!(
                (body["status"].as_str(), body["pending"].as_bool()),
                (Some("Accepted"), Some(true)),
                "{what}: {body}"
            );
            let new_password = body["password"].as_str().unwrap().to_string();
            expect(&mut rx, "password", security("password changed")).await;
            expect(&mut rx, "reconnected", security("connected with new password")).await;
            let detail = eventually(|| async {
                let (_, d) = server
                    .api("GET", &format!("/api/v1/stations/{id}"), Some(Role::Admin), None)
                    .await;
                (d["passwordRotationPending"] == false).then_some(d)
            })
            .await;
            assert!(detail["connectedAt"].is_string(), "{what}: {detail}");
            // The old password is dropped by the central system, the new one opens the door.
            let old = connect(&server.ws_url(&id), version.subprotocol(), Some((&id, PASSWORD))).await;
            assert_eq!(old.as_ref().err().and_then(refused_status), Some(401), "{what}");
            station.shutdown().await.unwrap();

            // A restart from the same state directory uses the new password, not the file's.
            let (station, _) = boot(s).await;
            station.shutdown().await.unwrap();
            let saved = std::fs::read_to_string(state.path().join("network.json")).unwrap();
            let saved: Value = serde_json::from_str(&saved).unwrap();
            assert_eq!(saved["password"], new_password.as_str(), "{what}");

            // A password the version cannot carry is refused by the station itself.
            let mut s = spec(&ws_base(&server), &id, version);
            s.security.password = Some(new_password.clone());
            let (station, _) = boot(s).await;
            let (status, answer) = if version == Version::V16 {
                let a = call_as_admin(
                    &server,
                    &id,
                    "ChangeConfiguration",
                    json!({"key": "AuthorizationKey", "value": "41424344"}),
                )
                .await;
                (a["status"].clone(), a)
            } else {
                let a = call_as_admin(
                    &server,
                    &id,
                    "SetVariables",
                    json!({"setVariableData": [{"component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"}, "attributeValue": "short"}]}),
                )
                .await;
                (a["setVariableResult"][0]["attributeStatus"].clone(), a)
            };
            assert_eq!(status, "Rejected", "{what}: {answer}");
            // Write-only: never read back.
            if version == Version::V16 {
                let a = call_as_admin(&server, &id, "GetConfiguration", json!({"key": ["AuthorizationKey"]})).await;
                assert!(a["configurationKey"][0].get("value").is_none(), "{what}: {a}");
            } else {
                let a = call_as_admin(
                    &server,
                    &id,
                    "GetVariables",
                    json!({"getVariableData": [{"component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"}}]}),
                )
                .await;
                assert_eq!(a["getVariableResult"][0]["attributeStatus"], "Rejected", "{what}: {a}");
                assert!(a["getVariableResult"][0].get("attributeValue").is_none(), "{what}: {a}");
            }
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

/// The ids of the `RRL-` load stations a central system has seen, sorted.
async fn load_stations(server: &TestServer) -> Vec<String> {
    let mut ids: Vec<String> = server
        .state
        .store
        .stations(None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| id.starts_with("RRL-"))
        .collect();
    ids.sort();
    ids
}

/// Sends any call through the operator API and returns the station's answer.
async fn call_as_admin(server: &TestServer, station: &str, action: &str, payload: Value) -> Value {
    let (status, answer) = server
        .api(
            "POST",
            &format!("/api/v1/stations/{station}/calls"),
            Some(Role::Admin),
            Some(json!({"action": action, "payload": payload})),
        )
        .await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer["response"].clone()
}

#[tokio::test]
async fn certificate_signed_that_does_not_fit_the_key_is_rejected() {
    let pki = Pki::new();
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        for version in VERSIONS {
            let what = format!("{backend} {}", version.label());
            let id = format!("SIMSEC-BAD-{}", version.label());
            let mut s = spec(&ws_base(&server), &id, version);
            // An organization the central system does not sign for: its CSR is refused, so the
            // request stays pending with the station's key.
            s.security.organization = Some("Not The CA's Org".into());
            let (station, mut rx) = boot(s).await;
            let chain = |leaf: &str| format!("{leaf}{}", pki.ca.pem());
            let stranger = pki.client(&id);
            let signed = |chain: String| {
                let mut p = json!({"certificateChain": chain});
                if version == Version::V201 {
                    p["certificateType"] = json!("ChargingStationCertificate");
                }
                p
            };

            // Nothing requested: refused.
            let a = call_as_admin(&server, &id, "CertificateSigned", signed(chain(&stranger.cert_pem))).await;
            assert_eq!(a["status"], "Rejected", "{what}: {a}");
            expect(
                &mut rx,
                "refused",
                security("certificate refused: no certificate request"),
            )
            .await;

            // A request pending: a certificate for another key (right name, right CA) is refused.
            let trigger = if version == Version::V16 {
                (
                    "ExtendedTriggerMessage",
                    json!({"requestedMessage": "SignChargePointCertificate"}),
                )
            } else {
                (
                    "TriggerMessage",
                    json!({"requestedMessage": "SignChargingStationCertificate"}),
                )
            };
            let a = call_as_admin(&server, &id, trigger.0, trigger.1).await;
            assert_eq!(a["status"], "Accepted", "{what}: {a}");
            expect(
                &mut rx,
                "CSR refused by the central system",
                |e| matches!(e, Event::Response(a, Ok(p)) if a == "SignCertificate" && p["status"] == "Rejected"),
            )
            .await;
            let a = call_as_admin(&server, &id, "CertificateSigned", signed(chain(&stranger.cert_pem))).await;
            assert_eq!(a["status"], "Rejected", "{what}: {a}");
            if version == Version::V201 {
                assert_eq!(a["statusInfo"]["reasonCode"], "InvalidCertificate", "{what}: {a}");
            }
            expect(
                &mut rx,
                "mismatch",
                security("certificate refused: the certificate does not match"),
            )
            .await;
            // Garbage is refused too, and each refusal is reported as a security event.
            let a = call_as_admin(&server, &id, "CertificateSigned", signed("not a certificate".into())).await;
            assert_eq!(a["status"], "Rejected", "{what}: {a}");
            let expected = if version == Version::V16 {
                "InvalidChargePointCertificate"
            } else {
                "InvalidChargingStationCertificate"
            };
            let events = eventually(|| async {
                let all = server.state.store.security_events(Some(&id), None, 20).await.unwrap();
                let mine: Vec<_> = all.into_iter().filter(|e| e.source == "station").collect();
                (mine.len() >= 3).then_some(mine)
            })
            .await;
            assert!(events.iter().all(|e| e.event_type == expected), "{what}: {events:?}");
            assert!(
                events
                    .iter()
                    .any(|e| e.detail.as_deref().is_some_and(|d| d.contains("does not match"))),
                "{what}: {events:?}"
            );
            // The central system logged why it refused the CSR.
            let csms = server.state.store.security_events(Some(&id), None, 20).await.unwrap();
            assert!(
                csms.iter()
                    .any(|e| e.source == "csms" && e.event_type == "InvalidCsrOrganization"),
                "{what}"
            );
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn n09_n10_customer_information_reports_and_clears_local_data() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("CUST-1").await;
        let id = "SIMSEC-N09";
        let (station, mut rx) = boot(spec(&ws_base(&server), id, Version::V201)).await;
        station.send(Control::Plug(1));
        station.send(Control::Present(1, "CUST-1".into()));
        expect(&mut rx, "started", |e| matches!(e, Event::TransactionStarted(1, _))).await;

        let ask = |request_id: i64, report: bool, clear: bool| {
            json!({"requestId": request_id, "report": report, "clear": clear,
                "idToken": {"idToken": "CUST-1", "type": "ISO14443"}})
        };
        let notified = |request_id: i64| {
            let server = &server;
            async move {
                eventually(|| async {
                    server.flush().await;
                    let rows = server
                        .state
                        .store
                        .station_messages(id, Some("NotifyCustomerInformation"), None, 20)
                        .await
                        .unwrap();
                    rows.into_iter()
                        .map(|m| serde_json::from_str::<Value>(&m.payload).unwrap())
                        .find(|p| p["requestId"] == request_id)
                })
                .await
            }
        };
        let a = call_as_admin(&server, id, "CustomerInformation", ask(1, true, false)).await;
        assert_eq!(a["status"], "Accepted", "{backend}: {a}");
        let report = notified(1).await;
        let data = report["data"].as_str().unwrap();
        assert!(data.contains("authorization cache Accepted"), "{backend}: {data}");
        assert!(
            data.contains("transaction") && data.contains("EVSE 1"),
            "{backend}: {data}"
        );
        assert_eq!(
            (report["seqNo"].as_i64(), report["tbc"].as_bool()),
            (Some(0), Some(false))
        );

        let a = call_as_admin(&server, id, "CustomerInformation", ask(2, false, true)).await;
        assert_eq!(a["status"], "Accepted", "{backend}: {a}");
        let cleared = notified(2).await;
        assert!(
            cleared["data"].as_str().unwrap().contains("cache entry cleared"),
            "{backend}: {cleared}"
        );
        call_as_admin(&server, id, "CustomerInformation", ask(3, true, false)).await;
        let after = notified(3).await;
        assert!(!after["data"].as_str().unwrap().contains("cache"), "{backend}: {after}");

        // No customer named, or nothing to do.
        let a = call_as_admin(
            &server,
            id,
            "CustomerInformation",
            json!({"requestId": 4, "report": true, "clear": false}),
        )
        .await;
        assert_eq!(a["status"], "Invalid", "{backend}: {a}");
        let a = call_as_admin(&server, id, "CustomerInformation", ask(5, false, false)).await;
        assert_eq!(a["status"], "Rejected", "{backend}: {a}");
        station.shutdown().await.unwrap();
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a_fleet_spreads_over_two_central_systems_round_robin() {
    for (backend, url) in backends().await {
        let a = TestServer::start(backend, url).await;
        let b = TestServer::start(backend, fresh_url(backend).await).await;
        let urls = vec![ws_base(&a), ws_base(&b)];

        // `run` with a station file: stations without a URL alternate.
        let file = "[[station]]\nid = \"RR-1\"\n[[station]]\nid = \"RR-2\"\nversion = \"2.0.1\"\n\
                    [[station]]\nid = \"RR-3\"\n[[station]]\nid = \"RR-4\"\nversion = \"2.0.1\"\n";
        let specs = firmware_sim::spec::parse_file(file, &urls).unwrap();
        let mut handles = Vec::new();
        for mut s in specs {
            s.timing.reconnect_min_ms = 100;
            handles.push(boot(s).await.0);
        }
        let online = |server: &TestServer| {
            let mut ids = server.state.registry.station_ids();
            ids.sort();
            ids
        };
        assert_eq!(online(&a), ["RR-1", "RR-3"], "{backend}");
        assert_eq!(online(&b), ["RR-2", "RR-4"], "{backend}");
        for h in handles {
            h.shutdown().await.unwrap();
        }

        // `load`: the same assignment by station index, the flag repeated.
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            load: firmware_sim::load::LoadArgs,
        }
        let args = Cli::parse_from([
            "load",
            "--url",
            &urls[0],
            "--url",
            &urls[1],
            "--stations",
            "4",
            "--prefix",
            "RRL-",
            "--pattern",
            "idle",
            "--duration",
            "1",
            "--ramp",
            "100",
        ])
        .load;
        let summary = firmware_sim::load::run_here(&args).await.unwrap();
        assert_eq!(summary.booted, 4, "{backend}: {summary:?}");
        assert_eq!(load_stations(&a).await, ["RRL-00000", "RRL-00002"], "{backend}");
        assert_eq!(load_stations(&b).await, ["RRL-00001", "RRL-00003"], "{backend}");
        a.stop_and_clean().await;
        b.stop_and_clean().await;
    }
}
