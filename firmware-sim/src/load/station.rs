//! One load-generating station.

use super::{Counters, LoadArgs, Observation, Pattern};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OnceCell};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, boots and generates traffic until the stop instant.
pub async fn run(
    id: String,
    args: LoadArgs,
    counters: Arc<Counters>,
    observations: mpsc::UnboundedSender<Observation>,
    stop_at: Arc<OnceCell<tokio::time::Instant>>,
) {
    let mut ws = match connect_and_boot(&id, &args).await {
        Ok(ws) => ws,
        Err(e) => {
            counters.connect_failures.fetch_add(1, Ordering::Relaxed);
            eprintln!("{id}: {e}");
            return;
        }
    };
    counters.booted.fetch_add(1, Ordering::Relaxed);
    let end = stop_at
        .get_or_init(|| async { tokio::time::Instant::now() + Duration::from_secs(3600) })
        .await;
    let end = *end;
    let mut seq: u64 = 0;
    let mut energy: u64 = 1_000_000;
    let v16 = args.version == "1.6";
    let period = match args.pattern {
        Pattern::Closed => None,
        Pattern::Open => Some(Duration::from_secs_f64(1.0 / args.rate.max(0.001))),
        Pattern::Idle => Some(Duration::from_secs(args.heartbeat.max(1))),
    };
    let mut tick = tokio::time::Instant::now();
    loop {
        if let Some(p) = period {
            tick += p;
            if tick >= end {
                tokio::time::sleep_until(end).await;
                break;
            }
            tokio::time::sleep_until(tick).await;
        } else if tokio::time::Instant::now() >= end {
            break;
        }
        seq += 1;
        energy += 25;
        let msg_id = seq.to_string();
        let text = if args.pattern == Pattern::Idle {
            format!("[2,\"{msg_id}\",\"Heartbeat\",{{}}]")
        } else {
            meter_values(&msg_id, v16, energy, args.samples)
        };
        let sent = Instant::now();
        if ws.send(Message::Text(text.into())).await.is_err() {
            counters.disconnects.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match await_answer(&mut ws, &msg_id).await {
            Some(Ok(())) => {
                if counters.measuring.load(Ordering::Relaxed) {
                    counters.results.fetch_add(1, Ordering::Relaxed);
                    let _ = observations.send(Observation::Latency(sent.elapsed().as_micros() as u64));
                }
            }
            Some(Err(code)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                let _ = observations.send(Observation::CallError(code));
            }
            None => {
                counters.disconnects.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let _ = ws.close(None).await;
}

async fn connect_and_boot(id: &str, args: &LoadArgs) -> anyhow::Result<Ws> {
    let url = format!("{}/{}", args.url.trim_end_matches('/'), id);
    let mut request = url.into_client_request()?;
    let subprotocol = if args.version == "1.6" { "ocpp1.6" } else { "ocpp2.0.1" };
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(subprotocol));
    // Small buffers: thousands of stations share this process.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
    )
    .await??;
    let boot = if args.version == "1.6" {
        json!([2, "boot", "BootNotification", {"chargePointVendor": "LoadGen", "chargePointModel": "LG-1"}])
    } else {
        json!([2, "boot", "BootNotification", {"reason": "PowerUp", "chargingStation": {"vendorName": "LoadGen", "model": "LG-1"}}])
    };
    ws.send(Message::Text(boot.to_string().into())).await?;
    match tokio::time::timeout(Duration::from_secs(30), await_answer(&mut ws, "boot")).await? {
        Some(Ok(())) => Ok(ws),
        Some(Err(code)) => anyhow::bail!("boot refused with {code}"),
        None => anyhow::bail!("connection closed during boot"),
    }
}

/// Reads until the answer to `id`; `Err(code)` for a CALLERROR, `None` when the socket ends.
async fn await_answer(ws: &mut Ws, id: &str) -> Option<Result<(), String>> {
    while let Some(msg) = ws.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if frame.get(1).and_then(Value::as_str) != Some(id) {
            continue;
        }
        return match frame.first().and_then(Value::as_u64) {
            Some(3) => Some(Ok(())),
            Some(4) => Some(Err(frame.get(2).and_then(Value::as_str).unwrap_or("?").to_string())),
            _ => continue,
        };
    }
    None
}

/// A MeterValues CALL with `samples` sampled values (energy register first).
fn meter_values(id: &str, v16: bool, energy_wh: u64, samples: usize) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let measurands = [
        ("Energy.Active.Import.Register", "Wh", energy_wh as f64, None),
        ("Power.Active.Import", "W", 7_200.0, None),
        ("Current.Import", "A", 16.0, Some("L1")),
        ("Current.Import", "A", 16.1, Some("L2")),
        ("Current.Import", "A", 15.9, Some("L3")),
        ("Voltage", "V", 230.0, Some("L1-N")),
        ("Voltage", "V", 231.0, Some("L2-N")),
        ("Voltage", "V", 229.0, Some("L3-N")),
        ("SoC", "Percent", 55.0, None),
    ];
    let sampled: Vec<Value> = measurands
        .iter()
        .take(samples.clamp(1, measurands.len()))
        .map(|(m, unit, value, phase)| {
            let mut v = if v16 {
                json!({"value": value.to_string(), "measurand": m, "unit": unit, "context": "Sample.Periodic"})
            } else {
                json!({"value": value, "measurand": m, "unitOfMeasure": {"unit": unit}, "context": "Sample.Periodic"})
            };
            if let Some(p) = phase {
                v["phase"] = json!(p);
            }
            v
        })
        .collect();
    let payload = if v16 {
        json!({"connectorId": 1, "meterValue": [{"timestamp": now, "sampledValue": sampled}]})
    } else {
        json!({"evseId": 1, "meterValue": [{"timestamp": now, "sampledValue": sampled}]})
    };
    json!([2, id, "MeterValues", payload]).to_string()
}
