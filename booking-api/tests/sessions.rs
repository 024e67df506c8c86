//! Charging sessions fed over the bus (1.6 and 2.0.1 shapes, out of order, duplicated, ended
//! before started), the booking transitions they drive, receipts, the operator's finalize,
//! each role's scope and 403s; on every backend, time from the test clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::clock::Clock;
use chrono::{DateTime, Duration, Utc};
use evcs_bus::{Event, EventEnvelope, Location, StationId};
use serde_json::{json, Value};
use support::{backends, slot, TestServer, World};

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

fn at(s: &TestServer, minutes: i64) -> DateTime<Utc> {
    s.clock.now() + Duration::minutes(minutes)
}

fn envelope(station: &str, occurred: DateTime<Utc>, event: Event) -> EventEnvelope {
    EventEnvelope::new(StationId::parse(station).unwrap(), occurred, event)
}

/// A 1.6 charger's location (connectorId) or a 2.0.1 one's (evseId, connectorId 1).
fn loc(v201: bool, connector: u32) -> Location {
    if v201 {
        Location {
            evse_id: Some(connector),
            connector_id: Some(1),
        }
    } else {
        Location {
            evse_id: None,
            connector_id: Some(connector),
        }
    }
}

fn started(tx: &str, token: Option<&str>, location: Location, meter: Option<i64>, remote: Option<i64>) -> Event {
    Event::TransactionStarted {
        transaction_id: tx.into(),
        id_token: token.map(str::to_string),
        location,
        meter_start_wh: meter,
        remote_start_id: remote,
    }
}

fn summary(tx: &str, location: Location, wh: i64, power: f64, soc: Option<f64>, measured: DateTime<Utc>) -> Event {
    Event::MeterSummary {
        transaction_id: tx.into(),
        location,
        energy_wh: Some(wh),
        power_w: Some(power),
        soc_percent: soc,
        current_a: Some(power / 230.0),
        at: measured,
    }
}

fn ended(tx: &str, token: Option<&str>, location: Location, meter: Option<i64>) -> Event {
    Event::TransactionEnded {
        transaction_id: tx.into(),
        id_token: token.map(str::to_string),
        location,
        meter_stop_wh: meter,
        stop_reason: Some("EVDisconnected".into()),
    }
}

/// Publishes the envelopes in order and waits until the last is applied.
async fn deliver(s: &TestServer, events: &[EventEnvelope]) {
    for e in events {
        s.state.bus.publish(e.clone()).await.expect("publish");
    }
    if let Some(last) = events.last() {
        s.wait_processed(&last.event_id).await;
    }
}

/// Owner1 books the auto-approving station s2 (CP-A2) for tomorrow 10:00; the clock moves to
/// the slot's start. Returns the booking.
async fn approved_booking(s: &TestServer, w: &World, owner: &str, hour: u32) -> Value {
    let b = s
        .req(
            "POST",
            "/api/v1/bookings",
            Some(owner),
            Some(json!({ "stationId": w.s2, "slotStart": slot(1, hour) })),
        )
        .await
        .expect(201);
    assert_eq!(b["status"], "Approved");
    b
}

async fn booking_status(s: &TestServer, token: &str, id: i64) -> String {
    s.req("GET", &format!("/api/v1/bookings/{id}"), Some(token), None)
        .await
        .expect(200)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn sessions_count(s: &TestServer) -> i64 {
    let db = &s.state.db;
    service_kit::db::on_db!(db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM charging_sessions"
    )
    .fetch_one(pool)
    .await
    .unwrap())
}

#[tokio::test]
async fn a_booked_transaction_checks_in_meters_and_completes_the_booking_on_both_versions() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        for (v201, hour, tx) in [(false, 10, "101"), (true, 12, "102")] {
            let b = approved_booking(&s, &w, &w.owner1, hour).await;
            let (bid, token) = (id(&b), b["idToken"].as_str().unwrap().to_string());
            s.clock.set(
                chrono::DateTime::parse_from_rfc3339(&slot(1, hour))
                    .unwrap()
                    .with_timezone(&Utc),
            );
            // No session before the charger starts.
            s.req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(&w.owner1), None)
                .await
                .problem(404, "NO_SESSION");
            // 1.6 reports meterStart; a 2.0.1 charger without a Transaction.Begin reading does
            // not, and the first register it sends is the baseline.
            let meter_start = if v201 { None } else { Some(10_000) };
            let l = loc(v201, 1);
            deliver(
                &s,
                &[envelope(
                    "CP-A2",
                    at(&s, 0),
                    started(tx, Some(&token), l, meter_start, None),
                )],
            )
            .await;
            assert_eq!(booking_status(&s, &w.owner1, bid).await, "CheckedIn");
            let session = s
                .req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(&w.owner1), None)
                .await
                .expect(200);
            let sid = id(&session);
            assert_eq!(
                (
                    session["status"].as_str(),
                    session["bookingId"].as_i64(),
                    session["transactionId"].as_str()
                ),
                (Some("Active"), Some(bid), Some(tx))
            );
            assert_eq!(
                (session["stationId"].as_i64(), session["connectorId"].as_i64()),
                (Some(w.s2), Some(1))
            );
            s.req("GET", &format!("/api/v1/sessions/{sid}/receipt"), Some(&w.owner1), None)
                .await
                .problem(409, "SESSION_ACTIVE");
            // Meter summaries carry the register: energy is register minus the start.
            deliver(
                &s,
                &[
                    envelope(
                        "CP-A2",
                        at(&s, 5),
                        summary(tx, l, 10_600, 7200.0, Some(40.0), at(&s, 5)),
                    ),
                    envelope(
                        "CP-A2",
                        at(&s, 10),
                        summary(tx, l, 11_200, 7100.0, Some(45.5), at(&s, 10)),
                    ),
                ],
            )
            .await;
            s.clock.advance(Duration::minutes(10));
            let live = s
                .req("GET", &format!("/api/v1/sessions/{sid}"), Some(&w.owner1), None)
                .await
                .expect(200);
            let expected_so_far = if v201 { 600 } else { 1200 };
            assert_eq!(live["energyWh"].as_i64(), Some(expected_so_far), "{live}");
            assert_eq!(live["energySource"], "summary");
            assert_eq!(
                (live["powerW"].as_f64(), live["socPercent"].as_f64()),
                (Some(7100.0), Some(45.5))
            );
            assert_eq!(live["durationSecs"].as_i64(), Some(600));
            // The charger stops: the session and the booking complete; energy from the meter.
            deliver(
                &s,
                &[envelope("CP-A2", at(&s, 20), ended(tx, Some(&token), l, Some(12_000)))],
            )
            .await;
            assert_eq!(booking_status(&s, &w.owner1, bid).await, "Completed");
            let r = s
                .req("GET", &format!("/api/v1/sessions/{sid}/receipt"), Some(&w.owner1), None)
                .await
                .expect(200);
            let expected = if v201 { 12_000 - 10_600 } else { 2_000 };
            assert_eq!(
                (r["energyWh"].as_i64(), r["energySource"].as_str()),
                (Some(expected), Some("meter"))
            );
            assert_eq!(
                (r["durationSecs"].as_i64(), r["bookedSecs"].as_i64()),
                (Some(1800), Some(3600))
            );
            assert_eq!(
                (r["endedBy"].as_str(), r["stopReason"].as_str()),
                (Some("charger"), Some("EVDisconnected"))
            );
            assert_eq!(r["booking"]["id"].as_i64(), Some(bid));
            assert_eq!(r["booking"]["status"], "Completed");
        }
        // The booking changes were audited as the system's, with the session.
        let audit = s
            .req(
                "GET",
                "/api/v1/audit-events?action=booking.completed",
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
        assert!(audit["items"][0]["actorId"].is_null());
        s.stop().await;
    }
}

#[tokio::test]
async fn out_of_order_duplicated_and_late_events_reconcile_to_one_session() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let b = approved_booking(&s, &w, &w.owner1, 10).await;
        let (bid, token) = (id(&b), b["idToken"].as_str().unwrap().to_string());
        s.clock.set(
            chrono::DateTime::parse_from_rfc3339(&slot(1, 10))
                .unwrap()
                .with_timezone(&Utc),
        );
        let l = loc(false, 2);
        let start = envelope("CP-A2", at(&s, 0), started("7", Some(&token), l, Some(500), None));
        let newer = envelope("CP-A2", at(&s, 10), summary("7", l, 1500, 7000.0, None, at(&s, 10)));
        let older = envelope("CP-A2", at(&s, 5), summary("7", l, 1000, 6000.0, None, at(&s, 5)));
        let end = envelope("CP-A2", at(&s, 30), ended("7", Some(&token), l, Some(2500)));
        // The charger was offline: its end arrives first, then the rest, some of it twice.
        deliver(
            &s,
            &[
                end.clone(),
                newer.clone(),
                older.clone(),
                start.clone(),
                end.clone(),
                start.clone(),
            ],
        )
        .await;
        assert_eq!(sessions_count(&s).await, 1);
        let session = s
            .req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(session["status"], "Completed");
        assert_eq!(
            session["registerWh"].as_i64(),
            Some(1500),
            "the older summary did not win"
        );
        assert_eq!(session["energyWh"].as_i64(), Some(2000));
        assert_eq!(session["durationSecs"].as_i64(), Some(1800));
        assert_eq!(session["connectorId"].as_i64(), Some(2));
        // Ended before started still checked the booking in and completed it, once each.
        assert_eq!(booking_status(&s, &w.owner1, bid).await, "Completed");
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=booking&entityId={bid}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions.iter().filter(|a| **a == "booking.checked_in").count(),
            1,
            "{actions:?}"
        );
        assert_eq!(actions.iter().filter(|a| **a == "booking.completed").count(), 1);
        // A replay of everything with new event ids (the publisher resent its outbox) changes
        // nothing either.
        let before = s
            .req(
                "GET",
                &format!("/api/v1/sessions/{}", id(&session)),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let replays: Vec<EventEnvelope> = [&start, &older, &newer, &end]
            .iter()
            .map(|e| envelope("CP-A2", e.occurred_at, e.event.clone()))
            .collect();
        deliver(&s, &replays).await;
        let after = s
            .req(
                "GET",
                &format!("/api/v1/sessions/{}", id(&session)),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(before, after);
        s.stop().await;
    }
}

#[tokio::test]
async fn remote_start_id_matches_and_ad_hoc_and_unlinked_transactions() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let b = approved_booking(&s, &w, &w.owner1, 10).await;
        let bid = id(&b);
        // QR check-in (another feature) records the remote-start id it sent.
        let db = &s.state.db;
        service_kit::db::on_db!(db, |pool| sqlx::query(
            "UPDATE bookings SET remote_start_id = 4242 WHERE id = $1"
        )
        .bind(bid)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected());
        // A 2.0.1 start that names the remote-start id and another token type's value.
        deliver(
            &s,
            &[envelope(
                "CP-A2",
                at(&s, 0),
                started("tx-remote", Some("SOMEONE-ELSE"), loc(true, 1), Some(0), Some(4242)),
            )],
        )
        .await;
        let session = s
            .req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(session["remoteStartId"].as_i64(), Some(4242));
        // An ad-hoc transaction at a linked station: a session without a booking.
        deliver(
            &s,
            &[envelope(
                "CP-A1",
                at(&s, 0),
                started("adhoc", Some("RFID-1"), loc(false, 1), Some(100), None),
            )],
        )
        .await;
        // A booking token used at another station does not match there.
        let token = b["idToken"].as_str().unwrap();
        deliver(
            &s,
            &[envelope(
                "CP-B1",
                at(&s, 0),
                started("elsewhere", Some(token), loc(false, 1), Some(0), None),
            )],
        )
        .await;
        // A charger no station links to: no session.
        s.known_charger("CP-LONER", &[1]).await;
        deliver(
            &s,
            &[envelope(
                "CP-LONER",
                at(&s, 0),
                started("lone", Some(token), loc(false, 1), Some(0), None),
            )],
        )
        .await;
        assert_eq!(sessions_count(&s).await, 3);
        let list = |token: String| {
            let s = &s;
            async move {
                let page = s.req("GET", "/api/v1/sessions", Some(&token), None).await.expect(200);
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["transactionId"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list(w.owner1.clone()).await, vec!["tx-remote"]);
        assert!(list(w.owner2.clone()).await.is_empty());
        assert_eq!(list(w.op_a.clone()).await, vec!["adhoc", "tx-remote"]);
        assert_eq!(list(w.bo_a.clone()).await, vec!["adhoc", "tx-remote"]);
        assert_eq!(list(w.op_b.clone()).await, vec!["elsewhere"]);
        assert_eq!(list(w.bo_b.clone()).await, vec!["elsewhere"]);
        assert_eq!(list(w.admin.clone()).await.len(), 3);
        let adhoc = s
            .req(
                "GET",
                "/api/v1/sessions?stationId=1&status=Active&limit=1",
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(adhoc["items"][0]["bookingId"], Value::Null);
        assert!(adhoc["nextCursor"].is_string());
        s.req("GET", "/api/v1/sessions?status=Nope", Some(&w.admin), None)
            .await
            .problem(400, "VALIDATION_FAILED");
        s.stop().await;
    }
}

#[tokio::test]
async fn finalize_by_staff_in_scope_gives_a_receipt_and_every_role_is_scoped() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let b = approved_booking(&s, &w, &w.owner1, 10).await;
        let (bid, token) = (id(&b), b["idToken"].as_str().unwrap().to_string());
        s.clock.set(
            chrono::DateTime::parse_from_rfc3339(&slot(1, 10))
                .unwrap()
                .with_timezone(&Utc),
        );
        let l = loc(false, 1);
        deliver(
            &s,
            &[
                envelope("CP-A2", at(&s, 0), started("55", Some(&token), l, Some(1000), None)),
                envelope("CP-A2", at(&s, 15), summary("55", l, 4000, 11000.0, None, at(&s, 15))),
            ],
        )
        .await;
        let sid = id(&s
            .req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(&w.owner1), None)
            .await
            .expect(200));
        let path = format!("/api/v1/sessions/{sid}");
        // Reading: the owner, the station's staff and admins; not another owner or another
        // BackOffice's staff.
        for token in [&w.owner1, &w.op_a, &w.bo_a, &w.admin] {
            s.req("GET", &path, Some(token), None).await.expect(200);
            s.req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(token), None)
                .await
                .expect(200);
        }
        for token in [&w.owner2, &w.op_b, &w.bo_b] {
            s.req("GET", &path, Some(token), None).await.problem(403, "FORBIDDEN");
            s.req("GET", &format!("{path}/receipt"), Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
            s.req("GET", &format!("/api/v1/bookings/{bid}/session"), Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("GET", &path, None, None).await.problem(401, "UNAUTHORIZED");
        s.req("GET", "/api/v1/sessions/999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        // Finalize: staff in scope only.
        for token in [&w.owner1, &w.owner2, &w.op_b, &w.bo_b] {
            s.req("POST", &format!("{path}/finalize"), Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("POST", "/api/v1/sessions/999/finalize", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        s.clock.advance(Duration::minutes(45));
        let r = s
            .req("POST", &format!("{path}/finalize"), Some(&w.op_a), None)
            .await
            .expect(200);
        assert_eq!(
            (r["energyWh"].as_i64(), r["energySource"].as_str()),
            (Some(3000), Some("summary"))
        );
        assert_eq!(
            (r["endedBy"].as_str(), r["durationSecs"].as_i64()),
            (Some("operator"), Some(2700))
        );
        assert_eq!(r["booking"]["status"], "Completed");
        s.req("POST", &format!("{path}/finalize"), Some(&w.bo_a), None)
            .await
            .problem(409, "SESSION_ALREADY_COMPLETED");
        // The operator is recorded as the actor of the completion.
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=booking&entityId={bid}&action=booking.completed"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(audit["items"][0]["actorId"].as_i64(), Some(w.op_a_id));
        // The charger's own end arrives late: its meter corrects the receipt.
        deliver(
            &s,
            &[envelope("CP-A2", at(&s, -10), ended("55", Some(&token), l, Some(4500)))],
        )
        .await;
        let r = s
            .req("GET", &format!("{path}/receipt"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(
            (r["energyWh"].as_i64(), r["endedBy"].as_str()),
            (Some(3500), Some("charger"))
        );
        assert_eq!(booking_status(&s, &w.owner1, bid).await, "Completed");
        s.stop().await;
    }
}
