//! ISO 15118 smart charging (OCPP 2.0.1 K15-K17) end to end, on every configured backend: the
//! simulator plays the EV side over a real WebSocket (needs at the transaction's start, a
//! schedule after each TxProfile, fitting or not), the central system answers, computes and
//! sends profiles, checks schedules and renegotiates; the operator API shows what happened and
//! starts K16 renegotiations. Raw-socket tests cover what a faulty station can send.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use firmware_sim::charger::{self, Control, Event, Handle};
use firmware_sim::spec::{EvSchedulePolicy, Iso15118Spec, StationSpec};
use ocpp::Version;
use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use tokio::sync::broadcast;

const TAG: &str = "ISO-TAG";

fn base_url(server: &TestServer) -> String {
    server.ws_url("").trim_end_matches('/').to_string()
}

/// A 2.0.1 station whose EV speaks ISO 15118 with `policy`.
fn spec(server: &TestServer, id: &str, policy: EvSchedulePolicy) -> StationSpec {
    let mut s = StationSpec::new(id, Version::V201, &base_url(server));
    s.timing.meter_interval = 60;
    s.timing.call_timeout = 10;
    s.iso15118 = Some(Iso15118Spec {
        schedule: policy,
        ..Iso15118Spec::default()
    });
    s
}

/// Waits for the first event `pred` accepts; panics with the events seen on timeout.
async fn expect(rx: &mut broadcast::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::Violation(v))) => panic!("{what}: protocol violation: {v}"),
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(e)) => seen.push(format!("{e:?}")),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("{what}: events closed ({e})"),
            Err(_) => panic!("{what}: timed out; saw:\n{}", seen.join("\n")),
        }
    }
}

/// The next SetChargingProfile the station received.
async fn profile_received(rx: &mut broadcast::Receiver<Event>) -> Value {
    match expect(
        rx,
        "SetChargingProfile",
        |e| matches!(e, Event::CallReceived(a, _) if a == "SetChargingProfile"),
    )
    .await
    {
        Event::CallReceived(_, p) => p,
        _ => unreachable!(),
    }
}

/// The central system's answer to the station's next `action`.
async fn answer_to(rx: &mut broadcast::Receiver<Event>, action: &str) -> Value {
    match expect(rx, action, |e| matches!(e, Event::Response(a, _) if a == action)).await {
        Event::Response(_, Ok(p)) => p,
        Event::Response(_, Err(e)) => panic!("{action} answered with a CALLERROR: {e}"),
        _ => unreachable!(),
    }
}

/// Boots a station, plugs in and presents the tag; returns its transaction id.
async fn charging(server: &TestServer, spec: StationSpec) -> (Handle, broadcast::Receiver<Event>, String) {
    let (handle, mut rx) = charger::spawn(spec).unwrap();
    expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
    server.flush().await;
    handle.send(Control::Plug(1));
    handle.send(Control::Present(1, TAG.into()));
    let tx = match expect(&mut rx, "start", |e| matches!(e, Event::TransactionStarted(1, _))).await {
        Event::TransactionStarted(_, id) => id,
        _ => unreachable!(),
    };
    (handle, rx, tx)
}

async fn needs_of(server: &TestServer, station: &str) -> Vec<Value> {
    let (status, page) = server
        .api(
            "GET",
            &format!("/api/v1/stations/{station}/charging-needs"),
            Some(Role::Operator),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap()
}

/// The first limit of a SetChargingProfile payload's schedule.
fn first_limit(request: &Value) -> f64 {
    request["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn k15_needs_get_a_leveled_tx_profile_and_a_fitting_ev_schedule_is_accepted() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token(TAG).await;
        let (station, mut rx, tx) = charging(&server, spec(&server, "ISO-K15", EvSchedulePolicy::Fit)).await;
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingNeeds").await["status"],
            "Accepted",
            "{backend}"
        );
        let set = profile_received(&mut rx).await;
        let profile = &set["chargingProfile"];
        assert_eq!(
            (set["evseId"].clone(), profile["chargingProfilePurpose"].clone()),
            (json!(1), json!("TxProfile"))
        );
        assert_eq!(profile["transactionId"], json!(tx), "{backend}");
        // 48 kWh (60 kWh from 20 %) in 8 h: 6 kW, 8.69 A on three phases, floored to a tenth.
        let limit = first_limit(&set);
        assert!((8.5..=8.7).contains(&limit), "{backend}: {set}");
        assert_eq!(profile["chargingSchedule"][0]["chargingRateUnit"], "A");
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted",
            "{backend}"
        );
        let needs = eventually(|| async {
            let items = needs_of(&server, "ISO-K15").await;
            items
                .first()
                .filter(|n| n["profiles"][0]["evScheduleStatus"] == "Accepted")
                .cloned()
        })
        .await;
        assert_eq!(
            (needs["status"].clone(), needs["energyAmountWh"].clone()),
            (json!("Accepted"), json!(48_000))
        );
        assert_eq!(needs["profiles"][0]["status"], "Accepted", "{backend}: {needs}");
        assert_eq!(needs["profiles"][0]["cause"], "needs");
        assert_eq!(
            needs["payload"]["chargingNeeds"]["requestedEnergyTransfer"],
            "AC_three_phase"
        );
        station.shutdown().await.unwrap();
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn k15_profiles_stay_within_the_station_max_profile_and_the_site_limit() {
    for (backend, url) in backends().await {
        // A 5 kW site limit: below the leveled 6 kW.
        let server = TestServer::start_with(backend, url, |c| c.station_max_power_w = 5_000).await;
        server.accept_token(TAG).await;
        let (handle, mut rx) = charger::spawn(spec(&server, "ISO-MAX", EvSchedulePolicy::Fit)).unwrap();
        expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
        // The operator caps the station at 10 A x 3 for now, then at 5 A (6900 W, then 3450 W).
        let max_profile = |id: i64, limit: f64| {
            json!({"action": "SetChargingProfile", "payload": {"evseId": 0, "chargingProfile": {"id": id, "stackLevel": 0,
                "chargingProfilePurpose": "ChargingStationMaxProfile", "chargingProfileKind": "Relative",
                "chargingSchedule": [{"id": 1, "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}]}}})
        };
        server
            .admin(
                "POST",
                "/api/v1/stations/ISO-MAX/calls",
                Some(max_profile(900, 7.0)),
                200,
            )
            .await;
        handle.send(Control::Plug(1));
        handle.send(Control::Present(1, TAG.into()));
        let set = profile_received(&mut rx).await;
        // 7 A x 3 x 230 V = 4830 W, under the 5 kW site limit and the 6 kW level.
        assert_eq!(first_limit(&set), 7.0, "{backend}: {set}");
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted"
        );
        // Cleared: the site limit (5000 W = 7.2 A) governs the next profile.
        server
            .admin(
                "POST",
                "/api/v1/stations/ISO-MAX/calls",
                Some(json!({"action": "ClearChargingProfile", "payload": {"chargingProfileId": 900}})),
                200,
            )
            .await;
        handle.send(Control::Renegotiate(1));
        let set = profile_received(&mut rx).await;
        assert_eq!(first_limit(&set), 7.2, "{backend}: {set}");
        handle.shutdown().await.unwrap();
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn k15_k17_ev_schedule_above_the_profile_is_rejected_and_renegotiated() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token(TAG).await;
        let (station, mut rx, tx) = charging(&server, spec(&server, "ISO-EXCEED", EvSchedulePolicy::ExceedOnce)).await;
        let first = profile_received(&mut rx).await;
        let rejected = answer_to(&mut rx, "NotifyEVChargingSchedule").await;
        assert_eq!(rejected["status"], "Rejected", "{backend}: {rejected}");
        assert_eq!(rejected["statusInfo"]["reasonCode"], "InvalidSchedule");
        // K15.FR.13: a new profile for the same transaction, replacing the first (same id).
        let second = profile_received(&mut rx).await;
        assert_eq!(second["chargingProfile"]["transactionId"], json!(tx));
        assert_eq!(second["chargingProfile"]["id"], first["chargingProfile"]["id"]);
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted",
            "{backend}"
        );
        let needs = eventually(|| async {
            let items = needs_of(&server, "ISO-EXCEED").await;
            items
                .first()
                .filter(|n| n["profiles"][1]["evScheduleStatus"] == "Accepted")
                .cloned()
        })
        .await;
        let profiles = needs["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 2, "{backend}: {needs}");
        assert_eq!(
            (profiles[0]["cause"].clone(), profiles[0]["evScheduleStatus"].clone()),
            (json!("needs"), json!("Rejected"))
        );
        assert!(
            profiles[0]["evScheduleDetail"].as_str().unwrap().contains("W at"),
            "{needs}"
        );
        assert_eq!(profiles[1]["cause"], "ev-schedule");
        assert_eq!(needs["renegotiations"], 1);
        station.shutdown().await.unwrap();
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn automatic_renegotiation_is_bounded_for_an_ev_that_never_fits() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token(TAG).await;
        let (station, mut rx, _) = charging(&server, spec(&server, "ISO-NEVER", EvSchedulePolicy::Exceed)).await;
        // The first profile, then one per rejected schedule up to the bound; then the CSMS stops.
        for _ in 0..=central_system::smart_charging::negotiation::AUTOMATIC_RENEGOTIATIONS {
            profile_received(&mut rx).await;
            assert_eq!(
                answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
                "Rejected"
            );
        }
        let needs = eventually(|| async {
            let items = needs_of(&server, "ISO-NEVER").await;
            let n = items.first()?.clone();
            (n["profiles"].as_array()?.len() == 4 && n["renegotiations"] == 3).then_some(n)
        })
        .await;
        assert_eq!(needs["profiles"][3]["evScheduleStatus"], "Rejected", "{backend}");
        station.shutdown().await.unwrap();
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn k17_the_ev_renegotiates_with_new_needs() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token(TAG).await;
        let (station, mut rx, _) = charging(&server, spec(&server, "ISO-K17", EvSchedulePolicy::Fit)).await;
        let first = profile_received(&mut rx).await;
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted"
        );
        // The EV's state of charge changed: it asks for less now.
        station.send(Control::SetSoc(1, 80.0));
        station.send(Control::Renegotiate(1));
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingNeeds").await["status"],
            "Accepted",
            "{backend}"
        );
        let second = profile_received(&mut rx).await;
        assert_eq!(second["chargingProfile"]["id"], first["chargingProfile"]["id"]);
        // 12 kWh in 8 h is 1.5 kW: lifted to the EV's 6 A minimum.
        assert_eq!(first_limit(&second), 6.0, "{backend}: {second}");
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted"
        );
        let items = eventually(|| async {
            let items = needs_of(&server, "ISO-K17").await;
            (items.len() == 2 && items[0]["profiles"][0]["evScheduleStatus"] == "Accepted").then_some(items)
        })
        .await;
        assert_eq!(items[0]["energyAmountWh"], 12_000, "{backend}");
        station.shutdown().await.unwrap();
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn k16_the_operator_renegotiates_with_a_new_limit() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token(TAG).await;
        let (station, mut rx, _) = charging(&server, spec(&server, "ISO-K16", EvSchedulePolicy::Fit)).await;
        profile_received(&mut rx).await;
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted"
        );
        let needs_id = eventually(|| async { needs_of(&server, "ISO-K16").await.first()?["id"].as_i64() }).await;
        let path = format!("/api/v1/stations/ISO-K16/charging-needs/{needs_id}/renegotiate");
        // Without a token, with a bad limit, for needs that do not exist.
        let (status, _) = server.api("POST", &path, None, Some(json!({"limitW": 4000}))).await;
        assert_eq!(status, 401);
        let bad = server.admin("POST", &path, Some(json!({"limitW": 0})), 400).await;
        assert_eq!(bad["code"], "VALIDATION_FAILED");
        let unknown = server
            .admin(
                "POST",
                "/api/v1/stations/ISO-K16/charging-needs/999999/renegotiate",
                None,
                404,
            )
            .await;
        assert_eq!(unknown["code"], "NOT_FOUND");
        let other_station = format!("/api/v1/stations/ISO-ELSEWHERE/charging-needs/{needs_id}/renegotiate");
        server.admin("POST", &other_station, None, 404).await;
        // An operator lowers the limit to 4.83 kW: 7 A on three phases.
        let (status, done) = server
            .api("POST", &path, Some(Role::Operator), Some(json!({"limitW": 4830})))
            .await;
        assert_eq!(status, 200, "{backend}: {done}");
        assert_eq!(done["status"], "Accepted");
        let set = profile_received(&mut rx).await;
        assert_eq!(first_limit(&set), 7.0, "{backend}: {set}");
        assert_eq!(set, done["request"]);
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted"
        );
        let needs = eventually(|| async {
            let n = needs_of(&server, "ISO-K16").await.first()?.clone();
            (n["profiles"][1]["evScheduleStatus"] == "Accepted").then_some(n)
        })
        .await;
        assert_eq!(
            (needs["operatorLimitW"].clone(), needs["profiles"][1]["cause"].clone()),
            (json!(4830), json!("operator"))
        );
        // K16.FR.12: needs sent anyway get a profile, still under the operator's limit.
        station.send(Control::Renegotiate(1));
        assert_eq!(answer_to(&mut rx, "NotifyEVChargingNeeds").await["status"], "Accepted");
        let set = profile_received(&mut rx).await;
        assert_eq!(first_limit(&set), 7.0, "{backend}: {set}");
        assert_eq!(
            answer_to(&mut rx, "NotifyEVChargingSchedule").await["status"],
            "Accepted"
        );
        // Once the transaction has ended there is nothing to renegotiate.
        station.send(Control::Stop(1));
        expect(&mut rx, "end", |e| matches!(e, Event::TransactionEnded(1, _))).await;
        let ended = eventually(|| async {
            server.flush().await;
            let (status, body) = server.api("POST", &path, Some(Role::Admin), None).await;
            (status == 409).then_some(body)
        })
        .await;
        assert_eq!(ended["code"], "TRANSACTION_NOT_ACTIVE");
        // Offline.
        station.shutdown().await.unwrap();
        let (status, _) = server
            .api(
                "GET",
                "/api/v1/stations/ISO-NOPE/charging-needs",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = server
            .api("GET", "/api/v1/stations/ISO-K16/charging-needs", None, None)
            .await;
        assert_eq!(status, 401);
        server.stop_and_clean().await;
    }
}

/// A raw 2.0.1 station: boot, then a transaction on EVSE 1 when `with_transaction`.
async fn raw_station(server: &TestServer, id: &str, with_transaction: bool) -> Ws {
    let mut ws = connect(&server.ws_url(id), "ocpp2.0.1", None).await.unwrap();
    boot201(&mut ws).await;
    if with_transaction {
        let event = json!({"eventType": "Started", "timestamp": "2030-01-01T12:00:00Z", "triggerReason": "CablePluggedIn",
            "seqNo": 0, "transactionInfo": {"transactionId": format!("{id}-TX")}, "evse": {"id": 1, "connectorId": 1}});
        call_ok(&mut ws, "tx", "TransactionEvent", event).await;
    }
    ws
}

fn ac_needs(evse: i64, min: i64, max: i64) -> Value {
    json!({"evseId": evse, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {"energyAmount": 10_000, "evMinCurrent": min, "evMaxCurrent": max, "evMaxVoltage": 400}}})
}

#[tokio::test]
async fn bad_charging_needs_and_schedules_get_the_exact_answer() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| {
            c.iso15118_energy_transfer = vec!["AC_three_phase".into()];
            c.station_max_power_w = 3_000;
        })
        .await;
        let mut ws = raw_station(&server, "ISO-RAW", false).await;
        // No transaction on the EVSE: Rejected, TxNotFound (needs and schedule alike).
        let answer = call_ok(&mut ws, "n1", "NotifyEVChargingNeeds", ac_needs(1, 6, 16)).await;
        assert_eq!(
            (answer["status"].clone(), answer["statusInfo"]["reasonCode"].clone()),
            (json!("Rejected"), json!("TxNotFound")),
            "{backend}"
        );
        let schedule = json!({"evseId": 1, "timeBase": "2030-01-01T12:00:00Z",
            "chargingSchedule": {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}]}});
        let answer = call_ok(&mut ws, "s1", "NotifyEVChargingSchedule", schedule.clone()).await;
        assert_eq!(answer["statusInfo"]["reasonCode"], "TxNotFound");
        // Values the schema lets through but no EV can mean: PropertyConstraintViolation.
        for (id, payload) in [
            ("n2", ac_needs(0, 6, 16)),
            ("n3", ac_needs(1, 20, 16)),
            ("n4", ac_needs(1, -1, 16)),
        ] {
            let answer = call(&mut ws, id, "NotifyEVChargingNeeds", payload).await;
            assert_eq!(
                (answer[0].clone(), answer[2].clone()),
                (json!(4), json!("PropertyConstraintViolation")),
                "{answer}"
            );
        }
        let mut zero = schedule.clone();
        zero["evseId"] = json!(0);
        let answer = call(&mut ws, "s2", "NotifyEVChargingSchedule", zero).await;
        assert_eq!(answer[2], "PropertyConstraintViolation", "{answer}");
        // A schema violation stays a FormatViolation/occurrence error from the schema layer.
        let answer = call(&mut ws, "n5", "NotifyEVChargingNeeds", json!({"evseId": 1})).await;
        assert_eq!(answer[0], 4, "{answer}");
        let _ = ws.close(None).await;

        let mut ws = raw_station(&server, "ISO-RAW-TX", true).await;
        // A mode the site does not serve.
        let dc = json!({"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC",
            "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400}}});
        let answer = call_ok(&mut ws, "n6", "NotifyEVChargingNeeds", dc).await;
        assert_eq!(
            answer["statusInfo"]["reasonCode"], "UnsupportedRequest",
            "{backend}: {answer}"
        );
        // 3 kW is below the EV's 6 A x 3 phases (4140 W): no schedule can be offered.
        let answer = call_ok(&mut ws, "n7", "NotifyEVChargingNeeds", ac_needs(1, 6, 16)).await;
        assert_eq!(answer["statusInfo"]["reasonCode"], "NoCapacity", "{backend}: {answer}");
        // No profile of ours governs the transaction: nothing to exceed.
        let answer = call_ok(&mut ws, "s3", "NotifyEVChargingSchedule", schedule.clone()).await;
        assert_eq!(answer["status"], "Accepted");
        // An EV that can charge at 4 A: Accepted, then the profile arrives (3000 W = 4.3 A).
        let answer = call_ok(&mut ws, "n8", "NotifyEVChargingNeeds", ac_needs(1, 4, 16)).await;
        assert_eq!(answer["status"], "Accepted", "{backend}: {answer}");
        let set = recv(&mut ws).await;
        assert_eq!(
            (set[0].clone(), set[2].clone()),
            (json!(2), json!("SetChargingProfile")),
            "{set}"
        );
        assert_eq!(set[3]["chargingProfile"]["transactionId"], "ISO-RAW-TX-TX");
        assert_eq!(first_limit(&set[3]), 4.3);
        // The station refuses it: the profile is recorded Rejected and nothing is checked against it.
        send(&mut ws, &json!([3, set[1], {"status": "Rejected"}]).to_string()).await;
        let needs = eventually(|| async {
            let items = needs_of(&server, "ISO-RAW-TX").await;
            let refused = items.first()?["profiles"][0]["status"] == "Rejected";
            refused.then_some(items)
        })
        .await;
        assert_eq!(needs.len(), 3, "{backend}: {needs:?}");
        let answer = call_ok(&mut ws, "s4", "NotifyEVChargingSchedule", schedule).await;
        assert_eq!(answer["status"], "Accepted");
        let _ = ws.close(None).await;
        server.stop_and_clean().await;
    }
}
