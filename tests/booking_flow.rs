//! The whole flow across the services, over real sockets: a simulated charger (1.6 and 2.0.1)
//! connects to the central system; the booking API learns of it over the bus; a BackOffice
//! links a station to it; an EV owner books a slot and it is approved; the charger holds the
//! connector (ReserveNow); the owner's QR token is scanned by an operator and the charger starts
//! on the reserved connector (RemoteStart); the meter's readings flow back as a live session;
//! the charger stops and the receipt's energy is what the charger metered.
//!
//! On the in-process bus with SQLite and, when `EVCS_TEST_MQTT_URL` and
//! `EVCS_TEST_POSTGRES_URL` are set, on the MQTT broker with PostgreSQL (the booking API then has
//! its own MQTT client, as a separate process would).
//!
//! Time: the booking API's clock is a test clock set to the real time at the start (the charger
//! and the central system run on real time), and the booked slot is the one that starts within
//! the next 15 minutes, so the reservation lead time and the check-in window are open at once
//! without moving any clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::app::{Application as BookingApp, Parts};
use booking_api::clock::ManualClock;
use chrono::{DateTime, Utc};
use firmware_sim::charger::{self, Control, Event, Handle};
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
}

/// The booking API on `bus` (in-process: the central system's own; MQTT: its own client).
async fn booking_api(database: Option<String>, bus: Arc<dyn evcs_bus::Bus>) -> Booking {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match database {
        Some(base) => Some(service_kit::test_db::create(&base, "booking_flow").await.0),
        None => None,
    };
    let mut config = booking_api::config::Config::for_tests(dir.path().to_path_buf(), url);
    config.policy.access_token_secs = 86_400;
    // The booked slot starts within 15 minutes and 5 seconds (next_slot): check-in opens early
    // enough for any of them.
    config.policy.early_checkin_minutes = 20;
    let parts = Parts {
        clock: Arc::new(ManualClock::new(Utc::now())),
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

/// Polls `f` for up to 30 s.
async fn within<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s");
}

fn charger_spec(server: &TestServer, id: &str, version: Version) -> StationSpec {
    let mut s = StationSpec::new(id, version, server.ws_url("").trim_end_matches('/'));
    s.timing.meter_interval = 1;
    s.timing.reconnect_min_ms = 100;
    s.timing.reconnect_max_ms = 1000;
    s.timing.call_timeout = 10;
    s.timing.step_secs = 0.2;
    s
}

/// A BackOffice (applied and approved), an operator of its station, an owner.
async fn people(b: &Booking, central_id: &str) -> (String, String, String, i64) {
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
                "autoApprove": false,
                "connectors": [{ "connectorId": 1, "type": "CCS2", "maxPowerKw": 50 }],
                "schedule": { "weekly": weekly, "exceptions": [] },
            })),
            201,
        )
        .await;
    let station_id = station["id"].as_i64().unwrap();
    assert_eq!(station["claimStatus"], "Pending");
    // Until the admin approves the claim the station takes no booking.
    b.call(
        "POST",
        &format!("/api/v1/stations/{station_id}/claim"),
        Some(&b.admin),
        Some(json!({ "decision": "Approved" })),
        200,
    )
    .await;
    b.call(
        "POST",
        "/api/v1/operators",
        Some(&backoffice),
        Some(
            json!({ "email": format!("op-{tag}@biz.lk"), "name": "Op", "phone": "+94770000002",
                     "password": PASSWORD, "stationIds": [station_id] }),
        ),
        201,
    )
    .await;
    let operator = b.login(&format!("op-{tag}@biz.lk")).await;
    let nic = if central_id.ends_with("16") {
        "912345678V"
    } else {
        "199012345678"
    };
    b.call(
        "POST",
        "/api/v1/owners",
        None,
        Some(
            json!({ "nic": nic, "name": "Ev Owner", "email": format!("owner-{tag}@mail.lk"),
                     "phone": "+94770000001", "password": PASSWORD }),
        ),
        201,
    )
    .await;
    let owner = b.login(nic).await;
    (backoffice, operator, owner, station_id)
}

/// The first slot of `station` that starts at least 5 seconds from now.
async fn next_slot(b: &Booking, token: &str, station: i64) -> String {
    let slots = b
        .call(
            "GET",
            &format!("/api/v1/stations/{station}/slots"),
            Some(token),
            None,
            200,
        )
        .await;
    let soon = Utc::now() + chrono::Duration::seconds(5);
    slots
        .as_array()
        .or_else(|| slots["items"].as_array())
        .expect("a slot list")
        .iter()
        .map(|s| s["startsAt"].as_str().unwrap().to_string())
        .find(|s| s.parse::<DateTime<Utc>>().unwrap() >= soon)
        .expect("a slot in the next hour")
}

async fn flow(server: &TestServer, b: &Booking, version: Version) {
    let central_id = format!("FLOW-{}", version.label().replace('.', ""));
    let (charger, mut rx): (Handle, _) = charger::spawn(charger_spec(server, &central_id, version)).expect("simulator");
    expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;

    // The booking API learns of the charger from the central system's events.
    within("charger projected", || async {
        let (_, chargers) = http(b.addr, "GET", "/api/v1/chargers", Some(&b.admin), None).await;
        chargers.as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["centralStationId"] == central_id.as_str() && c["online"] == true)
                .filter(|c| c["connectors"].as_array().is_some_and(|cs| !cs.is_empty()))
                .cloned()
        })
    })
    .await;

    let (backoffice, operator, owner, station) = people(b, &central_id).await;
    // The station prices energy at 0.30 EUR/kWh (per Wh), 20 % VAT.
    let tariff = b
        .call(
            "POST",
            "/api/v1/tariffs",
            Some(&backoffice),
            Some(json!({"name": "energy", "tariff": {"currency": "EUR", "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 20, "step_size": 1}]}]}})),
            201,
        )
        .await;
    b.call(
        "PUT",
        &format!("/api/v1/stations/{station}/tariff"),
        Some(&backoffice),
        Some(json!({"tariffId": tariff["id"]})),
        200,
    )
    .await;
    let slot = next_slot(b, &owner, station).await;
    let booking = b
        .call(
            "POST",
            "/api/v1/bookings",
            Some(&owner),
            Some(json!({ "stationId": station, "slotStart": slot })),
            201,
        )
        .await;
    let id = booking["id"].as_i64().unwrap();
    assert_eq!(booking["status"], "Pending", "{booking}");
    let approved = b
        .call(
            "POST",
            &format!("/api/v1/bookings/{id}/approve"),
            Some(&backoffice),
            None,
            200,
        )
        .await;
    let id_token = approved["idToken"].as_str().expect("a booking id token").to_string();

    // The reservation round pushes the booking's token to the central system (valid at this
    // station inside the booking's window) and, the slot being within the lead time, holds the
    // connector with ReserveNow.
    within("token pushed and connector reserved", || async {
        booking_api::reservations::run(&b.state)
            .await
            .expect("reservation round");
        let (_, now) = http(b.addr, "GET", &format!("/api/v1/bookings/{id}"), Some(&owner), None).await;
        (now["reservationStatus"] == "Accepted").then_some(now)
    })
    .await;
    expect(
        &mut rx,
        "connector reserved",
        |e| matches!(e, Event::Status(1, s) if s == "Reserved"),
    )
    .await;
    // The central system learned the booking's token from the push, not from the test.
    let (status, other) = server
        .api(
            "GET",
            &format!("/api/v1/id-tokens/{id_token}"),
            Some(central_system::auth::jwt::Role::Admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "the central system knows the booking's token: {other}");

    // The driver arrives, plugs in; the operator scans the owner's QR token.
    charger.send(Control::Plug(1));
    let token = b
        .call(
            "POST",
            &format!("/api/v1/bookings/{id}/checkin-token"),
            Some(&owner),
            None,
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let handle = b
        .call(
            "POST",
            "/api/v1/checkin",
            Some(&operator),
            Some(json!({ "token": token })),
            200,
        )
        .await;
    assert_eq!(handle["status"], "CheckedIn", "{handle}");
    assert_eq!(handle["connectorId"], 1, "{handle}");
    assert_eq!(handle["remoteStart"]["code"], "ACCEPTED", "{handle}");
    expect(&mut rx, "charger starts", |e| {
        matches!(e, Event::TransactionStarted(1, _))
    })
    .await;

    // The meter's readings reach the booking's session.
    let session = within("session with energy", || async {
        let (status, s) = http(
            b.addr,
            "GET",
            &format!("/api/v1/bookings/{id}/session"),
            Some(&owner),
            None,
        )
        .await;
        (status == 200 && s["energyWh"].as_i64().is_some_and(|e| e > 0)).then_some(s)
    })
    .await;
    assert_eq!(session["status"], "Active", "{session}");
    assert_eq!(session["idToken"], id_token.as_str(), "{session}");
    let live = b
        .call(
            "GET",
            &format!("/api/v1/sessions/{}", session["id"]),
            Some(&owner),
            None,
            200,
        )
        .await;
    assert_eq!(live["cost"]["status"], "running", "a live cost while charging: {live}");

    // The charger stops; the booking completes and the receipt's energy is the metered one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    charger.send(Control::Stop(1));
    expect(&mut rx, "charger stops", |e| matches!(e, Event::TransactionEnded(1, _))).await;
    let metered = within("central-system transaction ended", || async {
        server.flush().await;
        transactions(server, &central_id)
            .await
            .into_iter()
            .find(|t| !t["endedAt"].is_null())
    })
    .await;
    let energy = metered["energyWh"].as_i64().expect("metered energy");
    assert!(energy > 0, "{metered}");
    let session_id = session["id"].as_i64().unwrap();
    let receipt = within("receipt", || async {
        let (status, r) = http(
            b.addr,
            "GET",
            &format!("/api/v1/sessions/{session_id}/receipt"),
            Some(&owner),
            None,
        )
        .await;
        (status == 200).then_some(r)
    })
    .await;
    assert_eq!(receipt["energyWh"].as_i64(), Some(energy), "{receipt} vs {metered}");
    assert_eq!(receipt["meterStartWh"], metered["meterStartWh"], "{receipt}");
    assert_eq!(receipt["meterStopWh"], metered["meterStopWh"], "{receipt}");

    // The invoice bills the energy the charger reported at the tariff, computed here on its
    // own: 0.03 cents per Wh rounded half up once, then 20 % VAT rounded once.
    let issued = booking_api::billing::invoices::run(&b.state)
        .await
        .expect("billing round");
    assert_eq!(issued, 1);
    let invoices = b
        .call(
            "GET",
            &format!("/api/v1/invoices?sessionId={session_id}"),
            Some(&owner),
            None,
            200,
        )
        .await;
    let invoice = &invoices["items"][0];
    let excl = (energy * 3 + 50) / 100;
    let vat = (excl * 20 + 50) / 100;
    assert_eq!(invoice["totalExclVat"]["minor"].as_i64(), Some(excl), "{invoice}");
    assert_eq!(invoice["totalInclVat"]["minor"].as_i64(), Some(excl + vat), "{invoice}");
    assert_eq!(invoice["session"]["energyWh"].as_i64(), Some(energy), "{invoice}");
    // The live cost, final now, ends at the invoice's total.
    assert_eq!(receipt["cost"]["status"], "final", "{receipt}");
    assert_eq!(receipt["cost"]["totalInclVat"], invoice["totalInclVat"], "{receipt}");
    let done = b
        .call("GET", &format!("/api/v1/bookings/{id}"), Some(&owner), None, 200)
        .await;
    assert_eq!(done["status"], "Completed", "{done}");
    let _ = &b.state;
    charger.shutdown().await.expect("simulator shutdown");
}

#[tokio::test]
async fn book_approve_check_in_charge_and_receipt_on_the_in_process_bus() {
    let bus: Arc<dyn evcs_bus::Bus> = Arc::new(evcs_bus::InProcBus::new());
    let server = TestServer::start_on_bus("sqlite", None, bus.clone(), |c| {
        // A meter summary every second, so the session shows energy while the test watches.
        c.meter_summary_secs = 1;
    })
    .await;
    let b = booking_api(None, bus).await;
    for version in [Version::V16, Version::V201] {
        flow(&server, &b, version).await;
    }
    b.state.shutdown.cancel();
    server.stop_and_clean().await;
}

#[tokio::test]
async fn book_approve_check_in_charge_and_receipt_over_mqtt_on_postgres() {
    let (Ok(mqtt), Ok(pg)) = (
        std::env::var("EVCS_TEST_MQTT_URL"),
        std::env::var("EVCS_TEST_POSTGRES_URL"),
    ) else {
        eprintln!("MQTT + PostgreSQL flow NOT RUN: EVCS_TEST_MQTT_URL or EVCS_TEST_POSTGRES_URL unset");
        return;
    };
    let prefix = format!("f{:016x}", rand::random::<u64>());
    let url = fresh_url("postgres").await;
    let server = TestServer::start_with("postgres", url, |c| {
        c.bus = central_system::config::BusKind::Mqtt;
        c.mqtt_url = Some(mqtt.clone());
        c.bus_topic_prefix = prefix.clone();
        c.node_id = Some(format!("{prefix}-central"));
        c.meter_summary_secs = 1;
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
        flow(&server, &b, version).await;
    }
    b.state.shutdown.cancel();
    server.stop_and_clean().await;
}

/// A check-in right after the approval, before any reservation round has pushed the booking's
/// token: the check-in grants the token itself before RemoteStart, so the charger's start meets
/// a token the central system knows (it was refused, DeAuthorized, when the push came later).
#[tokio::test]
async fn a_check_in_right_after_the_approval_starts_with_the_token_in_place() {
    let bus: Arc<dyn evcs_bus::Bus> = Arc::new(evcs_bus::InProcBus::new());
    let server = TestServer::start_on_bus("sqlite", None, bus.clone(), |_| {}).await;
    let b = booking_api(None, bus).await;
    let central_id = "QUICK-201";
    let (charger, mut rx) = charger::spawn(charger_spec(&server, central_id, Version::V201)).expect("simulator");
    expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
    within("charger projected", || async {
        let (_, chargers) = http(b.addr, "GET", "/api/v1/chargers", Some(&b.admin), None).await;
        chargers.as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["centralStationId"] == central_id && c["online"] == true)
                .filter(|c| c["connectors"].as_array().is_some_and(|cs| !cs.is_empty()))
                .cloned()
        })
    })
    .await;
    let (backoffice, operator, owner, station) = people(&b, central_id).await;
    let slot = next_slot(&b, &owner, station).await;
    let id = b
        .call(
            "POST",
            "/api/v1/bookings",
            Some(&owner),
            Some(json!({ "stationId": station, "slotStart": slot })),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    b.call(
        "POST",
        &format!("/api/v1/bookings/{id}/approve"),
        Some(&backoffice),
        None,
        200,
    )
    .await;
    let token = b
        .call(
            "POST",
            &format!("/api/v1/bookings/{id}/checkin-token"),
            Some(&owner),
            None,
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    charger.send(Control::Plug(1));
    let handle = b
        .call(
            "POST",
            "/api/v1/checkin",
            Some(&operator),
            Some(json!({ "token": token })),
            200,
        )
        .await;
    assert_eq!(handle["remoteStart"]["code"], "ACCEPTED", "{handle}");
    expect(&mut rx, "charger starts", |e| {
        matches!(e, Event::TransactionStarted(1, _))
    })
    .await;
    // Give a refusal time to arrive: the start's answer comes within a round trip.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.flush().await;
    let started = transactions(&server, central_id).await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["status"], "Active", "{started:?}");
    assert!(started[0]["stopReason"].is_null(), "{started:?}");
    charger.shutdown().await.expect("simulator shutdown");
    b.state.shutdown.cancel();
    server.stop_and_clean().await;
}
