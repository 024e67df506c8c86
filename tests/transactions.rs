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
        server.accept_token("TAG-3").await;
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

// ---------------------------------------------------------------------------------------------
// Refused starts, abandoned transactions, operator ends
// ---------------------------------------------------------------------------------------------

fn start16(connector: i64, tag: &str, ts: &str) -> Value {
    json!({"connectorId": connector, "idTag": tag, "meterStart": 1_000, "timestamp": ts})
}

fn started201(tx: &str, evse: i64, token: &str, ts: &str) -> Value {
    json!({"eventType": "Started", "timestamp": ts, "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {"transactionId": tx}, "evse": {"id": evse, "connectorId": 1},
        "idToken": {"idToken": token, "type": "ISO14443"}})
}

fn event201(kind: &str, tx: &str, seq: i64, ts: &str) -> Value {
    let mut e = json!({"eventType": kind, "timestamp": ts, "seqNo": seq,
        "triggerReason": if kind == "Ended" { "StopAuthorized" } else { "MeterValuePeriodic" },
        "transactionInfo": {"transactionId": tx}});
    if kind == "Ended" {
        e["transactionInfo"]["stoppedReason"] = json!("Local");
    }
    e
}

/// One transaction by its CSMS id, as the operator API shows it.
async fn tx(server: &TestServer, id: &Value) -> Value {
    server
        .admin("GET", &format!("/api/v1/transactions/{id}"), None, 200)
        .await
}

/// The station's transactions by their charger id (2.0.1) or replay key (1.6).
async fn by_station_tx(server: &TestServer, station: &str, station_tx: &str) -> Value {
    transactions(server, station)
        .await
        .into_iter()
        .find(|t| t["stationTransactionId"] == station_tx)
        .unwrap_or_else(|| panic!("{station}: no transaction {station_tx}"))
}

fn status_of(t: &Value) -> (&str, Option<&str>) {
    (t["status"].as_str().unwrap_or_default(), t["endReason"].as_str())
}

#[tokio::test]
async fn v16_refused_start_does_not_lock_the_tag() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server
            .admin(
                "POST",
                "/api/v1/id-tokens",
                Some(json!({"idToken": "TAG-Z", "status": "Blocked"})),
                201,
            )
            .await;
        let mut ws = connect(&server.ws_url("CP-Z16"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;

        // Blocked: refused, yet 1.6 still gets a transactionId, its stop and readings are kept.
        let blocked_start = start16(1, "TAG-Z", "2026-01-01T10:00:00Z");
        let a = call_ok(&mut ws, "a", "StartTransaction", blocked_start.clone()).await;
        assert_eq!(a["idTagInfo"]["status"], "Blocked", "{backend}: {a}");
        let a_id = a["transactionId"].clone();
        assert!(a_id.is_i64(), "{backend}: {a}");
        assert_eq!(status_of(&tx(&server, &a_id).await), ("Refused", Some("Blocked")));

        // The token is accepted now: each later start is answered on its own merits.
        server
            .admin(
                "PUT",
                "/api/v1/id-tokens/TAG-Z",
                Some(json!({"status": "Accepted"})),
                200,
            )
            .await;
        let b = call_ok(
            &mut ws,
            "b",
            "StartTransaction",
            start16(2, "TAG-Z", "2026-01-01T10:01:00Z"),
        )
        .await;
        assert_eq!(
            b["idTagInfo"]["status"], "Accepted",
            "{backend}: the refused start locked the tag: {b}"
        );
        // A replay of the refused start is answered as the first time, and stays refused.
        let replay = call_ok(&mut ws, "a2", "StartTransaction", blocked_start).await;
        assert_eq!(
            (&replay["transactionId"], replay["idTagInfo"]["status"].as_str()),
            (&a_id, Some("Blocked")),
            "{backend}: {replay}"
        );
        // While b runs, a third start with the tag is concurrent, and refused for that alone.
        let c = call_ok(
            &mut ws,
            "c",
            "StartTransaction",
            start16(3, "TAG-Z", "2026-01-01T10:02:00Z"),
        )
        .await;
        assert_eq!(c["idTagInfo"]["status"], "ConcurrentTx", "{backend}: {c}");
        assert_eq!(
            status_of(&tx(&server, &c["transactionId"]).await),
            ("Refused", Some("ConcurrentTx"))
        );

        // The refused transaction's stop is answered and its readings stored; it stays refused.
        let stop = json!({"transactionId": a_id, "meterStop": 1_500, "timestamp": "2026-01-01T10:03:00Z",
            "transactionData": [meter("2026-01-01T10:03:00Z", 1_500)]});
        call_ok(&mut ws, "a-stop", "StopTransaction", stop).await;
        let stopped_b = json!({"transactionId": b["transactionId"], "idTag": "TAG-Z", "meterStop": 2_000, "timestamp": "2026-01-01T10:04:00Z"});
        let answer = call_ok(&mut ws, "b-stop", "StopTransaction", stopped_b).await;
        assert_eq!(answer["idTagInfo"]["status"], "Accepted", "{backend}: {answer}");
        server.flush().await;
        let a_row = tx(&server, &a_id).await;
        assert_eq!(status_of(&a_row), ("Refused", Some("Blocked")), "{backend}: {a_row}");
        assert_eq!(a_row["meterStopWh"], 1_500, "{backend}: {a_row}");
        assert_eq!(
            a_row["meterValues"].as_array().map(Vec::len),
            Some(3),
            "{backend}: {a_row}"
        );

        // b ended: the tag starts again; an unknown tag is Invalid and locks nothing either.
        let d = call_ok(
            &mut ws,
            "d",
            "StartTransaction",
            start16(3, "TAG-Z", "2026-01-01T10:05:00Z"),
        )
        .await;
        assert_eq!(d["idTagInfo"]["status"], "Accepted", "{backend}: {d}");
        let e = call_ok(
            &mut ws,
            "e",
            "StartTransaction",
            start16(4, "NEW-TAG", "2026-01-01T10:06:00Z"),
        )
        .await;
        assert_eq!(e["idTagInfo"]["status"], "Invalid", "{backend}: {e}");
        server.accept_token("NEW-TAG").await;
        let f = call_ok(
            &mut ws,
            "f",
            "StartTransaction",
            start16(5, "NEW-TAG", "2026-01-01T10:07:00Z"),
        )
        .await;
        assert_eq!(f["idTagInfo"]["status"], "Accepted", "{backend}: {f}");
        let (status, page) = server
            .api(
                "GET",
                "/api/v1/transactions?stationId=CP-Z16&status=Refused",
                Some(Role::Operator),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3), "{backend}: {page}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn v201_refused_token_does_not_lock_the_tag() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        let mut ws = connect(&server.ws_url("CP-Z201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        let first = call_ok(
            &mut ws,
            "1",
            "TransactionEvent",
            started201("z-1", 1, "NEW-201", "2026-01-01T10:00:00Z"),
        )
        .await;
        assert_eq!(first["idTokenInfo"]["status"], "Unknown", "{backend}: {first}");
        assert_eq!(
            status_of(&by_station_tx(&server, "CP-Z201", "z-1").await),
            ("Refused", Some("Unknown"))
        );

        server.accept_token("NEW-201").await;
        let second = call_ok(
            &mut ws,
            "2",
            "TransactionEvent",
            started201("z-2", 2, "NEW-201", "2026-01-01T10:01:00Z"),
        )
        .await;
        assert_eq!(second["idTokenInfo"]["status"], "Accepted", "{backend}: {second}");
        let third = call_ok(
            &mut ws,
            "3",
            "TransactionEvent",
            started201("z-3", 3, "NEW-201", "2026-01-01T10:02:00Z"),
        )
        .await;
        assert_eq!(third["idTokenInfo"]["status"], "ConcurrentTx", "{backend}: {third}");
        assert_eq!(
            status_of(&by_station_tx(&server, "CP-Z201", "z-3").await),
            ("Refused", Some("ConcurrentTx"))
        );
        // The refused transactions end as the station reports, and stay refused.
        call_ok(
            &mut ws,
            "1e",
            "TransactionEvent",
            event201("Ended", "z-1", 1, "2026-01-01T10:03:00Z"),
        )
        .await;
        assert_eq!(
            status_of(&by_station_tx(&server, "CP-Z201", "z-1").await),
            ("Refused", Some("Unknown"))
        );
        call_ok(
            &mut ws,
            "2e",
            "TransactionEvent",
            event201("Ended", "z-2", 1, "2026-01-01T10:04:00Z"),
        )
        .await;
        let fourth = call_ok(
            &mut ws,
            "4",
            "TransactionEvent",
            started201("z-4", 3, "NEW-201", "2026-01-01T10:05:00Z"),
        )
        .await;
        assert_eq!(fourth["idTokenInfo"]["status"], "Accepted", "{backend}: {fourth}");
        assert_eq!(
            status_of(&by_station_tx(&server, "CP-Z201", "z-4").await),
            ("Active", None)
        );
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn a_new_start_on_a_busy_connector_closes_the_older_one() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-BUSY").await;
        server.accept_token("TAG-BUSY-2").await;
        // 1.6: the second start on connector 1 is Accepted and the first is closed as abandoned.
        let mut ws = connect(&server.ws_url("CP-B16"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        // Timestamps on the central system's clock: the last-heard instant compares the
        // station's readings with when the central system received its events.
        let at = |secs: i64| {
            (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let a = call_ok(&mut ws, "a", "StartTransaction", start16(1, "TAG-BUSY", &at(-600))).await;
        let reading_at = at(1);
        let mv =
            json!({"connectorId": 1, "transactionId": a["transactionId"], "meterValue": [meter(&reading_at, 1_400)]});
        call_ok(&mut ws, "m", "MeterValues", mv).await;
        server.flush().await;
        let b = call_ok(&mut ws, "b", "StartTransaction", start16(1, "TAG-BUSY", &at(2))).await;
        assert_eq!(b["idTagInfo"]["status"], "Accepted", "{backend}: {b}");
        let old = tx(&server, &a["transactionId"]).await;
        assert_eq!(status_of(&old), ("Ended", Some("Abandoned")), "{backend}: {old}");
        // The last-heard instant is its newest reading, and that is where it is taken to end.
        let instant = |v: &Value| v.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        assert_eq!(
            instant(&old["lastHeardAt"]),
            instant(&json!(reading_at)),
            "{backend}: {old}"
        );
        assert_eq!(old["endedAt"], old["lastHeardAt"]);
        assert!(
            old["closedAt"].is_string() && old["endNote"].is_string(),
            "{backend}: {old}"
        );
        assert_eq!(status_of(&tx(&server, &b["transactionId"]).await), ("Active", None));
        // The station's own stop for the closed one, arriving late, is answered and fills it in.
        let late = json!({"transactionId": a["transactionId"], "meterStop": 1_500, "timestamp": at(3)});
        call_ok(&mut ws, "late", "StopTransaction", late).await;
        let old = tx(&server, &a["transactionId"]).await;
        assert_eq!(
            (old["meterStopWh"].as_i64(), old["energyWh"].as_i64()),
            (Some(1_500), Some(500))
        );

        // 2.0.1: the same per EVSE; an older start replayed later closes nothing.
        let mut ws = connect(&server.ws_url("CP-B201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        call_ok(
            &mut ws,
            "x",
            "TransactionEvent",
            started201("b-x", 1, "TAG-BUSY-2", "2026-01-01T10:00:00Z"),
        )
        .await;
        let y = call_ok(
            &mut ws,
            "y",
            "TransactionEvent",
            started201("b-y", 1, "TAG-BUSY-2", "2026-01-01T11:00:00Z"),
        )
        .await;
        assert_eq!(y["idTokenInfo"]["status"], "Accepted", "{backend}: {y}");
        let x = by_station_tx(&server, "CP-B201", "b-x").await;
        assert_eq!(status_of(&x), ("Ended", Some("Abandoned")), "{backend}: {x}");
        call_ok(
            &mut ws,
            "x2",
            "TransactionEvent",
            started201("b-x", 1, "TAG-BUSY-2", "2026-01-01T10:00:00Z"),
        )
        .await;
        assert_eq!(
            status_of(&by_station_tx(&server, "CP-B201", "b-y").await),
            ("Active", None)
        );
        let active = server
            .admin("GET", "/api/v1/transactions?stationId=CP-B201&status=Active", None, 200)
            .await;
        assert_eq!(active["items"].as_array().map(Vec::len), Some(1), "{backend}: {active}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn v16_boot_reporting_available_closes_what_the_station_lost() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-L1").await;
        server.accept_token("TAG-L2").await;
        let mut ws = connect(&server.ws_url("CP-L16"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        let lost = call_ok(
            &mut ws,
            "1",
            "StartTransaction",
            start16(1, "TAG-L1", "2026-01-01T10:00:00Z"),
        )
        .await;
        let kept = call_ok(
            &mut ws,
            "2",
            "StartTransaction",
            start16(2, "TAG-L2", "2026-01-01T10:00:00Z"),
        )
        .await;
        drop(ws);

        // After a reboot, connector 1 is free and connector 2 still charges.
        let mut ws = connect(&server.ws_url("CP-L16"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        for (n, (connector, status)) in [(0, "Available"), (1, "Available"), (2, "Charging")]
            .into_iter()
            .enumerate()
        {
            let s = json!({"connectorId": connector, "errorCode": "NoError", "status": status});
            call_ok(&mut ws, &format!("s{n}"), "StatusNotification", s).await;
        }
        let closed = tx(&server, &lost["transactionId"]).await;
        assert_eq!(status_of(&closed), ("Ended", Some("Abandoned")), "{backend}: {closed}");
        assert!(
            closed["endNote"].as_str().is_some_and(|n| n.contains("Available")),
            "{closed}"
        );
        assert_eq!(status_of(&tx(&server, &kept["transactionId"]).await), ("Active", None));
        // The driver whose session was lost can charge at once.
        let again = call_ok(
            &mut ws,
            "3",
            "StartTransaction",
            start16(3, "TAG-L1", "2026-01-01T12:00:00Z"),
        )
        .await;
        assert_eq!(again["idTagInfo"]["status"], "Accepted", "{backend}: {again}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn v201_boot_closes_transactions_the_station_does_not_report() {
    for (backend, url) in backends().await {
        // The bound is short here; polling below waits for its effect, not for a fixed time.
        let server = TestServer::start_with(backend, url, |c| c.abandon_after_boot_secs = 1).await;
        server.accept_token("TAG-U1").await;
        server.accept_token("TAG-U2").await;
        let mut ws = connect(&server.ws_url("CP-U201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        call_ok(
            &mut ws,
            "1",
            "TransactionEvent",
            started201("u-lost", 1, "TAG-U1", "2026-01-01T10:00:00Z"),
        )
        .await;
        call_ok(
            &mut ws,
            "2",
            "TransactionEvent",
            started201("u-kept", 2, "TAG-U2", "2026-01-01T10:00:00Z"),
        )
        .await;
        drop(ws);

        let mut ws = connect(&server.ws_url("CP-U201"), "ocpp2.0.1", None)
            .await
            .expect("connect");
        boot201(&mut ws).await;
        // The station reports one transaction after its boot and is silent about the other.
        call_ok(
            &mut ws,
            "3",
            "TransactionEvent",
            event201("Updated", "u-kept", 1, "2026-01-01T10:30:00Z"),
        )
        .await;
        let closed = eventually(|| async {
            let t = by_station_tx(&server, "CP-U201", "u-lost").await;
            (t["status"] == "Ended").then_some(t)
        })
        .await;
        assert_eq!(status_of(&closed), ("Ended", Some("Abandoned")), "{backend}: {closed}");
        assert_eq!(
            status_of(&by_station_tx(&server, "CP-U201", "u-kept").await),
            ("Active", None)
        );
        let again = call_ok(
            &mut ws,
            "4",
            "TransactionEvent",
            started201("u-new", 1, "TAG-U1", "2026-01-01T12:00:00Z"),
        )
        .await;
        assert_eq!(again["idTokenInfo"]["status"], "Accepted", "{backend}: {again}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn concurrent_tx_only_while_the_other_station_is_connected() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-CC").await;
        let mut first = connect(&server.ws_url("CP-CC1"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut first).await;
        let mut second = connect(&server.ws_url("CP-CC2"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut second).await;
        let a = call_ok(
            &mut first,
            "a",
            "StartTransaction",
            start16(1, "TAG-CC", "2026-01-01T10:00:00Z"),
        )
        .await;
        assert_eq!(a["idTagInfo"]["status"], "Accepted");
        let b = call_ok(
            &mut second,
            "b",
            "StartTransaction",
            start16(1, "TAG-CC", "2026-01-01T10:01:00Z"),
        )
        .await;
        assert_eq!(b["idTagInfo"]["status"], "ConcurrentTx", "{backend}: {b}");
        // The first station goes away with its transaction still Active: it no longer locks the tag.
        drop(first);
        eventually(|| async {
            let s = server.admin("GET", "/api/v1/stations/CP-CC1", None, 200).await;
            (s["online"] == false).then_some(())
        })
        .await;
        let c = call_ok(
            &mut second,
            "c",
            "StartTransaction",
            start16(2, "TAG-CC", "2026-01-01T10:02:00Z"),
        )
        .await;
        assert_eq!(c["idTagInfo"]["status"], "Accepted", "{backend}: {c}");
        assert_eq!(status_of(&tx(&server, &a["transactionId"]).await), ("Active", None));
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn operators_end_a_transaction_with_a_reason() {
    for (backend, url) in backends().await {
        let server = TestServer::start(backend, url).await;
        server.accept_token("TAG-OP").await;
        let mut ws = connect(&server.ws_url("CP-OP"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        let mut other = connect(&server.ws_url("CP-OP2"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut other).await;
        for (n, role) in [Role::Admin, Role::Operator].into_iter().enumerate() {
            let ts = format!("2026-01-01T1{n}:00:00Z");
            let start = call_ok(&mut ws, &format!("s{n}"), "StartTransaction", start16(1, "TAG-OP", &ts)).await;
            assert_eq!(start["idTagInfo"]["status"], "Accepted", "{backend} {role:?}: {start}");
            let id = start["transactionId"].clone();
            let path = format!("/api/v1/transactions/{id}/end");
            let (status, ended) = server
                .api("POST", &path, Some(role), Some(json!({"reason": "station lost it"})))
                .await;
            assert_eq!(status, 200, "{backend} {role:?}: {ended}");
            assert_eq!(status_of(&ended), ("Ended", Some("Operator")), "{backend}: {ended}");
            assert!(
                ended["endNote"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("station lost it")),
                "{backend}: {ended}"
            );
            // The tag is free again, elsewhere too, although its station is still connected.
            let elsewhere = call_ok(
                &mut other,
                &format!("o{n}"),
                "StartTransaction",
                start16(1, "TAG-OP", &ts),
            )
            .await;
            assert_eq!(
                elsewhere["idTagInfo"]["status"], "Accepted",
                "{backend} {role:?}: {elsewhere}"
            );
            let stop = json!({"transactionId": elsewhere["transactionId"], "meterStop": 1_100, "timestamp": ts});
            call_ok(&mut other, &format!("os{n}"), "StopTransaction", stop).await;
            // Twice is a conflict; so is ending a refused or ended one.
            let (status, problem) = server
                .api("POST", &path, Some(role), Some(json!({"reason": "again"})))
                .await;
            assert_eq!(
                (status, problem["code"].as_str()),
                (409, Some("TRANSACTION_NOT_ACTIVE")),
                "{problem}"
            );
        }
        let (status, problem) = server
            .api(
                "POST",
                "/api/v1/transactions/999999/end",
                Some(Role::Operator),
                Some(json!({"reason": "x"})),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{problem}"
        );
        for body in [json!({"reason": "  "}), json!({}), json!({"reason": "x", "extra": 1})] {
            let (status, problem) = server
                .api(
                    "POST",
                    "/api/v1/transactions/1/end",
                    Some(Role::Admin),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(status, 400, "{body}: {problem}");
        }
        let (status, problem) = server
            .api(
                "POST",
                "/api/v1/transactions/abc/end",
                Some(Role::Admin),
                Some(json!({"reason": "x"})),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        server.stop_and_clean().await;
    }
}

#[tokio::test]
async fn last_seen_advances_with_any_message() {
    for (backend, url) in backends().await {
        let server = TestServer::start_with(backend, url, |c| c.last_seen_write_ms = 0).await;
        let mut ws = connect(&server.ws_url("CP-SEEN"), "ocpp1.6", None)
            .await
            .expect("connect");
        boot16(&mut ws).await;
        let seen = |s: &Value| {
            s["lastSeenAt"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .expect("lastSeenAt")
                .with_timezone(&chrono::Utc)
        };
        let mut before = seen(&server.admin("GET", "/api/v1/stations/CP-SEEN", None, 200).await);
        // StatusNotification, then MeterValues (the fast path): each moves lastSeenAt on.
        let messages = [
            (
                "StatusNotification",
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}),
            ),
            (
                "MeterValues",
                json!({"connectorId": 1, "meterValue": [meter("2026-01-01T10:00:00Z", 5)]}),
            ),
        ];
        for (n, (action, payload)) in messages.into_iter().enumerate() {
            // Let the millisecond clock move past the last value first.
            eventually(|| async { (chrono::Utc::now() > before).then_some(()) }).await;
            call_ok(&mut ws, &format!("m{n}"), action, payload).await;
            let after = seen(&server.admin("GET", "/api/v1/stations/CP-SEEN", None, 200).await);
            assert!(after > before, "{backend} {action}: lastSeenAt stayed at {before}");
            before = after;
        }
        server.stop_and_clean().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The demo across restarts
// ---------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The newest transaction of each demo station, as an operator reads them, by station id.
async fn demo_latest(addr: std::net::SocketAddr, token: &str) -> Vec<Value> {
    if tokio::net::TcpStream::connect(addr).await.is_err() {
        return Vec::new(); // not listening yet
    }
    let (status, page) = http(addr, "GET", "/api/v1/transactions?limit=100", Some(token), None).await;
    if status != 200 {
        return Vec::new();
    }
    let mut latest: Vec<Value> = Vec::new();
    for t in page["items"].as_array().into_iter().flatten() {
        if !latest.iter().any(|l| l["stationId"] == t["stationId"]) {
            latest.push(t.clone());
        }
    }
    latest.sort_by_key(|t| t["stationId"].as_str().map(String::from));
    latest
}

/// The token status the central system answered to the start of transaction `t` (from the
/// station's frame log), once the log has it.
async fn start_answer(addr: std::net::SocketAddr, token: &str, t: &Value) -> Option<String> {
    let station = t["stationId"].as_str()?;
    let path = format!("/api/v1/stations/{station}/frames?limit=200");
    let (status, page) = http(addr, "GET", &path, Some(token), None).await;
    if status != 200 {
        return None;
    }
    let frames: Vec<(String, Value)> = page["items"]
        .as_array()?
        .iter()
        .filter_map(|f| {
            Some((
                f["direction"].as_str()?.to_string(),
                serde_json::from_str(f["frame"].as_str()?).ok()?,
            ))
        })
        .collect();
    let answer = |pred: &dyn Fn(&Value) -> bool| {
        frames
            .iter()
            .find(|(dir, f)| dir == "out" && f[0] == 3 && pred(f))
            .map(|(_, f)| f[2].clone())
    };
    let status = if t["stationTransactionId"].as_str()?.starts_with("v16|") {
        answer(&|f| f[2]["transactionId"] == t["id"])?["idTagInfo"]["status"].clone()
    } else {
        let started = frames.iter().find(|(dir, f)| {
            dir == "in"
                && f[2] == "TransactionEvent"
                && f[3]["eventType"] == "Started"
                && f[3]["transactionInfo"]["transactionId"] == t["stationTransactionId"]
        })?;
        answer(&|f| f[1] == started.1[1])?["idTokenInfo"]["status"].clone()
    };
    status.as_str().map(String::from)
}

/// `evcs --demo 2` is killed while its chargers are in transactions and started again on the
/// same data: the chargers must start new transactions and be Accepted, not ConcurrentTx.
#[tokio::test]
async fn demo_keeps_charging_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "demo-restart-secret-with-enough-entropy-01";
    let now = chrono::Utc::now().timestamp();
    let token = central_system::auth::jwt::operator_keys(secret.as_bytes()).sign(&central_system::auth::jwt::Claims {
        sub: "test".into(),
        role: Role::Operator,
        iat: now,
        exp: now + 900,
    });
    let mut previous: Vec<i64> = Vec::new();
    for run in 0..2 {
        let port = free_port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_evcs"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--booking-listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--demo", "2", "--jwt-secret", secret])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn evcs");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        // Each demo charger starts a session right after its boot. Wait for a transaction of
        // this run on each, and for the answers to their starts in the frame log (written in
        // batches).
        let started = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                let latest = demo_latest(addr, &token).await;
                let fresh = latest
                    .iter()
                    .filter(|t| t["id"].as_i64().is_some_and(|id| previous.iter().all(|old| id > *old)))
                    .count();
                if fresh == 2 {
                    let mut answers = Vec::new();
                    for t in &latest {
                        answers.extend(start_answer(addr, &token, t).await);
                    }
                    if answers.len() == 2 {
                        return (latest, answers);
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        })
        .await;
        // The previous run's transactions, which no charger reports any more, were closed.
        let mut closed = Vec::new();
        for id in previous.iter().filter(|_| started.is_ok()) {
            let (_, t) = http(addr, "GET", &format!("/api/v1/transactions/{id}"), Some(&token), None).await;
            closed.push((t["status"].clone(), t["endReason"].clone()));
        }
        // The process dies as a crash would: its chargers' transactions stay Active in the database.
        child.kill().expect("kill");
        child.wait().expect("wait");
        let (latest, answers) = started.unwrap_or_else(|_| panic!("run {run}: no new demo transactions within 60 s"));
        let seen: Vec<(&Value, &Value)> = latest.iter().map(|t| (&t["stationId"], &t["status"])).collect();
        assert_eq!(
            seen,
            [
                (&json!("DEMO-01"), &json!("Active")),
                (&json!("DEMO-02"), &json!("Active"))
            ],
            "run {run}: {latest:?}"
        );
        assert_eq!(answers, ["Accepted", "Accepted"], "run {run}: {latest:?}");
        assert!(
            closed.iter().all(|c| *c == (json!("Ended"), json!("Abandoned"))),
            "run {run}: {closed:?}"
        );
        previous = latest.iter().filter_map(|t| t["id"].as_i64()).collect();
    }
}
