//! Bookings over HTTP: the lifecycle, every policy code, illegal transitions, scoping,
//! idempotent creation, audit and notifications; and a role matrix over every endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::Duration;
use serde_json::{json, Value};
use support::{backends, slot, TestServer, World};

async fn book(s: &TestServer, token: &str, station: i64, start: &str) -> support::Resp {
    s.req(
        "POST",
        "/api/v1/bookings",
        Some(token),
        Some(json!({ "stationId": station, "slotStart": start })),
    )
    .await
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

#[tokio::test]
async fn lifecycle_policies_and_scope() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // Create: Pending at a station without auto-approval; only owners book.
        let r = book(&s, &w.owner1, w.s1, &slot(1, 10)).await;
        assert_eq!(
            r.headers.get("location").unwrap().to_str().unwrap(),
            format!("/api/v1/bookings/{}", r.body["id"])
        );
        let b1 = r.expect(201);
        assert_eq!(
            (b1["status"].as_str(), b1["startsAt"].as_str()),
            (Some("Pending"), Some(slot(1, 10).as_str()))
        );
        for token in [&w.admin, &w.bo_a, &w.op_a] {
            book(&s, token, w.s1, &slot(1, 11)).await.problem(403, "FORBIDDEN");
        }
        // A deactivated owner's still-valid token cannot book.
        let nic2 = "199012345678";
        s.req(
            "POST",
            &format!("/api/v1/owners/{nic2}/deactivate"),
            Some(&w.admin),
            None,
        )
        .await
        .expect(200);
        book(&s, &w.owner2, w.s1, &slot(1, 11))
            .await
            .problem(403, "ACCOUNT_INACTIVE");
        book(&s, &w.owner2, w.s1, &slot(1, 3))
            .await
            .problem(403, "ACCOUNT_INACTIVE");
        s.req(
            "POST",
            &format!("/api/v1/owners/{nic2}/reactivate"),
            Some(&w.admin),
            None,
        )
        .await
        .expect(200);
        // Every creation policy.
        book(&s, &w.owner2, w.s1, &slot(1, 10)).await.problem(409, "SLOT_FULL");
        book(&s, &w.owner2, w.s1, &slot(8, 10))
            .await
            .problem(409, "BOOKING_HORIZON_EXCEEDED");
        book(&s, &w.owner2, w.s1, &slot(0, 5))
            .await
            .problem(409, "SLOT_IN_PAST");
        book(&s, &w.owner2, w.s1, &slot(1, 3))
            .await
            .problem(404, "SLOT_NOT_FOUND");
        book(&s, &w.owner2, 9999, &slot(1, 10)).await.problem(404, "NOT_FOUND");
        let r = s
            .req(
                "POST",
                "/api/v1/bookings",
                Some(&w.owner2),
                Some(json!({ "stationId": w.s1, "slotStart": "tomorrow" })),
            )
            .await;
        assert_eq!(r.fields(), ["slotStart"]);
        let r = s
            .req(
                "POST",
                "/api/v1/bookings",
                Some(&w.owner2),
                Some(json!({ "stationId": w.s1, "slotStart": slot(1, 12), "vehicleId": 1 })),
            )
            .await;
        assert_eq!(r.fields(), ["vehicleId"]);
        // Approval: the station's BackOffice or an admin, nobody else.
        let b1_id = id(&b1);
        for token in [&w.bo_b, &w.op_a, &w.owner1] {
            s.req("POST", &format!("/api/v1/bookings/{b1_id}/approve"), Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        let approved = s
            .req(
                "POST",
                &format!("/api/v1/bookings/{b1_id}/approve"),
                Some(&w.bo_a),
                None,
            )
            .await
            .expect(200);
        assert_eq!(approved["status"], "Approved");
        s.req(
            "POST",
            &format!("/api/v1/bookings/{b1_id}/approve"),
            Some(&w.admin),
            None,
        )
        .await
        .problem(409, "ILLEGAL_TRANSITION");
        // Reschedule: the owner only; at a station without auto-approval it needs approval again.
        s.req(
            "PUT",
            &format!("/api/v1/bookings/{b1_id}"),
            Some(&w.owner2),
            Some(json!({ "slotStart": slot(1, 12) })),
        )
        .await
        .problem(403, "FORBIDDEN");
        s.req(
            "PUT",
            &format!("/api/v1/bookings/{b1_id}"),
            Some(&w.owner1),
            Some(json!({ "slotStart": slot(9, 12) })),
        )
        .await
        .problem(409, "BOOKING_HORIZON_EXCEEDED");
        let moved = s
            .req(
                "PUT",
                &format!("/api/v1/bookings/{b1_id}"),
                Some(&w.owner1),
                Some(json!({ "slotStart": slot(1, 12) })),
            )
            .await
            .expect(200);
        assert_eq!(
            (moved["status"].as_str(), moved["startsAt"].as_str()),
            (Some("Pending"), Some(slot(1, 12).as_str()))
        );
        // The old slot is free again, the new one is full.
        let b2 = book(&s, &w.owner2, w.s1, &slot(1, 10)).await.expect(201);
        book(&s, &w.owner2, w.s1, &slot(1, 12)).await.problem(409, "SLOT_FULL");
        s.req(
            "PUT",
            &format!("/api/v1/bookings/{}", id(&b2)),
            Some(&w.owner2),
            Some(json!({ "slotStart": slot(1, 12) })),
        )
        .await
        .problem(409, "SLOT_FULL");
        // Reject frees the slot too.
        let rejected = s
            .req(
                "POST",
                &format!("/api/v1/bookings/{}/reject", id(&b2)),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(rejected["status"], "Rejected");
        s.req(
            "DELETE",
            &format!("/api/v1/bookings/{}", id(&b2)),
            Some(&w.owner2),
            None,
        )
        .await
        .problem(409, "ILLEGAL_TRANSITION");
        let b3 = book(&s, &w.owner2, w.s1, &slot(1, 10)).await.expect(201);
        // Scope of reads: owners their own, operators and BackOffices their stations'.
        s.req("GET", &format!("/api/v1/bookings/{b1_id}"), Some(&w.owner2), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &format!("/api/v1/bookings/{b1_id}"), Some(&w.op_b), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &format!("/api/v1/bookings/{b1_id}"), Some(&w.bo_b), None)
            .await
            .problem(403, "FORBIDDEN");
        for token in [&w.owner1, &w.op_a, &w.bo_a, &w.admin] {
            s.req("GET", &format!("/api/v1/bookings/{b1_id}"), Some(token), None)
                .await
                .expect(200);
        }
        s.req("GET", "/api/v1/bookings/99999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        let count = |v: Value| v["items"].as_array().unwrap().len();
        // Who sees how many: owners their own, operators and back office their stations'.
        let visible = [
            (&w.owner1, "/api/v1/bookings", 1),
            (&w.owner2, "/api/v1/bookings", 2),
            (&w.op_a, "/api/v1/bookings", 3),
            (&w.op_b, "/api/v1/bookings", 0),
            (&w.bo_b, "/api/v1/bookings", 0),
            (&w.admin, "/api/v1/bookings?status=Rejected", 1),
            (&w.admin, "/api/v1/bookings?limit=2", 2),
        ];
        for (token, path, expected) in visible {
            let page = s.req("GET", path, Some(token), None).await.expect(200);
            assert_eq!(count(page), expected, "{path}");
        }
        s.req("GET", "/api/v1/bookings?status=Lost", Some(&w.admin), None)
            .await
            .problem(400, "VALIDATION_FAILED");
        // An operator's day list: bookings of its station starting within a day.
        let day = format!(
            "/api/v1/bookings?stationId={}&from={}&to={}",
            w.s1,
            slot(1, 0).replace('+', "%2B"),
            slot(2, 0).replace('+', "%2B")
        );
        assert_eq!(count(s.req("GET", &day, Some(&w.op_a), None).await.expect(200)), 3);
        let later = format!(
            "/api/v1/bookings?stationId={}&from={}",
            w.s1,
            slot(2, 0).replace('+', "%2B")
        );
        assert_eq!(count(s.req("GET", &later, Some(&w.op_a), None).await.expect(200)), 0);
        // Cutoff: 12 h before the start (06:30 UTC tomorrow), changes close.
        s.clock.advance(Duration::hours(18) + Duration::minutes(31));
        s.req("DELETE", &format!("/api/v1/bookings/{b1_id}"), Some(&w.owner1), None)
            .await
            .problem(409, "BOOKING_CUTOFF_PASSED");
        s.req(
            "PUT",
            &format!("/api/v1/bookings/{b1_id}"),
            Some(&w.owner1),
            Some(json!({ "slotStart": slot(1, 14) })),
        )
        .await
        .problem(409, "BOOKING_CUTOFF_PASSED");
        // An admin may still cancel; the owner's other booking is cancelled by the admin here.
        let cancelled = s
            .req("DELETE", &format!("/api/v1/bookings/{}", id(&b3)), Some(&w.admin), None)
            .await
            .expect(200);
        assert_eq!(cancelled["status"], "Cancelled");
        s.req("DELETE", &format!("/api/v1/bookings/{}", id(&b3)), Some(&w.bo_a), None)
            .await
            .problem(403, "FORBIDDEN");
        // Check-in opens 15 minutes before the start, for the station's staff only.
        s.req(
            "POST",
            &format!("/api/v1/bookings/{b1_id}/check-in"),
            Some(&w.op_a),
            None,
        )
        .await
        .problem(409, "ILLEGAL_TRANSITION");
        s.req(
            "POST",
            &format!("/api/v1/bookings/{b1_id}/approve"),
            Some(&w.bo_a),
            None,
        )
        .await
        .expect(200);
        s.req(
            "POST",
            &format!("/api/v1/bookings/{b1_id}/check-in"),
            Some(&w.op_a),
            None,
        )
        .await
        .problem(409, "CHECKIN_TOO_EARLY");
        s.clock
            .set(support::epoch() + Duration::days(1) + Duration::hours(6) + Duration::minutes(20));
        for token in [&w.op_b, &w.bo_b, &w.owner1] {
            s.req("POST", &format!("/api/v1/bookings/{b1_id}/check-in"), Some(token), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        assert_eq!(
            s.req(
                "POST",
                &format!("/api/v1/bookings/{b1_id}/check-in"),
                Some(&w.op_a),
                None
            )
            .await
            .expect(200)["status"],
            "CheckedIn"
        );
        s.req(
            "POST",
            &format!("/api/v1/bookings/{b1_id}/no-show"),
            Some(&w.op_a),
            None,
        )
        .await
        .problem(409, "ILLEGAL_TRANSITION");
        s.req(
            "POST",
            &format!("/api/v1/bookings/{b1_id}/complete"),
            Some(&w.op_b),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
        assert_eq!(
            s.req(
                "POST",
                &format!("/api/v1/bookings/{b1_id}/complete"),
                Some(&w.op_a),
                None
            )
            .await
            .expect(200)["status"],
            "Completed"
        );
        for action in ["approve", "reject", "check-in", "complete", "abort", "no-show"] {
            s.req(
                "POST",
                &format!("/api/v1/bookings/{b1_id}/{action}"),
                Some(&w.admin),
                None,
            )
            .await
            .problem(409, "ILLEGAL_TRANSITION");
        }
        s.req("DELETE", &format!("/api/v1/bookings/{b1_id}"), Some(&w.admin), None)
            .await
            .problem(409, "ILLEGAL_TRANSITION");
        // Auto-approval, abort, manual and swept no-shows at the auto-approving station.
        let b4 = book(&s, &w.owner1, w.s2, &slot(2, 10)).await.expect(201);
        assert_eq!(b4["status"], "Approved");
        let b5 = book(&s, &w.owner1, w.s2, &slot(2, 12)).await.expect(201);
        let b6 = book(&s, &w.owner2, w.s2, &slot(2, 10)).await.expect(201);
        s.req(
            "POST",
            &format!("/api/v1/bookings/{}/no-show", id(&b4)),
            Some(&w.op_a),
            None,
        )
        .await
        .problem(409, "NO_SHOW_TOO_EARLY");
        s.clock
            .set(support::epoch() + Duration::days(2) + Duration::hours(5) + Duration::minutes(31));
        s.req(
            "POST",
            &format!("/api/v1/bookings/{}/check-in", id(&b4)),
            Some(&w.op_a),
            None,
        )
        .await
        .problem(409, "CHECKIN_WINDOW_CLOSED");
        assert_eq!(
            s.req(
                "POST",
                &format!("/api/v1/bookings/{}/no-show", id(&b4)),
                Some(&w.bo_a),
                None
            )
            .await
            .expect(200)["status"],
            "NoShow"
        );
        s.clock
            .set(support::epoch() + Duration::days(2) + Duration::hours(6) + Duration::minutes(30));
        s.req(
            "POST",
            &format!("/api/v1/bookings/{}/check-in", id(&b5)),
            Some(&w.admin),
            None,
        )
        .await
        .expect(200);
        assert_eq!(
            s.req(
                "POST",
                &format!("/api/v1/bookings/{}/abort", id(&b5)),
                Some(&w.op_a),
                None
            )
            .await
            .expect(200)["status"],
            "Aborted"
        );
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        assert_eq!(
            s.req("GET", &format!("/api/v1/bookings/{}", id(&b6)), Some(&w.owner2), None)
                .await
                .expect(200)["status"],
            "NoShow"
        );
        // Audit trail and notifications of the first booking.
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=booking&entityId={b1_id}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "booking.created",
                "booking.approved",
                "booking.rescheduled",
                "booking.approved",
                "booking.checked_in",
                "booking.completed"
            ]
        );
        let first = &audit["items"][5];
        assert_eq!(
            (first["actorId"].as_i64(), first["actorRole"].as_str()),
            (Some(w.owner1_id), Some("owner"))
        );
        let by_op = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?actorId={}&action=booking.checked_in", w.op_a_id),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(by_op["items"].as_array().unwrap().len(), 1);
        let notes = s
            .req("GET", "/api/v1/notifications", Some(&w.owner1), None)
            .await
            .expect(200);
        let kinds: Vec<&str> = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "BookingApproved",
                "BookingApproved",
                "CheckedIn",
                "Completed",
                "BookingApproved",
                "BookingApproved",
                "NoShow",
                "CheckedIn",
                "Aborted"
            ]
        );
        // The dispatcher delivers every queued notification (through the log adapter here).
        booking_api::notifications::dispatch(&s.state).await.unwrap();
        let notes = s
            .req("GET", "/api/v1/notifications", Some(&w.owner1), None)
            .await
            .expect(200);
        assert!(
            notes["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["sentAt"].is_string()),
            "{notes}"
        );
        let others = s
            .req("GET", "/api/v1/notifications", Some(&w.owner2), None)
            .await
            .expect(200);
        assert!(others["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["recipientId"] != w.owner1_id));
        s.stop().await;
    }
}

#[tokio::test]
async fn idempotent_creation() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let body = json!({ "stationId": w.s2, "slotStart": slot(1, 10) });
        let key = [("idempotency-key", "order-42")];
        let first = s
            .call("POST", "/api/v1/bookings", Some(&w.owner1), Some(body.clone()), &key)
            .await;
        assert!(first.headers.get("idempotent-replayed").is_none());
        let first = first.expect(201);
        let again = s
            .call("POST", "/api/v1/bookings", Some(&w.owner1), Some(body.clone()), &key)
            .await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(again.expect(201), first);
        // Only one unit was taken: one more booking fills the 2-connector slot.
        book(&s, &w.owner2, w.s2, &slot(1, 10)).await.expect(201);
        book(&s, &w.owner2, w.s2, &slot(1, 10)).await.problem(409, "SLOT_FULL");
        // Same key, another body.
        s.call(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(json!({ "stationId": w.s2, "slotStart": slot(1, 11) })),
            &key,
        )
        .await
        .problem(422, "IDEMPOTENCY_KEY_REUSED");
        // Keys are per account.
        s.call(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner2),
            Some(json!({ "stationId": w.s2, "slotStart": slot(1, 11) })),
            &key,
        )
        .await
        .expect(201);
        s.call(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(body.clone()),
            &[("idempotency-key", "")],
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        // After 7 days the key is forgotten.
        s.clock.advance(Duration::days(7) + Duration::minutes(1));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        let later = json!({ "stationId": w.s2, "slotStart": slot(9, 11) });
        let fresh = s
            .call("POST", "/api/v1/bookings", Some(&w.owner1), Some(later), &key)
            .await
            .expect(201);
        assert_ne!(fresh["id"], first["id"]);
        s.stop().await;
    }
}

/// Every authenticated endpoint refuses unauthenticated calls with 401 and the roles it does
/// not admit with 403; read endpoints admit their roles.
#[tokio::test]
async fn role_matrix() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let b = book(&s, &w.owner1, w.s1, &slot(1, 10)).await.expect(201);
        let (bid, s1, nic) = (id(&b), w.s1, w.owner1_nic.clone());
        let roles = [
            ("admin", &w.admin),
            ("backoffice", &w.bo_a),
            ("operator", &w.op_a),
            ("owner", &w.owner1),
        ];
        let body = Some(json!({}));
        // (method, path, body, roles admitted)
        let table: Vec<(&str, String, Option<Value>, &[&str])> = vec![
            (
                "GET",
                "/api/v1/me".into(),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            ("GET", format!("/api/v1/owners/{nic}"), None, &["admin", "owner"]),
            (
                "POST",
                format!("/api/v1/owners/{nic}/deactivate"),
                None,
                &["admin", "owner"],
            ),
            ("POST", format!("/api/v1/owners/{nic}/reactivate"), None, &["admin"]),
            ("POST", "/api/v1/admins".into(), body.clone(), &["admin"]),
            ("GET", "/api/v1/backoffice-applications".into(), None, &["admin"]),
            ("GET", "/api/v1/owners?status=active".into(), None, &["admin"]),
            (
                "POST",
                "/api/v1/backoffice-applications/1/approve".into(),
                None,
                &["admin"],
            ),
            (
                "POST",
                "/api/v1/backoffice-applications/1/reject".into(),
                None,
                &["admin"],
            ),
            ("POST", "/api/v1/operators".into(), body.clone(), &["backoffice"]),
            ("GET", "/api/v1/operators".into(), None, &["admin", "backoffice"]),
            (
                "PUT",
                format!("/api/v1/operators/{}/stations", w.op_a_id),
                body.clone(),
                &["backoffice"],
            ),
            ("GET", "/api/v1/vehicles".into(), None, &["owner"]),
            ("POST", "/api/v1/vehicles".into(), body.clone(), &["owner"]),
            ("DELETE", "/api/v1/vehicles/1".into(), None, &["owner"]),
            ("POST", "/api/v1/stations".into(), body.clone(), &["backoffice"]),
            (
                "GET",
                "/api/v1/stations".into(),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            (
                "GET",
                "/api/v1/stations/nearby?lat=6.9&lon=79.9".into(),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            (
                "GET",
                format!("/api/v1/stations/{s1}"),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            (
                "PATCH",
                format!("/api/v1/stations/{s1}"),
                body.clone(),
                &["admin", "backoffice"],
            ),
            (
                "PUT",
                format!("/api/v1/stations/{s1}/schedule"),
                body.clone(),
                &["admin", "backoffice"],
            ),
            (
                "PUT",
                format!("/api/v1/stations/{s1}/connectors"),
                body.clone(),
                &["admin", "backoffice"],
            ),
            (
                "POST",
                format!("/api/v1/stations/{s1}/deactivate"),
                None,
                &["admin", "backoffice"],
            ),
            (
                "POST",
                format!("/api/v1/stations/{s1}/activate"),
                None,
                &["admin", "backoffice"],
            ),
            (
                "GET",
                format!("/api/v1/stations/{s1}/slots"),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            ("POST", "/api/v1/bookings".into(), body.clone(), &["owner"]),
            (
                "GET",
                "/api/v1/bookings".into(),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            (
                "GET",
                format!("/api/v1/bookings/{bid}"),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
            ("PUT", format!("/api/v1/bookings/{bid}"), body.clone(), &["owner"]),
            ("DELETE", format!("/api/v1/bookings/{bid}"), None, &["admin", "owner"]),
            (
                "POST",
                format!("/api/v1/bookings/{bid}/approve"),
                None,
                &["admin", "backoffice"],
            ),
            (
                "POST",
                format!("/api/v1/bookings/{bid}/reject"),
                None,
                &["admin", "backoffice"],
            ),
            (
                "POST",
                format!("/api/v1/bookings/{bid}/check-in"),
                None,
                &["admin", "backoffice", "operator"],
            ),
            (
                "POST",
                format!("/api/v1/bookings/{bid}/complete"),
                None,
                &["admin", "backoffice", "operator"],
            ),
            (
                "POST",
                format!("/api/v1/bookings/{bid}/abort"),
                None,
                &["admin", "backoffice", "operator"],
            ),
            (
                "POST",
                format!("/api/v1/bookings/{bid}/no-show"),
                None,
                &["admin", "backoffice", "operator"],
            ),
            ("GET", "/api/v1/audit-events".into(), None, &["admin"]),
            ("GET", "/api/v1/chargers".into(), None, &["admin", "backoffice"]),
            (
                "GET",
                "/api/v1/notifications".into(),
                None,
                &["admin", "backoffice", "operator", "owner"],
            ),
        ];
        for (method, path, body, admitted) in &table {
            s.req(method, path, None, body.clone())
                .await
                .problem(401, "UNAUTHORIZED");
            for (role, token) in &roles {
                let r = s.req(method, path, Some(token), body.clone()).await;
                if admitted.contains(role) {
                    // Admitted: whatever the outcome (validation, state), never a role refusal.
                    assert!(
                        r.status != 401 && r.body["code"] != "FORBIDDEN",
                        "{method} {path} as {role}: {}",
                        r.body
                    );
                    if *method == "GET" {
                        assert_eq!(r.status, 200, "{method} {path} as {role}: {}", r.body);
                    }
                } else {
                    assert_eq!(
                        (r.status, r.body["code"].as_str()),
                        (403, Some("FORBIDDEN")),
                        "{method} {path} as {role}"
                    );
                }
            }
            // Undo what an admitted call changed, so later rows start from the same state.
            if path.ends_with("/deactivate") {
                let again = if path.contains("/owners/") {
                    format!("/api/v1/owners/{nic}/reactivate")
                } else {
                    format!("/api/v1/stations/{s1}/activate")
                };
                s.req("POST", &again, Some(&w.admin), None).await;
            }
        }
        s.stop().await;
    }
}
