//! Bus commands reach the station over its real WebSocket and its answer comes back as a
//! `CommandReply`: a central system serves the commands of the stations connected to it, on
//! the in-process bus and, when `EVCS_TEST_MQTT_URL` is set, through the MQTT broker (a
//! separate MQTT client sends; an unreachable broker fails the test). Each runs on SQLite and,
//! when configured, PostgreSQL (the reservations a ReserveNow records).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use central_system::config::BusKind;
use chrono::{TimeZone, Utc};
use evcs_bus::contract::Location;
use evcs_bus::{command, Bus, BusError, Command, CommandReply, MqttBus, MqttConfig, StationId};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// How long a sender waits for a reply.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// The transports to test: always in-process; MQTT when `EVCS_TEST_MQTT_URL` is set.
fn transports() -> Vec<BusKind> {
    let mut out = vec![BusKind::Inproc];
    match std::env::var("EVCS_TEST_MQTT_URL") {
        Ok(url) if !url.is_empty() => out.push(BusKind::Mqtt),
        _ => eprintln!("MQTT bus command test NOT RUN: EVCS_TEST_MQTT_URL unset"),
    }
    out
}

/// A central system on `transport` and a bus client to send it commands with: the server's
/// own in-process bus, or a separate MQTT connection (so commands cross the broker).
async fn start(backend: &'static str, url: Option<String>, transport: BusKind) -> (TestServer, Arc<dyn Bus>) {
    let prefix = format!("t{:016x}", rand::random::<u64>());
    let mqtt_url = std::env::var("EVCS_TEST_MQTT_URL").ok();
    let server = TestServer::start_with(backend, url, |c| {
        c.bus = transport;
        c.mqtt_url = mqtt_url.clone();
        c.bus_topic_prefix = prefix.clone();
        c.node_id = Some(format!("{prefix}-node"));
        c.call_timeout = 2;
    })
    .await;
    let sender: Arc<dyn Bus> = match transport {
        BusKind::Inproc => server.state.bus.clone(),
        BusKind::Mqtt => {
            let url = mqtt_url.expect("EVCS_TEST_MQTT_URL");
            let config = MqttConfig::from_url(&url, &prefix).expect("EVCS_TEST_MQTT_URL is mqtt://host:port");
            Arc::new(
                MqttBus::connect(config, &format!("{prefix}-sender"))
                    .await
                    .expect("EVCS_TEST_MQTT_URL is set but the broker cannot be reached"),
            )
        }
    };
    (server, sender)
}

fn station(id: &str) -> StationId {
    StationId::parse(id).unwrap()
}

async fn send(bus: &Arc<dyn Bus>, to: &str, cmd: Command, wait: Duration) -> Result<CommandReply, BusError> {
    bus.send_command(command(station(to), cmd, wait), wait).await
}

/// The next CALL, or None when nothing arrives within `wait`.
async fn next_call(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Text(t)))) => {
                let frame: Value = serde_json::from_str(&t).expect("JSON frame");
                assert_eq!(frame[0], 2, "expected a CALL: {frame}");
                return Some(frame);
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends `cmd` over the bus while the station answers its CALL with `answer(call)`; returns
/// the CALL the station got and the reply.
async fn exchange(
    bus: &Arc<dyn Bus>,
    ws: &mut Ws,
    to: &str,
    cmd: Command,
    answer: impl FnOnce(&Value) -> Value,
) -> (Value, CommandReply) {
    let (reply, call) = tokio::join!(send(bus, to, cmd, REPLY_WAIT), async {
        let call = next_call(ws, REPLY_WAIT)
            .await
            .expect("the command reached the station");
        support::send(ws, &answer(&call).to_string()).await;
        call
    });
    (call, reply.expect("a reply"))
}

/// Waits until the node serves `to` on the bus (an MQTT subscription takes a moment after the
/// connection): retries a ClearCache with a short wait until one reaches the station.
async fn until_served(bus: &Arc<dyn Bus>, ws: &mut Ws, to: &str) {
    for _ in 0..20 {
        let probe = Command::Call {
            action: "ClearCache".into(),
            payload: json!({}),
        };
        let wait = Duration::from_millis(500);
        let (reply, call) = tokio::join!(send(bus, to, probe, wait), next_call(ws, wait));
        if let Some(call) = call {
            support::send(ws, &json!([3, call[1], {"status": "Accepted"}]).to_string()).await;
            // The reply to this probe may come after the sender gave up; that is fine.
            let _ = reply;
            return;
        }
    }
    panic!("{to} never became reachable over the bus");
}

#[tokio::test]
async fn bus_commands_reach_connected_stations_and_their_answers_come_back() {
    for transport in transports() {
        for (backend, url) in backends().await {
            let (server, bus) = start(backend, url, transport).await;
            for (id, protocol) in [("BUS-16", "ocpp1.6"), ("BUS-201", "ocpp2.0.1")] {
                let ctx = format!("{transport:?} {backend} {protocol}");
                let mut ws = connect(&server.ws_url(id), protocol, None).await.expect("connect");
                if protocol == "ocpp1.6" {
                    boot16(&mut ws).await;
                } else {
                    boot201(&mut ws).await;
                }
                until_served(&bus, &mut ws, id).await;
                let v16 = protocol == "ocpp1.6";

                // RemoteStart: the caller's remote-start id goes out as given.
                let start = Command::RemoteStart {
                    remote_start_id: 77,
                    id_token: "BUS-TAG".into(),
                    location: Location {
                        evse_id: Some(1),
                        connector_id: None,
                    },
                };
                let (call, reply) =
                    exchange(&bus, &mut ws, id, start, |c| json!([3, c[1], {"status": "Accepted"}])).await;
                if v16 {
                    assert_eq!(call[2], "RemoteStartTransaction", "{ctx}");
                    assert_eq!(call[3], json!({"idTag": "BUS-TAG", "connectorId": 1}), "{ctx}");
                } else {
                    assert_eq!(call[2], "RequestStartTransaction", "{ctx}");
                    assert_eq!(
                        call[3],
                        json!({"idToken": {"idToken": "BUS-TAG", "type": "Central"}, "remoteStartId": 77, "evseId": 1}),
                        "{ctx}"
                    );
                }
                assert_eq!(
                    reply,
                    CommandReply::Status {
                        status: "Accepted".into(),
                        payload: None
                    },
                    "{ctx}"
                );

                // ReserveNow: the charger's refusal comes back as it said it, and is recorded.
                let reserve = Command::ReserveNow {
                    reservation_id: 31,
                    id_token: "BUS-TAG".into(),
                    location: Location {
                        evse_id: Some(1),
                        connector_id: None,
                    },
                    expires_at: Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap(),
                };
                let (call, reply) =
                    exchange(&bus, &mut ws, id, reserve, |c| json!([3, c[1], {"status": "Occupied"}])).await;
                assert_eq!(call[2], "ReserveNow", "{ctx}");
                let id_field = if v16 { "reservationId" } else { "id" };
                assert_eq!(call[3][id_field], 31, "{ctx}: {call}");
                assert_eq!(
                    reply,
                    CommandReply::Status {
                        status: "Occupied".into(),
                        payload: None
                    },
                    "{ctx}"
                );
                let reservations = server
                    .admin("GET", &format!("/api/v1/stations/{id}/reservations"), None, 200)
                    .await;
                assert_eq!(
                    (
                        reservations[0]["reservationId"].as_i64(),
                        reservations[0]["status"].as_str()
                    ),
                    (Some(31), Some("Occupied")),
                    "{ctx}: {reservations}"
                );

                // A generic call's reply carries the payload.
                let call_cmd = Command::Call {
                    action: "DataTransfer".into(),
                    payload: json!({"vendorId": "acme"}),
                };
                let (_, reply) = exchange(
                    &bus,
                    &mut ws,
                    id,
                    call_cmd,
                    |c| json!([3, c[1], {"status": "Accepted", "data": "pong"}]),
                )
                .await;
                assert_eq!(
                    reply,
                    CommandReply::Status {
                        status: "Accepted".into(),
                        payload: Some(json!({"status": "Accepted", "data": "pong"}))
                    },
                    "{ctx}"
                );

                // A CALLERROR comes back as callError.
                let reset = Command::Reset {
                    kind: evcs_bus::contract::ResetKind::Hard,
                };
                let (call, reply) = exchange(&bus, &mut ws, id, reset, |c| {
                    json!([4, c[1], "InternalError", "relay stuck", {}])
                })
                .await;
                assert_eq!(call[3]["type"], if v16 { "Hard" } else { "Immediate" }, "{ctx}");
                assert_eq!(
                    reply,
                    CommandReply::CallError {
                        code: "InternalError".into(),
                        description: Some("relay stuck".into())
                    },
                    "{ctx}"
                );

                // An answer that breaks the response schema is invalid, and records nothing.
                let cancel = Command::CancelReservation { reservation_id: 31 };
                let (_, reply) = exchange(&bus, &mut ws, id, cancel, |c| json!([3, c[1], {"status": "Maybe"}])).await;
                assert!(matches!(reply, CommandReply::Invalid { .. }), "{ctx}: {reply:?}");
                let reservations = server
                    .admin("GET", &format!("/api/v1/stations/{id}/reservations"), None, 200)
                    .await;
                assert_eq!(reservations[0]["status"], "Occupied", "{ctx}");

                // A command the schema refuses never reaches the station.
                let bad = Command::TriggerMessage {
                    message: "NoSuchMessage".into(),
                    location: Location::default(),
                };
                let reply = send(&bus, id, bad, REPLY_WAIT).await.expect("a reply");
                assert!(matches!(reply, CommandReply::Invalid { .. }), "{ctx}: {reply:?}");

                // A station that does not answer: timeout.
                let unlock = Command::UnlockConnector {
                    location: Location {
                        evse_id: Some(1),
                        connector_id: None,
                    },
                };
                let (reply, call) = tokio::join!(send(&bus, id, unlock, REPLY_WAIT), next_call(&mut ws, REPLY_WAIT));
                assert_eq!(call.expect("the unlock arrived")[2], "UnlockConnector", "{ctx}");
                assert_eq!(reply.expect("a reply"), CommandReply::Timeout, "{ctx}");
                drop(ws);
            }
            server.stop_and_clean().await;
        }
    }
}

#[tokio::test]
async fn commands_to_stations_that_are_not_connected_time_out_or_answer_offline() {
    for transport in transports() {
        let (server, bus) = start("sqlite", None, transport).await;
        let ctx = format!("{transport:?}");
        let short = Duration::from_millis(1500);
        let reset = || Command::Reset {
            kind: evcs_bus::contract::ResetKind::Soft,
        };
        // Never connected: nobody serves it.
        let never = send(&bus, "NEVER-HERE", reset(), short).await;
        assert!(matches!(never, Err(BusError::Timeout(_))), "{ctx}: {never:?}");

        // Connected, then gone: the node stops serving it (or, in the moment between, says
        // it is offline).
        let mut ws = connect(&server.ws_url("GONE-1"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        until_served(&bus, &mut ws, "GONE-1").await;
        ws.close(None).await.expect("close");
        drop(ws);
        eventually(|| {
            let state = server.state.clone();
            async move { state.registry.get("GONE-1").is_none().then_some(()) }
        })
        .await;
        let gone = send(&bus, "GONE-1", reset(), short).await;
        assert!(
            matches!(gone, Err(BusError::Timeout(_)) | Ok(CommandReply::Offline)),
            "{ctx}: {gone:?}"
        );
        server.stop_and_clean().await;
    }
}
