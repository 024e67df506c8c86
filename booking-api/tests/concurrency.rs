//! No double booking under concurrency: 100 simultaneous attempts on a slot of capacity 1 give
//! exactly one 201 and 99 × 409 SLOT_FULL, on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{backends, backoffice, owner, send, slot, station, station_body, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_simultaneous_bookings_for_one_unit() {
    for backend in backends() {
        // With the background workers running, as in production.
        let s = TestServer::start_live(backend).await;
        let admin = s.admin().await;
        let (bo, _) = backoffice(&s, &admin, "a@biz.lk").await;
        let station_id = station(&s, &bo, station_body("CP-RACE", 1, true, 6.9, 79.8)).await;
        let (token, _) = owner(&s, "912345678V", "racer@mail.lk").await;
        let start = slot(1, 10);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(100));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (addr, token, start, barrier) = (s.addr, token.clone(), start.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                send(
                    addr,
                    "POST",
                    "/api/v1/bookings",
                    Some(&token),
                    Some(json!({ "stationId": station_id, "slotStart": start })),
                    &[],
                )
                .await
            }));
        }
        let mut created = 0;
        let mut full = 0;
        for t in tasks {
            let r = t.await.unwrap();
            match (r.status, r.body["code"].as_str()) {
                (201, _) => created += 1,
                (409, Some("SLOT_FULL")) => full += 1,
                other => panic!("{}: unexpected answer {other:?}: {}", s.backend, r.body),
            }
        }
        assert_eq!((created, full), (1, 99), "{}", s.backend);
        let slots = s
            .req(
                "GET",
                &format!("/api/v1/stations/{station_id}/slots?from={}", start.replace('+', "%2B")),
                Some(&token),
                None,
            )
            .await
            .expect(200);
        assert_eq!(
            (slots[0]["booked"].as_i64(), slots[0]["capacity"].as_i64()),
            (Some(1), Some(1))
        );
        let mine = s.req("GET", "/api/v1/bookings", Some(&token), None).await.expect(200);
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
        // The dispatcher, woken by the commit, delivers the auto-approval notification.
        let mut delivered = false;
        for _ in 0..250 {
            let notes = s
                .req("GET", "/api/v1/notifications", Some(&token), None)
                .await
                .expect(200);
            if notes["items"][0]["sentAt"].is_string() {
                delivered = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(delivered, "{}: the background dispatcher did not deliver", s.backend);
        s.stop().await;
    }
}
