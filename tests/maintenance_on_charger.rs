//! Maintenance windows reach the charger, over real sockets: a simulated charger (1.6 and 2.0.1)
//! behind our central system, a booking API on the same bus with a test clock. An operator
//! schedules a window on connector 1: at its start the charger receives ChangeAvailability
//! Inoperative (the connector goes Unavailable), at its end Operative. A second window takes the
//! whole station while the charger is offline: the round records the failure, and the command
//! arrives once the charger is back; Operative follows at the end.
//!
//! On the in-process bus with SQLite and, when `EVCS_TEST_MQTT_URL` and
//! `EVCS_TEST_POSTGRES_URL` are set, on the MQTT broker with PostgreSQL (the booking API then has
//! its own MQTT client).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::app::{Application as BookingApp, Parts};
use booking_api::clock::{Clock, ManualClock};
use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use firmware_sim::charger::{self, Control, Event};
use firmware_sim::spec::StationSpec;
use ocpp::Version;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::sync::broadcast;

const PASSWORD: &str = "correct horse battery";

struct Booking {
    addr: SocketAddr,
    state: booking_api::app::AppState,
    clock: ManualClock,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Booking {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>, status: u16) -> Value {
        let (got, json) = http(self.addr, method, path, token, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }

    async fn login(&self, identifier: &str) -> String {
        let r = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({ "identifier": identifier, "password": PASSWORD })),
                200,
            )
            .await;
        r["accessToken"].as_str().unwrap().to_string()
    }

    /// Charger rounds (as the background worker runs them) until the window shows `field`.
    async fn round_until(&self, token: &str, window: i64, field: &str) -> Value {
        for _ in 0..100 {
            booking_api::reservations::run(&self.state)
                .await
                .expect("charger round");
            let (_, w) = http(
                self.addr,
                "GET",
                &format!("/api/v1/maintenance-windows/{window}"),
                Some(token),
                None,
            )
            .await;
            if !w[field].is_null() {
                return w;
            }
            // A failed command is due again after the retry interval.
            self.clock.advance(Span::seconds(61));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("window {window}: {field} never set");
    }
}

async fn booking_api(database: Option<String>, bus: Arc<dyn evcs_bus::Bus>) -> Booking {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match database {
        Some(base) => Some(service_kit::test_db::create(&base, "maintenance_e2e").await.0),
        None => None,
    };
    let mut config = booking_api::config::Config::for_tests(dir.path().to_path_buf(), url);
    config.policy.access_token_secs = 86_400;
    // An offline charger answers quickly (in-process: Offline; MQTT: nobody serves it).
    config.reservations.charger_command_timeout_secs = 2;
    let clock = ManualClock::new(Utc::now());
    let parts = Parts {
        clock: Arc::new(clock.clone()),
        background: false,
        shared_bus: Some(bus),
        ..Parts::default()
    };
    let app = BookingApp::build_with(config, parts).await.expect("booking api");
    let admin = app.initial_admin().cloned().expect("first admin");
    let addr = app.local_addr();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let (_, body) = http(
        addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "identifier": admin.email, "password": admin.password })),
    )
    .await;
    Booking {
        addr,
        state,
        clock,
        admin: body["accessToken"].as_str().expect("admin token").to_string(),
        _dir: dir,
    }
}

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

/// The ChangeAvailability call the charger received, as (availability, where): 1.6 `type` and
/// `connectorId`, 2.0.1 `operationalStatus` and `evse.id` (null: the whole station).
fn availability(version: Version, payload: &Value) -> (String, Value) {
    match version {
        Version::V16 => (
            payload["type"].as_str().unwrap_or_default().into(),
            payload["connectorId"].clone(),
        ),
        Version::V201 => (
            payload["operationalStatus"].as_str().unwrap_or_default().into(),
            payload["evse"]["id"].clone(),
        ),
    }
}

async fn change_availability(rx: &mut broadcast::Receiver<Event>, version: Version, what: &str) -> (String, Value) {
    match expect(
        rx,
        what,
        |e| matches!(e, Event::CallReceived(a, _) if a == "ChangeAvailability"),
    )
    .await
    {
        Event::CallReceived(_, payload) => availability(version, &payload),
        other => panic!("{what}: {other:?}"),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A BackOffice with a station linked to `central_id` (connector 1) and its operator; returns
/// (operator token, station id).
async fn station_and_operator(b: &Booking, central_id: &str) -> (String, i64) {
    let tag = central_id.to_lowercase();
    let application = b
        .call(
            "POST",
            "/api/v1/backoffice-applications",
            None,
            Some(
                json!({ "email": format!("bo-{tag}@biz.lk"), "name": "Biz Owner", "phone": "+94771234567",
                         "password": PASSWORD, "businessName": format!("{tag} Ltd") }),
            ),
            201,
        )
        .await;
    b.call(
        "POST",
        &format!("/api/v1/backoffice-applications/{}/approve", application["id"]),
        Some(&b.admin),
        None,
        200,
    )
    .await;
    let backoffice = b.login(&format!("bo-{tag}@biz.lk")).await;
    let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "day": d, "open": "00:00", "close": "24:00" }))
        .collect();
    let station = b
        .call(
            "POST",
            "/api/v1/stations",
            Some(&backoffice),
            Some(json!({
                "centralStationId": central_id,
                "name": format!("Station {central_id}"),
                "address": "1 Galle Road, Colombo",
                "latitude": 6.9271,
                "longitude": 79.8612,
                "timeZone": "UTC",
                "slotMinutes": 15,
                "autoApprove": true,
                "connectors": [{ "connectorId": 1, "type": "CCS2", "maxPowerKw": 50 }],
                "schedule": { "weekly": weekly, "exceptions": [] },
            })),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    b.call(
        "POST",
        "/api/v1/operators",
        Some(&backoffice),
        Some(
            json!({ "email": format!("op-{tag}@biz.lk"), "name": "Op", "phone": "+94770000002",
                     "password": PASSWORD, "stationIds": [station] }),
        ),
        201,
    )
    .await;
    (b.login(&format!("op-{tag}@biz.lk")).await, station)
}

async fn scenario(server: &TestServer, b: &Booking, version: Version) {
    let central_id = format!("MAINT-{}", version.label().replace('.', ""));
    let mut spec = StationSpec::new(&central_id, version, server.ws_url("").trim_end_matches('/'));
    spec.timing.reconnect_min_ms = 100;
    spec.timing.reconnect_max_ms = 500;
    spec.timing.call_timeout = 10;
    spec.timing.step_secs = 0.2;
    let (charger, mut rx) = charger::spawn(spec).expect("simulator");
    expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
    for _ in 0..300 {
        let (_, chargers) = http(b.addr, "GET", "/api/v1/chargers", Some(&b.admin), None).await;
        let known = chargers.as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["centralStationId"] == central_id.as_str()
                    && c["online"] == true
                    && c["connectors"].as_array().is_some_and(|cs| !cs.is_empty())
            })
        });
        if known {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (operator, station) = station_and_operator(b, &central_id).await;

    // Connector 1, from 10 to 20 minutes from now.
    let start = b.clock.now() + Span::minutes(10);
    let end = start + Span::minutes(10);
    let w = b
        .call(
            "POST",
            &format!("/api/v1/stations/{station}/maintenance-windows"),
            Some(&operator),
            Some(
                json!({ "connectorId": 1, "startsAt": rfc3339(start), "endsAt": rfc3339(end), "reason": "new cable" }),
            ),
            201,
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    // Before the start, a round sends nothing.
    booking_api::reservations::run(&b.state).await.unwrap();
    let before = b
        .call(
            "GET",
            &format!("/api/v1/maintenance-windows/{id}"),
            Some(&operator),
            None,
            200,
        )
        .await;
    assert_eq!(before["chargerAttempts"], 0, "{before}");
    assert!(before["inoperativeAppliedAt"].is_null(), "{before}");

    b.clock.set(start);
    let applied = b.round_until(&operator, id, "inoperativeAppliedAt").await;
    assert_eq!(applied["status"], "Active", "{applied}");
    assert_eq!(
        change_availability(&mut rx, version, "Inoperative at the start").await,
        ("Inoperative".to_string(), json!(1))
    );
    expect(
        &mut rx,
        "connector unavailable",
        |e| matches!(e, Event::Status(1, s) if s == "Unavailable"),
    )
    .await;
    b.clock.set(end);
    let over = b.round_until(&operator, id, "operativeAppliedAt").await;
    assert_eq!(over["status"], "Ended", "{over}");
    assert_eq!(
        change_availability(&mut rx, version, "Operative at the end").await,
        ("Operative".to_string(), json!(1))
    );
    expect(
        &mut rx,
        "connector available",
        |e| matches!(e, Event::Status(1, s) if s == "Available"),
    )
    .await;

    // The whole station, while the charger is offline at the start.
    let start = end + Span::minutes(10);
    let end = start + Span::minutes(30);
    let w = b
        .call(
            "POST",
            &format!("/api/v1/stations/{station}/maintenance-windows"),
            Some(&operator),
            Some(json!({ "startsAt": rfc3339(start), "endsAt": rfc3339(end), "reason": "transformer" })),
            201,
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    charger.send(Control::Offline);
    expect(&mut rx, "offline", |e| matches!(e, Event::Disconnected(_))).await;
    // The central system notices the closed socket before the round runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.clock.set(start);
    booking_api::reservations::run(&b.state).await.unwrap();
    let failed = b
        .call(
            "GET",
            &format!("/api/v1/maintenance-windows/{id}"),
            Some(&operator),
            None,
            200,
        )
        .await;
    assert!(failed["inoperativeAppliedAt"].is_null(), "{failed}");
    assert_eq!(failed["chargerAttempts"], 1, "{failed}");
    assert!(failed["chargerError"].is_string(), "{failed}");
    charger.send(Control::Online);
    expect(&mut rx, "back online", |e| matches!(e, Event::Connected)).await;
    let applied = b.round_until(&operator, id, "inoperativeAppliedAt").await;
    assert!(applied["chargerError"].is_null(), "{applied}");
    let whole = match version {
        Version::V16 => json!(0),
        Version::V201 => Value::Null,
    };
    assert_eq!(
        change_availability(&mut rx, version, "Inoperative after reconnecting").await,
        ("Inoperative".to_string(), whole.clone())
    );
    expect(
        &mut rx,
        "station unavailable",
        |e| matches!(e, Event::Status(1, s) if s == "Unavailable"),
    )
    .await;
    b.clock.set(end);
    b.round_until(&operator, id, "operativeAppliedAt").await;
    assert_eq!(
        change_availability(&mut rx, version, "Operative at the end").await,
        ("Operative".to_string(), whole)
    );
    charger.shutdown().await.expect("simulator shutdown");
}

#[tokio::test]
async fn windows_reach_the_charger_on_the_in_process_bus() {
    let bus: Arc<dyn evcs_bus::Bus> = Arc::new(evcs_bus::InProcBus::new());
    let server = TestServer::start_on_bus("sqlite", None, bus.clone(), |_| {}).await;
    let b = booking_api(None, bus).await;
    for version in [Version::V16, Version::V201] {
        scenario(&server, &b, version).await;
    }
    b.state.shutdown.cancel();
    server.stop_and_clean().await;
}

#[tokio::test]
async fn windows_reach_the_charger_over_mqtt_on_postgres() {
    let (Ok(mqtt), Ok(pg)) = (
        std::env::var("EVCS_TEST_MQTT_URL"),
        std::env::var("EVCS_TEST_POSTGRES_URL"),
    ) else {
        eprintln!("MQTT + PostgreSQL maintenance test NOT RUN: EVCS_TEST_MQTT_URL or EVCS_TEST_POSTGRES_URL unset");
        return;
    };
    let prefix = format!("m{:016x}", rand::random::<u64>());
    let url = fresh_url("postgres").await;
    let server = TestServer::start_with("postgres", url, |c| {
        c.bus = central_system::config::BusKind::Mqtt;
        c.mqtt_url = Some(mqtt.clone());
        c.bus_topic_prefix = prefix.clone();
        c.node_id = Some(format!("{prefix}-central"));
    })
    .await;
    let config = evcs_bus::MqttConfig::from_url(&mqtt, &prefix).expect("mqtt url");
    let bus: Arc<dyn evcs_bus::Bus> = Arc::new(
        evcs_bus::MqttBus::connect(config, &format!("{prefix}-booking"))
            .await
            .expect("EVCS_TEST_MQTT_URL is set but the broker cannot be reached"),
    );
    let b = booking_api(Some(pg), bus).await;
    for version in [Version::V16, Version::V201] {
        scenario(&server, &b, version).await;
    }
    b.state.shutdown.cancel();
    server.stop_and_clean().await;
}
