//! A CALLRESULT to a message that carries readings or transaction state is sent only after its
//! rows are committed; a commit that fails is answered with InternalError, never a CALLRESULT.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::store::on_db;
use serde_json::{json, Value};
use support::*;

async fn scalar(server: &TestServer, sql: &str) -> i64 {
    on_db!(server.state.store.db(), |pool| {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap()
    })
}

async fn execute(server: &TestServer, sql: &str) {
    on_db!(server.state.store.db(), |pool| {
        sqlx::query(sql).execute(pool).await.unwrap();
    });
}

fn readings(at: &str, wh: u64) -> Value {
    json!([{"timestamp": at, "sampledValue": [{"value": wh.to_string()}]}])
}

/// Each answer is checked against the database at once, through the service's own pool (not
/// the writer's): nothing is flushed and nothing is waited for.
#[tokio::test]
async fn each_answer_follows_the_commit_of_its_rows() {
    for (backend, url) in backends().await {
        // A long max wait would only delay the answers: it must never let one overtake its commit.
        let server = TestServer::start_with(backend, url, |c| c.meter_flush_ms = 5).await;
        server.accept_token("ACK-TAG").await;
        let mut ws = connect(&server.ws_url("CP-ACK16"), "ocpp1.6", None).await.unwrap();
        boot16(&mut ws).await;
        let start =
            json!({"connectorId": 1, "idTag": "ACK-TAG", "meterStart": 1000, "timestamp": "2026-02-01T10:00:00Z"});
        let tx = call_ok(&mut ws, "s", "StartTransaction", start).await["transactionId"]
            .as_i64()
            .unwrap();
        let of_tx = format!("SELECT COUNT(*) FROM meter_values WHERE transaction_id = {tx}");
        // meterStart lives on the transaction row, which the handler writes before answering.
        let started = format!("SELECT COUNT(*) FROM transactions WHERE id = {tx} AND meter_start_wh = 1000");
        assert_eq!(scalar(&server, &started).await, 1, "{backend}: StartTransaction");
        for (i, minute) in ["01", "02", "03"].iter().enumerate() {
            let at = format!("2026-02-01T10:{minute}:00Z");
            let values = json!({"connectorId": 1, "transactionId": tx, "meterValue": readings(&at, 1100 + i as u64)});
            call_ok(&mut ws, &format!("m{i}"), "MeterValues", values).await;
            assert_eq!(
                scalar(&server, &of_tx).await,
                1 + i as i64,
                "{backend}: MeterValues {i}"
            );
        }
        let stop = json!({"transactionId": tx, "meterStop": 2000, "timestamp": "2026-02-01T10:04:00Z",
                          "transactionData": [{"timestamp": "2026-02-01T10:04:00Z", "sampledValue": [{"value": "2000"}]}]});
        call_ok(&mut ws, "e", "StopTransaction", stop).await;
        assert_eq!(scalar(&server, &of_tx).await, 4, "{backend}: StopTransaction");

        let mut ws = connect(&server.ws_url("CP-ACK201"), "ocpp2.0.1", None).await.unwrap();
        boot201(&mut ws).await;
        let event = |kind: &str, seq: u32, at: &str| {
            let mut e = json!({"eventType": kind, "timestamp": at, "seqNo": seq, "triggerReason": "MeterValuePeriodic",
                "transactionInfo": {"transactionId": "ACK-201"},
                "meterValue": [{"timestamp": at, "sampledValue": [{"value": 10 + seq}]}]});
            if kind == "Started" {
                e["triggerReason"] = json!("Authorized");
                e["transactionInfo"]["chargingState"] = json!("Charging");
                e["evse"] = json!({"id": 1, "connectorId": 1});
            }
            e
        };
        call_ok(
            &mut ws,
            "t0",
            "TransactionEvent",
            event("Started", 0, "2026-02-01T11:00:00Z"),
        )
        .await;
        // Periodic events leave their seqNo to the batch writer: it is committed with the readings.
        for seq in 1..=3 {
            let at = format!("2026-02-01T11:0{seq}:00Z");
            call_ok(
                &mut ws,
                &format!("t{seq}"),
                "TransactionEvent",
                event("Updated", seq, &at),
            )
            .await;
            let seq_no = scalar(
                &server,
                "SELECT COALESCE(last_seq_no, -1) FROM transactions WHERE station_tx_id = 'ACK-201'",
            )
            .await;
            assert_eq!(seq_no, i64::from(seq), "{backend}");
            let rows = scalar(
                &server,
                "SELECT COUNT(*) FROM meter_values m JOIN transactions t ON t.id = m.transaction_id \
                 WHERE t.station_tx_id = 'ACK-201'",
            )
            .await;
            assert_eq!(rows, 1 + i64::from(seq), "{backend}");
        }
        // 2.0.1 MeterValues, by the fast path.
        let values = json!({"evseId": 1, "meterValue": [{"timestamp": "2026-02-01T11:09:00Z", "sampledValue": [{"value": 99}]}]});
        call_ok(&mut ws, "mv", "MeterValues", values).await;
        let fast = "SELECT COUNT(*) FROM meter_values WHERE station_id = 'CP-ACK201' AND energy_wh = 99";
        assert_eq!(scalar(&server, fast).await, 1, "{backend}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a_failed_commit_is_answered_with_internal_error_and_the_resend_is_stored() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.meter_commit_attempts = 1).await;
        let mut ws = connect(&server.ws_url("CP-FAIL"), "ocpp1.6", None).await.unwrap();
        boot16(&mut ws).await;
        let values = json!({"connectorId": 1, "meterValue": readings("2026-02-02T10:00:00Z", 4242)});
        execute(&server, "ALTER TABLE meter_values RENAME TO meter_values_away").await;
        let answer = call(&mut ws, "m1", "MeterValues", values.clone()).await;
        assert_eq!(
            (answer[0].as_i64(), answer[2].as_str()),
            (Some(4), Some("InternalError")),
            "{backend}: {answer}"
        );
        execute(&server, "ALTER TABLE meter_values_away RENAME TO meter_values").await;
        // The charger kept the message and sends it again.
        call_ok(&mut ws, "m1", "MeterValues", values).await;
        let stored = "SELECT COUNT(*) FROM meter_values WHERE station_id = 'CP-FAIL' AND energy_wh = 4242";
        assert_eq!(scalar(&server, stored).await, 1, "{backend}");
        server.stop_and_clean().await;
    }
}
