//! Maintenance windows over HTTP, on each backend: who may schedule them, field and overlap
//! errors, slots no longer offered and bookings refused inside them (SLOT_IN_MAINTENANCE), the
//! refusal over existing bookings (MAINTENANCE_CONFLICTS_BOOKINGS) and moving those bookings
//! (or cancelling them when no slot is left), with notifications and audit entries; cancelling
//! a window gives its slots back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use support::{backends, slot, TestServer, World};

fn window(from: &str, to: &str) -> Value {
    json!({ "startsAt": from, "endsAt": to, "reason": "replacing the cable" })
}

async fn create(s: &TestServer, token: &str, station: i64, body: Value) -> support::Resp {
    s.req(
        "POST",
        &format!("/api/v1/stations/{station}/maintenance-windows"),
        Some(token),
        Some(body),
    )
    .await
}

async fn book(s: &TestServer, token: &str, station: i64, start: &str) -> support::Resp {
    s.req(
        "POST",
        "/api/v1/bookings",
        Some(token),
        Some(json!({ "stationId": station, "slotStart": start })),
    )
    .await
}

async fn notifications(s: &TestServer, token: &str) -> Vec<Value> {
    s.req("GET", "/api/v1/notifications", Some(token), None)
        .await
        .expect(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn only_the_stations_staff_schedule_windows_and_bad_requests_get_codes() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // Owners and other BackOffices' staff may not.
        create(&s, &w.owner1, w.s1, window(&slot(1, 8), &slot(1, 9)))
            .await
            .problem(403, "FORBIDDEN");
        create(&s, &w.bo_b, w.s1, window(&slot(1, 8), &slot(1, 9)))
            .await
            .problem(403, "FORBIDDEN");
        create(&s, &w.op_b, w.s1, window(&slot(1, 8), &slot(1, 9)))
            .await
            .problem(403, "FORBIDDEN");
        // The station's operator, its BackOffice and admins may.
        let mut ids = Vec::new();
        for (token, hour) in [(&w.op_a, 8), (&w.bo_a, 10), (&w.admin, 12)] {
            let r = create(&s, token, w.s1, window(&slot(1, hour), &slot(1, hour + 1))).await;
            assert_eq!(
                r.headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                Some(format!("/api/v1/maintenance-windows/{}", r.body["id"]))
            );
            let body = r.expect(201);
            assert_eq!(body["status"], "Scheduled", "{body}");
            assert_eq!(body["connectorId"], Value::Null, "{body}");
            assert_eq!(body["affectedBookings"], json!([]), "{body}");
            ids.push(body["id"].as_i64().unwrap());
        }
        // Overlaps: a station window overlaps everything; connector windows only their own.
        let r = create(&s, &w.op_a, w.s1, window(&slot(1, 8), &slot(1, 10))).await;
        assert_eq!(
            r.clone().problem(409, "MAINTENANCE_WINDOW_OVERLAPS")["errors"][0]["maintenanceWindowId"],
            ids[0]
        );
        let mut on_one = window(&slot(2, 8), &slot(2, 10));
        on_one["connectorId"] = json!(1);
        create(&s, &w.op_a, w.s2, on_one.clone()).await.expect(201);
        let mut on_two = on_one.clone();
        on_two["connectorId"] = json!(2);
        create(&s, &w.op_a, w.s2, on_two).await.expect(201);
        create(&s, &w.op_a, w.s2, on_one)
            .await
            .problem(409, "MAINTENANCE_WINDOW_OVERLAPS");
        // Field errors (400) and a connector the station does not have (422).
        let r = create(&s, &w.op_a, w.s1, window(&slot(3, 9), &slot(3, 8))).await;
        assert_eq!(r.fields(), ["endsAt"]);
        r.problem(400, "VALIDATION_FAILED");
        let r = create(&s, &w.op_a, w.s1, window("2030-01-06T00:00:00Z", &slot(3, 8))).await;
        assert_eq!(r.fields(), ["startsAt"]);
        let r = create(
            &s,
            &w.op_a,
            w.s1,
            json!({ "startsAt": slot(3, 8), "endsAt": slot(3, 9), "reason": "  " }),
        )
        .await;
        assert_eq!(r.fields(), ["reason"]);
        let mut unknown = window(&slot(3, 8), &slot(3, 9));
        unknown["connectorId"] = json!(9);
        create(&s, &w.op_a, w.s1, unknown)
            .await
            .problem(422, "UNKNOWN_CONNECTOR");
        // Reading: staff in scope only.
        let list = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/maintenance-windows", w.s1),
                Some(&w.op_a),
                None,
            )
            .await
            .expect(200);
        let listed: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_i64().unwrap())
            .collect();
        assert_eq!(listed, ids);
        s.req(
            "GET",
            &format!("/api/v1/stations/{}/maintenance-windows", w.s1),
            Some(&w.owner1),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
        s.req(
            "GET",
            &format!("/api/v1/maintenance-windows/{}", ids[0]),
            Some(&w.bo_b),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/maintenance-windows/999999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        // Cancelling before the start; twice is refused.
        let cancelled = s
            .req(
                "DELETE",
                &format!("/api/v1/maintenance-windows/{}", ids[0]),
                Some(&w.op_a),
                None,
            )
            .await
            .expect(200);
        assert_eq!(cancelled["status"], "Cancelled", "{cancelled}");
        s.req(
            "DELETE",
            &format!("/api/v1/maintenance-windows/{}", ids[0]),
            Some(&w.op_a),
            None,
        )
        .await
        .problem(409, "MAINTENANCE_WINDOW_CANCELLED");
        s.req(
            "DELETE",
            &format!("/api/v1/maintenance-windows/{}", ids[1]),
            Some(&w.owner1),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
        // Ended early while running; once over it cannot be ended again.
        let half_past: String = (slot(1, 10).parse::<chrono::DateTime<chrono::Utc>>().unwrap()
            + chrono::Duration::minutes(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        s.clock.set(half_past.parse().unwrap());
        let ended = s
            .req(
                "DELETE",
                &format!("/api/v1/maintenance-windows/{}", ids[1]),
                Some(&w.bo_a),
                None,
            )
            .await
            .expect(200);
        assert_eq!(ended["status"], "Ended", "{ended}");
        assert_eq!(ended["endsAt"].as_str(), Some(half_past.as_str()), "{ended}");
        assert_eq!(ended["endedEarlyAt"].as_str(), Some(half_past.as_str()), "{ended}");
        s.req(
            "DELETE",
            &format!("/api/v1/maintenance-windows/{}", ids[1]),
            Some(&w.bo_a),
            None,
        )
        .await
        .problem(409, "MAINTENANCE_WINDOW_ENDED");
        let audit = s
            .req(
                "GET",
                "/api/v1/audit-events?entityType=maintenance_window",
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
        for action in [
            "maintenance.created",
            "maintenance.cancelled",
            "maintenance.ended_early",
        ] {
            assert!(actions.contains(&action), "{action} in {actions:?}");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn slots_inside_a_window_are_not_offered_and_bookings_there_are_refused() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // s2 has two bookable connectors: a station window takes both, a connector window one.
        create(&s, &w.op_a, w.s2, window(&slot(1, 10), &slot(1, 12)))
            .await
            .expect(201);
        let mut one = window(&slot(1, 14), &slot(1, 15));
        one["connectorId"] = json!(1);
        create(&s, &w.op_a, w.s2, one).await.expect(201);
        let slots = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/slots?from={}&available=true", w.s2, slot(1, 9)),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        let offered: Vec<String> = slots
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["startsAt"].as_str().unwrap().to_string())
            .collect();
        for hour in [9, 12, 13, 14, 15] {
            assert!(offered.contains(&slot(1, hour)), "{hour}:00 offered: {offered:?}");
        }
        for hour in [10, 11] {
            assert!(!offered.contains(&slot(1, hour)), "{hour}:00 not offered: {offered:?}");
        }
        let at_14 = slots
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["startsAt"] == slot(1, 14).as_str())
            .unwrap();
        assert_eq!(at_14["capacity"], 1, "{at_14}");
        book(&s, &w.owner1, w.s2, &slot(1, 10))
            .await
            .problem(409, "SLOT_IN_MAINTENANCE");
        book(&s, &w.owner1, w.s2, &slot(1, 11))
            .await
            .problem(409, "SLOT_IN_MAINTENANCE");
        // The connector window leaves one unit: the first booking gets it.
        book(&s, &w.owner1, w.s2, &slot(1, 14)).await.expect(201);
        book(&s, &w.owner2, w.s2, &slot(1, 14))
            .await
            .problem(409, "SLOT_IN_MAINTENANCE");
        // Outside windows a full slot is still SLOT_FULL; rescheduling into a window is refused.
        let b = book(&s, &w.owner1, w.s2, &slot(1, 9)).await.expect(201);
        book(&s, &w.owner2, w.s2, &slot(1, 9)).await.expect(201);
        book(&s, &w.owner2, w.s2, &slot(1, 9)).await.problem(409, "SLOT_FULL");
        s.req(
            "PUT",
            &format!("/api/v1/bookings/{}", b["id"]),
            Some(&w.owner1),
            Some(json!({ "slotStart": slot(1, 11) })),
        )
        .await
        .problem(409, "SLOT_IN_MAINTENANCE");
        // The inventory worker keeps the windows' capacities.
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        book(&s, &w.owner2, w.s2, &slot(1, 10))
            .await
            .problem(409, "SLOT_IN_MAINTENANCE");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_window_over_bookings_is_refused_unless_they_move_and_their_owners_are_told() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // Both units of s2 at 16:00 are booked (auto-approved).
        let b1 = book(&s, &w.owner1, w.s2, &slot(1, 16)).await.expect(201)["id"]
            .as_i64()
            .unwrap();
        let b2 = book(&s, &w.owner2, w.s2, &slot(1, 16)).await.expect(201)["id"]
            .as_i64()
            .unwrap();
        let r = create(&s, &w.op_a, w.s2, window(&slot(1, 16), &slot(1, 17))).await;
        let problem = r.problem(409, "MAINTENANCE_CONFLICTS_BOOKINGS");
        let mut listed: Vec<i64> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bookingId"].as_i64().unwrap())
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, [b1, b2], "{problem}");
        assert_eq!(problem["errors"][0]["status"], "Approved", "{problem}");
        // Refused means nothing changed: no window, the slot still full.
        let windows = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/maintenance-windows", w.s2),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(windows, json!([]));
        book(&s, &w.owner1, w.s2, &slot(1, 16)).await.problem(409, "SLOT_FULL");
        // A connector window leaves one unit for two bookings: one of them is in the way.
        let mut one = window(&slot(1, 16), &slot(1, 17));
        one["connectorId"] = json!(2);
        let problem = create(&s, &w.op_a, w.s2, one)
            .await
            .problem(409, "MAINTENANCE_CONFLICTS_BOOKINGS");
        assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");

        // Moving: both go to 17:00, still Approved; the owners are told.
        let mut moving = window(&slot(1, 16), &slot(1, 17));
        moving["moveBookings"] = json!(true);
        let created = create(&s, &w.bo_a, w.s2, moving).await.expect(201);
        let affected = created["affectedBookings"].as_array().unwrap();
        assert_eq!(affected.len(), 2, "{created}");
        for a in affected {
            assert_eq!(a["outcome"], "Moved", "{created}");
            assert_eq!(a["previousStartsAt"].as_str(), Some(slot(1, 16).as_str()), "{created}");
            assert_eq!(a["startsAt"].as_str(), Some(slot(1, 17).as_str()), "{created}");
        }
        for (id, token) in [(b1, &w.owner1), (b2, &w.owner2)] {
            let b = s
                .req("GET", &format!("/api/v1/bookings/{id}"), Some(token), None)
                .await
                .expect(200);
            assert_eq!(b["startsAt"].as_str(), Some(slot(1, 17).as_str()), "{b}");
            assert_eq!(b["status"], "Approved", "{b}");
            let moved: Vec<Value> = notifications(&s, token)
                .await
                .into_iter()
                .filter(|n| n["kind"] == "BookingMoved")
                .collect();
            assert_eq!(moved.len(), 1, "{moved:?}");
        }
        // The old slot is blocked, the new one full.
        book(&s, &w.owner1, w.s2, &slot(1, 16))
            .await
            .problem(409, "SLOT_IN_MAINTENANCE");
        book(&s, &w.owner1, w.s2, &slot(1, 17)).await.problem(409, "SLOT_FULL");
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=booking&entityId={b1}&action=booking.moved"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");

        // s1 (one unit, approval needed): a pending booking with no free slot left before the
        // end of the inventory is cancelled, and its owner told.
        let pending = book(&s, &w.owner1, w.s1, &slot(1, 21)).await.expect(201)["id"]
            .as_i64()
            .unwrap();
        let mut long = window(&slot(1, 21), &slot(20, 21));
        long["moveBookings"] = json!(true);
        let created = create(&s, &w.op_a, w.s1, long).await.expect(201);
        assert_eq!(created["affectedBookings"][0]["bookingId"], pending, "{created}");
        assert_eq!(created["affectedBookings"][0]["outcome"], "Cancelled", "{created}");
        let b = s
            .req("GET", &format!("/api/v1/bookings/{pending}"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(b["status"], "Cancelled", "{b}");
        assert!(notifications(&s, &w.owner1)
            .await
            .iter()
            .any(|n| n["kind"] == "BookingCancelled"
                && n["payload"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&format!("\"bookingId\":{pending}"))));

        // Cancelling the s1 window offers its 21:00 slot again.
        let id = created["id"].as_i64().unwrap();
        s.req(
            "DELETE",
            &format!("/api/v1/maintenance-windows/{id}"),
            Some(&w.admin),
            None,
        )
        .await
        .expect(200);
        book(&s, &w.owner2, w.s1, &slot(1, 21)).await.expect(201);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_booking_holding_the_windows_connector_gets_another_one() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // A charger that accepts every command.
        let mut server = s.state.bus.serve_commands("test-node").await.unwrap();
        server
            .serve(&evcs_bus::StationId::parse("CP-A2").unwrap())
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Some(incoming) = server.next().await {
                let _ = incoming
                    .reply(evcs_bus::CommandReply::Status {
                        status: "Accepted".into(),
                        payload: None,
                    })
                    .await;
            }
        });
        // 06:00 Colombo is within the reservation lead time of the start clock: the charger
        // round assigns connector 1 and reserves it.
        let id = book(&s, &w.owner1, w.s2, &slot(0, 6)).await.expect(201)["id"]
            .as_i64()
            .unwrap();
        booking_api::reservations::run(&s.state).await.unwrap();
        let b = s
            .req("GET", &format!("/api/v1/bookings/{id}"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(b["connectorId"], 1, "{b}");
        assert_eq!(b["reservationStatus"], "Accepted", "{b}");
        let mut one = window(&slot(0, 6), &slot(0, 7));
        one["connectorId"] = json!(1);
        let problem = create(&s, &w.op_a, w.s2, one.clone())
            .await
            .problem(409, "MAINTENANCE_CONFLICTS_BOOKINGS");
        assert_eq!(problem["errors"][0]["bookingId"], id, "{problem}");
        assert_eq!(problem["errors"][0]["connectorId"], 1, "{problem}");
        one["moveBookings"] = json!(true);
        let created = create(&s, &w.op_a, w.s2, one).await.expect(201);
        assert_eq!(created["affectedBookings"][0]["outcome"], "Reassigned", "{created}");
        assert_eq!(
            created["affectedBookings"][0]["startsAt"].as_str(),
            Some(slot(0, 6).as_str()),
            "{created}"
        );
        assert!(notifications(&s, &w.owner1)
            .await
            .iter()
            .any(|n| n["kind"] == "BookingReassigned"));
        // The next rounds cancel the reservation on connector 1 and reserve the connector the
        // window leaves.
        booking_api::reservations::run(&s.state).await.unwrap();
        booking_api::reservations::run(&s.state).await.unwrap();
        let b = s
            .req("GET", &format!("/api/v1/bookings/{id}"), Some(&w.owner1), None)
            .await
            .expect(200);
        assert_eq!(b["connectorId"], 2, "{b}");
        assert_eq!(b["reservationStatus"], "Accepted", "{b}");
        assert_eq!(b["startsAt"].as_str(), Some(slot(0, 6).as_str()), "{b}");
        s.stop().await;
    }
}
