//! The charging session, as both versions share it: plug in, authorise (local list, cache or
//! Authorize), start when both the cable and the authorisation are there, meter, stop.
//!
//! 2.0.1 runs with TxStartPoint `PowerPathClosed` and TxStopPoint `EVConnected,Authorized`,
//! the same shape as a 1.6 transaction: it starts when the EV is plugged in and authorised, and
//! ends when either goes.

use super::connector::{Authorized, Transaction};
use super::engine::{now_rfc3339, Charger};
use super::ev::{current_a, Ev, NOMINAL_VOLTAGE};
use super::outbox::Purpose;
use super::Event;
use chrono::Utc;
use ocpp::Version;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// Why a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The driver's card or the stop button.
    Local,
    /// The central system asked.
    Remote,
    /// The cable was pulled.
    EvDisconnected,
    /// The central system refused the token after the start.
    DeAuthorized,
    /// 1.6 hard reset.
    HardReset,
    /// 1.6 soft reset / 2.0.1 immediate reset.
    SoftReset,
    /// UnlockConnector during the transaction.
    UnlockCommand,
    /// A fault.
    Other,
}

impl StopReason {
    fn v16(self) -> &'static str {
        match self {
            StopReason::Local => "Local",
            StopReason::Remote => "Remote",
            StopReason::EvDisconnected => "EVDisconnected",
            StopReason::DeAuthorized => "DeAuthorized",
            StopReason::HardReset => "HardReset",
            StopReason::SoftReset => "SoftReset",
            StopReason::UnlockCommand => "UnlockCommand",
            StopReason::Other => "Other",
        }
    }

    /// 2.0.1 (stoppedReason, triggerReason).
    fn v201(self) -> (&'static str, &'static str) {
        match self {
            StopReason::Local => ("Local", "StopAuthorized"),
            StopReason::Remote => ("Remote", "RemoteStop"),
            StopReason::EvDisconnected => ("EVDisconnected", "EVCommunicationLost"),
            StopReason::DeAuthorized => ("DeAuthorized", "Deauthorized"),
            StopReason::HardReset | StopReason::SoftReset => ("ImmediateReset", "ResetCommand"),
            StopReason::UnlockCommand => ("Other", "UnlockCommand"),
            StopReason::Other => ("Other", "AbnormalCondition"),
        }
    }
}

impl Charger {
    /// The EV is plugged in.
    pub(super) fn plug(&mut self, i: usize) {
        if self.connectors[i].ev.is_some() {
            return;
        }
        let ev = Ev {
            capacity_wh: self.spec.ev.capacity_kwh * 1000.0,
            soc_percent: self.next_ev_soc,
            max_w: self.next_ev_max_w.unwrap_or(self.spec.ev.max_kw * 1000.0),
        };
        let c = &mut self.connectors[i];
        c.ev = Some(ev);
        c.finishing = false;
        if let Some(a) = c.authorized.take() {
            self.start_transaction(i, a, "CablePluggedIn");
        } else {
            self.report_status(i);
        }
    }

    /// The EV is unplugged.
    pub(super) fn unplug(&mut self, i: usize) {
        if self.connectors[i].tx.is_some() {
            self.stop_transaction(i, StopReason::EvDisconnected);
        }
        let c = &mut self.connectors[i];
        c.ev = None;
        c.finishing = false;
        self.report_status(i);
    }

    /// A token is presented at connector `i`.
    pub(super) fn present(&mut self, i: usize, token: &str) {
        if let Some(tx) = &self.connectors[i].tx {
            if tx.token == token {
                self.stop_transaction(i, StopReason::Local);
            } else {
                self.emit(Event::Refused(i as u32 + 1, "another token's transaction".into()));
            }
            return;
        }
        if !self.connectors[i].usable() {
            self.emit(Event::Refused(
                i as u32 + 1,
                format!("connector is {:?}", self.connectors[i].status()),
            ));
            return;
        }
        let use_cache = self.settings.flag("AuthorizationCacheEnabled");
        let known = self.auth.lookup(token, use_cache).map(str::to_string);
        if !self.online() {
            let offline_ok = match known.as_deref() {
                Some("Accepted") => self.settings.flag("LocalAuthorizeOffline"),
                Some(_) => false,
                None => self.settings.flag("AllowOfflineTxForUnknownId"),
            };
            if offline_ok {
                self.authorized(i, token, "ISO14443", None, None);
            } else {
                self.emit(Event::Refused(
                    i as u32 + 1,
                    "offline and not locally authorised".into(),
                ));
            }
            return;
        }
        if known.as_deref() == Some("Accepted") && self.settings.flag("LocalPreAuthorize") {
            self.authorized(i, token, "ISO14443", None, None);
            return;
        }
        let payload = match self.version {
            Version::V16 => json!({"idTag": token}),
            Version::V201 => json!({"idToken": {"idToken": token, "type": "ISO14443"}}),
        };
        self.queue(
            "Authorize",
            payload,
            false,
            None,
            Purpose::Authorize {
                connector: i,
                token: token.to_string(),
            },
        );
    }

    /// A token is authorised at connector `i`: start now if plugged in, else wait for the cable.
    pub(super) fn authorized(
        &mut self,
        i: usize,
        token: &str,
        token_type: &str,
        group: Option<&str>,
        remote_start_id: Option<i64>,
    ) {
        let c = &self.connectors[i];
        if !c.reservation_admits(token, group) {
            self.emit(Event::Refused(i as u32 + 1, "reserved for another token".into()));
            return;
        }
        let a = Authorized {
            token: token.to_string(),
            token_type: token_type.to_string(),
            reservation: c.reservation.as_ref().map(|r| r.id),
            remote_start_id,
            at: Instant::now(),
        };
        if c.ev.is_some() {
            let trigger = if remote_start_id.is_some() {
                "RemoteStart"
            } else {
                "Authorized"
            };
            self.start_transaction(i, a, trigger);
        } else {
            self.connectors[i].authorized = Some(a);
            self.report_status(i);
        }
    }

    fn start_transaction(&mut self, i: usize, a: Authorized, trigger: &str) {
        let local = self.outbox.next_local_tx();
        let id = match self.version {
            Version::V16 => local.to_string(),
            Version::V201 => format!("{}-{}-{:08x}", self.spec.id, local, rand::random::<u32>()),
        };
        let now = Utc::now();
        let c = &mut self.connectors[i];
        c.reservation = None;
        c.finishing = false;
        let register = c.register_wh;
        c.tx = Some(Transaction {
            local,
            id: id.clone(),
            token: a.token.clone(),
            token_type: a.token_type.clone(),
            started: now,
            meter_start_wh: register,
            seq_no: 0,
            remote_start_id: a.remote_start_id,
            energising: true,
            ev_schedules: 0,
        });
        let connector_id = c.id;
        match self.version {
            Version::V16 => {
                let mut p = json!({
                    "connectorId": connector_id,
                    "idTag": a.token,
                    "meterStart": register.floor() as i64,
                    "timestamp": now_rfc3339(),
                });
                if let Some(r) = a.reservation {
                    p["reservationId"] = json!(r);
                }
                self.queue("StartTransaction", p, true, Some(local), Purpose::Plain);
            }
            Version::V201 => {
                let mut info = json!({"transactionId": id, "chargingState": "Charging"});
                if let Some(r) = a.remote_start_id {
                    info["remoteStartId"] = json!(r);
                }
                let mut p = self.transaction_event(i, "Started", trigger, info);
                p["idToken"] = json!({"idToken": a.token, "type": a.token_type});
                p["meterValue"] = json!([self.meter_value(i, "Transaction.Begin", &["Energy.Active.Import.Register"])]);
                if let Some(r) = a.reservation {
                    p["reservationId"] = json!(r);
                }
                self.queue("TransactionEvent", p, true, Some(local), Purpose::Plain);
                self.send_charging_needs(i);
            }
        }
        let every = self.settings.int("MeterValueSampleInterval");
        self.next_sample[i] = (every > 0).then(|| Instant::now() + Duration::from_secs(every));
        self.emit(Event::TransactionStarted(connector_id, id));
        self.advance();
        self.report_status(i);
    }

    /// Ends the transaction on connector `i`.
    pub(super) fn stop_transaction(&mut self, i: usize, reason: StopReason) {
        self.advance();
        let Some(tx) = self.connectors[i].tx.clone() else {
            return;
        };
        let end_measurands: Vec<String> = self.settings.measurands("StopTxnSampledData");
        let end: Vec<&str> = if end_measurands.is_empty() {
            vec!["Energy.Active.Import.Register"]
        } else {
            end_measurands.iter().map(String::as_str).collect()
        };
        match self.version {
            Version::V16 => {
                let c = &self.connectors[i];
                let mut begin = self.meter_value(i, "Transaction.Begin", &["Energy.Active.Import.Register"]);
                begin["timestamp"] = json!(tx.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                begin["sampledValue"][0]["value"] = json!((tx.meter_start_wh.floor() as i64).to_string());
                let mut p = json!({
                    "meterStop": c.register_wh.floor() as i64,
                    "timestamp": now_rfc3339(),
                    "reason": reason.v16(),
                    "transactionId": 0,
                    "transactionData": [begin, self.meter_value(i, "Transaction.End", &end)],
                });
                if matches!(reason, StopReason::Local) {
                    p["idTag"] = json!(tx.token);
                }
                self.queue("StopTransaction", p, true, Some(tx.local), Purpose::Plain);
            }
            Version::V201 => {
                let (stopped, trigger) = reason.v201();
                let state = if self.connectors[i].ev.is_some() {
                    "EVConnected"
                } else {
                    "Idle"
                };
                let info = json!({"transactionId": tx.id, "chargingState": state, "stoppedReason": stopped});
                let mut p = self.transaction_event(i, "Ended", trigger, info);
                p["meterValue"] = json!([self.meter_value(i, "Transaction.End", &end)]);
                if matches!(reason, StopReason::Local) {
                    p["idToken"] = json!({"idToken": tx.token, "type": tx.token_type});
                }
                self.queue("TransactionEvent", p, true, Some(tx.local), Purpose::Plain);
            }
        }
        let c = &mut self.connectors[i];
        c.tx = None;
        c.power_w = 0.0;
        c.finishing = c.ev.is_some();
        if let Some(a) = c.scheduled.take() {
            c.availability = a;
        }
        let id = c.id;
        self.profiles.end_transaction(id);
        self.next_sample[i] = None;
        self.emit(Event::TransactionEnded(id, reason.v16().to_string()));
        self.report_status(i);
    }

    /// A 2.0.1 TransactionEvent skeleton for connector `i` (takes the next seqNo).
    pub(super) fn transaction_event(&mut self, i: usize, kind: &str, trigger: &str, info: Value) -> Value {
        let offline = !self.online();
        let c = &mut self.connectors[i];
        let seq = c.tx.as_mut().map_or(0, |t| {
            let s = t.seq_no;
            t.seq_no += 1;
            s
        });
        let mut p = json!({
            "eventType": kind,
            "timestamp": now_rfc3339(),
            "triggerReason": trigger,
            "seqNo": seq,
            "transactionInfo": info,
            "evse": {"id": c.id, "connectorId": 1},
        });
        if offline {
            p["offline"] = json!(true);
        }
        p
    }

    /// Queues the connector's meter values: a MeterValues (1.6, or 2.0.1 outside a
    /// transaction) or a TransactionEvent Updated (2.0.1 in a transaction).
    pub(super) fn send_meter_values(&mut self, i: usize, context: &str) {
        let key = if context == "Sample.Clock" {
            "MeterValuesAlignedData"
        } else {
            "MeterValuesSampledData"
        };
        let measurands = self.settings.measurands(key);
        if measurands.is_empty() {
            return;
        }
        let list: Vec<&str> = measurands.iter().map(String::as_str).collect();
        let mv = self.meter_value(i, context, &list);
        let c = &self.connectors[i];
        let tx = c.tx.clone();
        let connector_id = c.id;
        match (self.version, tx) {
            (Version::V16, tx) => {
                let mut p = json!({"connectorId": connector_id, "meterValue": [mv]});
                let local = tx.as_ref().map(|t| t.local);
                if local.is_some() {
                    p["transactionId"] = json!(0);
                }
                self.queue("MeterValues", p, local.is_some(), local, Purpose::Plain);
            }
            (Version::V201, Some(tx)) => {
                let trigger = match context {
                    "Sample.Clock" => "MeterValueClock",
                    "Trigger" => "Trigger",
                    _ => "MeterValuePeriodic",
                };
                let state = if c.power_w > 0.0 {
                    "Charging"
                } else if c.limited_to_zero {
                    "SuspendedEVSE"
                } else {
                    "SuspendedEV"
                };
                let info = json!({"transactionId": tx.id, "chargingState": state});
                let mut p = self.transaction_event(i, "Updated", trigger, info);
                p["meterValue"] = json!([mv]);
                self.queue("TransactionEvent", p, true, Some(tx.local), Purpose::Plain);
            }
            (Version::V201, None) => {
                self.queue(
                    "MeterValues",
                    json!({"evseId": connector_id, "meterValue": [mv]}),
                    false,
                    None,
                    Purpose::Plain,
                );
            }
        }
    }

    /// One `meterValue` entry for connector `i` with the given measurands.
    pub(super) fn meter_value(&self, i: usize, context: &str, measurands: &[&str]) -> Value {
        let c = &self.connectors[i];
        let v16 = self.version == Version::V16;
        let mut sampled = Vec::new();
        let phases: &[&str] = if c.phases == 3 { &["L1", "L2", "L3"] } else { &["L1"] };
        for m in measurands {
            match *m {
                "Energy.Active.Import.Register" => {
                    sampled.push(sample(v16, context, m, c.register_wh.floor(), "Wh", None))
                }
                "Power.Active.Import" => {
                    sampled.push(sample(v16, context, m, (c.power_w * 10.0).round() / 10.0, "W", None))
                }
                "Current.Import" => {
                    let a = (current_a(c.power_w, c.phases) * 100.0).round() / 100.0;
                    for p in phases {
                        sampled.push(sample(v16, context, m, a, "A", Some(p)));
                    }
                }
                "Voltage" => {
                    // A loaded line sags a little.
                    let v = if c.power_w > 0.0 {
                        NOMINAL_VOLTAGE - 1.5
                    } else {
                        NOMINAL_VOLTAGE
                    };
                    for p in phases {
                        sampled.push(sample(v16, context, m, v, "V", Some(&format!("{p}-N"))));
                    }
                }
                "SoC" => {
                    if let Some(ev) = &c.ev {
                        sampled.push(sample(v16, context, m, ev.soc_percent.floor(), "Percent", None));
                    }
                }
                _ => {}
            }
        }
        if sampled.is_empty() {
            sampled.push(sample(
                v16,
                context,
                "Energy.Active.Import.Register",
                c.register_wh.floor(),
                "Wh",
                None,
            ));
        }
        json!({"timestamp": now_rfc3339(), "sampledValue": sampled})
    }

    /// Acts on the central system's answer to a queued call.
    pub(super) fn on_answer(&mut self, action: &str, p: &Value, local_tx: Option<u64>, purpose: &Purpose) {
        match action {
            "StartTransaction" => {
                let Some(local) = local_tx else { return };
                if let Some(id) = p["transactionId"].as_i64() {
                    self.outbox.set_transaction_id(local, id);
                    for c in &mut self.connectors {
                        if let Some(tx) = c.tx.as_mut().filter(|t| t.local == local) {
                            tx.id = id.to_string();
                        }
                    }
                }
                self.after_token_verdict(local_tx, &p["idTagInfo"]);
            }
            "TransactionEvent" => self.after_token_verdict(local_tx, &p["idTokenInfo"]),
            "Authorize" => {
                let Purpose::Authorize { connector, token } = purpose else {
                    return;
                };
                let info = if self.version == Version::V16 {
                    &p["idTagInfo"]
                } else {
                    &p["idTokenInfo"]
                };
                let status = info["status"].as_str().unwrap_or("Invalid");
                if self.settings.flag("AuthorizationCacheEnabled") {
                    self.auth.remember(token, status);
                }
                if status == "Accepted" {
                    let group = info["parentIdTag"]
                        .as_str()
                        .or_else(|| info["groupIdToken"]["idToken"].as_str())
                        .map(str::to_string);
                    let remote = self.connectors[*connector]
                        .authorized
                        .as_ref()
                        .and_then(|a| a.remote_start_id);
                    self.authorized(*connector, token, "ISO14443", group.as_deref(), remote);
                } else {
                    self.emit(Event::Refused(*connector as u32 + 1, format!("token {status}")));
                }
            }
            _ => {}
        }
    }

    /// Stops a transaction whose token the central system refused (StopTransactionOnInvalidId).
    fn after_token_verdict(&mut self, local_tx: Option<u64>, info: &Value) {
        let Some(status) = info["status"].as_str() else { return };
        let Some(i) = self
            .connectors
            .iter()
            .position(|c| c.tx.as_ref().is_some_and(|t| Some(t.local) == local_tx))
        else {
            return;
        };
        if let Some(token) = self.connectors[i].tx.as_ref().map(|t| t.token.clone()) {
            if self.settings.flag("AuthorizationCacheEnabled") {
                self.auth.remember(&token, status);
            }
        }
        if status != "Accepted" && self.settings.flag("StopTransactionOnInvalidId") {
            self.stop_transaction(i, StopReason::DeAuthorized);
        }
    }
}

/// One sampled value in the version's shape (1.6 values are strings, 2.0.1 numbers).
fn sample(v16: bool, context: &str, measurand: &str, value: f64, unit: &str, phase: Option<&str>) -> Value {
    let mut s = if v16 {
        json!({"value": format_value(value), "context": context, "measurand": measurand, "unit": unit, "location": "Outlet"})
    } else {
        json!({"value": value, "context": context, "measurand": measurand, "unitOfMeasure": {"unit": unit}, "location": "Outlet"})
    };
    if let Some(p) = phase {
        s["phase"] = json!(p);
    }
    s
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}
