//! Station-scoped, time-windowed id tokens (a booking's): granted and revoked with the bus
//! commands AuthorizeToken / RevokeToken, which the central system answers itself, then
//! Authorize, StartTransaction (1.6) and TransactionEvent (2.0.1) over real WebSockets at the
//! right station, another station, and outside the window. Each runs on SQLite and, when
//! configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{Duration as Span, Utc};
use evcs_bus::{command, Bus, BusError, Command, CommandReply, StationId};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn accepted() -> CommandReply {
    CommandReply::Status {
        status: "Accepted".into(),
        payload: None,
    }
}

async fn send(bus: &Arc<dyn Bus>, to: &str, cmd: Command) -> Result<CommandReply, BusError> {
    let wait = Duration::from_secs(2);
    bus.send_command(command(StationId::parse(to).unwrap(), cmd, wait), wait)
        .await
}

fn grant(token: &str, from_minutes: i64, until_minutes: i64) -> Command {
    let now = Utc::now();
    Command::AuthorizeToken {
        id_token: token.into(),
        valid_from: now + Span::minutes(from_minutes),
        valid_until: now + Span::minutes(until_minutes),
    }
}

/// Sends `cmd` until the station's node serves it (its bus route follows the connection).
async fn send_served(bus: &Arc<dyn Bus>, to: &str, cmd: Command) -> CommandReply {
    for _ in 0..50 {
        match send(bus, to, cmd.clone()).await {
            Ok(reply) => return reply,
            Err(BusError::Timeout(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{to} never served");
}

async fn station(server: &TestServer, id: &str, protocol: &str) -> Ws {
    let mut ws = connect(&server.ws_url(id), protocol, None).await.expect("connect");
    if protocol == "ocpp1.6" {
        boot16(&mut ws).await;
    } else {
        boot201(&mut ws).await;
    }
    ws
}

async fn authorize16(ws: &mut Ws, tag: &str) -> Value {
    call_ok(ws, "a", "Authorize", json!({"idTag": tag})).await["idTagInfo"]["status"].clone()
}

async fn authorize201(ws: &mut Ws, tag: &str) -> Value {
    call_ok(
        ws,
        "a",
        "Authorize",
        json!({"idToken": {"idToken": tag, "type": "Central"}}),
    )
    .await["idTokenInfo"]["status"]
        .clone()
}

fn started201(tx: &str, tag: &str) -> Value {
    let ts = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "eventType": "Started", "timestamp": ts, "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {"transactionId": tx}, "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": tag, "type": "Central"}
    })
}

fn start16(tag: &str) -> Value {
    let ts = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": ts})
}

#[tokio::test]
async fn a_scoped_token_holds_only_at_its_station_inside_its_window() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.node_id = Some("scope-node".into())).await;
        let bus = server.state.bus.clone();
        let mut home16 = station(&server, "HOME-16", "ocpp1.6").await;
        let mut away16 = station(&server, "AWAY-16", "ocpp1.6").await;
        let mut home201 = station(&server, "HOME-201", "ocpp2.0.1").await;
        let mut away201 = station(&server, "AWAY-201", "ocpp2.0.1").await;
        let ctx = backend;

        // Inside the window at its station: Accepted, by both versions.
        assert_eq!(
            send_served(&bus, "HOME-16", grant("BK-16", -10, 60)).await,
            accepted(),
            "{ctx}"
        );
        assert_eq!(
            send_served(&bus, "HOME-201", grant("BK-201", -10, 60)).await,
            accepted(),
            "{ctx}"
        );
        assert_eq!(authorize16(&mut home16, "BK-16").await, "Accepted", "{ctx}");
        assert_eq!(authorize201(&mut home201, "BK-201").await, "Accepted", "{ctx}");
        // At another station: 2.0.1 says where the problem is, 1.6 can only say Invalid.
        assert_eq!(authorize16(&mut away16, "BK-16").await, "Invalid", "{ctx}");
        assert_eq!(authorize201(&mut away201, "BK-201").await, "NotAtThisLocation", "{ctx}");
        // Starting a transaction elsewhere is refused the same way; at home it is Accepted.
        let away = call_ok(&mut away16, "s", "StartTransaction", start16("BK-16")).await;
        assert_eq!(away["idTagInfo"]["status"], "Invalid", "{ctx}");
        let away = call_ok(&mut away201, "s", "TransactionEvent", started201("tx-away", "BK-201")).await;
        assert_eq!(away["idTokenInfo"]["status"], "NotAtThisLocation", "{ctx}");
        let home = call_ok(&mut home16, "s", "StartTransaction", start16("BK-16")).await;
        assert_eq!(home["idTagInfo"]["status"], "Accepted", "{ctx}");
        let home = call_ok(&mut home201, "s", "TransactionEvent", started201("tx-home", "BK-201")).await;
        assert_eq!(home["idTokenInfo"]["status"], "Accepted", "{ctx}");

        // Before the window and after it: NotAtThisTime (1.6: Invalid).
        assert_eq!(
            send(&bus, "HOME-16", grant("BK-LATER", 60, 120)).await.unwrap(),
            accepted()
        );
        assert_eq!(
            send(&bus, "HOME-201", grant("BK-LATER2", 60, 120)).await.unwrap(),
            accepted()
        );
        assert_eq!(
            send(&bus, "HOME-201", grant("BK-PAST", -120, -60)).await.unwrap(),
            accepted()
        );
        assert_eq!(authorize16(&mut home16, "BK-LATER").await, "Invalid", "{ctx}");
        assert_eq!(authorize201(&mut home201, "BK-LATER2").await, "NotAtThisTime", "{ctx}");
        assert_eq!(authorize201(&mut home201, "BK-PAST").await, "NotAtThisTime", "{ctx}");
        let early = call_ok(
            &mut home201,
            "s2",
            "TransactionEvent",
            started201("tx-early", "BK-LATER2"),
        )
        .await;
        assert_eq!(early["idTokenInfo"]["status"], "NotAtThisTime", "{ctx}");

        // A re-grant (a rescheduled booking) moves the window.
        assert_eq!(
            send(&bus, "HOME-201", grant("BK-LATER2", -5, 60)).await.unwrap(),
            accepted()
        );
        assert_eq!(authorize201(&mut home201, "BK-LATER2").await, "Accepted", "{ctx}");

        // Revoked: unknown again (also a second time: revocations are retried).
        for _ in 0..2 {
            let revoke = Command::RevokeToken {
                id_token: "BK-16".into(),
            };
            assert_eq!(send(&bus, "HOME-16", revoke).await.unwrap(), accepted());
        }
        assert_eq!(authorize16(&mut home16, "BK-16").await, "Invalid", "{ctx}");
        // Another station cannot revoke it.
        let revoke = Command::RevokeToken {
            id_token: "BK-201".into(),
        };
        assert_eq!(send(&bus, "AWAY-201", revoke).await.unwrap(), accepted());
        assert_eq!(authorize201(&mut home201, "BK-LATER2").await, "Accepted", "{ctx}");

        // A token the operator registered for use anywhere is never narrowed by a push.
        server.accept_token("OPERATOR-TAG").await;
        let reply = send(&bus, "HOME-16", grant("OPERATOR-TAG", -10, 60)).await.unwrap();
        assert_eq!(
            reply,
            CommandReply::Status {
                status: "Rejected".into(),
                payload: None
            }
        );
        assert_eq!(authorize16(&mut away16, "OPERATOR-TAG").await, "Accepted", "{ctx}");

        // A window that ends before it starts, or a token no 1.6 charger can carry: Invalid.
        assert!(matches!(
            send(&bus, "HOME-16", grant("BK-BAD", 10, 5)).await.unwrap(),
            CommandReply::Invalid { .. }
        ));
        assert!(matches!(
            send(&bus, "HOME-16", grant("TWENTY-ONE-CHARACTERS", -1, 5))
                .await
                .unwrap(),
            CommandReply::Invalid { .. }
        ));
        // A station connected nowhere gets no answer: the sender retries later.
        assert!(matches!(
            send(&bus, "NOWHERE", grant("BK-X", -1, 5)).await,
            Err(BusError::Timeout(_))
        ));
        server.stop_and_clean().await;
    }
}
