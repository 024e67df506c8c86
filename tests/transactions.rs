//! Transactions and readings end to end, with the replays chargers make after reconnecting:
//! no duplicate transaction, no duplicate reading, right energy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use central_system::auth::jwt::Role;
use serde_json::{json, Value};
use support::*;

fn meter(ts: &str, wh: i64) -> Value {
    json!({"timestamp": ts, "sampledValue": [
        {"value": wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"}
    ]})
}

#[tokio::test]
async fn v16_transaction_replayed_after_reconnect_is_stored_once() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-1").await;
        let start =
            json!({"connectorId": 1, "idTag": "TAG-1", "meterStart": 10_000, "timestamp": "2026-01-01T10:00:00Z"});
        let values = json!({"connectorId": 1, "meterValue": [meter("2026-01-01T10:05:00Z", 10_400), meter("2026-01-01T10:10:00Z", 10_800)]});
        let mut first_id = None;
        for attempt in 0..2 {
            // The second pass is the charger replaying its offline queue on a new connection.
            let mut ws = connect(&server.ws_url("CP-R16"), "ocpp1.6", None)
                .await
                .expect("connect");
            if attempt == 0 {
                boot16(&mut ws).await;
            }
            let answer = call_ok(&mut ws, "s1", "StartTransaction", start.clone()).await;
            assert_eq!(
                answer["idTagInfo"]["status"], "Accepted",
                "{backend} attempt {attempt}: {answer}"
            );
            let id = answer["transactionId"].as_i64().expect("transaction id");
            assert_eq!(
                *first_id.get_or_insert(id),
                id,
                "{backend}: replayed start got a new id"
            );
            let mut mv = values.clone();
            mv["transactionId"] = json!(id);
            call_ok(&mut ws, "m1", "MeterValues", mv).await;
            let stop = json!({"transactionId": id, "idTag": "TAG-1", "meterStop": 11_200, "timestamp": "2026-01-01T10:15:00Z", "reason": "EVDisconnected",
                "transactionData": [meter("2026-01-01T10:15:00Z", 11_200)]});
            let stopped = call_ok(&mut ws, "e1", "StopTransaction", stop).await;
            assert_eq!(stopped["idTagInfo"]["status"], "Accepted");
        }
        server.flush().await;
        let list = transactions(&server, "CP-R16").await;
        assert_eq!(list.len(), 1, "{backend}: {list:?}");
        let tx = &list[0];
        assert_eq!(
            (
                tx["meterStartWh"].as_i64(),
                tx["meterStopWh"].as_i64(),
                tx["energyWh"].as_i64()
            ),
            (Some(10_000), Some(11_200), Some(1_200))
        );
        assert_eq!(tx["status"], "Ended");
        assert_eq!(tx["stopReason"], "EVDisconnected");
        let detail = server
            .admin("GET", &format!("/api/v1/transactions/{}", tx["id"]), None, 200)
            .await;
        let readings = detail["meterValues"].as_array().expect("readings");
        // 3 instants x 3 measurands, each stored once despite the replay.
        assert_eq!(readings.len(), 9, "{backend}: {readings:?}");
        let power: Vec<_> = readings
            .iter()
            .filter(|r| r["measurand"] == "Power.Active.Import")
            .collect();
        assert_eq!(
            (power[0]["unit"].as_str(), power[0]["value"].as_f64()),
            (Some("W"), Some(7200.0))
        );
        assert!(readings.iter().any(|r| r["phase"] == "L1" && r["unit"] == "A"));
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn v16_concurrent_and_unknown_tokens() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-2").await;
        let mut ws = connect(&server.ws_url("CP-C16"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        let a = call_ok(
            &mut ws,
            "a",
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "TAG-2", "meterStart": 0, "timestamp": "2026-01-01T10:00:00Z"}),
        )
        .await;
        assert_eq!(a["idTagInfo"]["status"], "Accepted");
        let b = call_ok(
            &mut ws,
            "b",
            "StartTransaction",
            json!({"connectorId": 2, "idTag": "TAG-2", "meterStart": 0, "timestamp": "2026-01-01T10:01:00Z"}),
        )
        .await;
        assert_eq!(b["idTagInfo"]["status"], "ConcurrentTx", "{backend}");
        let c = call_ok(
            &mut ws,
            "c",
            "StartTransaction",
            json!({"connectorId": 3, "idTag": "NOBODY", "meterStart": 0, "timestamp": "2026-01-01T10:02:00Z"}),
        )
        .await;
        assert_eq!(c["idTagInfo"]["status"], "Invalid");
        // A stop for a transaction the central system never saw is still acknowledged (so the
        // charger can drop it from its queue) and creates nothing.
        call_ok(
            &mut ws,
            "d",
            "StopTransaction",
            json!({"transactionId": 999_999, "meterStop": 5, "timestamp": "2026-01-01T11:00:00Z"}),
        )
        .await;
        assert_eq!(transactions(&server, "CP-C16").await.len(), 3);
        server.stop_and_clean().await;
    }
}

fn tx_event(kind: &str, seq: i64, ts: &str, wh: i64, context: &str) -> Value {
    let mut event = json!({
        "eventType": kind, "timestamp": ts, "triggerReason": if kind == "Started" { "Authorized" } else if kind == "Ended" { "StopAuthorized" } else { "MeterValuePeriodic" },
        "seqNo": seq, "transactionInfo": {"transactionId": "tx-201-a"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": ts, "sampledValue": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh", "multiplier": 0}}
        ]}]
    });
    if kind == "Started" {
        event["idToken"] = json!({"idToken": "TAG-3", "type": "ISO14443"});
    }
    if kind == "Updated" {
        event["transactionInfo"]["chargingState"] = json!("Charging");
    }
    if kind == "Ended" {
        event["transactionInfo"]["stoppedReason"] = json!("Local");
        event["offline"] = json!(true);
    }
    event
}

#[tokio::test]
async fn v201_transaction_events_out_of_order_and_replayed() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-3").await;
        let mut ws = connect(&server.ws_url("CP-R201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        // kWh values: 20, 21, 23 -> 3,000 Wh delivered.
        let started = tx_event("Started", 0, "2026-01-01T10:00:00Z", 20, "Transaction.Begin");
        let updated = tx_event("Updated", 1, "2026-01-01T10:30:00Z", 21, "Sample.Periodic");
        let ended = tx_event("Ended", 2, "2026-01-01T11:00:00Z", 23, "Transaction.End");
        // An offline queue can deliver Updated before Started; then everything is replayed.
        call_ok(&mut ws, "u", "TransactionEvent", updated.clone()).await;
        let answer = call_ok(&mut ws, "s", "TransactionEvent", started.clone()).await;
        assert_eq!(answer["idTokenInfo"]["status"], "Accepted", "{backend}: {answer}");
        call_ok(&mut ws, "e", "TransactionEvent", ended.clone()).await;
        for (i, event) in [started, updated, ended].into_iter().enumerate() {
            call_ok(&mut ws, &format!("replay-{i}"), "TransactionEvent", event).await;
        }
        server.flush().await;
        let list = transactions(&server, "CP-R201").await;
        assert_eq!(list.len(), 1, "{backend}: {list:?}");
        let tx = &list[0];
        assert_eq!(tx["stationTransactionId"], "tx-201-a");
        assert_eq!(tx["status"], "Ended");
        assert_eq!(tx["idToken"], "TAG-3");
        assert_eq!(
            (
                tx["meterStartWh"].as_i64(),
                tx["meterStopWh"].as_i64(),
                tx["energyWh"].as_i64()
            ),
            (Some(20_000), Some(23_000), Some(3_000)),
            "{backend}: {tx}"
        );
        assert_eq!((tx["evseId"].as_i64(), tx["connectorId"].as_i64()), (Some(1), Some(1)));
        assert_eq!(tx["lastSeqNo"], 2);
        assert_eq!(tx["stopReason"], "Local");
        let detail = server
            .admin("GET", &format!("/api/v1/transactions/{}", tx["id"]), None, 200)
            .await;
        assert_eq!(
            detail["meterValues"].as_array().map(Vec::len),
            Some(3),
            "{backend}: {detail}"
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn v201_meter_values_and_energy_while_running() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut ws = connect(&server.ws_url("CP-M201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        let mut started = tx_event("Started", 0, "2026-01-01T10:00:00Z", 5, "Transaction.Begin");
        started["transactionInfo"]["transactionId"] = json!("tx-run");
        call_ok(&mut ws, "s", "TransactionEvent", started).await;
        let mut updated = tx_event("Updated", 1, "2026-01-01T10:10:00Z", 6, "Sample.Periodic");
        updated["transactionInfo"]["transactionId"] = json!("tx-run");
        updated["meterValue"][0]["sampledValue"] = json!([
            {"value": 6.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh", "multiplier": 3}},
            {"value": 11, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
            {"value": 80, "measurand": "SoC", "location": "EV", "unitOfMeasure": {"unit": "Percent"}}
        ]);
        call_ok(&mut ws, "u", "TransactionEvent", updated).await;
        call_ok(&mut ws, "m", "MeterValues", json!({"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T10:20:00Z",
            "sampledValue": [{"value": 230.1, "measurand": "Voltage", "phase": "L1-N", "unitOfMeasure": {"unit": "V"}}]}]})).await;
        server.flush().await;
        let tx = &transactions(&server, "CP-M201").await[0];
        assert_eq!(tx["status"], "Active");
        assert_eq!(tx["chargingState"], "Charging");
        assert_eq!(
            tx["energyWh"].as_i64(),
            Some(1_500),
            "{backend}: running energy from the latest register reading: {tx}"
        );
        let (_, page) = server
            .api(
                "GET",
                "/api/v1/meter-values?stationId=CP-M201&measurand=SoC",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(page["items"][0]["unit"], "Percent");
        assert_eq!(page["items"][0]["location"], "EV");
        let (_, page) = server
            .api(
                "GET",
                "/api/v1/meter-values?stationId=CP-M201&measurand=Power.Active.Import",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(page["items"][0]["value"].as_f64(), Some(11_000.0));
        let (_, page) = server
            .api(
                "GET",
                "/api/v1/meter-values?stationId=CP-M201&measurand=Voltage",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(
            (page["items"][0]["phase"].as_str(), page["items"][0]["evseId"].as_i64()),
            (Some("L1-N"), Some(1))
        );
        // A MeterValues of the EVSE during the transaction is linked to it.
        assert_eq!(page["items"][0]["transactionId"], tx["id"], "{backend}: {page}");
        server.stop_and_clean().await;
    }
}

/// Periodic Updated events (no charging state, no token) change nothing but the seqNo, which
/// the batch writer records; state events still apply only when newer.
#[tokio::test]
async fn v201_periodic_updates_record_their_seq_no_and_keep_state_ordering() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-3").await;
        let mut ws = connect(&server.ws_url("CP-P201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        let periodic = |seq: i64, wh: i64| {
            let at = format!("2026-01-01T10:1{seq}:00Z");
            let mut e = tx_event("Updated", seq, &at, wh, "Sample.Periodic");
            e["transactionInfo"]
                .as_object_mut()
                .expect("object")
                .remove("chargingState");
            // Later events may leave the EVSE out; readings still go to the transaction's EVSE.
            if seq % 2 == 0 {
                e.as_object_mut().expect("object").remove("evse");
            }
            e
        };
        let with_state = |seq: i64, state: &str| {
            let mut e = tx_event("Updated", seq, "2026-01-01T10:20:00Z", 30, "Sample.Periodic");
            e["transactionInfo"]["chargingState"] = json!(state);
            e
        };
        call_ok(
            &mut ws,
            "s",
            "TransactionEvent",
            tx_event("Started", 0, "2026-01-01T10:00:00Z", 20, "Transaction.Begin"),
        )
        .await;
        call_ok(&mut ws, "c", "TransactionEvent", with_state(1, "Charging")).await;
        for seq in 2..=5 {
            call_ok(&mut ws, &format!("p{seq}"), "TransactionEvent", periodic(seq, 20 + seq)).await;
        }
        server.flush().await;
        let tx = &transactions(&server, "CP-P201").await[0];
        assert_eq!(
            (tx["lastSeqNo"].as_i64(), tx["chargingState"].as_str()),
            (Some(5), Some("Charging")),
            "{backend}: {tx}"
        );
        assert_eq!((tx["evseId"].as_i64(), tx["connectorId"].as_i64()), (Some(1), Some(1)));
        // A replayed older state event changes nothing; a newer one applies.
        call_ok(&mut ws, "old", "TransactionEvent", with_state(3, "SuspendedEV")).await;
        server.flush().await;
        let tx = &transactions(&server, "CP-P201").await[0];
        assert_eq!(tx["chargingState"], "Charging", "{backend}: {tx}");
        call_ok(&mut ws, "new", "TransactionEvent", with_state(6, "SuspendedEV")).await;
        server.flush().await;
        let tx = &transactions(&server, "CP-P201").await[0];
        assert_eq!(
            (tx["lastSeqNo"].as_i64(), tx["chargingState"].as_str()),
            (Some(6), Some("SuspendedEV")),
            "{backend}: {tx}"
        );
        // Every periodic reading was stored under the transaction's EVSE.
        let detail = server
            .admin("GET", &format!("/api/v1/transactions/{}", tx["id"]), None, 200)
            .await;
        let readings = detail["meterValues"].as_array().expect("readings");
        assert!(readings.len() >= 6, "{backend}: {detail}");
        assert!(readings.iter().all(|r| r["evseId"] == 1), "{backend}: {detail}");
        server.stop_and_clean().await;
    }
}
