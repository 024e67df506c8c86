//! `kill -9` of the central system loses no acknowledged reading or transaction event.
//!
//! The real `evcs` binary runs on a fresh SQLite file under the 100-station closed-loop load of
//! `firmware-sim load`, which records every MeterValues answered with a CALLRESULT. Meanwhile a
//! 1.6 session and a 2.0.1 session run by hand. Right after their last answer, at a random
//! point of the load, the process gets SIGKILL; then every acknowledged reading, both
//! transactions and the 2.0.1 seqNo (which goes through the batch writer) must be in the
//! database.
//!
//! One run here keeps the suite short; `scripts/kill9-durability` runs it 5 times on release
//! binaries under heavier load (`EVCS_KILL9_RUNS`, `EVCS_KILL9_ROWS`) and prints the counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use clap::Parser;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;
use support::*;

#[derive(Parser)]
struct LoadCli {
    #[command(flatten)]
    load: firmware_sim::load::LoadArgs,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn start_evcs(dir: &Path) -> (Child, u16) {
    let (central, booking) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_evcs"))
        .args(["--listen", &format!("127.0.0.1:{central}")])
        .args(["--booking-listen", &format!("127.0.0.1:{booking}")])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, central)
}

async fn open_db(dir: &Path) -> SqlitePool {
    let url = format!("sqlite://{}", dir.join("central-system.db").display());
    SqlitePool::connect_with(SqliteConnectOptions::from_str(&url).unwrap())
        .await
        .unwrap()
}

async fn count(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or(0)
}

fn meter16(tx: i64, at: &str, wh: u64) -> serde_json::Value {
    json!({"connectorId": 1, "transactionId": tx,
           "meterValue": [{"timestamp": at, "sampledValue": [{"value": wh.to_string()}]}]})
}

fn meter201(at: &str, wh: u64) -> serde_json::Value {
    json!([{"timestamp": at, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register"}]}])
}

/// A 1.6 session that ends, and a 2.0.1 one still running whose last event's seqNo is left to
/// the batch writer; returns the 1.6 transaction id.
async fn sessions(port: u16) -> i64 {
    let mut v16 = connect(&format!("ws://127.0.0.1:{port}/ocpp/K9-SESSION16"), "ocpp1.6", None)
        .await
        .unwrap();
    boot16(&mut v16).await;
    let start = json!({"connectorId": 1, "idTag": "K9-TAG16", "meterStart": 1000, "timestamp": "2026-03-01T10:00:00Z"});
    let started = call_ok(&mut v16, "s", "StartTransaction", start).await;
    let tx = started["transactionId"].as_i64().unwrap();
    call_ok(&mut v16, "m1", "MeterValues", meter16(tx, "2026-03-01T10:01:00Z", 1500)).await;
    call_ok(&mut v16, "m2", "MeterValues", meter16(tx, "2026-03-01T10:02:00Z", 2000)).await;
    let stop = json!({"transactionId": tx, "meterStop": 2500, "timestamp": "2026-03-01T10:03:00Z", "reason": "Local"});
    call_ok(&mut v16, "e", "StopTransaction", stop).await;

    let mut v201 = connect(&format!("ws://127.0.0.1:{port}/ocpp/K9-SESSION201"), "ocpp2.0.1", None)
        .await
        .unwrap();
    boot201(&mut v201).await;
    let event = |kind: &str, seq: u32, at: &str, wh: u64| {
        let mut e = json!({"eventType": kind, "timestamp": at, "seqNo": seq,
            "triggerReason": if kind == "Started" { "Authorized" } else { "MeterValuePeriodic" },
            "transactionInfo": {"transactionId": "K9-201"}, "meterValue": meter201(at, wh)});
        if kind == "Started" {
            e["transactionInfo"]["chargingState"] = json!("Charging");
            e["idToken"] = json!({"idToken": "K9-TAG201", "type": "ISO14443"});
            e["evse"] = json!({"id": 1, "connectorId": 1});
        }
        e
    };
    call_ok(
        &mut v201,
        "t0",
        "TransactionEvent",
        event("Started", 0, "2026-03-01T11:00:00Z", 100),
    )
    .await;
    call_ok(
        &mut v201,
        "t1",
        "TransactionEvent",
        event("Updated", 1, "2026-03-01T11:01:00Z", 200),
    )
    .await;
    call_ok(
        &mut v201,
        "t2",
        "TransactionEvent",
        event("Updated", 2, "2026-03-01T11:02:00Z", 300),
    )
    .await;
    tx
}

/// What one run found in the database.
struct Outcome {
    acked: u64,
    lost: u64,
    rows: i64,
}

async fn run_once(run: u64, kill_after_rows: i64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = start_evcs(dir.path());
    eventually(|| async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok() }).await;
    let acked_file = dir.path().join("acked.txt");
    let args = LoadCli::parse_from([
        "load",
        "--url",
        &format!("ws://127.0.0.1:{port}/ocpp"),
        "--prefix",
        "K9-",
        "--stations",
        "100",
        "--pattern",
        "closed",
        "--samples",
        "3",
        "--duration",
        "50",
        "--acked-out",
        acked_file.to_str().unwrap(),
    ])
    .load;
    let (stop_load, load_stopped) = tokio::sync::oneshot::channel::<()>();
    let load = tokio::spawn(async move {
        firmware_sim::load::run_here_until(&args, async {
            let _ = load_stopped.await;
        })
        .await
    });

    // Let the load commit a random amount, run the sessions, and kill right after their answers.
    let db = open_db(dir.path()).await;
    // The sessions' tags are registered, so their starts are accepted on their own merits.
    sqlx::query(
        "INSERT INTO id_tokens (id_token, status, created_at, updated_at) \
         VALUES ('K9-TAG16', 'Accepted', 0, 0), ('K9-TAG201', 'Accepted', 0, 0)",
    )
    .execute(&db)
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    // Every load station must have booted before the kill: one still in its BootNotification
    // when the process dies counts as a connect failure, which is not what this test measures.
    while count(&db, "SELECT COUNT(*) FROM meter_values").await < kill_after_rows
        || count(
            &db,
            "SELECT COUNT(DISTINCT station_id) FROM meter_values WHERE station_id LIKE 'K9-0%'",
        )
        .await
            < 100
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load never reached {kill_after_rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tx16 = sessions(port).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = stop_load.send(());
    let summary = load.await.unwrap().unwrap();
    assert_eq!(summary.connect_failures, 0);

    // Every acknowledged reading of the load is in the database.
    let stored: HashSet<(String, i64)> =
        sqlx::query("SELECT station_id, energy_wh FROM meter_values WHERE station_id LIKE 'K9-0%'")
            .fetch_all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<Option<i64>, _>(1).unwrap_or(-1)))
            .collect();
    let (mut acked, mut lost) = (0, 0);
    for line in std::fs::read_to_string(&acked_file).unwrap().lines() {
        let mut parts = line.split(' ');
        let (station, first, last) = (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().parse::<u64>().unwrap(),
            parts.next().unwrap().parse::<u64>().unwrap(),
        );
        for wh in (first..=last).step_by(25) {
            acked += 1;
            if !stored.contains(&(station.clone(), wh as i64)) {
                lost += 1;
            }
        }
    }
    let rows = stored.len() as i64;
    println!("run {run}: {acked} acknowledged MeterValues, {lost} missing from the database, {rows} rows stored, killed after {kill_after_rows}");

    // Both sessions, as acknowledged: the 1.6 one ended, the 2.0.1 one with its last seqNo.
    let row = sqlx::query("SELECT status, meter_stop_wh FROM transactions WHERE id = ?")
        .bind(tx16)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(row.get::<Option<i64>, _>(1), Some(2500), "run {run}: 1.6 stop lost");
    let readings16 = count(
        &db,
        &format!("SELECT COUNT(*) FROM meter_values WHERE transaction_id = {tx16}"),
    )
    .await;
    assert!(readings16 >= 2, "run {run}: 1.6 readings lost ({readings16})");
    let row = sqlx::query("SELECT id, last_seq_no FROM transactions WHERE station_tx_id = 'K9-201'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(row.get::<Option<i64>, _>(1), Some(2), "run {run}: 2.0.1 seqNo lost");
    let tx201: i64 = row.get(0);
    let readings201 = count(
        &db,
        &format!("SELECT COUNT(*) FROM meter_values WHERE transaction_id = {tx201}"),
    )
    .await;
    assert_eq!(readings201, 3, "run {run}: 2.0.1 readings lost");
    db.close().await;
    Outcome { acked, lost, rows }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_reading() {
    let runs = env_number("EVCS_KILL9_RUNS", 1);
    let rows = env_number("EVCS_KILL9_ROWS", 4_000) as i64;
    let mut outcomes = Vec::new();
    for run in 1..=runs {
        // A random kill point between half and all of `rows`.
        let kill_after = rows / 2 + rand::random_range(0..=rows / 2);
        outcomes.push(run_once(run, kill_after).await);
    }
    let acked: Vec<u64> = outcomes.iter().map(|o| o.acked).collect();
    let lost: Vec<u64> = outcomes.iter().map(|o| o.lost).collect();
    let rows: Vec<i64> = outcomes.iter().map(|o| o.rows).collect();
    println!("acknowledged per run {acked:?}, lost {lost:?}, rows stored {rows:?}");
    assert!(acked.iter().all(|&a| a > 0), "the load acknowledged nothing");
    assert!(lost.iter().all(|&l| l == 0), "acknowledged readings lost: {lost:?}");
}
