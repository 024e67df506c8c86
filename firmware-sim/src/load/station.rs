//! One load-generating station.

use super::{Counters, LoadArgs, Observation, Pattern};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
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
    mut stop: watch::Receiver<bool>,
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
    let mut seq: u64 = 0;
    let mut energy: u64 = 1_000_000;
    let v16 = args.version == "1.6";
    let template = MeterTemplate::new(v16, args.samples);
    let period = match args.pattern {
        Pattern::Closed => None,
        Pattern::Open => Some(Duration::from_secs_f64(1.0 / args.rate.max(0.001))),
        Pattern::Idle => Some(Duration::from_secs(args.heartbeat.max(1))),
    };
    let mut latencies: Vec<u64> = Vec::new();
    let mut tick = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        if let Some(p) = period {
            tick += p;
            tokio::select! {
                _ = tokio::time::sleep_until(tick) => {}
                _ = stop.changed() => break,
            }
        }
        seq += 1;
        energy += 25;
        let msg_id = seq.to_string();
        let text = if args.pattern == Pattern::Idle {
            format!("[2,\"{msg_id}\",\"Heartbeat\",{{}}]")
        } else {
            template.frame(&msg_id, energy)
        };
        let sent = Instant::now();
        if ws.send(Message::Text(text.into())).await.is_err() {
            counters.disconnects.fetch_add(1, Ordering::Relaxed);
            break;
        }
        match await_answer(&mut ws, &msg_id).await {
            Some(Ok(())) => {
                if counters.measuring.load(Ordering::Relaxed) {
                    counters.results.fetch_add(1, Ordering::Relaxed);
                    latencies.push(sent.elapsed().as_micros() as u64);
                    if latencies.len() >= 1024 {
                        let _ = observations.send(Observation::Latencies(std::mem::take(&mut latencies)));
                    }
                }
            }
            Some(Err(code)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                let _ = observations.send(Observation::CallError(code));
            }
            None => {
                counters.disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    if !latencies.is_empty() {
        let _ = observations.send(Observation::Latencies(latencies));
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
///
/// Matches on the frame's prefix instead of parsing it: the generator must stay cheaper than
/// the server it measures.
async fn await_answer(ws: &mut Ws, id: &str) -> Option<Result<(), String>> {
    let result_prefix = format!("[3,\"{id}\"");
    let error_prefix = format!("[4,\"{id}\"");
    while let Some(msg) = ws.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        let compact: &str = text.as_str();
        if compact.starts_with(&result_prefix) {
            return Some(Ok(()));
        }
        if compact.starts_with(&error_prefix) {
            let code = serde_json::from_str::<Value>(compact)
                .ok()
                .and_then(|v| v.get(2).and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "?".into());
            return Some(Err(code));
        }
    }
    None
}

/// A MeterValues CALL with `samples` sampled values (energy register first), built from a
/// template so each message costs one `format!`.
pub struct MeterTemplate {
    v16: bool,
    head: &'static str,
    tail: String,
}

impl MeterTemplate {
    /// Prepares the template for a version and sample count.
    pub fn new(v16: bool, samples: usize) -> MeterTemplate {
        let measurands = [
            ("Power.Active.Import", "W", "7200", None),
            ("Current.Import", "A", "16.0", Some("L1")),
            ("Current.Import", "A", "16.1", Some("L2")),
            ("Current.Import", "A", "15.9", Some("L3")),
            ("Voltage", "V", "230.0", Some("L1-N")),
            ("Voltage", "V", "231.0", Some("L2-N")),
            ("Voltage", "V", "229.0", Some("L3-N")),
            ("SoC", "Percent", "55", None),
        ];
        let rest: Vec<String> = measurands
            .iter()
            .take(samples.clamp(1, measurands.len() + 1) - 1)
            .map(|(m, unit, value, phase)| {
                let phase = phase.map(|p| format!(",\"phase\":\"{p}\"")).unwrap_or_default();
                if v16 {
                    format!("{{\"value\":\"{value}\",\"measurand\":\"{m}\",\"unit\":\"{unit}\",\"context\":\"Sample.Periodic\"{phase}}}")
                } else {
                    format!("{{\"value\":{value},\"measurand\":\"{m}\",\"unitOfMeasure\":{{\"unit\":\"{unit}\"}},\"context\":\"Sample.Periodic\"{phase}}}")
                }
            })
            .collect();
        let tail = rest.iter().map(|r| format!(",{r}")).collect::<String>() + "]}]}]";
        let head = if v16 { "{\"connectorId\":1," } else { "{\"evseId\":1," };
        MeterTemplate { v16, head, tail }
    }

    /// The frame for message `id` with the energy register at `energy_wh`.
    pub fn frame(&self, id: &str, energy_wh: u64) -> String {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let energy = if self.v16 {
            format!("{{\"value\":\"{energy_wh}\",\"measurand\":\"Energy.Active.Import.Register\",\"unit\":\"Wh\",\"context\":\"Sample.Periodic\"}}")
        } else {
            format!("{{\"value\":{energy_wh},\"measurand\":\"Energy.Active.Import.Register\",\"unitOfMeasure\":{{\"unit\":\"Wh\"}},\"context\":\"Sample.Periodic\"}}")
        };
        format!(
            "[2,\"{id}\",\"MeterValues\",{}\"meterValue\":[{{\"timestamp\":\"{now}\",\"sampledValue\":[{energy}{}",
            self.head, self.tail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_frames_are_valid_json_of_the_right_shape() {
        for (v16, samples) in [(true, 1), (true, 3), (false, 9)] {
            let text = MeterTemplate::new(v16, samples).frame("42", 1234);
            let v: Value = serde_json::from_str(&text).expect(&text);
            assert_eq!(v[0], 2);
            assert_eq!(v[1], "42");
            assert_eq!(v[2], "MeterValues");
            assert_eq!(
                v[3]["meterValue"][0]["sampledValue"].as_array().map(Vec::len),
                Some(samples)
            );
        }
    }
}
