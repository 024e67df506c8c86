//! What the central system does with a charger's answers to its calls, and what it sends:
//! an answer that breaks the OCPP response schema is a 502 for the REST caller (and nothing
//! is recorded from it); 2.0.1 id tokens go out with their own type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use central_system::auth::jwt::Role;
use serde_json::{json, Value};
use support::*;

/// Sends a REST command while a raw "station" answers the CALL it receives with `answer(id)`.
async fn command(
    server: &TestServer,
    ws: &mut Ws,
    path: &str,
    body: Value,
    answer: impl FnOnce(&Value) -> Value,
) -> ((u16, Value), Value) {
    tokio::join!(server.api("POST", path, Some(Role::Operator), Some(body)), async {
        let call = recv(ws).await;
        assert_eq!(call[0], 2, "expected a CALL: {call}");
        send(ws, &answer(&call[1]).to_string()).await;
        call
    })
}

#[tokio::test]
async fn an_invalid_answer_is_a_502_and_is_not_recorded() {
    let server = TestServer::start("sqlite", None).await;
    let s = &server;
    for (station, protocol) in [("BAD-16", "ocpp1.6"), ("BAD-201", "ocpp2.0.1")] {
        let mut ws = connect(&s.ws_url(station), protocol, None).await.expect("connect");
        if protocol == "ocpp1.6" {
            boot16(&mut ws).await;
        } else {
            boot201(&mut ws).await;
        }
        let path = format!("/api/v1/stations/{station}/commands/reserve-now");
        let body = json!({"idToken": "TAG-1", "evseId": 1, "reservationId": 7, "expiresAt": "2030-01-01T00:00:00Z"});
        // "Maybe" is no ReserveNowStatus.
        let ((status, problem), _) = command(
            s,
            &mut ws,
            &path,
            body.clone(),
            |id| json!([3, id, { "status": "Maybe" }]),
        )
        .await;
        assert_eq!(status, 502, "{station}: {problem}");
        assert_eq!(problem["code"], "STATION_INVALID_RESPONSE", "{problem}");
        assert!(
            problem["errors"]["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
        let reservations = s
            .admin("GET", &format!("/api/v1/stations/{station}/reservations"), None, 200)
            .await;
        assert_eq!(reservations, json!([]), "{station}: an invalid answer records nothing");

        // A missing required field, through the generic endpoint.
        let ((status, problem), _) = command(
            s,
            &mut ws,
            &format!("/api/v1/stations/{station}/calls"),
            json!({"action": "ClearCache"}),
            |id| json!([3, id, {}]),
        )
        .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (502, json!("STATION_INVALID_RESPONSE")),
            "{problem}"
        );

        // A valid answer still passes and is recorded.
        let ((status, answer), _) =
            command(s, &mut ws, &path, body, |id| json!([3, id, { "status": "Accepted" }])).await;
        assert_eq!(status, 200, "{answer}");
        let reservations = s
            .admin("GET", &format!("/api/v1/stations/{station}/reservations"), None, 200)
            .await;
        assert_eq!(reservations[0]["status"], "Accepted", "{station}: {reservations}");
    }
    server.stop_and_clean().await;
}

#[tokio::test]
async fn id_tokens_are_sent_with_their_own_type() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;
        s.admin(
            "POST",
            "/api/v1/id-tokens",
            Some(json!({"idToken": "CARD-1", "status": "Accepted", "type": "ISO15693"})),
            201,
        )
        .await;
        let mut ws = connect(&s.ws_url("TYPE-201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        let commands = "/api/v1/stations/TYPE-201/commands";
        let cases = [
            // The stored type.
            ("remote-start", json!({"idToken": "CARD-1", "evseId": 1}), "ISO15693"),
            (
                "reserve-now",
                json!({"idToken": "CARD-1", "reservationId": 1, "expiresAt": "2030-01-01T00:00:00Z"}),
                "ISO15693",
            ),
            // The body's type wins.
            ("remote-start", json!({"idToken": "CARD-1", "type": "eMAID"}), "eMAID"),
            // A token the CSMS does not know: Central.
            ("remote-start", json!({"idToken": "NEVER-SEEN"}), "Central"),
        ];
        for (command_name, body, expected) in cases {
            let ((status, answer), call) = command(
                s,
                &mut ws,
                &format!("{commands}/{command_name}"),
                body,
                |id| json!([3, id, { "status": "Accepted" }]),
            )
            .await;
            assert_eq!(status, 200, "{backend} {command_name}: {answer}");
            assert_eq!(call[3]["idToken"]["type"], expected, "{backend} {command_name}: {call}");
        }
        // A type that is no IdTokenEnumType is refused before anything is sent.
        let (status, problem) = s
            .api(
                "POST",
                &format!("{commands}/remote-start"),
                Some(Role::Operator),
                Some(json!({"idToken": "CARD-1", "type": "Magic"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].clone()),
            (400, json!("VALIDATION_FAILED")),
            "{problem}"
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn ids_the_caller_does_not_give_are_allocated_from_the_database() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let s = &server;
        let mut ws = connect(&s.ws_url("IDS-201"), "ocpp2.0.1", None).await.expect("connect");
        boot201(&mut ws).await;
        let commands = "/api/v1/stations/IDS-201/commands";
        let accepted = |id: &Value| json!([3, id, { "status": "Accepted" }]);
        // Remote starts: a fresh database counts from 1, one id each, none from the clock.
        let mut ids = Vec::new();
        for _ in 0..2 {
            let ((status, answer), call) = command(
                s,
                &mut ws,
                &format!("{commands}/remote-start"),
                json!({"idToken": "TAG-1"}),
                accepted,
            )
            .await;
            assert_eq!(status, 200, "{backend}: {answer}");
            ids.push(call[3]["remoteStartId"].clone());
        }
        assert_eq!(ids, [json!(1), json!(2)], "{backend}");
        // The caller's id goes out as given.
        let ((_, _), call) = command(
            s,
            &mut ws,
            &format!("{commands}/remote-start"),
            json!({"idToken": "TAG-1", "remoteStartId": 900}),
            accepted,
        )
        .await;
        assert_eq!(call[3]["remoteStartId"], 900, "{backend}");
        // Reservations: allocated above the ids operators chose, and recorded under that id.
        let reserve = |id: Option<i32>| {
            let mut body = json!({"idToken": "TAG-1", "evseId": 1, "expiresAt": "2030-01-01T00:00:00Z"});
            if let Some(id) = id {
                body["reservationId"] = json!(id);
            }
            body
        };
        let mut sent = Vec::new();
        for id in [None, Some(10), None] {
            let ((status, answer), call) =
                command(s, &mut ws, &format!("{commands}/reserve-now"), reserve(id), accepted).await;
            assert_eq!(status, 200, "{backend}: {answer}");
            sent.push(call[3]["id"].clone());
        }
        assert_eq!(sent, [json!(1), json!(10), json!(11)], "{backend}");
        let reservations = s.admin("GET", "/api/v1/stations/IDS-201/reservations", None, 200).await;
        let mut recorded: Vec<i64> = reservations
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["reservationId"].as_i64())
            .collect();
        recorded.sort_unstable();
        assert_eq!(recorded, [1, 10, 11], "{backend}: {reservations}");
        server.stop_and_clean().await;
    }
}
