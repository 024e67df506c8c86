//! The central system's HTTP edges: every error is a problem (malformed path parameters too),
//! bodies over the limit get 413, commands to an unknown station get 404 (an offline one 409),
//! the API reference page works offline, `/metrics` can move to its own listener, and tokens
//! of the booking API are refused even when both services share a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use serde_json::{json, Value};
use support::*;

fn assert_problem(status: u16, headers: &hyper::HeaderMap, body: &str, want: u16, code: &str) -> Value {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(
        (status, json["code"].as_str().unwrap_or_default()),
        (want, code),
        "{body}"
    );
    assert_eq!(headers["content-type"], "application/problem+json", "{body}");
    json
}

#[tokio::test]
async fn malformed_path_parameters_are_problems() {
    let server = TestServer::start("sqlite", None).await;
    let token = server.token(Role::Admin);
    // The WebSocket endpoint too: a station id that is not even UTF-8.
    let (status, headers, body) = http_raw(server.addr, "GET", "/ocpp/%FF", None, None).await;
    assert_problem(status, &headers, &body, 400, "INVALID_STATION_ID");
    for (method, path, field) in [
        ("GET", "/api/v1/transactions/abc", "id"),
        ("GET", "/api/v1/id-tokens/%FF", "idToken"),
        ("GET", "/api/v1/stations/%C3%28", "stationId"),
    ] {
        let (status, headers, body) = http_raw(server.addr, method, path, Some(&token), None).await;
        let problem = assert_problem(status, &headers, &body, 400, "VALIDATION_FAILED");
        if field != "id" {
            assert_eq!(problem["errors"][0]["field"], field, "{path}: {body}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_problems() {
    let server = TestServer::start_with("sqlite", None, |c| c.max_body_bytes = 4096).await;
    let token = server.token(Role::Admin);
    let big = json!({ "idToken": "T".repeat(8192), "status": "Accepted" });
    for path in ["/api/v1/id-tokens", "/api/v1/stations/CP-1/commands/remote-start"] {
        let (status, headers, body) = http_raw(server.addr, "POST", path, Some(&token), Some(big.clone())).await;
        assert_problem(status, &headers, &body, 413, "PAYLOAD_TOO_LARGE");
    }
    // Under the limit the route answers on the merits.
    server
        .admin(
            "POST",
            "/api/v1/id-tokens",
            Some(json!({ "idToken": "SMALL", "status": "Accepted" })),
            201,
        )
        .await;
    server.stop().await;
}

#[tokio::test]
async fn commands_to_an_unknown_station_are_404_and_to_an_offline_one_409() {
    let server = TestServer::start("sqlite", None).await;
    let token = server.token(Role::Operator);
    let start = json!({ "idToken": "TAG-1", "evseId": 1 });
    let call = json!({ "action": "Reset", "payload": { "type": "Hard" } });
    for (path, body) in [
        ("/api/v1/stations/NO-SUCH/commands/remote-start", start.clone()),
        ("/api/v1/stations/NO-SUCH/calls", call.clone()),
    ] {
        let (status, headers, text) = http_raw(server.addr, "POST", path, Some(&token), Some(body)).await;
        assert_problem(status, &headers, &text, 404, "UNKNOWN_STATION");
    }
    server
        .admin("POST", "/api/v1/stations", Some(json!({ "id": "CP-OFF" })), 201)
        .await;
    for (path, body) in [
        ("/api/v1/stations/CP-OFF/commands/remote-start", start),
        ("/api/v1/stations/CP-OFF/calls", call),
    ] {
        let (status, headers, text) = http_raw(server.addr, "POST", path, Some(&token), Some(body)).await;
        assert_problem(status, &headers, &text, 409, "STATION_OFFLINE");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_reference_page_and_its_script_come_from_the_binary() {
    let server = TestServer::start("sqlite", None).await;
    let (status, _, html) = http_raw(server.addr, "GET", "/api/v1/docs", None, None).await;
    assert_eq!(status, 200);
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    assert!(html.contains(r#"spec-url="/api/v1/openapi.json""#), "{html}");
    let script = html.split(r#"src=""#).nth(1).unwrap().split('"').next().unwrap();
    let (status, headers, js) = http_raw(server.addr, "GET", script, None, None).await;
    assert_eq!(status, 200, "{script}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.starts_with("/*! RapiDoc"));
    let (status, _, _) = http_raw(server.addr, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn metrics_can_live_on_their_own_listener() {
    let server = TestServer::start_with("sqlite", None, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (status, headers, body) = http_raw(server.addr, "GET", "/metrics", None, None).await;
    assert_problem(status, &headers, &body, 404, "NOT_FOUND");
    let metrics = server.metrics_addr.expect("metrics listener");
    let (status, _, body) = http_raw(metrics, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("ocpp_meter_rows_written_total"), "{body}");
    let (status, _, _) = http_raw(metrics, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// One secret for both services, as a careless deployment might configure: each still refuses
/// the other's tokens, because issuer and audience differ.
#[tokio::test]
async fn a_shared_secret_does_not_let_one_services_tokens_into_the_other() {
    let secret = "one-secret-for-both-services-0123456789";
    let central = TestServer::start_with("sqlite", None, |c| c.jwt_secret = Some(secret.into())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = booking_api::Config::for_tests(dir.path().to_path_buf(), None);
    config.jwt_secret = Some(service_kit::secrets::Secret::new(secret));
    let booking = booking_api::Application::build_with(
        config,
        booking_api::Parts {
            background: false,
            ..booking_api::Parts::default()
        },
    )
    .await
    .unwrap();
    let admin = booking.initial_admin().cloned().unwrap();
    let booking_addr = booking.local_addr();
    let booking_state = booking.state();
    let task = tokio::spawn(booking.run_until_stopped());

    let (status, login) = http(
        booking_addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "identifier": admin.email, "password": admin.password })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let booking_admin = login["accessToken"].as_str().unwrap();
    let central_admin = central.token(Role::Admin);

    // Each token works where it belongs...
    let (status, _) = http(booking_addr, "GET", "/api/v1/me", Some(booking_admin), None).await;
    assert_eq!(status, 200);
    let (status, _) = http(central.addr, "GET", "/api/v1/id-tokens", Some(&central_admin), None).await;
    assert_eq!(status, 200);
    // ...and nowhere else.
    let (status, headers, body) = http_raw(
        central.addr,
        "POST",
        "/api/v1/id-tokens",
        Some(booking_admin),
        Some(json!({ "idToken": "FORGED", "status": "Accepted" })),
    )
    .await;
    assert_problem(status, &headers, &body, 401, "UNAUTHORIZED");
    assert!(central.state.store.id_token("FORGED").await.unwrap().is_none());
    let (status, headers, body) = http_raw(booking_addr, "GET", "/api/v1/me", Some(&central_admin), None).await;
    assert_problem(status, &headers, &body, 401, "UNAUTHORIZED");

    booking_state.shutdown.cancel();
    let _ = task.await;
    central.stop().await;
}
