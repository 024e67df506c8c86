//! Connection lifecycle: replacement by a newer connection, graceful shutdown, durability of
//! acknowledged readings, and commands reaching the right socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the server closes the socket; returns the close code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no close within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn a_new_connection_replaces_the_old_one() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.call_timeout = 1).await;
        let mut old = connect(&server.ws_url("CP-DUP"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut old).await;
        let mut new = connect(&server.ws_url("CP-DUP"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        assert_eq!(
            close_code(&mut old).await,
            Some(1000),
            "{backend}: old socket closed normally"
        );
        boot201(&mut new).await;
        // Commands now reach the new connection, and the station stays online.
        let (status, problem) = server
            .api(
                "POST",
                "/api/v1/stations/CP-DUP/calls",
                Some(Role::Operator),
                Some(json!({"action": "ClearCache", "payload": {}})),
            )
            .await;
        assert_eq!(status, 504, "{problem}");
        let call = recv(&mut new).await;
        assert_eq!(call[2], "ClearCache");
        let station = server.admin("GET", "/api/v1/stations/CP-DUP", None, 200).await;
        assert_eq!(
            (station["online"].as_bool(), station["ocppVersion"].as_str()),
            (Some(true), Some("2.0.1"))
        );
        assert_eq!(server.state.registry.len(), 1);
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn command_round_trip_over_a_raw_socket() {
    let server = TestServer::start("sqlite", None).await;
    let mut ws = connect(&server.ws_url("CP-CMD"), "ocpp1.6", None)
        .await
        .expect("connect");
    boot16(&mut ws).await;
    let api = {
        let addr = server.addr;
        let token = server.token(Role::Operator);
        tokio::spawn(async move {
            http(
                addr,
                "POST",
                "/api/v1/stations/CP-CMD/commands/remote-start",
                Some(&token),
                Some(json!({"idToken": "TAG-9", "evseId": 2})),
            )
            .await
        })
    };
    let call = recv(&mut ws).await;
    assert_eq!(
        (call[0].as_i64(), call[2].as_str()),
        (Some(2), Some("RemoteStartTransaction"))
    );
    assert_eq!(call[3], json!({"idTag": "TAG-9", "connectorId": 2}));
    send(&mut ws, &json!([3, call[1], {"status": "Accepted"}]).to_string()).await;
    let (status, body) = api.await.expect("join");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"action": "RemoteStartTransaction", "response": {"status": "Accepted"}})
    );
    server.stop_and_clean().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_and_keeps_acknowledged_readings() {
    for (backend, url) in backends().await {
        // The reading is committed before its answer; the restart shows it survives the shutdown.
        let server = TestServer::start(backend, url.clone()).await;
        let mut ws = connect(&server.ws_url("CP-DOWN"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        let values = json!({"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [{"value": "42"}]}]});
        call_ok(&mut ws, "m", "MeterValues", values).await;
        let state = server.state.clone();
        let stopper = tokio::spawn(server.stop());
        assert_eq!(close_code(&mut ws).await, Some(1001), "{backend}");
        let dir = stopper.await.expect("stopped");
        drop(state);
        // Reopen the same database with a fresh server and read the reading back.
        let reopened = TestServer::start_with(
            backend,
            url.or_else(|| Some(format!("sqlite://{}", dir.path().join("central-system.db").display()))),
            |_| {},
        )
        .await;
        let (_, page) = reopened
            .api(
                "GET",
                "/api/v1/meter-values?stationId=CP-DOWN",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{backend}: {page}");
        assert_eq!(
            (page["items"][0]["value"].as_f64(), page["items"][0]["unit"].as_str()),
            (Some(42.0), Some("Wh"))
        );
        let station = reopened.admin("GET", "/api/v1/stations/CP-DOWN", None, 200).await;
        assert_eq!(station["online"], false, "a restarted node has no connections");
        reopened.stop_and_clean().await;
    }
}

#[tokio::test]
async fn silent_station_is_dropped_after_two_ping_intervals() {
    let server = TestServer::start_with("sqlite", None, |c| c.ping_interval = 1).await;
    let mut ws = connect(&server.ws_url("CP-QUIET"), "ocpp1.6", None)
        .await
        .expect("connect");
    boot16(&mut ws).await;
    // Not reading means tungstenite never answers the pings, like a dead network path.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    eventually(|| {
        let state = server.state.clone();
        async move { state.registry.get("CP-QUIET").is_none().then_some(()) }
    })
    .await;
    server.stop_and_clean().await;
}
