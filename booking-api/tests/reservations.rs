//! Bookings on the charger: the booking's token pushed to the central system, ReserveNow at the
//! lead time, CancelReservation on cancel / reschedule / no-show, the charger's refusals and
//! silence as booking status, operator alerts and owner notifications, restart survival and
//! concurrent rounds. A scripted command server on the test bus stands in for the central
//! system and its charger; every test runs on each backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use booking_api::clock::Clock;
use booking_api::reservations::{self, Round};
use chrono::{DateTime, Duration, Utc};
use evcs_bus::{Command, CommandReply, Event, EventEnvelope, IncomingCommand, StationId};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use support::{backends, backoffice, operator, owner, slot, station, station_body, TestServer};

/// How the fake charger answers ReserveNow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Status(&'static str),
    /// Holds the command without answering: the sender times out.
    Silent,
}

/// A command server standing in for the central system and one charger: records every command
/// and answers ReserveNow as `reserve` says (everything else Accepted).
#[derive(Clone)]
struct FakeCharger {
    seen: Arc<Mutex<Vec<Command>>>,
    reserve: Arc<Mutex<Answer>>,
}

impl FakeCharger {
    async fn serve(s: &TestServer, central_id: &str) -> FakeCharger {
        let mut server = s.state.bus.serve_commands("test-node").await.unwrap();
        server.serve(&StationId::parse(central_id).unwrap()).await.unwrap();
        let fake = FakeCharger {
            seen: Arc::default(),
            reserve: Arc::new(Mutex::new(Answer::Status("Accepted"))),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            let mut held: Vec<IncomingCommand> = Vec::new();
            while let Some(incoming) = server.next().await {
                let command = incoming.envelope.command.clone();
                f.seen.lock().unwrap().push(command.clone());
                let answer = match command {
                    Command::ReserveNow { .. } => *f.reserve.lock().unwrap(),
                    _ => Answer::Status("Accepted"),
                };
                match answer {
                    Answer::Status(status) => {
                        let _ = incoming
                            .reply(CommandReply::Status {
                                status: status.into(),
                                payload: None,
                            })
                            .await;
                    }
                    Answer::Silent => held.push(incoming),
                }
            }
        });
        fake
    }

    fn answer_reserve(&self, answer: Answer) {
        *self.reserve.lock().unwrap() = answer;
    }

    /// The commands seen so far, forgotten.
    fn take(&self) -> Vec<Command> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

struct Scene {
    admin: String,
    bo: String,
    other_bo: String,
    op: String,
    owner: String,
    station: i64,
}

/// An auto-approving station `CP-R1` (one bookable connector) of a BackOffice with an operator,
/// another BackOffice, and an owner.
async fn scene(s: &TestServer) -> Scene {
    let admin = s.admin().await;
    let (bo, _) = backoffice(s, &admin, "res@biz.lk").await;
    let (other_bo, _) = backoffice(s, &admin, "other@biz.lk").await;
    let station = station(s, &bo, station_body("CP-R1", 1, true, 6.9, 79.8)).await;
    let (op, _) = operator(s, &bo, "op-res@biz.lk", &[station]).await;
    let (owner, _) = owner(s, "912345678V", "res-owner@mail.lk").await;
    Scene {
        admin,
        bo,
        other_bo,
        op,
        owner,
        station,
    }
}

async fn start(backend: (&'static str, Option<String>)) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.reservations.reservation_lead_minutes = 30;
        c.reservations.charger_retry_secs = 60;
        c.reservations.charger_command_timeout_secs = 1;
    })
    .await
}

async fn book(s: &TestServer, sc: &Scene, days: i64, hour: u32) -> Value {
    s.req(
        "POST",
        "/api/v1/bookings",
        Some(&sc.owner),
        Some(json!({ "stationId": sc.station, "slotStart": slot(days, hour) })),
    )
    .await
    .expect(201)
}

async fn booking(s: &TestServer, token: &str, id: i64) -> Value {
    s.req("GET", &format!("/api/v1/bookings/{id}"), Some(token), None)
        .await
        .expect(200)
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

async fn round(s: &TestServer) -> Round {
    reservations::run(&s.state).await.unwrap()
}

async fn alerts(s: &TestServer, token: &str) -> Vec<Value> {
    s.req("GET", "/api/v1/alerts", Some(token), None).await.expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_approved_booking_gets_its_token_then_a_reservation_and_a_cancel_undoes_both() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        let b = book(&s, &sc, 1, 10).await;
        let id = b["id"].as_i64().unwrap();
        let token = b["idToken"].as_str().unwrap().to_string();
        let (starts, ends) = (ts(&b["startsAt"]), ts(&b["endsAt"]));
        assert_eq!(b["status"], "Approved");

        // The token goes out at once, valid at this station from the earliest check-in to the end.
        assert_eq!(round(&s).await.tokens, 1);
        assert_eq!(
            fake.take(),
            [Command::AuthorizeToken {
                id_token: token.clone(),
                valid_from: starts - Duration::minutes(15),
                valid_until: ends,
            }]
        );
        // Nothing left to do: a second round sends nothing.
        assert_eq!(round(&s).await, Round::default());
        assert!(fake.take().is_empty());

        // One minute before the lead time: no reservation yet.
        s.clock.set(starts - Duration::minutes(31));
        round(&s).await;
        assert!(fake.take().is_empty());
        assert!(booking(&s, &sc.owner, id).await["reservationStatus"].is_null());

        // At the lead time: ReserveNow on the assigned connector, id = booking id, until the end.
        s.clock.set(starts - Duration::minutes(30));
        assert_eq!(round(&s).await.reservations, 1);
        assert_eq!(
            fake.take(),
            [Command::ReserveNow {
                reservation_id: id,
                id_token: token.clone(),
                location: evcs_bus::Location {
                    evse_id: None,
                    connector_id: Some(1)
                },
                expires_at: ends,
            }]
        );
        let shown = booking(&s, &sc.owner, id).await;
        assert_eq!(
            (
                &shown["reservationStatus"],
                &shown["connectorId"],
                &shown["reservationNote"]
            ),
            (&json!("Accepted"), &json!(1), &Value::Null)
        );
        round(&s).await;
        assert!(fake.take().is_empty(), "a held reservation is not sent again");

        // The charger's own word (2.0.1 ReservationStatusUpdate) is recorded.
        let event = EventEnvelope::new(
            StationId::parse("CP-R1").unwrap(),
            s.clock.now(),
            Event::ReservationStatus {
                reservation_id: id,
                status: "Removed".into(),
            },
        );
        s.state.bus.publish(event.clone()).await.unwrap();
        s.wait_processed(&event.event_id).await;
        assert_eq!(booking(&s, &sc.owner, id).await["reservationStatus"], "Removed");

        // An admin cancels (owners are past the cutoff): token revoked; the reservation the
        // charger already removed is not cancelled again.
        s.req("DELETE", &format!("/api/v1/bookings/{id}"), Some(&sc.admin), None)
            .await
            .expect(200);
        round(&s).await;
        assert_eq!(
            fake.take(),
            [Command::RevokeToken {
                id_token: token.clone()
            }]
        );
        assert!(alerts(&s, &sc.admin).await.is_empty());
        s.stop().await;
    }
}

#[tokio::test]
async fn cancel_reschedule_and_no_show_send_cancel_reservation() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;

        // Cancelled while reserved.
        let b = book(&s, &sc, 1, 10).await;
        let id = b["id"].as_i64().unwrap();
        s.clock.set(ts(&b["startsAt"]) - Duration::minutes(30));
        round(&s).await;
        fake.take();
        s.req("DELETE", &format!("/api/v1/bookings/{id}"), Some(&sc.admin), None)
            .await
            .expect(200);
        let r = round(&s).await;
        assert_eq!((r.tokens, r.cancellations), (1, 1));
        let sent = fake.take();
        assert!(
            sent.contains(&Command::CancelReservation { reservation_id: id }),
            "{sent:?}"
        );
        assert_eq!(booking(&s, &sc.owner, id).await["reservationStatus"], "Cancelled");

        // Rescheduled while reserved (well before the cutoff: a lead time of a day here).
        s.clock.set(support::epoch());
        let b = book(&s, &sc, 2, 10).await;
        let id = b["id"].as_i64().unwrap();
        let token = b["idToken"].as_str().unwrap().to_string();
        round(&s).await;
        fake.take();
        // Reserve early by hand: move the clock to the lead time, then back for the reschedule.
        s.clock.set(ts(&b["startsAt"]) - Duration::minutes(30));
        round(&s).await;
        assert_eq!(fake.take().len(), 1);
        s.clock.set(support::epoch());
        let moved = s
            .req(
                "PUT",
                &format!("/api/v1/bookings/{id}"),
                Some(&sc.owner),
                Some(json!({ "slotStart": slot(2, 14) })),
            )
            .await
            .expect(200);
        round(&s).await;
        let sent = fake.take();
        assert!(
            sent.contains(&Command::CancelReservation { reservation_id: id }),
            "{sent:?}"
        );
        assert!(
            sent.contains(&Command::AuthorizeToken {
                id_token: token.clone(),
                valid_from: ts(&moved["startsAt"]) - Duration::minutes(15),
                valid_until: ts(&moved["endsAt"]),
            }),
            "the new window is granted: {sent:?}"
        );
        // The new slot gets its own reservation at its lead time.
        s.clock.set(ts(&moved["startsAt"]) - Duration::minutes(30));
        assert_eq!(round(&s).await.reservations, 1);
        fake.take();

        // No-show: the sweeper's transition cancels the reservation and revokes the token.
        s.clock.set(ts(&moved["endsAt"]) + Duration::minutes(16));
        booking_api::app::run_maintenance(&s.state).await.unwrap();
        assert_eq!(booking(&s, &sc.admin, id).await["status"], "NoShow");
        round(&s).await;
        let sent = fake.take();
        assert!(
            sent.contains(&Command::CancelReservation { reservation_id: id }),
            "{sent:?}"
        );
        assert!(sent.contains(&Command::RevokeToken { id_token: token }), "{sent:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn check_in_keeps_the_token_and_completion_revokes_it() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        let b = book(&s, &sc, 1, 10).await;
        let id = b["id"].as_i64().unwrap();
        let token = b["idToken"].as_str().unwrap().to_string();
        s.clock.set(ts(&b["startsAt"]) - Duration::minutes(10));
        round(&s).await;
        assert_eq!(fake.take().len(), 2, "token and reservation");
        s.req("POST", &format!("/api/v1/bookings/{id}/check-in"), Some(&sc.op), None)
            .await
            .expect(200);
        assert_eq!(round(&s).await, Round::default());
        assert!(
            fake.take().is_empty(),
            "a checked-in driver keeps the token and the reservation"
        );
        s.req("POST", &format!("/api/v1/bookings/{id}/complete"), Some(&sc.op), None)
            .await
            .expect(200);
        round(&s).await;
        // The charger's transaction used the reservation: only the token is withdrawn.
        assert_eq!(fake.take(), [Command::RevokeToken { id_token: token }]);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_refusing_charger_raises_one_alert_and_notifies_the_owner() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        fake.answer_reserve(Answer::Status("Occupied"));
        let b = book(&s, &sc, 1, 10).await;
        let id = b["id"].as_i64().unwrap();
        s.clock.set(ts(&b["startsAt"]) - Duration::minutes(30));
        let (_, _, mut live) = s.state.live.sequencer().subscribe(None, None);
        assert_eq!(round(&s).await.reservations, 0);
        let shown = booking(&s, &sc.owner, id).await;
        assert_eq!(shown["reservationStatus"], "Occupied");
        // The new alert reaches the station's staff on the live socket.
        let mut published = Vec::new();
        while let Ok(m) = live.try_recv() {
            published.push(m.json.clone());
        }
        assert!(
            published
                .iter()
                .any(|j| j.contains("\"type\":\"alert\"") && j.contains("RESERVATION_REFUSED")),
            "{published:?}"
        );
        assert!(
            shown["reservationNote"].as_str().unwrap().contains("Occupied"),
            "{shown}"
        );
        // Refusals are final: not sent again, not alerted again.
        fake.take();
        s.clock.advance(Duration::minutes(5));
        round(&s).await;
        assert!(fake.take().is_empty());
        for token in [&sc.admin, &sc.bo, &sc.op] {
            let list = alerts(&s, token).await;
            assert_eq!(list.len(), 1, "{list:?}");
            assert_eq!(
                (&list[0]["code"], &list[0]["bookingId"], &list[0]["stationId"]),
                (&json!("RESERVATION_REFUSED"), &json!(id), &json!(sc.station))
            );
        }
        // Station scope: another BackOffice sees none; owners may not look.
        assert!(alerts(&s, &sc.other_bo).await.is_empty());
        s.req("GET", "/api/v1/alerts", Some(&sc.owner), None)
            .await
            .problem(403, "FORBIDDEN");
        s.req("GET", "/api/v1/alerts", None, None).await.expect(401);
        let notes = s
            .req("GET", "/api/v1/notifications", Some(&sc.owner), None)
            .await
            .expect(200);
        let kinds: Vec<&str> = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "ReservationFailed").count(),
            1,
            "{kinds:?}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn each_refusal_the_charger_can_give_is_recorded() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        for (day, word) in [(1, "Faulted"), (2, "Unavailable"), (3, "Rejected")] {
            fake.answer_reserve(Answer::Status(word));
            s.clock.set(support::epoch());
            let b = book(&s, &sc, day, 10).await;
            let id = b["id"].as_i64().unwrap();
            s.clock.set(ts(&b["startsAt"]) - Duration::minutes(30));
            round(&s).await;
            assert_eq!(booking(&s, &sc.owner, id).await["reservationStatus"], word);
        }
        assert_eq!(alerts(&s, &sc.admin).await.len(), 3);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_silent_or_offline_charger_is_retried_with_one_alert() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        fake.answer_reserve(Answer::Silent);
        let b = book(&s, &sc, 1, 10).await;
        let id = b["id"].as_i64().unwrap();
        s.clock.set(ts(&b["startsAt"]) - Duration::minutes(30));
        round(&s).await;
        let shown = booking(&s, &sc.owner, id).await;
        assert_eq!(shown["reservationStatus"], "Timeout");
        assert!(!shown["reservationNote"].as_str().unwrap().is_empty());
        let list = alerts(&s, &sc.op).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["code"], "RESERVATION_UNREACHABLE");
        // Not again before the retry interval; then again, and this time it answers.
        fake.take();
        round(&s).await;
        assert!(fake.take().is_empty());
        fake.answer_reserve(Answer::Status("Accepted"));
        s.clock.advance(Duration::seconds(60));
        assert_eq!(round(&s).await.reservations, 1);
        assert_eq!(booking(&s, &sc.owner, id).await["reservationStatus"], "Accepted");
        assert_eq!(
            alerts(&s, &sc.admin).await.len(),
            1,
            "a retried failure raises no new alert"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn work_survives_a_restart_and_concurrent_rounds_send_each_command_once() {
    for backend in backends() {
        let s = start(backend).await;
        let sc = scene(&s).await;
        // Nobody serves the charger: the token push and the reservation both fail.
        let b = book(&s, &sc, 1, 10).await;
        let id = b["id"].as_i64().unwrap();
        s.clock.set(ts(&b["startsAt"]) - Duration::minutes(30));
        assert_eq!(round(&s).await, Round::default());
        assert_eq!(booking(&s, &sc.owner, id).await["reservationStatus"], "Timeout");

        let s = s.restart(false).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        // Before the retry interval the restarted replica waits too.
        assert_eq!(round(&s).await, Round::default());
        s.clock.advance(Duration::seconds(61));
        // Two replicas' rounds at once: each command goes out once.
        let (a, b2) = tokio::join!(reservations::run(&s.state), reservations::run(&s.state));
        let (a, b2) = (a.unwrap(), b2.unwrap());
        assert_eq!((a.tokens + b2.tokens, a.reservations + b2.reservations), (1, 1));
        let sent = fake.take();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(booking(&s, &sc.owner, id).await["reservationStatus"], "Accepted");
        s.stop().await;
    }
}

#[tokio::test]
async fn the_live_worker_sends_without_being_driven() {
    for backend in backends() {
        let s = TestServer::start_with(backend, |c| {
            c.reservations.charger_command_timeout_secs = 1;
        })
        .await;
        let sc = scene(&s).await;
        let s = s.restart(true).await;
        let fake = FakeCharger::serve(&s, "CP-R1").await;
        let b = book(&s, &sc, 1, 10).await;
        // The booking change wakes the worker: the token goes out without a driven round.
        for _ in 0..500 {
            if !fake.seen.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(matches!(
            fake.take().as_slice(),
            [Command::AuthorizeToken { id_token, .. }] if id_token == b["idToken"].as_str().unwrap()
        ));
        s.stop().await;
    }
}
