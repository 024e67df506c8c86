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
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// How much the simulated energy register rises per MeterValues.
pub const ENERGY_STEP_WH: u64 = 25;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a traffic phase ended.
enum Ended {
    /// The run is over.
    Stopped,
    /// The connection was lost; reconnect.
    Lost,
}

/// Connects, boots and generates traffic until the stop signal, reconnecting (with backoff) when
/// the connection is lost.
pub async fn run(
    id: String,
    url: String,
    args: LoadArgs,
    counters: Arc<Counters>,
    observations: mpsc::UnboundedSender<Observation>,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = true;
    let mut backoff = Duration::from_millis(500);
    let mut energy: u64 = 1_000_000;
    let mut acked = Vec::new();
    let mut template = MeterTemplate::new(args.version == "1.6", args.samples);
    loop {
        let mut ws = match connect_and_boot(&id, &url, &args).await {
            Ok(ws) => ws,
            Err(e) => {
                if first {
                    counters.connect_failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{id}: {e}");
                    break;
                }
                // Jitter spreads a fleet's reconnects after a server restart.
                let wait = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        backoff = Duration::from_millis(500);
        if first {
            counters.booted.fetch_add(1, Ordering::Relaxed);
            first = false;
        } else {
            counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let mut traffic = Traffic {
            ws: &mut ws,
            args: &args,
            counters: &counters,
            observations: &observations,
            latencies: Vec::new(),
            seq: 0,
            template: &mut template,
            acked: args.acked_out.is_some().then_some(&mut acked),
        };
        let ended = match args.pattern {
            Pattern::Sessions => traffic.sessions(&id, &mut energy, &mut stop).await,
            _ => traffic.periodic(&mut energy, &mut stop).await,
        };
        let latencies = std::mem::take(&mut traffic.latencies);
        if !latencies.is_empty() {
            let _ = observations.send(Observation::Latencies(latencies));
        }
        match ended {
            Ended::Stopped => {
                let _ = ws.close(None).await;
                break;
            }
            Ended::Lost => counters.disconnects.fetch_add(1, Ordering::Relaxed),
        };
    }
    if args.acked_out.is_some() {
        counters
            .acked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, acked));
    }
}

/// One connection's traffic.
struct Traffic<'a> {
    ws: &'a mut Ws,
    args: &'a LoadArgs,
    counters: &'a Counters,
    observations: &'a mpsc::UnboundedSender<Observation>,
    latencies: Vec<u64>,
    seq: u64,
    template: &'a mut MeterTemplate,
    /// Energy readings of the MeterValues answered with a CALLRESULT, when recorded.
    acked: Option<&'a mut Vec<u64>>,
}

impl Traffic<'_> {
    /// Sends one CALL and waits for its answer, recording the latency. `Err(())`: connection lost.
    async fn call(&mut self, action: &str, payload: &str) -> Result<Option<Utf8Bytes>, ()> {
        self.seq += 1;
        let id = self.seq.to_string();
        let text = format!("[2,\"{id}\",\"{action}\",{payload}]");
        self.send_and_await(&id, text).await
    }

    async fn send_and_await(&mut self, msg_id: &str, text: String) -> Result<Option<Utf8Bytes>, ()> {
        let sent = Instant::now();
        if self.ws.send(Message::Text(text.into())).await.is_err() {
            return Err(());
        }
        match await_answer(self.ws, msg_id).await {
            Some(Ok(answer)) => {
                if self.counters.measuring.load(Ordering::Relaxed) {
                    self.counters.results.fetch_add(1, Ordering::Relaxed);
                    self.latencies.push(sent.elapsed().as_micros() as u64);
                    if self.latencies.len() >= 1024 {
                        let _ = self
                            .observations
                            .send(Observation::Latencies(std::mem::take(&mut self.latencies)));
                    }
                }
                Ok(Some(answer))
            }
            Some(Err(code)) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                let _ = self.observations.send(Observation::CallError(code));
                Ok(None)
            }
            None => Err(()),
        }
    }

    /// Closed, open and idle patterns: MeterValues (or heartbeats) back to back or at a rate.
    async fn periodic(&mut self, energy: &mut u64, stop: &mut watch::Receiver<bool>) -> Ended {
        let period = match self.args.pattern {
            Pattern::Open => Some(Duration::from_secs_f64(1.0 / self.args.rate.max(0.001))),
            Pattern::Idle => Some(Duration::from_secs(self.args.heartbeat.max(1))),
            Pattern::Closed | Pattern::Sessions => None,
        };
        let mut tick = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return Ended::Stopped;
            }
            if let Some(p) = period {
                tick += p;
                tokio::select! {
                    _ = tokio::time::sleep_until(tick) => {}
                    _ = stop.changed() => return Ended::Stopped,
                }
            }
            *energy += ENERGY_STEP_WH;
            self.seq += 1;
            let msg_id = self.seq.to_string();
            let idle = self.args.pattern == Pattern::Idle;
            let text = if idle {
                format!("[2,\"{msg_id}\",\"Heartbeat\",{{}}]")
            } else {
                self.template.frame(&msg_id, *energy)
            };
            match self.send_and_await(&msg_id, text).await {
                Err(()) => return Ended::Lost,
                Ok(Some(_)) if !idle => {
                    if let Some(acked) = self.acked.as_deref_mut() {
                        acked.push(*energy);
                    }
                }
                Ok(_) => {}
            }
        }
    }

    /// Random charging sessions: an idle gap with heartbeats, then Authorize, a transaction
    /// start, MeterValues at `--rate` for a random length, and the stop.
    async fn sessions(&mut self, id: &str, energy: &mut u64, stop: &mut watch::Receiver<bool>) -> Ended {
        let v16 = self.args.version == "1.6";
        let tag = &self.args.id_tag;
        let mut n = 0u64;
        loop {
            // Exponential gaps and lengths: arrivals of independent drivers.
            let gap = Duration::from_secs_f64(-self.args.session_gap * (1.0 - rand::random::<f64>()).ln());
            let deadline = tokio::time::Instant::now() + gap;
            loop {
                let beat = tokio::time::Instant::now() + Duration::from_secs(self.args.heartbeat.max(1));
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline.min(beat)) => {}
                    _ = stop.changed() => return Ended::Stopped,
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                if self.call("Heartbeat", "{}").await.is_err() {
                    return Ended::Lost;
                }
            }
            n += 1;
            let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let tx_id = if v16 {
                if self
                    .call("Authorize", &format!("{{\"idTag\":\"{tag}\"}}"))
                    .await
                    .is_err()
                {
                    return Ended::Lost;
                }
                let start = format!(
                    "{{\"connectorId\":1,\"idTag\":\"{tag}\",\"meterStart\":{energy},\"timestamp\":\"{}\"}}",
                    now()
                );
                match self.call("StartTransaction", &start).await {
                    Err(()) => return Ended::Lost,
                    Ok(answer) => answer
                        .and_then(|a| serde_json::from_str::<Value>(a.as_str()).ok())
                        .and_then(|v| v[2]["transactionId"].as_i64())
                        .unwrap_or(0)
                        .to_string(),
                }
            } else {
                let tx = format!("{id}-{n}");
                let started = format!(
                    "{{\"eventType\":\"Started\",\"timestamp\":\"{}\",\"triggerReason\":\"Authorized\",\"seqNo\":0,\
                     \"transactionInfo\":{{\"transactionId\":\"{tx}\",\"chargingState\":\"Charging\"}},\
                     \"idToken\":{{\"idToken\":\"{tag}\",\"type\":\"ISO14443\"}},\"evse\":{{\"id\":1,\"connectorId\":1}}}}",
                    now()
                );
                if self.call("TransactionEvent", &started).await.is_err() {
                    return Ended::Lost;
                }
                tx
            };
            let length = Duration::from_secs_f64(-self.args.session_secs * (1.0 - rand::random::<f64>()).ln());
            let end = tokio::time::Instant::now() + length;
            let period = Duration::from_secs_f64(1.0 / self.args.rate.max(0.001));
            let mut tick = tokio::time::Instant::now();
            let mut seq_no = 1;
            while tick + period < end {
                tick += period;
                tokio::select! {
                    _ = tokio::time::sleep_until(tick) => {}
                    _ = stop.changed() => return Ended::Stopped,
                }
                *energy += ENERGY_STEP_WH;
                self.seq += 1;
                let msg_id = self.seq.to_string();
                let text = if v16 {
                    self.template.frame(&msg_id, *energy)
                } else {
                    seq_no += 1;
                    format!(
                        "[2,\"{msg_id}\",\"TransactionEvent\",{{\"eventType\":\"Updated\",\"timestamp\":\"{}\",\
                         \"triggerReason\":\"MeterValuePeriodic\",\"seqNo\":{},\"transactionInfo\":{{\"transactionId\":\"{tx_id}\"}},\
                         \"evse\":{{\"id\":1,\"connectorId\":1}},\"meterValue\":[{{\"timestamp\":\"{}\",\"sampledValue\":[\
                         {{\"value\":{energy},\"measurand\":\"Energy.Active.Import.Register\",\"unitOfMeasure\":{{\"unit\":\"Wh\"}}}}]}}]}}]",
                        now(),
                        seq_no - 1,
                        now()
                    )
                };
                if self.send_and_await(&msg_id, text).await.is_err() {
                    return Ended::Lost;
                }
            }
            let stop_payload = if v16 {
                format!(
                    "{{\"transactionId\":{tx_id},\"meterStop\":{energy},\"timestamp\":\"{}\",\"reason\":\"Local\"}}",
                    now()
                )
            } else {
                format!(
                    "{{\"eventType\":\"Ended\",\"timestamp\":\"{}\",\"triggerReason\":\"StopAuthorized\",\"seqNo\":{seq_no},\
                     \"transactionInfo\":{{\"transactionId\":\"{tx_id}\",\"stoppedReason\":\"Local\"}},\"evse\":{{\"id\":1,\"connectorId\":1}}}}",
                    now()
                )
            };
            let action = if v16 { "StopTransaction" } else { "TransactionEvent" };
            if self.call(action, &stop_payload).await.is_err() {
                return Ended::Lost;
            }
        }
    }
}

async fn connect_and_boot(id: &str, base_url: &str, args: &LoadArgs) -> anyhow::Result<Ws> {
    let url = format!("{}/{}", base_url.trim_end_matches('/'), id);
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
        Some(Ok(_)) => Ok(ws),
        Some(Err(code)) => anyhow::bail!("boot refused with {code}"),
        None => anyhow::bail!("connection closed during boot"),
    }
}

/// Reads until the answer to `id` (its text); `Err(code)` for a CALLERROR, `None` when the
/// socket ends.
///
/// Matches on the frame's prefix instead of parsing it: the generator must stay cheaper than
/// the server it measures.
async fn await_answer(ws: &mut Ws, id: &str) -> Option<Result<Utf8Bytes, String>> {
    // `[3,"ID"` or `[4,"ID"`, compared in place: nothing is allocated per message.
    let answers = |text: &str, kind: &str| {
        text.strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix(id))
            .is_some_and(|rest| rest.starts_with('"'))
    };
    while let Some(msg) = ws.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        if answers(text.as_str(), "[3,\"") {
            return Some(Ok(text));
        }
        if answers(text.as_str(), "[4,\"") {
            let code = serde_json::from_str::<Value>(text.as_str())
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
    /// The last sampling instant (ms): each message samples strictly later, as a real meter
    /// does, so no two readings of a station share the instant that is part of the replay key.
    last_ms: i64,
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
        MeterTemplate {
            v16,
            head,
            tail,
            last_ms: 0,
        }
    }

    /// The frame for message `id` with the energy register at `energy_wh`.
    pub fn frame(&mut self, id: &str, energy_wh: u64) -> String {
        let now_ms = chrono::Utc::now().timestamp_millis().max(self.last_ms + 1);
        self.last_ms = now_ms;
        let now = chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
            let mut template = MeterTemplate::new(v16, samples);
            let text = template.frame("42", 1234);
            let next: Value = serde_json::from_str(&template.frame("43", 1259)).expect("json");
            let v: Value = serde_json::from_str(&text).expect(&text);
            assert_eq!(v[0], 2);
            assert_eq!(v[1], "42");
            assert_eq!(v[2], "MeterValues");
            assert_eq!(
                v[3]["meterValue"][0]["sampledValue"].as_array().map(Vec::len),
                Some(samples)
            );
            // Sent within the same millisecond, the next message still samples a later instant.
            let instant = |v: &Value| v[3]["meterValue"][0]["timestamp"].as_str().map(str::to_owned);
            assert!(instant(&next) > instant(&v), "{text} then {next}");
        }
    }
}
