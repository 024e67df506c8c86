//! The operator's day over HTTP, on every backend, time from the test clock:
//! - alerts raised from the charger's reports on the bus (Faulted connector, fault, security
//!   event) and from a long disconnection, one unresolved alert per trouble, the
//!   acknowledge/resolve lifecycle with its conflicts and audit, and every role's scope;
//! - the inbox: each station's local day (another time zone included), scoped per role;
//! - exceptions (NoShow, Aborted, CancelOnSite) with reasons, releasing the slot and stopping a
//!   session still running on the charger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::clock::Clock;
use chrono::Duration;
use evcs_bus::{Command, Event, EventEnvelope, Location, StationId};
use serde_json::{json, Value};
use support::{backends, book, slot, FakeCharger, TestServer, World};

async fn deliver(s: &TestServer, station: &str, events: Vec<Event>) {
    let mut last = None;
    for event in events {
        let e = EventEnvelope::new(StationId::parse(station).unwrap(), s.clock.now(), event);
        last = Some(e.event_id.clone());
        s.state.bus.publish(e).await.expect("publish");
    }
    if let Some(last) = last {
        s.wait_processed(&last).await;
    }
}

fn on(connector: u32) -> Location {
    Location {
        evse_id: None,
        connector_id: Some(connector),
    }
}

fn faulted(connector: u32) -> Event {
    Event::ConnectorStatus {
        location: on(connector),
        status: "Faulted".into(),
    }
}

async fn alerts(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    s.req("GET", &format!("/api/v1/alerts{query}"), Some(token), None)
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn codes(items: &[Value]) -> Vec<String> {
    items.iter().map(|a| a["code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn charger_troubles_raise_one_alert_each_until_resolved() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // The same Faulted twice, a fault, a security event; a NoError fault raises nothing.
        deliver(
            &s,
            "CP-A1",
            vec![
                faulted(1),
                faulted(1),
                Event::Fault {
                    location: on(1),
                    error_code: "GroundFailure".into(),
                    info: Some("RCD tripped".into()),
                },
                Event::Fault {
                    location: on(1),
                    error_code: "NoError".into(),
                    info: None,
                },
                Event::SecurityEvent {
                    kind: "TamperDetectionActivated".into(),
                    tech_info: None,
                },
            ],
        )
        .await;
        // A charger no station is linked to raises nothing.
        deliver(&s, "CP-UNLINKED", vec![faulted(1)]).await;
        let mine = alerts(&s, &w.op_a, "").await;
        assert_eq!(
            codes(&mine),
            vec!["SECURITY_EVENT", "CHARGER_FAULT", "CONNECTOR_FAULTED"],
            "{mine:?}"
        );
        let fault = &mine[1];
        assert_eq!(fault["stationId"], w.s1);
        assert_eq!(fault["connectorId"], 1);
        assert_eq!(fault["status"], "Open");
        assert!(fault["message"].as_str().unwrap().contains("RCD tripped"), "{fault}");

        // Scope: the station's staff and admins; not the other BackOffice's, not owners.
        assert_eq!(alerts(&s, &w.bo_a, "").await.len(), 3);
        assert_eq!(alerts(&s, &w.admin, "").await.len(), 3);
        assert_eq!(alerts(&s, &w.op_b, "").await.len(), 0);
        assert_eq!(alerts(&s, &w.bo_b, "").await.len(), 0);
        s.req("GET", "/api/v1/alerts", Some(&w.owner1), None)
            .await
            .problem(403, "FORBIDDEN");
        let id = mine[2]["id"].as_i64().unwrap();
        let path = format!("/api/v1/alerts/{id}");
        for t in [&w.op_b, &w.bo_b, &w.owner1] {
            s.req("GET", &path, Some(t), None).await.problem(403, "FORBIDDEN");
            s.req("POST", &format!("{path}/acknowledge"), Some(t), None)
                .await
                .problem(403, "FORBIDDEN");
            s.req("POST", &format!("{path}/resolve"), Some(t), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("POST", "/api/v1/alerts/99999/acknowledge", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        s.req("GET", "/api/v1/alerts?status=Closed", Some(&w.admin), None)
            .await
            .problem(400, "VALIDATION_FAILED");

        // Acknowledge, once; resolve with a note, once; nothing after.
        let acked = s
            .req("POST", &format!("{path}/acknowledge"), Some(&w.op_a), None)
            .await
            .expect(200);
        assert_eq!(acked["status"], "Acknowledged");
        assert_eq!(acked["acknowledgedBy"], w.op_a_id);
        assert!(acked["acknowledgedAt"].is_string());
        s.req("POST", &format!("{path}/acknowledge"), Some(&w.bo_a), None)
            .await
            .problem(409, "ALERT_ALREADY_ACKNOWLEDGED");
        let long = "x".repeat(1_001);
        s.req(
            "POST",
            &format!("{path}/resolve"),
            Some(&w.op_a),
            Some(json!({"note": long})),
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        s.req(
            "POST",
            &format!("{path}/resolve"),
            Some(&w.op_a),
            Some(json!({"fixed": true})),
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        let resolved = s
            .req(
                "POST",
                &format!("{path}/resolve"),
                Some(&w.op_a),
                Some(json!({"note": "connector replaced"})),
            )
            .await
            .expect(200);
        assert_eq!(resolved["status"], "Resolved");
        assert_eq!(resolved["resolvedBy"], w.op_a_id);
        assert_eq!(resolved["resolutionNote"], "connector replaced");
        assert_eq!(resolved["acknowledgedBy"], w.op_a_id, "the acknowledgement is kept");
        for step in ["acknowledge", "resolve"] {
            s.req("POST", &format!("{path}/{step}"), Some(&w.admin), None)
                .await
                .problem(409, "ALERT_RESOLVED");
        }
        // An open alert may be resolved directly, without a body.
        let security = mine[0]["id"].as_i64().unwrap();
        let direct = s
            .req(
                "POST",
                &format!("/api/v1/alerts/{security}/resolve"),
                Some(&w.bo_a),
                None,
            )
            .await
            .expect(200);
        assert_eq!(
            (direct["status"].as_str(), &direct["resolutionNote"]),
            (Some("Resolved"), &Value::Null)
        );

        // Filters.
        assert_eq!(codes(&alerts(&s, &w.op_a, "?status=Open").await), vec!["CHARGER_FAULT"]);
        assert_eq!(alerts(&s, &w.op_a, "?status=Resolved").await.len(), 2);
        assert_eq!(alerts(&s, &w.admin, &format!("?stationId={}", w.s3)).await.len(), 0);

        // Resolved, the same trouble raises a new alert; unresolved, it does not.
        deliver(&s, "CP-A1", vec![faulted(1), faulted(1)]).await;
        let open = alerts(&s, &w.op_a, "?status=Open").await;
        assert_eq!(codes(&open), vec!["CONNECTOR_FAULTED", "CHARGER_FAULT"], "{open:?}");
        assert_ne!(open[0]["id"], json!(id));

        // Both steps were audited with their actor.
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=alert&entityId={id}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let mut actions: Vec<(String, Value)> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_string(), e["actorId"].clone()))
            .collect();
        actions.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            actions,
            vec![
                ("alert.acknowledged".to_string(), json!(w.op_a_id)),
                ("alert.resolved".to_string(), json!(w.op_a_id)),
            ]
        );

        // The connector reporting Available again clears its Faulted alert (the system resolves
        // it); the fault it reported stays for a person to close.
        deliver(
            &s,
            "CP-A1",
            vec![Event::ConnectorStatus {
                location: on(1),
                status: "Available".into(),
            }],
        )
        .await;
        let open = alerts(&s, &w.op_a, "?status=Open").await;
        assert_eq!(codes(&open), vec!["CHARGER_FAULT"], "{open:?}");

        // A boot the central system refused raises an alert (once); accepted and pending ones
        // do not; an accepted boot afterwards clears it.
        let boot = |registration: &str| Event::Booted {
            vendor: "V".into(),
            model: "M".into(),
            firmware_version: None,
            registration: Some(registration.into()),
        };
        deliver(
            &s,
            "CP-B1",
            vec![boot("Accepted"), boot("Pending"), boot("Rejected"), boot("Rejected")],
        )
        .await;
        let b = alerts(&s, &w.op_b, "").await;
        assert_eq!(codes(&b), vec!["CHARGER_BOOT_REJECTED"], "{b:?}");
        assert!(b[0]["message"].as_str().unwrap().contains("CP-B1"), "{b:?}");
        deliver(&s, "CP-B1", vec![boot("Accepted")]).await;
        assert!(alerts(&s, &w.op_b, "?status=Open").await.is_empty());
        s.stop().await;
    }
}

#[tokio::test]
async fn a_charger_offline_longer_than_the_threshold_raises_one_alert() {
    for backend in backends() {
        let s = TestServer::start_with(backend, |c| c.policy.alert_offline_minutes = 10).await;
        let w = World::build(&s).await;
        deliver(&s, "CP-A2", vec![Event::StationOffline { reason: None }]).await;
        s.clock.advance(Duration::minutes(9));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        assert!(alerts(&s, &w.op_a, "").await.is_empty(), "not yet: 9 minutes");
        s.clock.advance(Duration::minutes(2));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        let raised = alerts(&s, &w.op_a, "").await;
        assert_eq!(codes(&raised), vec!["CHARGER_OFFLINE"], "{raised:?}");
        assert_eq!(raised[0]["stationId"], w.s2);
        assert!(
            raised[0]["message"].as_str().unwrap().contains("CP-A2"),
            "{}",
            raised[0]
        );
        // Back online: the system resolves it, with a note; the record stays.
        deliver(
            &s,
            "CP-A2",
            vec![Event::StationOnline {
                ocpp_version: "1.6".into(),
            }],
        )
        .await;
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        assert!(alerts(&s, &w.op_a, "?status=Open").await.is_empty());
        let resolved = alerts(&s, &w.op_a, "?status=Resolved").await;
        assert_eq!(codes(&resolved), vec!["CHARGER_OFFLINE"]);
        assert_eq!(resolved[0]["resolvedBy"], Value::Null, "resolved by the system");
        assert!(
            resolved[0]["resolutionNote"]
                .as_str()
                .unwrap()
                .contains("connected again"),
            "{}",
            resolved[0]
        );
        s.stop().await;
    }
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

async fn inbox(s: &TestServer, token: &str, query: &str) -> Value {
    s.req("GET", &format!("/api/v1/inbox{query}"), Some(token), None)
        .await
        .expect(200)
}

/// The station's day in an inbox, by station id.
fn day(inbox: &Value, station: i64) -> Value {
    inbox["stations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["stationId"] == station)
        .cloned()
        .unwrap_or_else(|| panic!("station {station} not in {inbox}"))
}

fn station_ids(inbox: &Value) -> Vec<i64> {
    inbox["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["stationId"].as_i64().unwrap())
        .collect()
}

fn booking_ids(day: &Value) -> Vec<i64> {
    day["bookings"].as_array().unwrap().iter().map(id).collect()
}

fn instant(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .into()
}

#[tokio::test]
async fn the_inbox_lists_each_station_s_local_day_to_its_staff() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let mut body = support::station_body("CP-A3", 1, true, 52.52, 13.40);
        body["timeZone"] = json!("Europe/Berlin");
        let berlin = support::station(&s, &w.bo_a, body).await;
        // The clock is Monday 2030-01-07 05:30 in Colombo, 01:00 in Berlin.
        let today = book(&s, &w.owner1, w.s2, &slot(0, 10)).await;
        let early = book(&s, &w.owner2, w.s2, &slot(0, 8)).await;
        let pending = book(&s, &w.owner2, w.s1, &slot(0, 12)).await;
        let tomorrow = book(&s, &w.owner1, w.s2, &slot(1, 10)).await;
        // 21:00 in Berlin is 20:00 UTC: after Colombo's Monday ended (18:30 UTC), inside Berlin's.
        let late = book(&s, &w.owner1, berlin, "2030-01-07T20:00:00.000Z").await;
        s.req(
            "DELETE",
            &format!("/api/v1/bookings/{}", id(&early)),
            Some(&w.admin),
            None,
        )
        .await
        .expect(200);

        let mine = inbox(&s, &w.op_a, "").await;
        assert_eq!(
            station_ids(&mine),
            vec![w.s1, w.s2],
            "an operator sees the assigned stations"
        );
        assert_eq!(mine["truncated"], false);
        let s2 = day(&mine, w.s2);
        assert_eq!(booking_ids(&s2), vec![id(&today)], "cancelled and other days left out");
        assert_eq!(
            (s2["date"].as_str(), s2["approved"].as_i64()),
            (Some("2030-01-07"), Some(1))
        );
        assert_eq!(instant(&s2["from"]).to_rfc3339(), "2030-01-06T18:30:00+00:00");
        assert_eq!(instant(&s2["to"]) - instant(&s2["from"]), Duration::hours(24));
        assert!(
            booking_ids(&day(&mine, w.s1)).is_empty(),
            "a pending booking is not in the inbox"
        );

        // Approved, the pending one appears; a Faulted connector counts as an open alert.
        s.req(
            "POST",
            &format!("/api/v1/bookings/{}/approve", id(&pending)),
            Some(&w.bo_a),
            None,
        )
        .await
        .expect(200);
        deliver(&s, "CP-A1", vec![faulted(1)]).await;
        let mine = inbox(&s, &w.op_a, "").await;
        let s1 = day(&mine, w.s1);
        assert_eq!(booking_ids(&s1), vec![id(&pending)]);
        assert_eq!(s1["openAlerts"], 1);
        assert_eq!(day(&mine, w.s2)["openAlerts"], 0);

        // The BackOffice sees its three stations, Berlin's day in Berlin's time.
        let bo = inbox(&s, &w.bo_a, "").await;
        assert_eq!(station_ids(&bo), vec![w.s1, w.s2, berlin]);
        let b = day(&bo, berlin);
        assert_eq!(booking_ids(&b), vec![id(&late)]);
        assert_eq!(b["timeZone"], "Europe/Berlin");
        assert_eq!(instant(&b["from"]).to_rfc3339(), "2030-01-06T23:00:00+00:00");
        let next = inbox(&s, &w.bo_a, "?date=2030-01-08").await;
        assert_eq!(booking_ids(&day(&next, w.s2)), vec![id(&tomorrow)]);
        assert!(booking_ids(&day(&next, berlin)).is_empty());

        // A checked-in booking stays on the list, counted apart.
        s.clock
            .set(support::epoch() + Duration::hours(4) + Duration::minutes(20));
        s.req(
            "POST",
            &format!("/api/v1/bookings/{}/check-in", id(&today)),
            Some(&w.op_a),
            None,
        )
        .await
        .expect(200);
        let s2 = day(&inbox(&s, &w.op_a, &format!("?stationId={}", w.s2)).await, w.s2);
        assert_eq!((s2["approved"].as_i64(), s2["checkedIn"].as_i64()), (Some(0), Some(1)));
        assert_eq!(s2["bookings"][0]["status"], "CheckedIn");

        // Scope and bad input.
        assert_eq!(station_ids(&inbox(&s, &w.bo_b, "").await), vec![w.s3]);
        assert_eq!(
            station_ids(&inbox(&s, &w.admin, "").await),
            vec![w.s1, w.s2, w.s3, berlin]
        );
        s.req("GET", "/api/v1/inbox", Some(&w.owner1), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &format!("/api/v1/inbox?stationId={}", w.s3), Some(&w.op_a), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/inbox?stationId=99999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        for q in ["?date=2030-13-01", "?date=tomorrow", "?stationId=x", "?day=2030-01-07"] {
            s.req("GET", &format!("/api/v1/inbox{q}"), Some(&w.admin), None)
                .await
                .problem(400, "VALIDATION_FAILED");
        }
        s.req("GET", "/api/v1/inbox", None, None)
            .await
            .problem(401, "UNAUTHORIZED");
        s.stop().await;
    }
}

async fn exception(s: &TestServer, who: &str, booking: i64, body: Value) -> support::Resp {
    s.req(
        "POST",
        &format!("/api/v1/bookings/{booking}/exceptions"),
        Some(who),
        Some(body),
    )
    .await
}

async fn slot_booked(s: &TestServer, token: &str, station: i64, start: &str) -> i64 {
    let slots = s
        .req(
            "GET",
            &format!("/api/v1/stations/{station}/slots?from={start}&days=1"),
            Some(token),
            None,
        )
        .await
        .expect(200);
    let first = &slots.as_array().unwrap()[0];
    assert_eq!(instant(&first["startsAt"]), instant(&json!(start)));
    first["booked"].as_i64().unwrap()
}

#[tokio::test]
async fn exceptions_carry_a_reason_release_the_slot_and_stop_a_running_session() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let charger = FakeCharger::start(&s, "CP-A2", "Accepted").await;
        let running = book(&s, &w.owner1, w.s2, &slot(0, 10)).await;
        let idle = book(&s, &w.owner2, w.s2, &slot(0, 10)).await;
        let ahead = book(&s, &w.owner1, w.s2, &slot(1, 12)).await;
        let swept = book(&s, &w.owner2, w.s2, &slot(0, 14)).await;

        // Staff only, the body checked, the state machine and its time rules.
        let r = json!({ "kind": "CancelOnSite", "reason": "vehicle does not fit the bay" });
        for who in [&w.owner1, &w.op_b, &w.bo_b] {
            exception(&s, who, id(&ahead), r.clone())
                .await
                .problem(403, "FORBIDDEN");
        }
        for bad in [
            json!({}),
            json!({ "kind": "NoShow" }),
            json!({ "kind": "Teleported", "reason": "x" }),
            json!({ "kind": "NoShow", "reason": "   " }),
            json!({ "kind": "NoShow", "reason": "x".repeat(501) }),
            json!({ "kind": "NoShow", "reason": "x", "note": "y" }),
        ] {
            exception(&s, &w.op_a, id(&ahead), bad)
                .await
                .problem(400, "VALIDATION_FAILED");
        }
        exception(&s, &w.op_a, id(&ahead), json!({ "kind": "NoShow", "reason": "no car" }))
            .await
            .problem(409, "NO_SHOW_TOO_EARLY");
        exception(&s, &w.op_a, id(&ahead), json!({ "kind": "Aborted", "reason": "x" }))
            .await
            .problem(409, "ILLEGAL_TRANSITION");

        // Cancelled on site ahead of its slot: the unit is free again, nothing to stop.
        assert_eq!(slot_booked(&s, &w.op_a, w.s2, &slot(1, 12)).await, 1);
        let cancelled = exception(&s, &w.op_a, id(&ahead), r.clone()).await.expect(200);
        assert_eq!(cancelled["status"], "Cancelled");
        assert_eq!(cancelled["exception"], "CancelOnSite");
        assert_eq!(cancelled["exceptionReason"], "vehicle does not fit the bay");
        assert_eq!(cancelled["chargerStop"], Value::Null);
        assert_eq!(slot_booked(&s, &w.op_a, w.s2, &slot(1, 12)).await, 0);
        exception(&s, &w.op_a, id(&ahead), r.clone())
            .await
            .problem(409, "ILLEGAL_TRANSITION");

        // Checked in and charging: aborting stops the charger's transaction.
        s.clock
            .set(support::epoch() + Duration::hours(4) + Duration::minutes(20));
        for b in [&running, &idle] {
            s.req(
                "POST",
                &format!("/api/v1/bookings/{}/check-in", id(b)),
                Some(&w.op_a),
                None,
            )
            .await
            .expect(200);
        }
        deliver(
            &s,
            "CP-A2",
            vec![Event::TransactionStarted {
                transaction_id: "T-77".into(),
                id_token: running["idToken"].as_str().map(String::from),
                location: on(1),
                meter_start_wh: Some(1_000),
                remote_start_id: None,
            }],
        )
        .await;
        let aborted = s
            .req(
                "POST",
                &format!("/api/v1/bookings/{}/abort", id(&running)),
                Some(&w.op_a),
                Some(json!({ "reason": "cable damaged" })),
            )
            .await
            .expect(200);
        assert_eq!(aborted["status"], "Aborted");
        assert_eq!(aborted["exception"], "Aborted");
        assert_eq!(aborted["exceptionReason"], "cable damaged");
        assert_eq!(aborted["chargerStop"]["code"], "ACCEPTED");
        assert_eq!(aborted["chargerStop"]["transactionId"], "T-77");
        let stops: Vec<Command> = charger
            .commands()
            .into_iter()
            .filter(|c| matches!(c, Command::RemoteStop { .. }))
            .collect();
        assert_eq!(
            stops,
            vec![Command::RemoteStop {
                transaction_id: "T-77".into()
            }]
        );
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=booking&entityId={}", id(&running)),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let items = audit["items"].as_array().unwrap();
        let of = |action: &str| items.iter().find(|e| e["action"] == action).cloned().unwrap();
        assert_eq!(of("booking.aborted")["payload"]["details"]["reason"], "cable damaged");
        assert_eq!(of("booking.remote_stop")["payload"]["code"], "ACCEPTED");
        // The charger's end of the transaction leaves the booking Aborted.
        deliver(
            &s,
            "CP-A2",
            vec![Event::TransactionEnded {
                transaction_id: "T-77".into(),
                id_token: running["idToken"].as_str().map(String::from),
                location: on(1),
                meter_stop_wh: Some(4_000),
                stop_reason: Some("Remote".into()),
            }],
        )
        .await;
        let after = s
            .req(
                "GET",
                &format!("/api/v1/bookings/{}", id(&running)),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(
            (after["status"].as_str(), after["exception"].as_str()),
            (Some("Aborted"), Some("Aborted"))
        );

        // Checked in without a session: cancelled on site, nothing sent to the charger.
        let sent = charger.commands().len();
        let on_site = exception(&s, &w.bo_a, id(&idle), r.clone()).await.expect(200);
        assert_eq!(
            (on_site["status"].as_str(), &on_site["chargerStop"]),
            (Some("Cancelled"), &Value::Null)
        );
        assert_eq!(charger.commands().len(), sent);

        // The sweeper's no-show gives its own reason; a manual one without a body has none.
        s.clock.set(support::epoch() + Duration::hours(10));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        let swept = s
            .req(
                "GET",
                &format!("/api/v1/bookings/{}", id(&swept)),
                Some(&w.owner2),
                None,
            )
            .await
            .expect(200);
        assert_eq!(
            (swept["status"].as_str(), swept["exception"].as_str()),
            (Some("NoShow"), Some("NoShow"))
        );
        assert!(
            swept["exceptionReason"].as_str().unwrap().contains("15 minutes"),
            "{swept}"
        );
        s.stop().await;
    }
}
