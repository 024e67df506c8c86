//! The simulator plays a booking's reservation against our central system, over real sockets,
//! for both versions and both storage backends: the booking's token granted at the station over
//! the bus (AuthorizeToken), ReserveNow holding the connector (Reserved), another token refused
//! on it, the booked token starting, and the answers a charger gives when it cannot reserve:
//! Occupied, Unavailable, Faulted, Rejected; CancelReservation freeing the connector.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use chrono::Utc;
use evcs_bus::contract::{Availability, Location};
use evcs_bus::{Bus, BusError, Command, CommandReply, StationId};
use firmware_sim::charger::{self, Control, Event, Handle};
use firmware_sim::spec::StationSpec;
use ocpp::Version;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::sync::broadcast;

fn spec(server: &TestServer, id: &str, version: Version) -> StationSpec {
    let base = server.ws_url("").trim_end_matches('/').to_string();
    let mut s = StationSpec::new(id, version, &base);
    s.timing.meter_interval = 1;
    s.timing.call_timeout = 10;
    s.timing.step_secs = 0.2;
    s
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

async fn boot(spec: StationSpec) -> (Handle, broadcast::Receiver<Event>) {
    let (handle, mut rx) = charger::spawn(spec).unwrap();
    expect(&mut rx, "boot", |e| matches!(e, Event::Booted(s) if s == "Accepted")).await;
    (handle, rx)
}

/// Sends a bus command, retrying while the station's route is being set up.
async fn bus_command(bus: &Arc<dyn Bus>, to: &str, cmd: Command) -> String {
    let wait = Duration::from_secs(5);
    for _ in 0..50 {
        match bus
            .send_command(
                evcs_bus::command(StationId::parse(to).unwrap(), cmd.clone(), wait),
                wait,
            )
            .await
        {
            Ok(CommandReply::Status { status, .. }) => return status,
            Ok(other) => panic!("{to}: {other:?}"),
            Err(BusError::Timeout(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{to} never served");
}

fn at(version: Version, n: u32) -> Location {
    match version {
        Version::V16 => Location {
            evse_id: None,
            connector_id: Some(n),
        },
        Version::V201 => Location {
            evse_id: Some(n),
            connector_id: None,
        },
    }
}

fn reserve(version: Version, id: i64, token: &str, n: u32) -> Command {
    Command::ReserveNow {
        reservation_id: id,
        id_token: token.into(),
        location: at(version, n),
        expires_at: Utc::now() + chrono::Duration::minutes(30),
    }
}

#[tokio::test]
async fn the_simulator_holds_a_booking_and_says_why_it_cannot() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.node_id = Some("sim-node".into())).await;
        let bus = server.state.bus.clone();
        server.accept_token("INTRUDER").await;
        for version in [Version::V16, Version::V201] {
            let id = format!("SIM-BOOK-{}", version.label());
            let token = format!("BK-{}", version.label());
            let ctx = format!("{backend} {id}");
            let mut two = spec(&server, &id, version);
            two.connectors.push(two.connectors[0].clone());
            let (station, mut rx) = boot(two).await;
            let now = Utc::now();
            let grant = Command::AuthorizeToken {
                id_token: token.clone(),
                valid_from: now - chrono::Duration::minutes(15),
                valid_until: now + chrono::Duration::minutes(60),
            };
            assert_eq!(bus_command(&bus, &id, grant).await, "Accepted", "{ctx}");

            // The booking's reservation holds connector 1.
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 501, &token, 1)).await,
                "Accepted",
                "{ctx}"
            );
            expect(
                &mut rx,
                "reserved",
                |e| matches!(e, Event::Status(1, s) if s == "Reserved"),
            )
            .await;
            // Another reservation on it: Occupied. An unknown reservation cannot be cancelled.
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 502, "OTHER", 1)).await,
                "Occupied",
                "{ctx}"
            );
            let unknown = Command::CancelReservation { reservation_id: 999 };
            assert_eq!(bus_command(&bus, &id, unknown).await, "Rejected", "{ctx}");
            // A stranger's card is refused on the reserved connector; the booked token starts.
            station.send(Control::Plug(1));
            station.send(Control::Present(1, "INTRUDER".into()));
            let refused = expect(&mut rx, "intruder refused", |e| matches!(e, Event::Refused(1, _))).await;
            assert!(format!("{refused:?}").contains("reserved"), "{ctx}: {refused:?}");
            station.send(Control::Present(1, token.clone()));
            expect(&mut rx, "booked driver starts", |e| {
                matches!(e, Event::TransactionStarted(1, _))
            })
            .await;
            // Charging: a reservation now is Occupied.
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 503, &token, 1)).await,
                "Occupied",
                "{ctx}"
            );
            station.send(Control::Stop(1));
            expect(&mut rx, "stopped", |e| matches!(e, Event::TransactionEnded(1, _))).await;
            station.send(Control::Unplug(1));
            expect(
                &mut rx,
                "available",
                |e| matches!(e, Event::Status(1, s) if s == "Available"),
            )
            .await;

            // Out of service: Unavailable; faulted: Faulted; no such connector: Rejected.
            let off = Command::ChangeAvailability {
                location: at(version, 2),
                availability: Availability::Inoperative,
            };
            assert_eq!(bus_command(&bus, &id, off).await, "Accepted", "{ctx}");
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 504, &token, 2)).await,
                "Unavailable",
                "{ctx}"
            );
            station.send(Control::Fault(1, "GroundFailure".into()));
            expect(
                &mut rx,
                "faulted",
                |e| matches!(e, Event::Status(1, s) if s == "Faulted"),
            )
            .await;
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 505, &token, 1)).await,
                "Faulted",
                "{ctx}"
            );
            station.send(Control::ClearFault(1));
            expect(
                &mut rx,
                "fault cleared",
                |e| matches!(e, Event::Status(1, s) if s == "Available"),
            )
            .await;
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 506, &token, 9)).await,
                "Rejected",
                "{ctx}"
            );

            // Cancelled: the connector is free again.
            assert_eq!(
                bus_command(&bus, &id, reserve(version, 507, &token, 1)).await,
                "Accepted",
                "{ctx}"
            );
            expect(
                &mut rx,
                "reserved again",
                |e| matches!(e, Event::Status(1, s) if s == "Reserved"),
            )
            .await;
            let cancel = Command::CancelReservation { reservation_id: 507 };
            assert_eq!(bus_command(&bus, &id, cancel).await, "Accepted", "{ctx}");
            expect(
                &mut rx,
                "freed",
                |e| matches!(e, Event::Status(1, s) if s == "Available"),
            )
            .await;
            station.shutdown().await.unwrap();
        }
        server.stop_and_clean().await;
    }
}
