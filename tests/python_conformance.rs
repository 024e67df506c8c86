//! Conformance against an independent charger: `tests/python/charger.py`, written on the
//! third-party Python `ocpp` package, which validates every frame it receives against the
//! official OCPP schemas.
//!
//! For each OCPP version (1.6, 2.0.1) and each storage backend, the charger plays its scripted
//! session (boot, authorize, one local transaction with N meter samples), then stays connected
//! while the test drives every typed command (and the generic `/calls` endpoint) through the REST
//! API, checking both the answer the API relays and that the charger saw the matching CALL.
//! A Reset ends the run; then the stored transactions, readings and station state are checked.
//!
//! Needs the packages of `tests/python/requirements.txt` in the interpreter [`python`] names
//! (`scripts/test` creates the `.venv` with them); without them the test fails (it never skips).
//!
//! The charger runs under `std::process` with a reader thread (the workspace's tokio has no
//! `process` feature); [`Charger`] kills it on drop, like `kill_on_drop`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::mpsc;

/// The token the charger authorizes with (created through the API first).
const TAG: &str = "TAG-0001";
/// `--meter-values`.
const METER_VALUES: i64 = 3;
/// charger.py: METER_START_WH, METER_STEP_WH.
const METER_START_WH: i64 = 1000;
const METER_STEP_WH: i64 = 500;
/// The local transaction: one step per sample and one more before the stop.
const LOCAL_STOP_WH: i64 = METER_START_WH + METER_STEP_WH * (METER_VALUES + 1);
/// The remote transaction: one sample, one more step before the stop.
const REMOTE_STOP_WH: i64 = LOCAL_STOP_WH + 2 * METER_STEP_WH;
/// Longest silence tolerated from the charger while waiting for an event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The reservation the test makes and cancels.
const RESERVATION_ID: i64 = 4242;

const INSTALL_HINT: &str =
    "run `scripts/test` once (it creates .venv with tests/python/requirements.txt), or set EVCS_TEST_PYTHON";

fn charger_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/charger.py")
}

/// Fails (never skips) when python3 or the packages charger.py needs are missing.
fn require_python() {
    let probe = "import ocpp.v16, ocpp.v201, websockets.asyncio.client";
    match Command::new(python()).args(["-c", probe]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{:?} cannot import the packages charger.py needs ({}); {INSTALL_HINT}",
            python(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "{:?} is not available ({e}); install Python 3 and {INSTALL_HINT}",
            python()
        ),
    }
}

/// A running charger.py and the JSON events it printed so far.
struct Charger {
    label: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    events: Vec<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Charger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Charger {
    fn spawn(label: String, version: &str, server: &TestServer, station: &str) -> Charger {
        let url = format!("ws://{}/ocpp", server.addr);
        let meter_values = METER_VALUES.to_string();
        let mut child = Command::new(python())
            .arg(charger_script())
            .args(["--version", version, "--url", &url, "--id", station, "--id-tag", TAG])
            .args(["--meter-values", &meter_values, "--stay", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 charger.py ({e}); {INSTALL_HINT}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Charger {
            label,
            child,
            lines,
            events: Vec::new(),
            stderr,
        }
    }

    /// What to show when an assertion about the charger fails.
    fn context(&self) -> String {
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        format!(
            "[{}] events so far:\n  {}\ncharger stderr:\n{}",
            self.label,
            events.join("\n  "),
            self.stderr.lock().unwrap()
        )
    }

    /// The next event, or None at the end of the output. Fails on an `error` event.
    async fn next(&mut self) -> Option<Value> {
        let line = match tokio::time::timeout(EVENT_TIMEOUT, self.lines.recv()).await {
            Ok(line) => line?,
            Err(_) => panic!("charger printed nothing for {EVENT_TIMEOUT:?}\n{}", self.context()),
        };
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("charger printed a non-JSON line {line:?}: {e}\n{}", self.context()));
        assert_ne!(
            event["event"],
            "error",
            "the charger reported an error: {line}\n{}",
            self.context()
        );
        self.events.push(event.clone());
        Some(event)
    }

    /// The first event at index `from` or later that matches; returns its index too.
    async fn wait_for(&mut self, from: usize, what: &str, matches: impl Fn(&Value) -> bool) -> (usize, Value) {
        if let Some(i) = (from..self.events.len()).find(|&i| matches(&self.events[i])) {
            return (i, self.events[i].clone());
        }
        while let Some(event) = self.next().await {
            if matches(&event) {
                return (self.events.len() - 1, event);
            }
        }
        panic!("the charger's output ended before {what}\n{}", self.context());
    }

    /// The first event named `name`.
    async fn event(&mut self, name: &str) -> Value {
        self.wait_for(0, name, |e| e["event"] == name).await.1
    }

    /// The payload of the first CALL of `action` the charger received.
    async fn call(&mut self, action: &str) -> Value {
        let what = format!("a {action} call");
        self.wait_for(0, &what, |e| e["event"] == "call" && e["action"] == action)
            .await
            .1["payload"]
            .clone()
    }

    /// Reads the rest of the output (failing on `error` events) and returns the exit status.
    async fn exit_code(&mut self) -> Option<i32> {
        while self.next().await.is_some() {}
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait for charger") {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "charger did not exit within 30 s after closing its output\n{}",
            self.context()
        );
    }
}

/// POSTs a typed command as an operator, expects 200 and returns the station's answer payload.
async fn command(server: &TestServer, station: &str, command: &str, body: Option<Value>, action: &str) -> Value {
    let path = format!("/api/v1/stations/{station}/commands/{command}");
    let (status, answer) = server.api("POST", &path, Some(Role::Operator), body).await;
    assert_eq!(status, 200, "{command}: {answer}");
    assert_eq!(answer["action"], action, "{command}: {answer}");
    answer["response"].clone()
}

/// POSTs the generic call endpoint, expects 200 and returns the station's answer payload.
async fn generic(server: &TestServer, station: &str, action: &str, payload: Value) -> Value {
    let path = format!("/api/v1/stations/{station}/calls");
    let (status, answer) = server
        .api(
            "POST",
            &path,
            Some(Role::Operator),
            Some(json!({"action": action, "payload": payload})),
        )
        .await;
    assert_eq!(status, 200, "{action}: {answer}");
    assert_eq!(answer["action"], action, "{action}: {answer}");
    answer["response"].clone()
}

async fn station_transactions(server: &TestServer, station: &str, status: Option<&str>) -> Vec<Value> {
    let mut path = format!("/api/v1/transactions?stationId={station}");
    if let Some(s) = status {
        path.push_str(&format!("&status={s}"));
    }
    let page = server.admin("GET", &path, None, 200).await;
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|t| t["id"].as_i64());
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_charger_v16() {
    require_python();
    for (backend, url) in backends().await {
        conformance("1.6", backend, url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_charger_v201() {
    require_python();
    for (backend, url) in backends().await {
        conformance("2.0.1", backend, url).await;
    }
}

async fn conformance(version: &str, backend: &'static str, url: Option<String>) {
    let started = Instant::now();
    let v16 = version == "1.6";
    let station = if v16 { "PY16-CP1" } else { "PY201-CP1" };
    let label = format!("{version} on {backend}");
    let owned = TestServer::start(backend, url).await;
    let server = &owned;
    server.accept_token(TAG).await;

    // The scripted session: boot, authorize, one local transaction.
    let mut charger = Charger::spawn(label.clone(), version, server, station);
    let connected = charger.event("connected").await;
    assert_eq!(
        connected["subprotocol"],
        if v16 { "ocpp1.6" } else { "ocpp2.0.1" },
        "{label}"
    );
    let booted = charger.event("booted").await;
    assert_eq!(booted["status"], "Accepted", "{label}: {booted}");
    assert_eq!(booted["interval"], 300, "{label}: {booted}");
    let authorized = charger.event("authorized").await;
    assert_eq!(authorized["status"], "Accepted", "{label}: {authorized}");
    let (local_start_at, local_start) = charger
        .wait_for(0, "the local transaction", |e| e["event"] == "transaction_started")
        .await;
    let stopped = charger.event("transaction_stopped").await;
    assert_eq!(stopped["reason"], "Local", "{label}: {stopped}");
    assert_eq!(stopped["transactionId"], local_start["transactionId"], "{label}");
    let done = charger.event("session_done").await;
    assert_eq!(done["energyWh"], LOCAL_STOP_WH - METER_START_WH, "{label}: {done}");

    let detail = server
        .admin("GET", &format!("/api/v1/stations/{station}"), None, 200)
        .await;
    assert_eq!(detail["online"], true, "{label}: {detail}");
    assert_eq!(detail["ocppVersion"], version, "{label}: {detail}");
    assert_eq!(detail["vendor"], "PyVendor", "{label}: {detail}");
    assert_eq!(detail["model"], "PyModel", "{label}: {detail}");

    // Remote start, then remote stop of the transaction it produced.
    let (start_action, stop_action) = if v16 {
        ("RemoteStartTransaction", "RemoteStopTransaction")
    } else {
        ("RequestStartTransaction", "RequestStopTransaction")
    };
    let answer = command(
        server,
        station,
        "remote-start",
        Some(json!({"idToken": TAG, "evseId": 1})),
        start_action,
    )
    .await;
    assert_eq!(answer["status"], "Accepted", "{label} remote-start: {answer}");
    let call = charger.call(start_action).await;
    if v16 {
        assert_eq!(call["idTag"], TAG, "{label}: {call}");
        assert_eq!(call["connectorId"], 1, "{label}: {call}");
    } else {
        assert_eq!(call["idToken"]["idToken"], TAG, "{label}: {call}");
        assert_eq!(call["evseId"], 1, "{label}: {call}");
        assert!(
            call["remoteStartId"].as_i64().is_some_and(|id| id > 0),
            "{label}: {call}"
        );
    }
    let (remote_start_at, remote_start) = charger
        .wait_for(local_start_at + 1, "the remote transaction", |e| {
            e["event"] == "transaction_started"
        })
        .await;
    let remote = eventually(|| async move {
        station_transactions(server, station, Some("Active"))
            .await
            .into_iter()
            .next()
    })
    .await;
    if v16 {
        assert_eq!(remote["id"], remote_start["transactionId"], "{label}: {remote}");
    } else {
        assert_eq!(
            remote["stationTransactionId"], remote_start["transactionId"],
            "{label}: {remote}"
        );
    }
    assert_eq!(remote["status"], "Active", "{label}: {remote}");
    assert_eq!(remote["idToken"], TAG, "{label}: {remote}");
    let remote_id = remote["id"].as_i64().expect("transaction id");
    let answer = command(
        server,
        station,
        "remote-stop",
        Some(json!({"transactionId": remote_id})),
        stop_action,
    )
    .await;
    assert_eq!(answer["status"], "Accepted", "{label} remote-stop: {answer}");
    let call = charger.call(stop_action).await;
    assert_eq!(call["transactionId"], remote_start["transactionId"], "{label}: {call}");
    let (_, stopped) = charger
        .wait_for(remote_start_at + 1, "the remote stop", |e| {
            e["event"] == "transaction_stopped"
        })
        .await;
    assert_eq!(stopped["reason"], "Remote", "{label}: {stopped}");

    // Unlock, availability.
    let answer = command(server, station, "unlock", Some(json!({"evseId": 1})), "UnlockConnector").await;
    assert_eq!(answer["status"], "Unlocked", "{label} unlock: {answer}");
    let call = charger.call("UnlockConnector").await;
    if v16 {
        assert_eq!(call, json!({"connectorId": 1}), "{label}");
    } else {
        assert_eq!(call, json!({"evseId": 1, "connectorId": 1}), "{label}");
    }
    let body = json!({"evseId": 1, "availability": "Operative"});
    let answer = command(server, station, "change-availability", Some(body), "ChangeAvailability").await;
    assert_eq!(answer["status"], "Accepted", "{label} change-availability: {answer}");
    let call = charger.call("ChangeAvailability").await;
    if v16 {
        assert_eq!(call, json!({"connectorId": 1, "type": "Operative"}), "{label}");
    } else {
        assert_eq!(
            call,
            json!({"operationalStatus": "Operative", "evse": {"id": 1}}),
            "{label}"
        );
    }

    // TriggerMessage: the charger answers, then sends the StatusNotification.
    let body = json!({"requestedMessage": "StatusNotification", "evseId": 1});
    let answer = command(server, station, "trigger-message", Some(body), "TriggerMessage").await;
    assert_eq!(answer["status"], "Accepted", "{label} trigger-message: {answer}");
    let call = charger.call("TriggerMessage").await;
    assert_eq!(call["requestedMessage"], "StatusNotification", "{label}: {call}");
    eventually(|| async move {
        server.flush().await;
        let frames = server
            .admin(
                "GET",
                &format!("/api/v1/stations/{station}/frames?limit=500"),
                None,
                200,
            )
            .await;
        let frames = frames["items"].as_array().cloned().unwrap_or_default();
        let id_of = |dir: &str, action: &str| {
            frames
                .iter()
                .filter(|f| {
                    f["direction"] == dir
                        && f["frame"]
                            .as_str()
                            .is_some_and(|t| t.contains(&format!("\"{action}\"")))
                })
                .filter_map(|f| f["id"].as_i64())
                .max()
        };
        let trigger = id_of("out", "TriggerMessage")?;
        (id_of("in", "StatusNotification")? > trigger).then_some(())
    })
    .await;

    // Reservation made and cancelled; the API records both.
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({"idToken": TAG, "evseId": 1, "reservationId": RESERVATION_ID, "expiresAt": expires});
    let answer = command(server, station, "reserve-now", Some(body), "ReserveNow").await;
    assert_eq!(answer["status"], "Accepted", "{label} reserve-now: {answer}");
    let call = charger.call("ReserveNow").await;
    if v16 {
        assert_eq!(call["reservationId"], RESERVATION_ID, "{label}: {call}");
        assert_eq!(call["idTag"], TAG, "{label}: {call}");
        assert_eq!(call["connectorId"], 1, "{label}: {call}");
    } else {
        assert_eq!(call["id"], RESERVATION_ID, "{label}: {call}");
        assert_eq!(call["idToken"]["idToken"], TAG, "{label}: {call}");
        assert_eq!(call["evseId"], 1, "{label}: {call}");
    }
    let reservation_status = || async move {
        let list = server
            .admin("GET", &format!("/api/v1/stations/{station}/reservations"), None, 200)
            .await;
        let list = list.as_array().cloned().unwrap_or_default();
        list.into_iter()
            .find(|r| r["reservationId"] == RESERVATION_ID)
            .map(|r| r["status"].clone())
    };
    assert_eq!(reservation_status().await, Some(json!("Accepted")), "{label}");
    let body = json!({"reservationId": RESERVATION_ID});
    let answer = command(server, station, "cancel-reservation", Some(body), "CancelReservation").await;
    assert_eq!(answer["status"], "Accepted", "{label} cancel-reservation: {answer}");
    let call = charger.call("CancelReservation").await;
    assert_eq!(call, json!({"reservationId": RESERVATION_ID}), "{label}");
    assert_eq!(reservation_status().await, Some(json!("Cancelled")), "{label}");

    // ClearCache without a body; DataTransfer to a vendor the charger does not know.
    let answer = command(server, station, "clear-cache", None, "ClearCache").await;
    assert_eq!(answer["status"], "Accepted", "{label} clear-cache: {answer}");
    assert_eq!(charger.call("ClearCache").await, json!({}), "{label}");
    let body = json!({"vendorId": "com.example.evcs", "messageId": "Ping", "data": "hello"});
    let answer = command(server, station, "data-transfer", Some(body), "DataTransfer").await;
    assert_eq!(answer["status"], "UnknownVendorId", "{label} data-transfer: {answer}");
    let call = charger.call("DataTransfer").await;
    assert_eq!(
        call,
        json!({"vendorId": "com.example.evcs", "messageId": "Ping", "data": "hello"}),
        "{label}"
    );

    if v16 {
        configuration_16(server, &mut charger, station, &label).await;
    } else {
        device_model_201(server, &mut charger, station, &label).await;
    }

    // Reset: the charger answers, drops the link and exits cleanly.
    let answer = command(server, station, "reset", Some(json!({})), "Reset").await;
    assert_eq!(answer["status"], "Accepted", "{label} reset: {answer}");
    let call = charger.call("Reset").await;
    assert_eq!(call["type"], if v16 { "Soft" } else { "OnIdle" }, "{label}: {call}");
    charger.event("reset").await;
    let code = charger.exit_code().await;
    assert_eq!(code, Some(0), "{label}: charger exit status\n{}", charger.context());
    let unsupported: Vec<&Value> = charger.events.iter().filter(|e| e["event"] == "unsupported").collect();
    assert!(
        unsupported.is_empty(),
        "{label}: the charger did not implement {unsupported:?}"
    );

    // What the backend stored.
    server.flush().await;
    let transactions = station_transactions(server, station, None).await;
    assert_eq!(transactions.len(), 2, "{label}: {transactions:?}");
    let local = &transactions[0];
    let remote = &transactions[1];
    if v16 {
        assert_eq!(local["id"], local_start["transactionId"], "{label}: {local}");
    } else {
        assert_eq!(
            local["stationTransactionId"], local_start["transactionId"],
            "{label}: {local}"
        );
    }
    assert_eq!(local["status"], "Ended", "{label}: {local}");
    assert_eq!(local["idToken"], TAG, "{label}: {local}");
    assert_eq!(local["evseId"], 1, "{label}: {local}");
    assert_eq!(local["meterStartWh"], METER_START_WH, "{label}: {local}");
    assert_eq!(local["meterStopWh"], LOCAL_STOP_WH, "{label}: {local}");
    assert_eq!(local["energyWh"], LOCAL_STOP_WH - METER_START_WH, "{label}: {local}");
    assert_eq!(local["stopReason"], "Local", "{label}: {local}");
    assert!(local["endedAt"].is_string(), "{label}: {local}");
    assert_eq!(remote["id"], remote_id, "{label}: {remote}");
    assert_eq!(remote["status"], "Ended", "{label}: {remote}");
    assert_eq!(remote["meterStartWh"], LOCAL_STOP_WH, "{label}: {remote}");
    assert_eq!(remote["meterStopWh"], REMOTE_STOP_WH, "{label}: {remote}");
    assert_eq!(remote["energyWh"], REMOTE_STOP_WH - LOCAL_STOP_WH, "{label}: {remote}");
    assert_eq!(remote["stopReason"], "Remote", "{label}: {remote}");

    let local_id = local["id"].as_i64().expect("id");
    let detail = server
        .admin("GET", &format!("/api/v1/transactions/{local_id}"), None, 200)
        .await;
    check_local_readings(&detail, local_id, v16, &label);

    // The station is offline now; its connector kept the last status the charger reported.
    let detail = eventually(|| async move {
        let detail = server
            .admin("GET", &format!("/api/v1/stations/{station}"), None, 200)
            .await;
        (detail["online"] == false).then_some(detail)
    })
    .await;
    let connectors = detail["connectors"].as_array().cloned().unwrap_or_default();
    let connector = connectors
        .iter()
        .find(|c| c["evseId"] == 1)
        .unwrap_or_else(|| panic!("{label}: no connector 1 in {detail}"));
    assert_eq!(connector["status"], "Available", "{label}: {detail}");
    if !v16 {
        assert_eq!(connector["connectorId"], 1, "{label}: {detail}");
    }

    owned.stop_and_clean().await;
    eprintln!(
        "python conformance {label}: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The local transaction's readings: every measurand in its normalised unit.
fn check_local_readings(detail: &Value, local_id: i64, v16: bool, label: &str) {
    let readings = detail["meterValues"].as_array().cloned().unwrap_or_default();
    assert!(!readings.is_empty(), "{label}: no readings in {detail}");
    let expected_unit = |measurand: &str| match measurand {
        "Energy.Active.Import.Register" => Some("Wh"),
        "Power.Active.Import" => Some("W"),
        "Current.Import" => Some("A"),
        "Voltage" => Some("V"),
        "SoC" => Some("Percent"),
        _ => None,
    };
    for r in &readings {
        assert_eq!(
            r["transactionId"], local_id,
            "{label}: reading of another transaction {r}"
        );
        let measurand = r["measurand"].as_str().unwrap_or_default();
        let unit = expected_unit(measurand).unwrap_or_else(|| panic!("{label}: unexpected measurand {r}"));
        assert_eq!(r["unit"], unit, "{label}: {r}");
    }
    let units: BTreeSet<&str> = readings.iter().filter_map(|r| r["unit"].as_str()).collect();
    assert_eq!(units, BTreeSet::from(["A", "Percent", "V", "W", "Wh"]), "{label}");
    let values = |measurand: &str| -> Vec<f64> {
        readings
            .iter()
            .filter(|r| r["measurand"] == measurand)
            .filter_map(|r| r["value"].as_f64())
            .collect()
    };
    let energy = values("Energy.Active.Import.Register");
    for step in 1..=METER_VALUES {
        let wh = (METER_START_WH + step * METER_STEP_WH) as f64;
        assert!(energy.contains(&wh), "{label}: no {wh} Wh sample among {energy:?}");
    }
    assert!(
        energy
            .iter()
            .all(|&wh| (METER_START_WH as f64..=LOCAL_STOP_WH as f64).contains(&wh)),
        "{label}: {energy:?}"
    );
    assert!(
        energy.contains(&(LOCAL_STOP_WH as f64)),
        "{label}: no final {LOCAL_STOP_WH} Wh reading among {energy:?}"
    );
    assert!(values("Power.Active.Import").iter().all(|&w| w == 11040.0), "{label}");
    assert!(values("Voltage").iter().all(|&v| v == 230.0), "{label}");
    // One full sample per periodic reading (charger.py: SoC = 20 + (Wh - 1000) / 50). A 2.0.1
    // charger also sends the last sample once more as a standalone MeterValues before the stop,
    // which the backend may or may not attribute to the transaction; anything else is a duplicate.
    let mut soc = values("SoC");
    soc.sort_by(f64::total_cmp);
    let mut expected: Vec<f64> = (1..=METER_VALUES)
        .map(|step| (20 + step * METER_STEP_WH / 50) as f64)
        .collect();
    if !v16 && soc.len() as i64 > METER_VALUES {
        expected.push(*expected.last().expect("samples"));
    }
    assert_eq!(soc, expected, "{label}: SoC readings");
    let phases: BTreeSet<&str> = readings
        .iter()
        .filter(|r| r["measurand"] == "Current.Import")
        .filter_map(|r| r["phase"].as_str())
        .collect();
    assert_eq!(phases, BTreeSet::from(["L1", "L2", "L3"]), "{label}");
    assert!(values("Current.Import").iter().all(|&a| a == 16.0), "{label}");
    let contexts: BTreeSet<&str> = readings
        .iter()
        .filter(|r| r["measurand"] == "SoC")
        .filter_map(|r| r["context"].as_str())
        .collect();
    assert_eq!(contexts, BTreeSet::from(["Sample.Periodic"]), "{label}");
}

/// 1.6: GetConfiguration / ChangeConfiguration, typed and through the generic endpoint.
async fn configuration_16(server: &TestServer, charger: &mut Charger, station: &str, label: &str) {
    let body = json!({"keys": ["HeartbeatInterval", "MeterValueSampleInterval", "NoSuchKey"]});
    let answer = command(server, station, "get-configuration", Some(body), "GetConfiguration").await;
    let call = charger.call("GetConfiguration").await;
    assert_eq!(
        call,
        json!({"key": ["HeartbeatInterval", "MeterValueSampleInterval", "NoSuchKey"]}),
        "{label}"
    );
    let keys = answer["configurationKey"].as_array().cloned().unwrap_or_default();
    let value = |keys: &[Value], key: &str| keys.iter().find(|k| k["key"] == key).map(|k| k["value"].clone());
    // The charger adopted the boot interval the backend sent.
    assert_eq!(
        value(&keys, "HeartbeatInterval"),
        Some(json!("300")),
        "{label}: {answer}"
    );
    assert_eq!(
        value(&keys, "MeterValueSampleInterval"),
        Some(json!("60")),
        "{label}: {answer}"
    );
    assert_eq!(answer["unknownKey"], json!(["NoSuchKey"]), "{label}: {answer}");

    let body = json!({"key": "MeterValueSampleInterval", "value": "30"});
    let answer = command(
        server,
        station,
        "change-configuration",
        Some(body),
        "ChangeConfiguration",
    )
    .await;
    assert_eq!(answer["status"], "Accepted", "{label}: {answer}");
    let call = charger.call("ChangeConfiguration").await;
    assert_eq!(
        call,
        json!({"key": "MeterValueSampleInterval", "value": "30"}),
        "{label}"
    );

    let answer = generic(
        server,
        station,
        "GetConfiguration",
        json!({"key": ["MeterValueSampleInterval"]}),
    )
    .await;
    let keys = answer["configurationKey"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        value(&keys, "MeterValueSampleInterval"),
        Some(json!("30")),
        "{label}: {answer}"
    );
}

/// 2.0.1: GetVariables / SetVariables, then GetBaseReport through the generic endpoint, whose
/// NotifyReport fills the device model the API shows.
async fn device_model_201(server: &TestServer, charger: &mut Charger, station: &str, label: &str) {
    let vars = json!([
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"component": {"name": "ChargingStation"}, "variable": {"name": "NoSuchVariable"}},
    ]);
    let answer = command(
        server,
        station,
        "get-variables",
        Some(json!({"variables": vars})),
        "GetVariables",
    )
    .await;
    let call = charger.call("GetVariables").await;
    assert_eq!(call, json!({"getVariableData": vars}), "{label}");
    let results = answer["getVariableResult"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{label}: {answer}");
    assert_eq!(results[0]["attributeStatus"], "Accepted", "{label}: {answer}");
    assert_eq!(results[0]["attributeValue"], "300", "{label}: {answer}");
    assert_eq!(results[1]["attributeStatus"], "UnknownVariable", "{label}: {answer}");

    let vars = json!([{"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"}, "attributeValue": "30"}]);
    let answer = command(
        server,
        station,
        "set-variables",
        Some(json!({"variables": vars})),
        "SetVariables",
    )
    .await;
    let call = charger.call("SetVariables").await;
    assert_eq!(call, json!({"setVariableData": vars}), "{label}");
    assert_eq!(
        answer["setVariableResult"][0]["attributeStatus"], "Accepted",
        "{label}: {answer}"
    );

    let answer = generic(
        server,
        station,
        "GetBaseReport",
        json!({"requestId": 77, "reportBase": "FullInventory"}),
    )
    .await;
    assert_eq!(answer["status"], "Accepted", "{label}: {answer}");
    let call = charger.call("GetBaseReport").await;
    assert_eq!(call, json!({"requestId": 77, "reportBase": "FullInventory"}), "{label}");

    let expected = [
        ("OCPPCommCtrlr", "HeartbeatInterval", "300", "ReadWrite", "integer"),
        ("SampledDataCtrlr", "TxUpdatedInterval", "30", "ReadWrite", "integer"),
        ("ChargingStation", "Model", "PyModel", "ReadOnly", "string"),
        ("ChargingStation", "VendorName", "PyVendor", "ReadOnly", "string"),
    ];
    let model = eventually(|| async move {
        server.flush().await;
        let model = server
            .admin("GET", &format!("/api/v1/stations/{station}/device-model"), None, 200)
            .await;
        (model.as_array().map_or(0, Vec::len) >= expected.len()).then_some(model)
    })
    .await;
    let rows = model.as_array().cloned().unwrap_or_default();
    for (component, variable, value, mutability, data_type) in expected {
        let row = rows
            .iter()
            .find(|r| r["component"] == component && r["variable"] == variable && r["attributeType"] == "Actual")
            .unwrap_or_else(|| panic!("{label}: no {component}/{variable} in the device model {model}"));
        assert_eq!(row["value"], value, "{label}: {row}");
        assert_eq!(row["mutability"], mutability, "{label}: {row}");
        assert_eq!(row["dataType"], data_type, "{label}: {row}");
    }
}
