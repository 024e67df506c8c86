//! The simulator against our central system, over real sockets, for both versions and both
//! storage backends: a full session (the shipped scenarios), remote start and stop, a
//! reservation, a reset with reconnect, and the offline queue replayed across a simulator
//! restart with no transaction data lost or duplicated. Then against the independent Python
//! central system (`tests/python/csms.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use chrono::{DateTime, Utc};
use firmware_sim::charger::{self, Control, Event, Handle};
use firmware_sim::scenario;
use firmware_sim::spec::StationSpec;
use ocpp::Version;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use support::*;
use tokio::sync::broadcast;

const VERSIONS: [Version; 2] = [Version::V16, Version::V201];

fn base_url(server: &TestServer) -> String {
    server.ws_url("").trim_end_matches('/').to_string()
}

/// A station with test-speed timing.
fn spec(server: &TestServer, id: &str, version: Version) -> StationSpec {
    let mut s = StationSpec::new(id, version, &base_url(server));
    s.timing.meter_interval = 1;
    s.timing.reconnect_min_ms = 100;
    s.timing.reconnect_max_ms = 1000;
    s.timing.call_timeout = 10;
    s.timing.step_secs = 0.2;
    s.timing.reboot_ms = 200;
    s
}

/// Waits for the first event `pred` accepts; panics with the events seen on timeout.
async fn expect(rx: &mut broadcast::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(e)) => seen.push(format!("{e:?}")),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("{what}: events closed ({e})"),
            Err(_) => panic!("{what}: timed out; saw:\n{}", seen.join("\n")),
        }
    }
}

fn no_violations(rx: &mut broadcast::Receiver<Event>) {
    while let Ok(e) = rx.try_recv() {
        if let Event::Violation(v) = e {
            panic!("protocol violation: {v}");
        }
    }
}

async fn boot(spec: StationSpec) -> (Handle, broadcast::Receiver<Event>, broadcast::Receiver<Event>) {
    let (handle, mut rx) = charger::spawn(spec).unwrap();
    let watch = rx.resubscribe();
    expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
    (handle, rx, watch)
}

async fn add_token(server: &TestServer, token: &str) {
    server.accept_token(token).await;
}

async fn command(server: &TestServer, station: &str, command: &str, body: Value) -> Value {
    let (status, answer) = server
        .api(
            "POST",
            &format!("/api/v1/stations/{station}/commands/{command}"),
            Some(Role::Operator),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{command}: {answer}");
    answer["response"].clone()
}

/// The ended transactions of a station once `n` of them have ended.
async fn ended(server: &TestServer, station: &str, n: usize) -> Vec<Value> {
    eventually(|| async {
        server.flush().await;
        let all = transactions(server, station).await;
        let done: Vec<Value> = all.into_iter().filter(|t| !t["endedAt"].is_null()).collect();
        (done.len() >= n).then_some(done)
    })
    .await
}

fn assert_energy_consistent(t: &Value) {
    let (start, stop, energy) = (
        t["meterStartWh"].as_i64().unwrap(),
        t["meterStopWh"].as_i64().unwrap(),
        t["energyWh"].as_i64().unwrap(),
    );
    assert_eq!(energy, stop - start, "{t}");
    assert!(energy > 0, "energy flowed: {t}");
}

#[tokio::test]
async fn shipped_full_session_scenarios_pass_against_our_central_system() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("firmware-sim/scenarios");
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        add_token(&server, "SCN-TAG").await;
        for (file, station) in [
            ("v16-full-session.toml", "SCN-16-SESSION"),
            ("v201-full-session.toml", "SCN-201-SESSION"),
        ] {
            let s = scenario::load(&dir.join(file), Some(&base_url(&server))).unwrap();
            let report = scenario::execute(s, false).await.unwrap();
            assert!(report.passed(), "{backend} {file}:\n{}", report.render());
            let done = ended(&server, station, 1).await;
            assert_eq!(done.len(), 1, "{backend} {file}: {done:?}");
            assert_energy_consistent(&done[0]);
            // 5 s at 11 kW is about 15 Wh.
            let energy = done[0]["energyWh"].as_i64().unwrap();
            assert!((8..=40).contains(&energy), "{backend} {file}: {energy} Wh");
            assert_eq!(done[0]["stopReason"], "Local", "{backend} {file}");
        }
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn remote_start_and_stop_through_the_operator_api() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        add_token(&server, "REMOTE-TAG").await;
        for version in VERSIONS {
            let id = format!("SIM-REMOTE-{}", version.label());
            let (station, mut rx, mut watch) = boot(spec(&server, &id, version)).await;
            station.send(Control::Plug(1));
            let answer = command(
                &server,
                &id,
                "remote-start",
                json!({"idToken": "REMOTE-TAG", "evseId": 1}),
            )
            .await;
            assert_eq!(answer["status"], "Accepted", "{answer}");
            expect(&mut rx, "remote start", |e| {
                matches!(e, Event::TransactionStarted(1, _))
            })
            .await;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let tx = eventually(|| async {
                server.flush().await;
                transactions(&server, &id).await.into_iter().next()
            })
            .await;
            let answer = command(&server, &id, "remote-stop", json!({"transactionId": tx["id"]})).await;
            assert_eq!(answer["status"], "Accepted", "{version:?} {answer} {tx}");
            let end = expect(&mut rx, "remote stop", |e| matches!(e, Event::TransactionEnded(1, _))).await;
            assert!(
                matches!(end, Event::TransactionEnded(_, ref r) if r == "Remote"),
                "{end:?}"
            );
            let done = ended(&server, &id, 1).await;
            assert_eq!(done[0]["stopReason"], "Remote");
            assert_eq!(done[0]["idToken"], "REMOTE-TAG");
            assert_energy_consistent(&done[0]);
            let readings = meter_rows(&server, &id).await;
            assert!(readings.len() >= 3, "periodic samples were stored: {}", readings.len());
            no_violations(&mut watch);
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn reservation_admits_only_its_token_and_expires() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        add_token(&server, "OWNER").await;
        add_token(&server, "INTRUDER").await;
        for version in VERSIONS {
            let id = format!("SIM-RESERVE-{}", version.label());
            let (station, mut rx, mut watch) = boot(spec(&server, &id, version)).await;
            let expires = (Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
            let answer = command(
                &server,
                &id,
                "reserve-now",
                json!({"idToken": "OWNER", "evseId": 1, "reservationId": 77, "expiresAt": expires}),
            )
            .await;
            assert_eq!(answer["status"], "Accepted", "{answer}");
            expect(
                &mut rx,
                "reserved",
                |e| matches!(e, Event::Status(1, s) if s == "Reserved"),
            )
            .await;
            // Reserving an occupied connector again under another id is refused.
            let answer = command(
                &server,
                &id,
                "reserve-now",
                json!({"idToken": "OTHER", "evseId": 1, "reservationId": 78, "expiresAt": expires}),
            )
            .await;
            assert_eq!(answer["status"], "Occupied", "{answer}");
            station.send(Control::Plug(1));
            station.send(Control::Present(1, "INTRUDER".into()));
            let refused = expect(&mut rx, "intruder refused", |e| matches!(e, Event::Refused(1, _))).await;
            assert!(format!("{refused:?}").contains("reserved"), "{refused:?}");
            station.send(Control::Present(1, "OWNER".into()));
            expect(&mut rx, "owner starts", |e| {
                matches!(e, Event::TransactionStarted(1, _))
            })
            .await;
            station.send(Control::Stop(1));
            expect(&mut rx, "stopped", |e| matches!(e, Event::TransactionEnded(1, _))).await;
            let done = ended(&server, &id, 1).await;
            assert_eq!(done[0]["reservationId"], 77, "{}", done[0]);
            station.send(Control::Unplug(1));
            expect(
                &mut rx,
                "available",
                |e| matches!(e, Event::Status(1, s) if s == "Available"),
            )
            .await;

            // A reservation lapses at its expiry.
            let soon = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
            let answer = command(
                &server,
                &id,
                "reserve-now",
                json!({"idToken": "OWNER", "evseId": 1, "reservationId": 79, "expiresAt": soon}),
            )
            .await;
            assert_eq!(answer["status"], "Accepted", "{answer}");
            expect(
                &mut rx,
                "reserved",
                |e| matches!(e, Event::Status(1, s) if s == "Reserved"),
            )
            .await;
            expect(
                &mut rx,
                "expired",
                |e| matches!(e, Event::Status(1, s) if s == "Available"),
            )
            .await;
            no_violations(&mut watch);
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn reset_reboots_reconnects_and_boots_again() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        add_token(&server, "RESET-TAG").await;
        for version in VERSIONS {
            let id = format!("SIM-RESET-{}", version.label());
            let (station, mut rx, mut watch) = boot(spec(&server, &id, version)).await;
            station.send(Control::Plug(1));
            station.send(Control::Present(1, "RESET-TAG".into()));
            expect(&mut rx, "started", |e| matches!(e, Event::TransactionStarted(1, _))).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let kind = if version == Version::V16 { "Hard" } else { "Immediate" };
            let answer = command(&server, &id, "reset", json!({ "type": kind })).await;
            assert_eq!(answer["status"], "Accepted", "{answer}");
            expect(&mut rx, "transaction ended by the reset", |e| {
                matches!(e, Event::TransactionEnded(1, _))
            })
            .await;
            expect(&mut rx, "rebooting", |e| matches!(e, Event::Rebooting)).await;
            expect(&mut rx, "disconnected", |e| matches!(e, Event::Disconnected(_))).await;
            expect(&mut rx, "reconnected", |e| matches!(e, Event::Connected)).await;
            expect(
                &mut rx,
                "booted again",
                |e| matches!(e, Event::Booted(s) if s == "Accepted"),
            )
            .await;
            let done = ended(&server, &id, 1).await;
            let reason = done[0]["stopReason"].as_str().unwrap_or_default().to_string();
            let want = if version == Version::V16 {
                "HardReset"
            } else {
                "ImmediateReset"
            };
            assert_eq!(reason, want, "{}", done[0]);
            assert_energy_consistent(&done[0]);
            let detail = server.admin("GET", &format!("/api/v1/stations/{id}"), None, 200).await;
            assert_eq!(detail["online"], true, "{detail}");
            no_violations(&mut watch);
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

/// A stored reading: transaction id, instant, measurand, phase, location.
type Row = (Option<i64>, DateTime<Utc>, String, String, String);

/// Every sampled value the central system stored for a station.
async fn meter_rows(server: &TestServer, station: &str) -> Vec<Row> {
    server.flush().await;
    let (status, page) = server
        .api(
            "GET",
            &format!("/api/v1/meter-values?stationId={station}&limit=500"),
            Some(Role::Operator),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let at = DateTime::parse_from_rfc3339(r["sampledAt"].as_str().unwrap()).unwrap();
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                r["transactionId"].as_i64(),
                at.with_timezone(&Utc),
                text("measurand"),
                text("phase"),
                text("location"),
            )
        })
        .collect()
}

/// Instants of every meterValue the station sent (replays counted once).
fn sent_instants(frames: &[String]) -> BTreeSet<DateTime<Utc>> {
    let mut out = BTreeSet::new();
    for f in frames {
        let Ok(v) = serde_json::from_str::<Value>(f) else {
            continue;
        };
        if v[0] != 2 {
            continue;
        }
        let p = &v[3];
        let values = p["meterValue"].as_array().or_else(|| p["transactionData"].as_array());
        for mv in values.into_iter().flatten() {
            if let Some(t) = mv["timestamp"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            {
                out.insert(t.with_timezone(&Utc));
            }
        }
        if let Some(extra) = p["transactionData"].as_array() {
            for mv in extra {
                if let Some(t) = mv["timestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                {
                    out.insert(t.with_timezone(&Utc));
                }
            }
        }
    }
    out
}

fn collect_frames(rx: &mut broadcast::Receiver<Event>, into: &mut Vec<String>) {
    while let Ok(e) = rx.try_recv() {
        match e {
            Event::Frame(true, text) => into.push(text),
            Event::Violation(v) => panic!("protocol violation: {v}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn offline_queue_survives_a_restart_and_replays_without_loss_or_duplicates() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        add_token(&server, "OFFLINE-TAG").await;
        for version in VERSIONS {
            let id = format!("SIM-OFFLINE-{}", version.label());
            let state = tempfile::tempdir().unwrap();
            let mut s = spec(&server, &id, version);
            s.state_dir = Some(state.path().to_path_buf());
            let mut frames = Vec::new();

            // Session 1 starts online (the token gets cached), then the link drops mid-session.
            let (station, mut rx, mut watch) = boot(s.clone()).await;
            station.send(Control::Plug(1));
            station.send(Control::Present(1, "OFFLINE-TAG".into()));
            expect(&mut rx, "started", |e| matches!(e, Event::TransactionStarted(1, _))).await;
            let start_answer = if version == Version::V16 {
                "StartTransaction"
            } else {
                "TransactionEvent"
            };
            expect(
                &mut rx,
                "start answered",
                |e| matches!(e, Event::Response(a, Ok(_)) if a == start_answer),
            )
            .await;
            station.send(Control::Offline);
            expect(&mut rx, "offline", |e| matches!(e, Event::Disconnected(_))).await;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            station.send(Control::Stop(1));
            expect(&mut rx, "stopped offline", |e| {
                matches!(e, Event::TransactionEnded(1, _))
            })
            .await;
            station.send(Control::Unplug(1));
            // Session 2 runs entirely offline, authorised from the cache.
            station.send(Control::Plug(1));
            station.send(Control::Present(1, "OFFLINE-TAG".into()));
            expect(&mut rx, "second start offline", |e| {
                matches!(e, Event::TransactionStarted(1, _))
            })
            .await;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            station.send(Control::Stop(1));
            expect(&mut rx, "second stop offline", |e| {
                matches!(e, Event::TransactionEnded(1, _))
            })
            .await;
            collect_frames(&mut watch, &mut frames);
            // The simulator restarts: only the state directory carries the queue over.
            station.shutdown().await.unwrap();
            collect_frames(&mut watch, &mut frames);
            assert!(
                std::fs::read_to_string(state.path().join("outbox.json"))
                    .unwrap()
                    .contains("meterValue"),
                "the queue was persisted"
            );
            assert_eq!(
                ended(&server, &id, 0).await.len(),
                0,
                "nothing ended reached the server while offline"
            );

            let (station, _rx, mut watch) = boot(s.clone()).await;
            // The replay ends with the second stop, so both ended transactions mean it is done.
            let done = ended(&server, &id, 2).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            collect_frames(&mut watch, &mut frames);
            let all = transactions(&server, &id).await;
            assert_eq!(all.len(), 2, "{backend} {version:?}: exactly two transactions: {all:?}");
            for t in &done {
                assert_energy_consistent(t);
                assert_eq!(t["stopReason"], "Local", "{t}");
            }
            let rows = meter_rows(&server, &id).await;
            let unique: BTreeSet<Row> = rows.iter().cloned().collect();
            assert_eq!(
                unique.len(),
                rows.len(),
                "{backend} {version:?}: no reading stored twice"
            );
            let stored: BTreeSet<DateTime<Utc>> = rows.iter().map(|r| r.1).collect();
            let sent = sent_instants(&frames);
            let missing: Vec<_> = sent.difference(&stored).collect();
            assert!(missing.is_empty(), "{backend} {version:?}: readings lost: {missing:?}");
            assert!(
                sent.len() >= 6,
                "{backend} {version:?}: samples were taken offline: {}",
                sent.len()
            );
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}

fn csms_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/csms.py")
}

/// The simulator against csms.py, a central system on the Python `ocpp` package (which
/// validates every frame against the official schemas): a Pending boot, a battery of
/// configuration, trigger and reservation calls, a remote start and stop, and a reset.
#[tokio::test]
async fn simulator_passes_an_independent_python_central_system() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for version in VERSIONS {
        let mut csms = Command::new(python())
            .arg(csms_script())
            .args([
                "--stay",
                "14",
                "--pending-boots",
                "1",
                "--exercise",
                "--remote-start",
                "RTAG",
                "--remote-stop-after",
                "2",
                "--reset-after",
                "10",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with tests/python/requirements.txt installed");
        let mut lines = BufReader::new(csms.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let port = first["port"].as_u64().expect("csms.py printed its port");
        let mut s = StationSpec::new("SIM-PY", version, &format!("ws://127.0.0.1:{port}/ocpp"));
        s.timing.meter_interval = 1;
        s.timing.reboot_ms = 200;
        s.timing.reconnect_min_ms = 100;
        let (station, mut rx) = charger::spawn(s).unwrap();
        let mut watch = rx.resubscribe();
        station.send(Control::Plug(1));
        expect(&mut rx, "pending", |e| matches!(e, Event::Booted(s) if s == "Pending")).await;
        expect(
            &mut rx,
            "accepted",
            |e| matches!(e, Event::Booted(s) if s == "Accepted"),
        )
        .await;
        expect(&mut rx, "remote start", |e| {
            matches!(e, Event::TransactionStarted(1, _))
        })
        .await;
        let end = expect(&mut rx, "remote stop", |e| matches!(e, Event::TransactionEnded(1, _))).await;
        assert!(
            matches!(end, Event::TransactionEnded(_, ref r) if r == "Remote"),
            "{end:?}"
        );
        expect(&mut rx, "reset", |e| matches!(e, Event::Rebooting)).await;
        expect(
            &mut rx,
            "booted after reset",
            |e| matches!(e, Event::Booted(s) if s == "Accepted"),
        )
        .await;
        station.shutdown().await.unwrap();
        let events: Vec<Value> = tokio::task::spawn_blocking(move || {
            lines
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str(&l).ok())
                .collect()
        })
        .await
        .unwrap();
        let status = csms.wait().unwrap();
        let errors: Vec<&Value> = events.iter().filter(|e| e["event"] == "error").collect();
        assert!(errors.is_empty(), "{version:?}: csms.py saw errors: {errors:?}");
        assert!(status.success(), "{version:?}: csms.py exit {status}");
        let answered: BTreeSet<&str> = events
            .iter()
            .filter(|e| e["event"] == "response")
            .filter_map(|e| e["action"].as_str())
            .collect();
        for action in ["GetConfiguration", "TriggerMessage", "ReserveNow", "Reset"] {
            let action = if version == Version::V201 && action == "GetConfiguration" {
                "GetVariables"
            } else {
                action
            };
            assert!(
                answered.contains(action),
                "{version:?}: {action} answered; got {answered:?}"
            );
        }
        let mut violations = Vec::new();
        while let Ok(e) = watch.try_recv() {
            if let Event::Violation(v) = e {
                violations.push(v);
            }
        }
        assert!(violations.is_empty(), "{version:?}: {violations:?}");
    }
}

/// Sends any call through the operator API and returns the station's answer.
async fn raw_call(server: &TestServer, station: &str, action: &str, payload: Value) -> Value {
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

/// The power (W) in the last meter sample the station sent.
fn last_power(frames: &[String]) -> Option<f64> {
    frames.iter().rev().find_map(|f| {
        let v: Value = serde_json::from_str(f).ok()?;
        let values = v[3]["meterValue"].as_array()?;
        values.iter().rev().find_map(|mv| {
            mv["sampledValue"].as_array()?.iter().find_map(|s| {
                (s["measurand"] == "Power.Active.Import").then(|| match &s["value"] {
                    Value::String(x) => x.parse().ok(),
                    other => other.as_f64(),
                })?
            })
        })
    })
}

/// Configuration, smart charging (the profile caps the power the EV draws), availability,
/// triggers, local lists, DataTransfer and a firmware update that reboots into the new version.
#[tokio::test]
async fn firmware_behaviour_under_operator_calls() {
    for (backend, url) in backends().await {
        firmware_behaviour_on(backend, url).await;
    }
}

async fn firmware_behaviour_on(backend: &'static str, url: Option<String>) {
    let server = TestServer::start(backend, url).await;
    add_token(&server, "FW-TAG").await;
    for version in VERSIONS {
        let v16 = version == Version::V16;
        let id = format!("SIM-FW-{}", version.label());
        let (station, mut rx, mut watch) = boot(spec(&server, &id, version)).await;
        let mut frames = Vec::new();

        // Configuration.
        if v16 {
            let a = raw_call(
                &server,
                &id,
                "ChangeConfiguration",
                json!({"key": "HeartbeatInterval", "value": "120"}),
            )
            .await;
            assert_eq!(a["status"], "Accepted");
            let a = raw_call(
                &server,
                &id,
                "ChangeConfiguration",
                json!({"key": "NumberOfConnectors", "value": "4"}),
            )
            .await;
            assert_eq!(a["status"], "Rejected");
            let a = raw_call(
                &server,
                &id,
                "ChangeConfiguration",
                json!({"key": "Nope", "value": "1"}),
            )
            .await;
            assert_eq!(a["status"], "NotSupported");
            let a = raw_call(
                &server,
                &id,
                "GetConfiguration",
                json!({"key": ["HeartbeatInterval", "Nope"]}),
            )
            .await;
            assert_eq!(a["configurationKey"][0]["value"], "120", "{a}");
            assert_eq!(a["unknownKey"], json!(["Nope"]));
        } else {
            let hb = json!({"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}});
            let a = raw_call(
                &server,
                &id,
                "SetVariables",
                json!({"setVariableData": [
                {"component": hb["component"], "variable": hb["variable"], "attributeValue": "120"},
                {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}, "attributeValue": "1"}]}),
            )
            .await;
            assert_eq!(a["setVariableResult"][0]["attributeStatus"], "Accepted", "{a}");
            assert_eq!(a["setVariableResult"][1]["attributeStatus"], "UnknownComponent", "{a}");
            let a = raw_call(&server, &id, "GetVariables", json!({"getVariableData": [hb]})).await;
            assert_eq!(a["getVariableResult"][0]["attributeValue"], "120", "{a}");
        }

        // Clock-aligned readings once an aligned interval is set.
        let aligned = |value: &str| {
            if v16 {
                (
                    "ChangeConfiguration",
                    json!({"key": "ClockAlignedDataInterval", "value": value}),
                )
            } else {
                (
                    "SetVariables",
                    json!({"setVariableData": [{"component": {"name": "AlignedDataCtrlr"},
                    "variable": {"name": "Interval"}, "attributeValue": value}]}),
                )
            }
        };
        let (action, payload) = aligned("1");
        raw_call(&server, &id, action, payload).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        collect_frames(&mut watch, &mut frames);
        assert!(
            frames.iter().any(|f| f.contains("Sample.Clock")),
            "{version:?}: clock-aligned MeterValues"
        );
        let (action, payload) = aligned("0");
        raw_call(&server, &id, action, payload).await;

        // A transaction, then a profile that caps it at 2 kW.
        station.send(Control::Plug(1));
        station.send(Control::Present(1, "FW-TAG".into()));
        let started = expect(&mut rx, "started", |e| matches!(e, Event::TransactionStarted(1, _))).await;
        let Event::TransactionStarted(_, tx_id) = started else {
            unreachable!()
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        collect_frames(&mut watch, &mut frames);
        assert!(
            last_power(&frames).unwrap_or(0.0) > 10_000.0,
            "charging at the EV's 11 kW first"
        );
        let schedule =
            json!({"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2000.0}]});
        let a = if v16 {
            raw_call(
                &server,
                &id,
                "SetChargingProfile",
                json!({"connectorId": 1, "csChargingProfiles": {
                "chargingProfileId": 5, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative", "chargingSchedule": schedule}}),
            )
            .await
        } else {
            let mut s = schedule.clone();
            s["id"] = json!(1);
            raw_call(
                &server,
                &id,
                "SetChargingProfile",
                json!({"evseId": 1, "chargingProfile": {
                "id": 5, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "transactionId": tx_id,
                "chargingProfileKind": "Relative", "chargingSchedule": [s]}}),
            )
            .await
        };
        assert_eq!(a["status"], "Accepted", "{a}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        collect_frames(&mut watch, &mut frames);
        let power = last_power(&frames).unwrap();
        assert!(
            (1900.0..=2000.0).contains(&power),
            "{version:?}: the profile caps the power: {power}"
        );
        let a = if v16 {
            raw_call(
                &server,
                &id,
                "GetCompositeSchedule",
                json!({"connectorId": 1, "duration": 600}),
            )
            .await
        } else {
            raw_call(
                &server,
                &id,
                "GetCompositeSchedule",
                json!({"evseId": 1, "duration": 600}),
            )
            .await
        };
        let periods = if v16 {
            &a["chargingSchedule"]["chargingSchedulePeriod"]
        } else {
            &a["schedule"]["chargingSchedulePeriod"]
        };
        assert_eq!(periods[0]["limit"], 2000.0, "{a}");

        // Availability is Scheduled during the transaction and applies when it ends.
        let a = if v16 {
            raw_call(
                &server,
                &id,
                "ChangeAvailability",
                json!({"connectorId": 1, "type": "Inoperative"}),
            )
            .await
        } else {
            raw_call(
                &server,
                &id,
                "ChangeAvailability",
                json!({"operationalStatus": "Inoperative", "evse": {"id": 1}}),
            )
            .await
        };
        assert_eq!(a["status"], "Scheduled", "{a}");
        station.send(Control::Stop(1));
        station.send(Control::Unplug(1));
        expect(
            &mut rx,
            "unavailable",
            |e| matches!(e, Event::Status(1, s) if s == "Unavailable"),
        )
        .await;
        let a = if v16 {
            raw_call(
                &server,
                &id,
                "ChangeAvailability",
                json!({"connectorId": 0, "type": "Operative"}),
            )
            .await
        } else {
            raw_call(
                &server,
                &id,
                "ChangeAvailability",
                json!({"operationalStatus": "Operative"}),
            )
            .await
        };
        assert_eq!(a["status"], "Accepted", "{a}");
        expect(
            &mut rx,
            "available",
            |e| matches!(e, Event::Status(1, s) if s == "Available"),
        )
        .await;

        // Trigger, local list, DataTransfer.
        let a = raw_call(&server, &id, "TriggerMessage", json!({"requestedMessage": "Heartbeat"})).await;
        assert_eq!(a["status"], "Accepted");
        // After an accepted boot, 2.0.1 refuses a triggered BootNotification (F06.FR.17); 1.6
        // sends one.
        let a = raw_call(
            &server,
            &id,
            "TriggerMessage",
            json!({"requestedMessage": "BootNotification"}),
        )
        .await;
        assert_eq!(a["status"], if v16 { "Accepted" } else { "Rejected" }, "{a}");
        let list = if v16 {
            json!({"listVersion": 3, "updateType": "Full", "localAuthorizationList": [{"idTag": "LOCAL", "idTagInfo": {"status": "Accepted"}}]})
        } else {
            json!({"versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
                {"idToken": {"idToken": "LOCAL", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}]})
        };
        assert_eq!(
            raw_call(&server, &id, "SendLocalList", list).await["status"],
            "Accepted"
        );
        let a = raw_call(&server, &id, "GetLocalListVersion", json!({})).await;
        assert_eq!(a[if v16 { "listVersion" } else { "versionNumber" }], 3, "{a}");
        let a = raw_call(&server, &id, "DataTransfer", json!({"vendorId": "com.example.other"})).await;
        assert_eq!(a["status"], "UnknownVendorId");

        // Firmware update: the status sequence, then a reboot into the new version.
        let now = Utc::now().to_rfc3339();
        let a = if v16 {
            raw_call(
                &server,
                &id,
                "UpdateFirmware",
                json!({"location": "https://fw.example/sim-9.9.bin", "retrieveDate": now}),
            )
            .await
        } else {
            raw_call(
                &server,
                &id,
                "UpdateFirmware",
                json!({"requestId": 8, "firmware": {
                "location": "https://fw.example/sim-9.9.bin", "retrieveDateTime": now}}),
            )
            .await
        };
        assert!(v16 || a["status"] == "Accepted", "{a}");
        expect(&mut rx, "rebooting", |e| matches!(e, Event::Rebooting)).await;
        expect(&mut rx, "booted", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
        collect_frames(&mut watch, &mut frames);
        let statuses: Vec<String> = frames
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(f).ok())
            .filter(|v| v[2] == "FirmwareStatusNotification")
            .map(|v| v[3]["status"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            statuses,
            ["Downloading", "Downloaded", "Installing", "Installed"],
            "{version:?}"
        );
        let boot = frames.iter().rev().find(|f| f.contains("BootNotification")).unwrap();
        assert!(boot.contains("sim-9"), "{version:?}: boots the new firmware: {boot}");
        station.shutdown().await.unwrap();
    }
    server.stop_and_clean().await;
}

/// Security profiles from the simulator's side: 1 (Basic over ws), 2 (Basic over wss with a
/// custom CA) and 3 (a client certificate), each refused with wrong credentials.
#[tokio::test]
async fn security_profiles_one_two_and_three() {
    for (backend, url) in backends().await {
        security_profiles_on(backend, url).await;
    }
}

async fn security_profiles_on(backend: &'static str, url: Option<String>) {
    use support::pki::Pki;
    let pki = Pki::new();
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.pem", &pki.ca.pem());
    let client = pki.client("SIM-SP3");
    let (client_cert, client_key) = (
        write("client.pem", &client.cert_pem),
        write("client-key.pem", &client.key_pem),
    );
    let stranger = pki.client("SOMEONE-ELSE");
    let (stranger_cert, stranger_key) = (
        write("other.pem", &stranger.cert_pem),
        write("other-key.pem", &stranger.key_pem),
    );
    const PASSWORD: &str = "s3cret-Station-pass!";

    async fn outcome(s: StationSpec) -> Result<(), String> {
        let (station, mut rx) = charger::spawn(s).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match rx.recv().await {
                    Ok(Event::Booted(status)) => return Ok(status),
                    Ok(Event::Disconnected(why)) if why.starts_with("connect failed") => return Err(why),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        station.shutdown().await.unwrap();
        match result {
            Ok(s) if s == "Accepted" => Ok(()),
            Ok(s) => Err(format!("boot {s}")),
            Err(e) => Err(e),
        }
    }

    // Profile 1 and then profile 2 (TLS with the test CA).
    let mut first_url = Some(url);
    for tls in [false, true] {
        let db = match first_url.take() {
            Some(u) => u,
            None => fresh_url(backend).await,
        };
        let server = TestServer::start_with(backend, db, |c| {
            if tls {
                pki.configure(c, false);
            }
        })
        .await;
        // Registered through the store: the test's HTTP client speaks plain HTTP only.
        let station = central_system::store::stations::NewStation {
            id: "SIM-SP1".into(),
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
        let base = if tls {
            format!("wss://localhost:{}/ocpp", server.addr.port())
        } else {
            base_url(&server)
        };
        let mut s = StationSpec::new("SIM-SP1", Version::V16, &base);
        s.timing.reconnect_min_ms = 100;
        s.security.ca = tls.then(|| ca.clone());
        s.security.password = Some("wrong-password-123456".into());
        let refused = outcome(s.clone()).await.unwrap_err();
        assert!(refused.contains("401"), "tls={tls}: wrong password: {refused}");
        s.security.password = Some(PASSWORD.into());
        outcome(s.clone())
            .await
            .unwrap_or_else(|e| panic!("tls={tls}: right password: {e}"));
        if tls {
            s.security.ca = None;
            let untrusted = outcome(s).await.unwrap_err();
            assert!(
                untrusted.contains("TLS"),
                "a server the CA bundle does not vouch for: {untrusted}"
            );
        }
        server.stop_and_clean().await;
    }

    // Profile 3: the client certificate names the station.
    let server = TestServer::start_with(backend, fresh_url(backend).await, |c| pki.configure(c, true)).await;
    let base = format!("wss://localhost:{}/ocpp", server.addr.port());
    let mut s = StationSpec::new("SIM-SP3", Version::V201, &base);
    s.timing.reconnect_min_ms = 100;
    s.security.ca = Some(ca.clone());
    s.security.client_cert = Some(client_cert);
    s.security.client_key = Some(client_key);
    outcome(s.clone()).await.expect("profile 3 with its own certificate");
    s.security.client_cert = Some(stranger_cert);
    s.security.client_key = Some(stranger_key);
    let refused = outcome(s).await.unwrap_err();
    assert!(refused.contains("403"), "another station's certificate: {refused}");
    server.stop_and_clean().await;
}
