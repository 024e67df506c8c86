//! Notifications through a pluggable adapter: delivered to the recipient the dispatcher looks
//! up, retried while the adapter fails, and given up after ten attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::notifications::{Notification, Notifier, Recipient};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{backends, backoffice, owner, slot, station, station_body, TestServer};

#[derive(Debug, Default)]
struct Recording {
    fail: AtomicBool,
    sent: Mutex<Vec<(String, String, String)>>,
}

impl Notifier for Recording {
    fn deliver(&self, n: &Notification, to: &Recipient) -> anyhow::Result<()> {
        anyhow::ensure!(!self.fail.load(Ordering::SeqCst), "the mail server is down");
        self.sent
            .lock()
            .unwrap()
            .push((n.kind.clone(), to.email.clone(), n.subject.clone()));
        Ok(())
    }
}

#[tokio::test]
async fn adapter_receives_each_notification_once_and_failures_are_retried() {
    for backend in backends() {
        let recorder = Arc::new(Recording::default());
        let s = TestServer::start_with_notifier(backend, recorder.clone()).await;
        let admin = s.admin().await;
        let (bo, _) = backoffice(&s, &admin, "a@biz.lk").await;
        let st = station(&s, &bo, station_body("CP-N", 1, false, 6.9, 79.8)).await;
        let (token, _) = owner(&s, "912345678V", "one@mail.lk").await;
        let b = s
            .req(
                "POST",
                "/api/v1/bookings",
                Some(&token),
                Some(json!({ "stationId": st, "slotStart": slot(1, 10) })),
            )
            .await
            .expect(201);
        // The adapter fails: the approval notification stays queued.
        recorder.fail.store(true, Ordering::SeqCst);
        s.req(
            "POST",
            &format!("/api/v1/bookings/{}/approve", b["id"]),
            Some(&bo),
            None,
        )
        .await
        .expect(200);
        assert_eq!(booking_api::notifications::dispatch(&s.state).await.unwrap(), 0);
        let queued = s
            .req("GET", "/api/v1/notifications", Some(&token), None)
            .await
            .expect(200);
        assert!(queued["items"][0]["sentAt"].is_null(), "{queued}");
        // It recovers: delivered once, to the owner's address.
        recorder.fail.store(false, Ordering::SeqCst);
        booking_api::notifications::dispatch(&s.state).await.unwrap();
        booking_api::notifications::dispatch(&s.state).await.unwrap();
        let sent = recorder.sent.lock().unwrap().clone();
        assert_eq!(
            sent,
            [(
                "BookingApproved".to_string(),
                "one@mail.lk".to_string(),
                "Your booking is approved".to_string()
            )]
        );
        // A notification that keeps failing is given up after ten attempts.
        recorder.fail.store(true, Ordering::SeqCst);
        s.req("DELETE", &format!("/api/v1/bookings/{}", b["id"]), Some(&token), None)
            .await
            .expect(200);
        for _ in 0..12 {
            booking_api::notifications::dispatch(&s.state).await.unwrap();
        }
        recorder.fail.store(false, Ordering::SeqCst);
        assert_eq!(booking_api::notifications::dispatch(&s.state).await.unwrap(), 0);
        assert_eq!(recorder.sent.lock().unwrap().len(), 1);
        // Dispatchers running at once (replicas) lease disjoint batches: each notification is
        // delivered once.
        for hour in 11..17 {
            let b = s
                .req(
                    "POST",
                    "/api/v1/bookings",
                    Some(&token),
                    Some(json!({ "stationId": st, "slotStart": slot(1, hour) })),
                )
                .await
                .expect(201);
            s.req(
                "POST",
                &format!("/api/v1/bookings/{}/reject", b["id"]),
                Some(&admin),
                None,
            )
            .await
            .expect(200);
        }
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let state = s.state.clone();
                tokio::spawn(async move { booking_api::notifications::dispatch(&state).await.unwrap() })
            })
            .collect();
        for run in runs {
            run.await.unwrap();
        }
        booking_api::notifications::dispatch(&s.state).await.unwrap();
        let sent = recorder.sent.lock().unwrap().clone();
        assert_eq!(
            sent.iter().filter(|(kind, _, _)| kind == "BookingRejected").count(),
            6,
            "{sent:?}"
        );
        s.stop().await;
    }
}
