//! The station task: the link and its backoff, registration (boot, Pending/Rejected retry),
//! the single call in flight, the timers, and dispatch of what the central system sends.
//!
//! Everything runs in one loop that waits for the first of: a control, a frame, or the next
//! deadline. Handlers are synchronous and only change state and queue calls; the loop then
//! writes at most one call (OCPP allows one in flight), so a reply to the central system always
//! goes out before anything it triggered.

use super::connector::{Availability, Connector};
use super::local_auth::LocalAuth;
use super::network::Network;
use super::outbox::{Outbox, Purpose, Queued};
use super::profiles::Profiles;
use super::security::{PendingCsr, Trial, DEFAULT_ORGANIZATION};
use super::session::StopReason;
use super::settings::Settings;
use super::{Control, Event};
use crate::spec::StationSpec;
use crate::transport::{self, Ws};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use ocpp::schema::{self, Direction};
use ocpp::{CallError, ErrorCode, Frame, Version};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Where the station stands with the central system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Registration {
    /// Not booted since start or reboot.
    Unbooted,
    /// Boot answered Pending or Rejected (or failed): boot again at this instant.
    RetryAt(Instant),
    /// Boot accepted.
    Accepted,
}

/// The one call awaiting its answer.
struct InFlight {
    id: String,
    action: String,
    sent_at: Instant,
    /// Taken from the outbox front (popped when answered).
    from_outbox: bool,
    purpose: Purpose,
    local_tx: Option<u64>,
}

/// Delayed work: the steps of a firmware update or log upload.
pub(super) enum Job {
    /// Queue a call.
    Send(&'static str, Value),
    /// Reboot, optionally into new firmware.
    Reboot(&'static str, Option<String>),
}

/// A reboot waiting for its moment.
pub(super) struct Reboot {
    /// Reboot no later than this, even with messages unsent (they are durable).
    pub deadline: Instant,
    /// Wait until no transaction is open (2.0.1 Reset OnIdle).
    pub when_idle: bool,
    /// 2.0.1 boot reason after the reboot.
    pub reason: &'static str,
}

/// The station.
pub(super) struct Charger {
    pub spec: StationSpec,
    pub version: Version,
    ws: Option<Ws>,
    control: mpsc::UnboundedReceiver<Control>,
    events: broadcast::Sender<Event>,
    online_wanted: bool,
    reconnect_at: Instant,
    attempt: u32,
    pub registration: Registration,
    pub boot_reason: &'static str,
    pub heartbeat_every: Duration,
    last_sent: Instant,
    in_flight: Option<InFlight>,
    pub outbox: Outbox,
    pub connectors: Vec<Connector>,
    pub settings: Settings,
    pub auth: LocalAuth,
    pub profiles: Profiles,
    pub jobs: Vec<(Instant, Job)>,
    overrides: HashMap<String, Result<Value, (String, String)>>,
    pub reboot: Option<Reboot>,
    last_advance: Instant,
    pub next_sample: Vec<Option<Instant>>,
    next_aligned: Option<Instant>,
    message_counter: u64,
    pub firmware: String,
    pub firmware_status: &'static str,
    pub diagnostics_status: &'static str,
    pub next_ev_soc: f64,
    pub next_ev_max_w: Option<f64>,
    /// URL, security profile, password and certificate, as the central system changed them.
    pub network: Network,
    /// The SignCertificate waiting for its CertificateSigned (and the key it is for).
    pub pending_csr: Option<PendingCsr>,
    /// When the station last started a renewal by itself.
    pub last_auto_renewal: Option<Instant>,
    /// Reconnect with new credentials once the answer went out (the reason).
    pub relink: Option<String>,
    /// New credentials not yet proven by a connection.
    pub trial: Option<Trial>,
}

async fn next_message(ws: &mut Option<Ws>) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

impl Charger {
    /// A station from its spec, with what its state directory kept.
    pub fn new(
        spec: StationSpec,
        control: mpsc::UnboundedReceiver<Control>,
        events: broadcast::Sender<Event>,
    ) -> anyhow::Result<Charger> {
        let (outbox, registers) = Outbox::open(spec.state_dir.as_deref())?;
        let connectors = spec
            .connectors
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let register = registers.get(i).copied().unwrap_or(0.0);
                Connector::new(i as u32 + 1, &c.connector_type, c.max_kw * 1000.0, c.phases, register)
            })
            .collect::<Vec<_>>();
        let network = Network::open(&spec)?;
        let organization = spec
            .security
            .organization
            .clone()
            .unwrap_or_else(|| DEFAULT_ORGANIZATION.to_string());
        let settings = Settings::new(
            connectors.len(),
            spec.timing.heartbeat,
            spec.timing.meter_interval,
            spec.timing.aligned_interval,
        )
        .with_security(&organization, network.security_profile(), &network.priority_text());
        let now = Instant::now();
        Ok(Charger {
            version: spec.version,
            heartbeat_every: Duration::from_secs(spec.timing.heartbeat.max(1)),
            firmware: spec.firmware.clone(),
            next_ev_soc: spec.ev.soc_percent,
            next_ev_max_w: None,
            next_sample: vec![None; connectors.len()],
            spec,
            ws: None,
            control,
            events,
            online_wanted: true,
            reconnect_at: now,
            attempt: 0,
            registration: Registration::Unbooted,
            boot_reason: "PowerUp",
            last_sent: now,
            in_flight: None,
            outbox,
            connectors,
            settings,
            auth: LocalAuth::default(),
            profiles: Profiles::default(),
            jobs: Vec::new(),
            overrides: HashMap::new(),
            reboot: None,
            last_advance: now,
            next_aligned: None,
            message_counter: 0,
            firmware_status: "Idle",
            diagnostics_status: "Idle",
            network,
            pending_csr: None,
            last_auto_renewal: None,
            relink: None,
            trial: None,
        })
    }

    /// Runs until [`Control::Shutdown`] or the handle is dropped.
    pub async fn run(mut self) -> anyhow::Result<()> {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                control = self.control.recv() => match control {
                    None | Some(Control::Shutdown) => break,
                    Some(c) => self.on_control(c),
                },
                message = next_message(&mut self.ws) => self.on_message(message).await,
                _ = tokio::time::sleep_until(deadline) => {}
            }
            self.on_time().await;
            self.pump().await;
        }
        self.advance();
        self.save();
        self.close_socket(Some("shutdown")).await;
        Ok(())
    }

    /// Closes the WebSocket cleanly (code 1000 with `reason`, or a bare close), waiting at most
    /// two seconds for the peer; the link state is the caller's to update.
    async fn close_socket(&mut self, reason: Option<&'static str>) {
        let frame = reason.map(|r| CloseFrame {
            code: CloseCode::Normal,
            reason: r.into(),
        });
        if let Some(ws) = self.ws.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(frame)).await;
        }
    }

    /// Publishes an event (nobody listening is fine).
    pub fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Whether volatile messages can go out now.
    pub fn online(&self) -> bool {
        self.ws.is_some() && self.registration == Registration::Accepted
    }

    /// Queues a call; volatile calls are dropped while offline.
    pub fn queue(&mut self, action: &str, payload: Value, durable: bool, local_tx: Option<u64>, purpose: Purpose) {
        if !durable && !self.online() {
            return;
        }
        self.outbox.push(Queued {
            action: action.to_string(),
            payload,
            durable,
            local_tx,
            purpose,
        });
        if durable {
            self.save();
        }
    }

    /// Persists the outbox and the meter registers.
    pub fn save(&self) {
        let registers: Vec<f64> = self.connectors.iter().map(|c| c.register_wh).collect();
        if let Err(e) = self.outbox.save(&registers) {
            self.emit(Event::Violation(format!("cannot persist the offline queue: {e:#}")));
        }
    }

    fn on_control(&mut self, control: Control) {
        self.advance();
        let n = self.connectors.len();
        let index = |c: u32| (c as usize).checked_sub(1).filter(|i| *i < n);
        match control {
            Control::Plug(c) => match index(c) {
                Some(i) => self.plug(i),
                None => self.emit(Event::Refused(c, "no such connector".into())),
            },
            Control::Unplug(c) => {
                if let Some(i) = index(c) {
                    self.unplug(i);
                }
            }
            Control::Present(c, token) => match index(c) {
                Some(i) => self.present(i, &token),
                None => self.emit(Event::Refused(c, "no such connector".into())),
            },
            Control::Stop(c) => {
                if let Some(i) = index(c) {
                    if self.connectors[i].tx.is_some() {
                        self.stop_transaction(i, StopReason::Local);
                    }
                }
            }
            Control::Fault(c, code) => {
                if let Some(i) = index(c) {
                    if self.connectors[i].tx.is_some() {
                        self.stop_transaction(i, StopReason::Other);
                    }
                    self.connectors[i].fault = Some(code);
                    self.report_status(i);
                }
            }
            Control::ClearFault(c) => {
                if let Some(i) = index(c) {
                    self.connectors[i].fault = None;
                    self.report_status(i);
                }
            }
            Control::SetSoc(c, soc) => {
                let soc = soc.clamp(0.0, 100.0);
                match index(c).and_then(|i| self.connectors[i].ev.as_mut()) {
                    Some(ev) => ev.soc_percent = soc,
                    None => self.next_ev_soc = soc,
                }
            }
            Control::SetEvPower(c, kw) => {
                let w = kw.max(0.0) * 1000.0;
                match index(c).and_then(|i| self.connectors[i].ev.as_mut()) {
                    Some(ev) => ev.max_w = w,
                    None => self.next_ev_max_w = Some(w),
                }
            }
            Control::Renegotiate(c) => {
                if let Some(i) = index(c) {
                    self.send_charging_needs(i);
                }
            }
            Control::Offline => {
                self.online_wanted = false;
                if self.ws.is_some() {
                    // A network loss: no close handshake.
                    self.lost_link("taken offline");
                }
            }
            Control::Online => {
                self.online_wanted = true;
                self.reconnect_at = Instant::now();
                self.attempt = 0;
            }
            Control::Override(action, answer) => {
                self.overrides.insert(action, answer);
            }
            Control::Call(action, payload) => {
                self.outbox.push(Queued {
                    action,
                    payload,
                    durable: false,
                    local_tx: None,
                    purpose: Purpose::Plain,
                });
            }
            Control::Shutdown => {}
        }
    }

    async fn send_text(&mut self, text: String) -> bool {
        if self.ws.is_none() {
            return false;
        }
        self.emit(Event::Frame(true, text.clone()));
        let Some(ws) = self.ws.as_mut() else { return false };
        if let Err(e) = ws.send(Message::Text(text.into())).await {
            self.lost_link(&format!("send failed: {e}"));
            return false;
        }
        self.last_sent = Instant::now();
        true
    }

    fn next_id(&mut self) -> String {
        self.message_counter += 1;
        self.message_counter.to_string()
    }

    /// Writes the next call when none is in flight.
    async fn pump(&mut self) {
        if self.ws.is_none() || self.in_flight.is_some() {
            return;
        }
        let now = Instant::now();
        let boot_due = match self.registration {
            Registration::Unbooted => true,
            Registration::RetryAt(at) => now >= at,
            Registration::Accepted => false,
        };
        if boot_due {
            let payload = self.boot_payload();
            self.write_call("BootNotification", payload, false, Purpose::Plain, None)
                .await;
            return;
        }
        if self.registration != Registration::Accepted {
            return;
        }
        if let Some(item) = self.outbox.front().cloned() {
            let mut payload = item.payload;
            if self.version == Version::V16 && item.action != "StartTransaction" {
                if let Some(local) = item.local_tx {
                    match self.outbox.transaction_id(local) {
                        Some(id) => payload["transactionId"] = json!(id),
                        None => {
                            // Its StartTransaction was refused with a CALLERROR: nothing to attach it to.
                            self.outbox.pop();
                            self.save();
                            self.emit(Event::Violation(format!(
                                "dropped {} of local transaction {local}: no transaction id",
                                item.action
                            )));
                            return;
                        }
                    }
                }
            }
            self.write_call(&item.action, payload, true, item.purpose, item.local_tx)
                .await;
            return;
        }
        if now >= self.last_sent + self.heartbeat_every {
            self.write_call("Heartbeat", json!({}), false, Purpose::Plain, None)
                .await;
        }
    }

    async fn write_call(
        &mut self,
        action: &str,
        payload: Value,
        from_outbox: bool,
        purpose: Purpose,
        local_tx: Option<u64>,
    ) {
        // Our own messages are checked too: a simulator that sends invalid frames would blame
        // the central system for its own bugs.
        if let Err(v) = schema::validate(self.version, action, Direction::Request, &payload) {
            self.emit(Event::Violation(format!(
                "the station's own {action} is invalid: {}",
                v.description
            )));
        }
        let id = self.next_id();
        let text = json!([2, id, action, payload]).to_string();
        if self.send_text(text).await {
            self.in_flight = Some(InFlight {
                id,
                action: action.to_string(),
                sent_at: Instant::now(),
                from_outbox,
                purpose,
                local_tx,
            });
        }
    }

    fn boot_payload(&self) -> Value {
        match self.version {
            Version::V16 => {
                let mut p = json!({
                    "chargePointVendor": self.spec.vendor,
                    "chargePointModel": self.spec.model,
                    "firmwareVersion": self.firmware,
                    "meterType": "SimMeter",
                });
                if let Some(serial) = &self.spec.serial {
                    p["chargePointSerialNumber"] = json!(serial);
                    p["chargeBoxSerialNumber"] = json!(serial);
                }
                p
            }
            Version::V201 => {
                let mut station = json!({
                    "model": self.spec.model,
                    "vendorName": self.spec.vendor,
                    "firmwareVersion": self.firmware,
                });
                if let Some(serial) = &self.spec.serial {
                    station["serialNumber"] = json!(serial);
                }
                json!({"reason": self.boot_reason, "chargingStation": station})
            }
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
        let text = match message {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Close(frame))) => {
                let why = frame
                    .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                    .unwrap_or_default();
                self.lost_link(&format!("closed by the central system {why}"));
                return;
            }
            Some(Ok(Message::Binary(_))) => {
                self.emit(Event::Violation(
                    "binary frame received (OCPP-J uses text frames)".into(),
                ));
                return;
            }
            Some(Ok(_)) => return,
            Some(Err(e)) => {
                self.lost_link(&format!("read failed: {e}"));
                return;
            }
            None => {
                self.lost_link("connection ended");
                return;
            }
        };
        self.emit(Event::Frame(false, text.clone()));
        self.advance();
        match Frame::parse(&text) {
            Ok(Frame::Call(call)) => self.on_call(call.id, call.action, call.payload).await,
            Ok(Frame::CallResult(result)) => self.on_result(&result.id, Ok(result.payload)),
            Ok(Frame::CallError(error)) => {
                self.on_result(&error.id, Err(format!("{}: {}", error.code, error.description)))
            }
            Err(e) => {
                self.emit(Event::Violation(format!(
                    "unreadable frame: {}",
                    e.violation.description
                )));
                if e.is_call {
                    let error = e.to_call_error(self.version);
                    let text = Frame::CallError(error).to_text();
                    self.send_text(text).await;
                }
            }
        }
    }

    async fn on_call(&mut self, id: String, action: String, payload: Value) {
        let reply = match schema::validate(self.version, &action, Direction::Request, &payload) {
            Err(v) => {
                self.emit(Event::Violation(format!(
                    "{action} from the central system: {}",
                    v.description
                )));
                Frame::CallError(CallError::from_violation(Some(&id), &v, self.version))
            }
            Ok(()) if ocpp::catalogue::initiator(self.version, &action).is_some_and(|i| !i.csms_may_send()) => {
                self.emit(Event::Violation(format!("{action} is not a central-system message")));
                Frame::CallError(CallError::new(
                    Some(&id),
                    ErrorCode::NotSupported,
                    &format!("{action} is sent by stations"),
                    self.version,
                ))
            }
            Ok(()) => {
                self.emit(Event::CallReceived(action.clone(), payload.clone()));
                let answer = match self.overrides.remove(&action) {
                    Some(Ok(p)) => Ok(p),
                    Some(Err((code, description))) => Err((code, description)),
                    None => {
                        let handled = match self.version {
                            Version::V16 => self.handle_v16(&action, &payload),
                            Version::V201 => self.handle_v201(&action, &payload),
                        };
                        handled.map_err(|(code, d)| (code.as_str(self.version).to_string(), d))
                    }
                };
                match answer {
                    Ok(p) => {
                        if let Err(v) = schema::validate(self.version, &action, Direction::Response, &p) {
                            self.emit(Event::Violation(format!(
                                "the station's own {action} answer is invalid: {}",
                                v.description
                            )));
                        }
                        Frame::CallResult(ocpp::CallResult { id, payload: p })
                    }
                    Err((code, description)) => Frame::CallError(CallError {
                        id,
                        code,
                        description,
                        details: json!({}),
                    }),
                }
            }
        };
        self.send_text(reply.to_text()).await;
    }

    fn on_result(&mut self, id: &str, result: Result<Value, String>) {
        let Some(call) = self.in_flight.take_if(|c| c.id == id) else {
            self.emit(Event::Violation(format!("answer to unknown message id {id}")));
            return;
        };
        if let Ok(payload) = &result {
            if let Err(v) = schema::validate(self.version, &call.action, Direction::Response, payload) {
                self.emit(Event::Violation(format!(
                    "{} answer from the central system: {}",
                    call.action, v.description
                )));
            }
        }
        self.emit(Event::Response(call.action.clone(), result.clone()));
        let mut durable = false;
        if call.from_outbox {
            durable = self.outbox.pop().is_some_and(|q| q.durable);
        }
        match (call.action.as_str(), result) {
            ("BootNotification", Ok(p)) if !call.from_outbox => self.on_boot(&p),
            ("BootNotification", Err(_)) if !call.from_outbox => {
                self.registration = Registration::RetryAt(Instant::now() + Duration::from_secs(30));
            }
            (_, Ok(p)) => self.on_answer(&call.action, &p, call.local_tx, &call.purpose),
            (_, Err(_)) => {
                if let Purpose::Authorize { connector, .. } = call.purpose {
                    self.emit(Event::Refused(connector as u32 + 1, "Authorize failed".into()));
                }
            }
        }
        if durable {
            self.save();
        }
    }

    fn on_boot(&mut self, p: &Value) {
        let status = p["status"].as_str().unwrap_or("Rejected").to_string();
        let interval = p["interval"].as_u64().unwrap_or(0);
        self.emit(Event::Booted(status.clone()));
        if status == "Accepted" {
            self.registration = Registration::Accepted;
            self.attempt = 0;
            if interval > 0 {
                self.heartbeat_every = Duration::from_secs(interval);
                let _ = self.settings.set("HeartbeatInterval", &interval.to_string());
            }
            self.boot_reason = "PowerUp";
            self.report_all();
        } else {
            // Pending and Rejected: boot again after the interval the central system asked for.
            let wait = if interval > 0 { interval } else { 30 };
            self.registration = Registration::RetryAt(Instant::now() + Duration::from_secs(wait));
        }
    }

    /// Reports every connector's status (after boot or reconnect); 1.6 also reports connector 0.
    pub fn report_all(&mut self) {
        if self.version == Version::V16 && self.online() {
            let all_off = self
                .connectors
                .iter()
                .all(|c| c.availability == Availability::Inoperative);
            let payload = json!({
                "connectorId": 0,
                "errorCode": "NoError",
                "status": if all_off { "Unavailable" } else { "Available" },
                "timestamp": now_rfc3339(),
            });
            self.queue("StatusNotification", payload, false, None, Purpose::Plain);
        }
        for i in 0..self.connectors.len() {
            self.connectors[i].reported = None;
            self.report_status(i);
        }
    }

    /// Queues a StatusNotification when the connector's status changed since the last report.
    pub fn report_status(&mut self, i: usize) {
        let status = self.connectors[i].status();
        let changed = match (self.version, self.connectors[i].reported) {
            (_, None) => true,
            (Version::V16, Some(old)) => old != status,
            (Version::V201, Some(old)) => old.v201() != status.v201(),
        };
        if !changed || !self.online() {
            return;
        }
        self.connectors[i].reported = Some(status);
        let c = &self.connectors[i];
        let (payload, spelled) = match self.version {
            Version::V16 => (
                json!({
                    "connectorId": c.id,
                    "errorCode": if c.fault.is_some() { c.fault.clone().unwrap_or_default() } else { "NoError".into() },
                    "status": status.v16(),
                    "timestamp": now_rfc3339(),
                }),
                status.v16(),
            ),
            Version::V201 => (
                json!({
                    "timestamp": now_rfc3339(),
                    "connectorStatus": status.v201(),
                    "evseId": c.id,
                    "connectorId": 1,
                }),
                status.v201(),
            ),
        };
        let id = c.id;
        self.emit(Event::Status(id, spelled.to_string()));
        self.queue("StatusNotification", payload, false, None, Purpose::Plain);
    }

    /// The link is gone: forget the call in flight (a durable one stays queued and is resent),
    /// drop volatile calls, and schedule a reconnect with backoff.
    pub fn lost_link(&mut self, why: &str) {
        if self.ws.take().is_none() {
            return;
        }
        self.in_flight = None;
        self.outbox.drop_volatile();
        for c in &mut self.connectors {
            c.reported = None;
        }
        self.emit(Event::Disconnected(why.to_string()));
        self.schedule_reconnect();
    }

    fn schedule_reconnect(&mut self) {
        let t = &self.spec.timing;
        let ceiling = t
            .reconnect_min_ms
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(t.reconnect_max_ms.max(t.reconnect_min_ms));
        // Full jitter over the upper half, so a fleet that lost its server does not return at once.
        let delay = rand::rng().random_range(ceiling / 2..=ceiling.max(1));
        self.attempt = self.attempt.saturating_add(1);
        self.reconnect_at = Instant::now() + Duration::from_millis(delay);
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        // A one-second tick keeps the meter model and status (EV full, profile periods) current.
        let mut d = now + Duration::from_secs(1);
        let mut at = |t: Instant| d = d.min(t);
        if self.ws.is_none() && self.online_wanted {
            at(self.reconnect_at);
        }
        if let Some(c) = &self.in_flight {
            at(c.sent_at + self.spec.timing.call_timeout());
        } else if self.ws.is_some() {
            match self.registration {
                Registration::RetryAt(t) => at(t),
                Registration::Accepted => at(self.last_sent + self.heartbeat_every),
                Registration::Unbooted => {}
            }
        }
        for t in self.next_sample.iter().flatten() {
            at(*t);
        }
        if let Some(t) = self.next_aligned {
            at(t);
        }
        for (t, _) in &self.jobs {
            at(*t);
        }
        if let Some(r) = &self.reboot {
            at(r.deadline);
        }
        d.max(now)
    }

    async fn on_time(&mut self) {
        let now = Instant::now();
        self.advance();
        if let Some(why) = self.relink.take() {
            // New credentials: the answer that accepted them went out; reconnect with them now.
            if self.ws.is_some() {
                self.close_socket(Some("new credentials")).await;
                self.lost_link(&format!("reconnecting: {why}"));
            }
            self.attempt = 0;
            self.reconnect_at = now;
        }
        if self.ws.is_none() && self.online_wanted && now >= self.reconnect_at {
            self.connect().await;
        }
        if self
            .in_flight
            .as_ref()
            .is_some_and(|c| now >= c.sent_at + self.spec.timing.call_timeout())
        {
            // An unanswered call means a dead link; the durable message is resent after reconnecting.
            self.close_socket(None).await;
            self.lost_link("call timed out");
        }
        self.certificate_due(now);
        self.sample_due(now);
        self.aligned_due(now);
        self.expire(now);
        let due: Vec<Job> = {
            let (due, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.jobs).into_iter().partition(|(t, _)| *t <= now);
            self.jobs = later;
            due.into_iter().map(|(_, j)| j).collect()
        };
        for job in due {
            match job {
                Job::Send(action, payload) => {
                    if action == "FirmwareStatusNotification" {
                        self.firmware_status = status_of(&payload);
                    } else if action == "DiagnosticsStatusNotification" {
                        self.diagnostics_status = status_of(&payload);
                    }
                    self.queue(action, payload, false, None, Purpose::Plain);
                }
                Job::Reboot(reason, firmware) => {
                    if let Some(f) = firmware {
                        self.firmware = f;
                    }
                    self.firmware_status = "Idle";
                    self.reboot = Some(Reboot {
                        deadline: now,
                        when_idle: false,
                        reason,
                    });
                }
            }
        }
        if let Some(r) = &self.reboot {
            let idle = self.connectors.iter().all(|c| c.tx.is_none());
            let drained = self.outbox.durable_len() == 0 && self.in_flight.is_none();
            let ready = if r.when_idle {
                idle
            } else {
                (drained || now >= r.deadline) && idle
            };
            if ready || (!r.when_idle && now >= r.deadline) {
                self.do_reboot().await;
            }
        }
    }

    async fn connect(&mut self) {
        match tokio::time::timeout(Duration::from_secs(15), transport::connect(&self.spec, &self.network)).await {
            Ok(Ok(ws)) => {
                if let Some(trial) = self.trial.take() {
                    self.emit(Event::Security(format!("connected with {}", trial.what)));
                }
                self.ws = Some(ws);
                self.in_flight = None;
                self.last_sent = Instant::now();
                self.emit(Event::Connected);
                if self.registration == Registration::Accepted {
                    // A reconnect without reboot: no boot, but report the present state.
                    self.attempt = 0;
                    self.report_all();
                }
            }
            Ok(Err(e)) => {
                self.emit(Event::Disconnected(format!("connect failed: {e:#}")));
                self.trial_failed();
                self.schedule_reconnect();
            }
            Err(_) => {
                self.emit(Event::Disconnected("connect timed out".into()));
                self.trial_failed();
                self.schedule_reconnect();
            }
        }
    }

    async fn do_reboot(&mut self) {
        let Some(reboot) = self.reboot.take() else { return };
        self.emit(Event::Rebooting);
        self.close_socket(Some("rebooting")).await;
        self.lost_link("rebooting");
        self.registration = Registration::Unbooted;
        self.boot_reason = reboot.reason;
        self.apply_network_priority();
        self.auth.clear_cache();
        self.profiles
            .installed
            .retain(|p| p.purpose != super::profiles::Purpose::Tx);
        for c in &mut self.connectors {
            c.authorized = None;
            c.reported = None;
        }
        self.attempt = 0;
        self.reconnect_at = Instant::now() + Duration::from_millis(self.spec.timing.reboot_ms);
        self.save();
    }

    fn sample_due(&mut self, now: Instant) {
        for i in 0..self.connectors.len() {
            if self.next_sample[i].is_some_and(|t| now >= t) {
                let every = Duration::from_secs(self.settings.int("MeterValueSampleInterval").max(1));
                self.next_sample[i] = Some(now + every);
                if self.settings.int("MeterValueSampleInterval") > 0 {
                    self.send_meter_values(i, "Sample.Periodic");
                }
            }
        }
    }

    fn aligned_due(&mut self, now: Instant) {
        let interval = self.settings.int("ClockAlignedDataInterval");
        if interval == 0 {
            self.next_aligned = None;
            return;
        }
        let Some(at) = self.next_aligned else {
            // Align to the wall clock: the next multiple of the interval since midnight UTC.
            let secs = Utc::now().timestamp().rem_euclid(86_400) as u64;
            let wait = interval - secs % interval;
            self.next_aligned = Some(now + Duration::from_secs(wait));
            return;
        };
        if now >= at {
            self.next_aligned = Some(at + Duration::from_secs(interval));
            for i in 0..self.connectors.len() {
                self.send_meter_values(i, "Sample.Clock");
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let wall = Utc::now();
        let timeout = Duration::from_secs(self.settings.int("ConnectionTimeOut").max(1));
        for i in 0..self.connectors.len() {
            if self.connectors[i]
                .reservation
                .as_ref()
                .is_some_and(|r| r.expiry <= wall)
            {
                let r = self.connectors[i].reservation.take();
                if let (Version::V201, Some(r)) = (self.version, r) {
                    self.queue(
                        "ReservationStatusUpdate",
                        json!({"reservationId": r.id, "reservationUpdateStatus": "Expired"}),
                        false,
                        None,
                        Purpose::Plain,
                    );
                }
                self.report_status(i);
            }
            if self.connectors[i]
                .authorized
                .as_ref()
                .is_some_and(|a| now >= a.at + timeout)
            {
                self.connectors[i].authorized = None;
                self.emit(Event::Refused(
                    i as u32 + 1,
                    "EV not plugged in within ConnectionTimeOut".into(),
                ));
                self.report_status(i);
            }
        }
    }

    /// Integrates the meters up to now and updates power and status.
    pub fn advance(&mut self) {
        let now = Instant::now();
        let secs = (now - self.last_advance).as_secs_f64() * self.spec.timing.time_scale;
        self.last_advance = now;
        let wall = Utc::now();
        for i in 0..self.connectors.len() {
            let c = &mut self.connectors[i];
            let before = c.status();
            let energising = c.tx.as_ref().is_some_and(|t| t.energising) && c.ev.is_some();
            if energising {
                let started = c.tx.as_ref().map(|t| t.started);
                let limit = self.profiles.limit_w(c.id, wall, started, c.phases);
                let (max_w, power_before) = (c.max_w, c.power_w);
                if let Some(ev) = c.ev.as_mut() {
                    // Energy over the elapsed step at the power that was flowing, then the new power.
                    let wh = ev.charge(power_before, secs);
                    c.register_wh += wh;
                    c.power_w = super::ev::delivered_w(ev, max_w, limit);
                    c.limited_to_zero = limit.is_some_and(|l| l <= 0.0);
                }
            } else {
                c.power_w = 0.0;
                c.limited_to_zero = false;
            }
            if c.status() != before {
                self.report_status(i);
            }
        }
    }
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn status_of(payload: &Value) -> &'static str {
    match payload["status"].as_str() {
        Some("Downloading") => "Downloading",
        Some("Downloaded") => "Downloaded",
        Some("Installing") => "Installing",
        Some("Installed") => "Installed",
        Some("Uploading") => "Uploading",
        Some("Uploaded") => "Uploaded",
        _ => "Idle",
    }
}
