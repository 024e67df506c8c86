//! A first end-to-end check: boot, heartbeat, REST sees the station.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use serde_json::json;
use support::*;

#[tokio::test]
async fn boot_heartbeat_and_rest_view() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut ws = connect(&server.ws_url("CP-1"), "ocpp1.6", None).await.expect("connect");
        let boot = boot16(&mut ws).await;
        assert_eq!(boot["status"], "Accepted", "{backend}");
        assert_eq!(boot["interval"], 300);
        let hb = call_ok(&mut ws, "hb", "Heartbeat", json!({})).await;
        assert!(hb["currentTime"].as_str().unwrap().ends_with('Z'));
        let (status, station) = server
            .api("GET", "/api/v1/stations/CP-1", Some(Role::Operator), None)
            .await;
        assert_eq!(status, 200, "{station}");
        assert_eq!(station["online"], true);
        assert_eq!(station["vendor"], "TestVendor");
        assert_eq!(station["ocppVersion"], "1.6");
        server.stop_and_clean().await;
    }
}
