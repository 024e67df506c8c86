//! Stations over HTTP: creation and validation, scoping, schedule changes regenerating the
//! inventory, deactivation guard, nearby search with availability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{backends, slot, station_body, TestServer, World};

#[tokio::test]
async fn creation_validation_and_scope() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        // Only a BackOffice creates, and its id is stamped as owner.
        for token in [&w.admin, &w.op_a, &w.owner1] {
            s.req("POST", "/api/v1/stations", Some(token), Some(json!({})))
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("POST", "/api/v1/stations", None, Some(json!({})))
            .await
            .problem(401, "UNAUTHORIZED");
        support::charger_for(&s, &station_body("CP-NEW", 2, false, 6.9, 79.85)).await;
        let created = s
            .req(
                "POST",
                "/api/v1/stations",
                Some(&w.bo_a),
                Some(station_body("CP-NEW", 2, false, 6.9, 79.85)),
            )
            .await
            .expect(201);
        assert_eq!(created["backofficeId"], w.bo_a_id);
        assert_eq!(created["connectors"][0]["maxPowerW"], 50_000);
        assert_eq!(created["connectors"][2]["bookable"], false);
        s.req(
            "POST",
            "/api/v1/stations",
            Some(&w.bo_a),
            Some(station_body("CP-NEW", 1, false, 6.9, 79.85)),
        )
        .await
        .problem(409, "STATION_EXISTS");
        let mut bad = station_body("CP-BAD", 1, false, 95.0, 200.0);
        bad["timeZone"] = json!("Mars/Olympus");
        bad["slotMinutes"] = json!(7);
        bad["connectors"][0]["type"] = json!("Schuko");
        bad["schedule"]["weekly"][0]["close"] = json!("05:00");
        let r = s.req("POST", "/api/v1/stations", Some(&w.bo_a), Some(bad)).await;
        let fields = r.fields();
        r.problem(400, "VALIDATION_FAILED");
        for expected in [
            "latitude",
            "timeZone",
            "slotMinutes",
            "connectors[0].type",
            "schedule.weekly[0].close",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
        // Longitude is checked once latitude is valid.
        let r = s
            .req(
                "POST",
                "/api/v1/stations",
                Some(&w.bo_a),
                Some(station_body("CP-BAD", 1, false, 6.0, 200.0)),
            )
            .await;
        assert_eq!(r.fields(), ["longitude"]);
        assert_eq!(created["claimStatus"], "Pending");
        // Listing is scoped: a BackOffice its own, an operator its assigned, owners active ones
        // whose claim an admin approved (CP-NEW's is still pending).
        let count = |v: serde_json::Value| v["items"].as_array().unwrap().len();
        assert_eq!(
            count(s.req("GET", "/api/v1/stations", Some(&w.admin), None).await.expect(200)),
            4
        );
        assert_eq!(
            count(s.req("GET", "/api/v1/stations", Some(&w.bo_a), None).await.expect(200)),
            3
        );
        assert_eq!(
            count(s.req("GET", "/api/v1/stations", Some(&w.bo_b), None).await.expect(200)),
            1
        );
        assert_eq!(
            count(s.req("GET", "/api/v1/stations", Some(&w.op_a), None).await.expect(200)),
            2
        );
        assert_eq!(
            count(
                s.req("GET", "/api/v1/stations", Some(&w.owner1), None)
                    .await
                    .expect(200)
            ),
            3
        );
        let page = s
            .req("GET", "/api/v1/stations?limit=3", Some(&w.admin), None)
            .await
            .expect(200);
        let cursor = page["nextCursor"].as_str().unwrap();
        assert_eq!(
            count(
                s.req(
                    "GET",
                    &format!("/api/v1/stations?limit=3&cursor={cursor}"),
                    Some(&w.admin),
                    None
                )
                .await
                .expect(200)
            ),
            1
        );
        // Details: the other BackOffice's operator and the other BackOffice are refused.
        s.req("GET", &format!("/api/v1/stations/{}", w.s1), Some(&w.op_b), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &format!("/api/v1/stations/{}", w.s1), Some(&w.bo_b), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", &format!("/api/v1/stations/{}", w.s1), Some(&w.owner1), None)
            .await
            .expect(200);
        s.req("GET", "/api/v1/stations/9999", Some(&w.admin), None)
            .await
            .problem(404, "NOT_FOUND");
        // Changes: the owning BackOffice and admins; nobody else.
        let patch = json!({ "autoApprove": true, "name": "Renamed" });
        for token in [&w.bo_b, &w.op_a, &w.owner1] {
            s.req(
                "PATCH",
                &format!("/api/v1/stations/{}", w.s1),
                Some(token),
                Some(patch.clone()),
            )
            .await
            .problem(403, "FORBIDDEN");
        }
        let r = s
            .req(
                "PATCH",
                &format!("/api/v1/stations/{}", w.s1),
                Some(&w.bo_a),
                Some(patch),
            )
            .await
            .expect(200);
        assert_eq!(
            (r["name"].as_str(), r["autoApprove"].as_bool()),
            (Some("Renamed"), Some(true))
        );
        s.req(
            "PATCH",
            &format!("/api/v1/stations/{}", w.s1),
            Some(&w.admin),
            Some(json!({ "autoApprove": false })),
        )
        .await
        .expect(200);
        s.stop().await;
    }
}

#[tokio::test]
async fn schedule_changes_regenerate_the_inventory() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let slots = |v: serde_json::Value| v.as_array().unwrap().len();
        // 06:00-22:00 with 60-minute slots: 16 a day; the epoch is 05:30 local, so today is whole.
        let today = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/slots", w.s1),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(slots(today.clone()), 16);
        assert_eq!(today[0]["startsAt"], slot(0, 6));
        assert_eq!(today[0]["capacity"], 1);
        // The inventory reaches 14 days ahead.
        let far = s
            .req(
                "GET",
                &format!(
                    "/api/v1/stations/{}/slots?from={}&days=1",
                    w.s1,
                    slot(14, 0).replace('+', "%2B")
                ),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(slots(far), 16);
        s.req(
            "GET",
            &format!("/api/v1/stations/{}/slots?days=20", w.s1),
            Some(&w.owner1),
            None,
        )
        .await
        .problem(400, "VALIDATION_FAILED");
        s.req("GET", &format!("/api/v1/stations/{}/slots", w.s3), Some(&w.op_a), None)
            .await
            .problem(403, "FORBIDDEN");
        // New hours: mornings only, 30-minute slots; closed on day 2.
        let schedule = json!({
            "weekly": (["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().map(|d| json!({ "day": d, "open": "08:00", "close": "10:00" })).collect::<Vec<_>>()),
            "exceptions": [{ "date": "2030-01-09", "intervals": [] }]
        });
        let body = json!({ "schedule": schedule, "slotMinutes": 30 });
        for token in [&w.bo_b, &w.op_a, &w.owner1] {
            s.req(
                "PUT",
                &format!("/api/v1/stations/{}/schedule", w.s1),
                Some(token),
                Some(body.clone()),
            )
            .await
            .problem(403, "FORBIDDEN");
        }
        let r = s
            .req(
                "PUT",
                &format!("/api/v1/stations/{}/schedule", w.s1),
                Some(&w.bo_a),
                Some(json!({ "schedule": { "weekly": [{ "day": "mon", "open": "10:00", "close": "09:00" }] } })),
            )
            .await;
        assert_eq!(r.fields(), ["schedule.weekly[0].close"]);
        let updated = s
            .req(
                "PUT",
                &format!("/api/v1/stations/{}/schedule", w.s1),
                Some(&w.bo_a),
                Some(body),
            )
            .await
            .expect(200);
        assert_eq!(updated["slotMinutes"], 30);
        let today = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/slots", w.s1),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(slots(today.clone()), 4);
        assert_eq!(today[0]["startsAt"], slot(0, 8));
        let day2 = s
            .req(
                "GET",
                &format!(
                    "/api/v1/stations/{}/slots?from={}",
                    w.s1,
                    slot(2, 0).replace('+', "%2B")
                ),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(slots(day2), 0);
        // More connectors: future slots take the new capacity; a bad set names its fields.
        let r = s
            .req(
                "PUT",
                &format!("/api/v1/stations/{}/connectors", w.s1),
                Some(&w.bo_a),
                Some(json!({ "connectors": [{ "connectorId": 1, "type": "CCS9", "maxPowerKw": 0 }] })),
            )
            .await;
        assert_eq!(r.fields(), ["connectors[0].type", "connectors[0].maxPowerKw"]);
        s.req(
            "PUT",
            &format!("/api/v1/stations/{}/connectors", w.s1),
            Some(&w.bo_b),
            Some(json!({ "connectors": [] })),
        )
        .await
        .problem(403, "FORBIDDEN");
        let three = json!({ "connectors": [
            { "connectorId": 1, "type": "CCS2", "maxPowerKw": 50 },
            { "connectorId": 2, "type": "CCS2", "maxPowerKw": 50 },
            { "connectorId": 3, "type": "CHAdeMO", "maxPowerKw": 50 },
        ] });
        let updated = s
            .req(
                "PUT",
                &format!("/api/v1/stations/{}/connectors", w.s1),
                Some(&w.admin),
                Some(three),
            )
            .await
            .expect(200);
        assert_eq!(updated["connectors"].as_array().unwrap().len(), 3);
        let today = s
            .req(
                "GET",
                &format!("/api/v1/stations/{}/slots", w.s1),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(today[0]["capacity"], 3);
        // The worker extends the horizon as time passes.
        s.clock.advance(chrono::Duration::days(3));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        let far = s
            .req(
                "GET",
                &format!(
                    "/api/v1/stations/{}/slots?from={}",
                    w.s1,
                    slot(17, 0).replace('+', "%2B")
                ),
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(slots(far), 4);
        s.stop().await;
    }
}

#[tokio::test]
async fn deactivation_is_refused_while_future_bookings_exist() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let booking = s
            .req(
                "POST",
                "/api/v1/bookings",
                Some(&w.owner1),
                Some(json!({ "stationId": w.s1, "slotStart": slot(1, 10) })),
            )
            .await
            .expect(201);
        for token in [&w.bo_b, &w.op_a, &w.owner1] {
            s.req(
                "POST",
                &format!("/api/v1/stations/{}/deactivate", w.s1),
                Some(token),
                None,
            )
            .await
            .problem(403, "FORBIDDEN");
        }
        s.req(
            "POST",
            &format!("/api/v1/stations/{}/deactivate", w.s1),
            Some(&w.bo_a),
            None,
        )
        .await
        .problem(409, "STATION_HAS_FUTURE_BOOKINGS");
        s.req(
            "DELETE",
            &format!("/api/v1/bookings/{}", booking["id"]),
            Some(&w.owner1),
            None,
        )
        .await
        .expect(200);
        let r = s
            .req(
                "POST",
                &format!("/api/v1/stations/{}/deactivate", w.s1),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert_eq!(r["active"], false);
        // Inactive: hidden from owners, closed to bookings, reactivated by its BackOffice.
        s.req("GET", &format!("/api/v1/stations/{}", w.s1), Some(&w.owner1), None)
            .await
            .problem(404, "NOT_FOUND");
        s.req(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(json!({ "stationId": w.s1, "slotStart": slot(1, 11) })),
        )
        .await
        .problem(409, "STATION_INACTIVE");
        s.req(
            "POST",
            &format!("/api/v1/stations/{}/activate", w.s1),
            Some(&w.bo_b),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
        s.req(
            "POST",
            &format!("/api/v1/stations/{}/activate", w.s1),
            Some(&w.bo_a),
            None,
        )
        .await
        .expect(200);
        s.req(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(json!({ "stationId": w.s1, "slotStart": slot(1, 11) })),
        )
        .await
        .expect(201);
        s.stop().await;
    }
}

#[tokio::test]
async fn nearby_search_filters_and_summarises_a_week() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let ids = |v: &serde_json::Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        // Colombo: s1 (0 km) and s2 (~3.8 km); Kandy's s3 is ~94 km away.
        let near = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&radiusKm=10",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(ids(&near), [w.s1, w.s2]);
        assert_eq!(near[0]["distanceKm"], 0.0);
        let week = near[0]["availability"].as_array().unwrap();
        assert_eq!(week.len(), 7);
        assert_eq!(week[0]["date"], "2030-01-07");
        assert_eq!(week[0]["slots"], 16);
        assert_eq!(week[0]["freeSlots"], 16);
        let wide = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&radiusKm=150",
                Some(&w.op_b),
                None,
            )
            .await
            .expect(200);
        assert_eq!(ids(&wide), [w.s1, w.s2, w.s3]);
        // Filters: connector type, minimum power, open now (the epoch is 05:30 local, before opening).
        let r = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&connectorType=CHAdeMO",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert!(ids(&r).is_empty());
        let r = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&minPowerKw=60",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert!(ids(&r).is_empty());
        let r = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&openNow=true",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert!(ids(&r).is_empty());
        s.clock.advance(chrono::Duration::hours(1));
        let r = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&openNow=true&connectorType=type2&minPowerKw=22",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(ids(&r), [w.s1, w.s2]);
        assert_eq!(r[0]["openNow"], true);
        // A booking shows in the summary.
        s.req(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(json!({ "stationId": w.s1, "slotStart": slot(1, 10) })),
        )
        .await
        .expect(201);
        let near = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9271&lon=79.8612&radiusKm=1",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert_eq!(near[0]["availability"][1]["freeSlots"], 15);
        // Validation and authentication.
        let r = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=91&lon=0&radiusKm=500",
                Some(&w.owner1),
                None,
            )
            .await;
        assert_eq!(r.fields(), ["lat", "radiusKm"]);
        s.req("GET", "/api/v1/stations/nearby?lat=x&lon=0", Some(&w.owner1), None)
            .await
            .problem(400, "VALIDATION_FAILED");
        s.req("GET", "/api/v1/stations/nearby?lat=6&lon=79", None, None)
            .await
            .problem(401, "UNAUTHORIZED");
        s.stop().await;
    }
}

/// A BackOffice's station only claims its charger: until an admin approves, owners neither find
/// nor book it; only an admin decides, once.
#[tokio::test]
async fn a_charger_claim_waits_for_an_admin() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let w = World::build(&s).await;
        let pending = support::pending_station(&s, &w.bo_a, station_body("CP-CLAIM", 1, true, 6.9, 79.85)).await;
        let book = |token: String| {
            let s = &s;
            async move {
                s.req(
                    "POST",
                    "/api/v1/bookings",
                    Some(&token),
                    Some(json!({ "stationId": pending, "slotStart": slot(2, 10) })),
                )
                .await
            }
        };
        book(w.owner1.clone()).await.problem(409, "CHARGER_CLAIM_PENDING");
        s.req("GET", &format!("/api/v1/stations/{pending}"), Some(&w.owner1), None)
            .await
            .problem(404, "NOT_FOUND");
        let nearby = s
            .req(
                "GET",
                "/api/v1/stations/nearby?lat=6.9&lon=79.85&radiusKm=5",
                Some(&w.owner1),
                None,
            )
            .await
            .expect(200);
        assert!(
            !nearby.to_string().contains("CP-CLAIM"),
            "a pending station is not offered: {nearby}"
        );
        // The BackOffice sees its claim; the admin's queue lists it.
        let own = s
            .req("GET", &format!("/api/v1/stations/{pending}"), Some(&w.bo_a), None)
            .await
            .expect(200);
        assert_eq!(own["claimStatus"], "Pending");
        let queue = s
            .req("GET", "/api/v1/stations?claimStatus=Pending", Some(&w.admin), None)
            .await
            .expect(200);
        let ids: Vec<i64> = queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [pending]);
        s.req("GET", "/api/v1/stations?claimStatus=Maybe", Some(&w.admin), None)
            .await
            .expect(400);
        // Only an admin decides, and only Approved or Rejected.
        let path = format!("/api/v1/stations/{pending}/claim");
        for token in [&w.bo_a, &w.op_a, &w.owner1] {
            s.req("POST", &path, Some(token), Some(json!({ "decision": "Approved" })))
                .await
                .problem(403, "FORBIDDEN");
        }
        s.req("POST", &path, Some(&w.admin), Some(json!({ "decision": "Pending" })))
            .await
            .problem(400, "VALIDATION_FAILED");
        s.req("POST", &path, Some(&w.admin), Some(json!({ "decision": "Yes" })))
            .await
            .expect(400);
        s.req(
            "POST",
            "/api/v1/stations/999999/claim",
            Some(&w.admin),
            Some(json!({ "decision": "Approved" })),
        )
        .await
        .problem(404, "NOT_FOUND");
        let approved = s
            .req(
                "POST",
                &path,
                Some(&w.admin),
                Some(json!({ "decision": "Approved", "note": "invoice for the hardware seen" })),
            )
            .await
            .expect(200);
        assert_eq!(approved["claimStatus"], "Approved");
        s.req("POST", &path, Some(&w.admin), Some(json!({ "decision": "Rejected" })))
            .await
            .problem(409, "CLAIM_ALREADY_DECIDED");
        book(w.owner1.clone()).await.expect(201);
        let audit = s
            .req(
                "GET",
                &format!("/api/v1/audit-events?entityType=station&entityId={pending}"),
                Some(&w.admin),
                None,
            )
            .await
            .expect(200);
        assert!(audit.to_string().contains("station.claim_approved"), "{audit}");

        // A rejected claim keeps the station closed, with its own code.
        let rejected = support::pending_station(&s, &w.bo_b, station_body("CP-TAKEN", 1, true, 7.0, 80.0)).await;
        s.req(
            "POST",
            &format!("/api/v1/stations/{rejected}/claim"),
            Some(&w.admin),
            Some(json!({ "decision": "Rejected", "note": "not this BackOffice's charger" })),
        )
        .await
        .expect(200);
        s.req(
            "POST",
            "/api/v1/bookings",
            Some(&w.owner1),
            Some(json!({ "stationId": rejected, "slotStart": slot(2, 10) })),
        )
        .await
        .problem(409, "CHARGER_CLAIM_REJECTED");
        s.stop().await;
    }
}
