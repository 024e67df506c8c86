//! The HTTP edges: every error is a problem (malformed path parameters too), bodies over the
//! limit get 413, the API reference page and its script are served from the binary, and
//! `/metrics` can move to a listener of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn malformed_path_parameters_are_problems() {
    let s = TestServer::start(("sqlite", None)).await;
    let admin = s.admin().await;
    for path in [
        "/api/v1/bookings/xyz",
        "/api/v1/stations/1.5",
        "/api/v1/stations/abc/slots",
        "/api/v1/vehicles/99999999999999999999999",
    ] {
        let method = if path.starts_with("/api/v1/vehicles") {
            "DELETE"
        } else {
            "GET"
        };
        let r = s.req(method, path, Some(&admin), None).await;
        assert_eq!(r.fields(), ["id"], "{path}: {}", r.body);
        r.problem(400, "VALIDATION_FAILED");
    }
    s.req("POST", "/api/v1/bookings/xyz/approve", Some(&admin), None)
        .await
        .problem(400, "VALIDATION_FAILED");
    s.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_problems() {
    let s = TestServer::start_with(("sqlite", None), |c| c.max_body_bytes = 4096).await;
    let big = json!({ "identifier": "x".repeat(8192), "password": "p" });
    s.req("POST", "/api/v1/auth/login", None, Some(big))
        .await
        .problem(413, "PAYLOAD_TOO_LARGE");
    // Under the limit the same route answers on the merits.
    s.req(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "identifier": "x@y.lk", "password": "p" })),
    )
    .await
    .problem(401, "INVALID_CREDENTIALS");
    s.stop().await;
}

#[tokio::test]
async fn the_reference_page_and_its_script_come_from_the_binary() {
    let s = TestServer::start(("sqlite", None)).await;
    let page = s.req("GET", "/api/v1/docs", None, None).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap().to_string();
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    assert!(html.contains(r#"spec-url="/api/v1/openapi.json""#), "{html}");
    let script = html
        .split(r#"src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let js = s.req("GET", &script, None, None).await;
    assert_eq!(js.status, 200, "{script}");
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.as_str().unwrap().starts_with("/*! RapiDoc"));
    s.stop().await;
}

#[tokio::test]
async fn metrics_can_live_on_their_own_listener() {
    let s = TestServer::start_with(("sqlite", None), |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    s.req("GET", "/metrics", None, None).await.problem(404, "NOT_FOUND");
    s.req("GET", "/health", None, None).await.expect(200);
    let metrics_addr = s.metrics_addr.expect("metrics listener");
    let r = send(metrics_addr, "GET", "/metrics", None, None, &[]).await;
    assert_eq!(r.status, 200);
    // The public listener's requests are counted there.
    assert!(
        r.body
            .as_str()
            .unwrap()
            .contains(r#"booking_http_requests_total{method="GET",route="/health",status="200"} 1"#),
        "{}",
        r.body
    );
    // Only metrics there.
    assert_eq!(
        send(metrics_addr, "GET", "/api/v1/openapi.json", None, None, &[])
            .await
            .status,
        404
    );
    s.stop().await;
}
