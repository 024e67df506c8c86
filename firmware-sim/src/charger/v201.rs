//! OCPP 2.0.1: the station's answers to the central system's calls.

use super::connector::{Availability, Reservation};
use super::engine::{now_rfc3339, Charger, Reboot, Registration};
use super::operations::{data_transfer, firmware_from_location, status, time, until, wire_id, Answer};
use super::outbox::Purpose;
use super::profiles::{Profile, Purpose as ProfilePurpose};
use super::session::StopReason;
use super::settings::Refusal;
use chrono::Utc;
use ocpp::ErrorCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

impl Charger {
    /// Answers one call from the central system.
    pub(super) fn handle_v201(&mut self, action: &str, p: &Value) -> Answer {
        match action {
            "RequestStartTransaction" => self.request_start(p),
            "RequestStopTransaction" => {
                let id = p["transactionId"].as_str().unwrap_or_default();
                match self
                    .connectors
                    .iter()
                    .position(|c| c.tx.as_ref().is_some_and(|t| t.id == id))
                {
                    Some(i) => {
                        self.stop_transaction(i, StopReason::Remote);
                        status("Accepted")
                    }
                    None => status("Rejected"),
                }
            }
            "Reset" => {
                if !p["evseId"].is_null() {
                    return status("Rejected");
                }
                let busy = self.connectors.iter().any(|c| c.tx.is_some());
                if p["type"] == "OnIdle" && busy {
                    self.reboot = Some(Reboot {
                        deadline: Instant::now(),
                        when_idle: true,
                        reason: "RemoteReset",
                    });
                    return status("Scheduled");
                }
                for i in 0..self.connectors.len() {
                    if self.connectors[i].tx.is_some() {
                        self.stop_transaction(i, StopReason::SoftReset);
                    }
                }
                self.reboot = Some(Reboot {
                    deadline: Instant::now() + Duration::from_secs(5),
                    when_idle: false,
                    reason: "RemoteReset",
                });
                status("Accepted")
            }
            "ChangeAvailability" => {
                let target = if p["operationalStatus"] == "Operative" {
                    Availability::Operative
                } else {
                    Availability::Inoperative
                };
                let indices: Vec<usize> = match &p["evse"]["id"] {
                    Value::Null => (0..self.connectors.len()).collect(),
                    v if v == 0 => (0..self.connectors.len()).collect(),
                    v => match self.index_of(v) {
                        Some(i) if p["evse"]["connectorId"].as_u64().is_none_or(|c| c == 1) => vec![i],
                        _ => return status("Rejected"),
                    },
                };
                status(self.set_availability(&indices, target))
            }
            "UnlockConnector" => match self.index_of(&p["evseId"]) {
                Some(i) if p["connectorId"] == 1 => {
                    if self.connectors[i].tx.is_some() {
                        status("OngoingAuthorizedTransaction")
                    } else {
                        status("Unlocked")
                    }
                }
                _ => status("UnknownConnector"),
            },
            "GetVariables" => {
                let results: Vec<Value> = p["getVariableData"]
                    .as_array()
                    .map(|a| a.iter().map(|d| self.get_variable(d)).collect())
                    .unwrap_or_default();
                Ok(json!({ "getVariableResult": results }))
            }
            "SetVariables" => {
                let data: Vec<Value> = p["setVariableData"].as_array().cloned().unwrap_or_default();
                let results: Vec<Value> = data.iter().map(|d| self.set_variable(d)).collect();
                Ok(json!({ "setVariableResult": results }))
            }
            "GetBaseReport" => {
                let request_id = p["requestId"].as_i64().unwrap_or(0);
                let items: Vec<Value> = self.report_items(None);
                self.send_report(request_id, items);
                status("Accepted")
            }
            "GetReport" => {
                let request_id = p["requestId"].as_i64().unwrap_or(0);
                let components: Option<Vec<String>> = p["componentVariable"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|cv| cv["component"]["name"].as_str().map(str::to_string))
                        .collect()
                });
                let items = self.report_items(components.as_deref());
                if items.is_empty() {
                    return status("EmptyResultSet");
                }
                self.send_report(request_id, items);
                status("Accepted")
            }
            "TriggerMessage" => self.trigger_v201(p),
            "CertificateSigned" => {
                if p["certificateType"]
                    .as_str()
                    .is_some_and(|t| t != "ChargingStationCertificate")
                {
                    // No ISO 15118 (V2G) certificate was requested by this station.
                    return Ok(json!({"status": "Rejected", "statusInfo": {"reasonCode": "NotRequested"}}));
                }
                self.certificate_signed(p["certificateChain"].as_str().unwrap_or_default())
            }
            "SetNetworkProfile" => {
                let slot = p["configurationSlot"].as_i64().unwrap_or(-1);
                self.set_network_profile(slot, &p["connectionData"])
            }
            "CustomerInformation" => self.customer_information(p),
            "ClearCache" => {
                self.auth.clear_cache();
                status("Accepted")
            }
            "DataTransfer" => Ok(data_transfer(p)),
            "ReserveNow" => self.reserve_v201(p),
            "CancelReservation" => status(self.cancel_reservation(p["reservationId"].as_i64())),
            "SetChargingProfile" => {
                let evse = wire_id(&p["evseId"]).unwrap_or(0);
                let answer = self.set_profile(evse, &p["chargingProfile"]);
                if answer == "Accepted" {
                    // The EV answers a new TxProfile with its own schedule (K15.FR.10).
                    self.propose_ev_schedule(evse, &p["chargingProfile"]);
                }
                status(answer)
            }
            "ClearChargingProfile" => {
                let criteria = &p["chargingProfileCriteria"];
                let purpose = criteria["chargingProfilePurpose"]
                    .as_str()
                    .and_then(ProfilePurpose::from_name);
                let n = self.profiles.clear(
                    p["chargingProfileId"].as_i64(),
                    wire_id(&criteria["evseId"]),
                    purpose,
                    criteria["stackLevel"].as_i64(),
                );
                status(if n > 0 { "Accepted" } else { "Unknown" })
            }
            "GetCompositeSchedule" => {
                let evse = wire_id(&p["evseId"]).unwrap_or(0);
                let amps = p["chargingRateUnit"] == "A";
                let Some((duration, periods)) = self.composite_schedule(evse, &p["duration"], amps) else {
                    return status("Rejected");
                };
                Ok(json!({
                    "status": "Accepted",
                    "schedule": {
                        "evseId": evse,
                        "duration": duration,
                        "scheduleStart": now_rfc3339(),
                        "chargingRateUnit": if amps { "A" } else { "W" },
                        "chargingSchedulePeriod": periods,
                    },
                }))
            }
            "UpdateFirmware" => {
                let request_id = p["requestId"].as_i64().unwrap_or(0);
                let start = Instant::now() + until(time(&p["firmware"]["retrieveDateTime"]));
                let location = p["firmware"]["location"].as_str().unwrap_or_default();
                let version = firmware_from_location(location);
                self.schedule_firmware(start, |s| json!({"status": s, "requestId": request_id}), version);
                status("Accepted")
            }
            "GetLog" => {
                let request_id = p["requestId"].as_i64().unwrap_or(0);
                let name = format!("log-{}-{}.log", self.spec.id, Utc::now().format("%Y%m%dT%H%M%S"));
                self.schedule_upload(
                    "LogStatusNotification",
                    |s| json!({"status": s, "requestId": request_id}),
                );
                Ok(json!({"status": "Accepted", "filename": name}))
            }
            "SendLocalList" => {
                if !self.settings.flag("LocalAuthListEnabled") {
                    return status("Failed");
                }
                let entries = p["localAuthorizationList"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| {
                                let token = e["idToken"]["idToken"].as_str()?.to_string();
                                Some((token, e["idTokenInfo"]["status"].as_str().map(str::to_string)))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let version = p["versionNumber"].as_i64().unwrap_or(0);
                match self.auth.update(version, p["updateType"] == "Full", entries) {
                    Ok(()) => status("Accepted"),
                    Err(_) => status("VersionMismatch"),
                }
            }
            "GetLocalListVersion" => Ok(json!({ "versionNumber": self.auth.list_version })),
            "GetTransactionStatus" => {
                let queued = self.outbox.durable_len() > 0;
                match p["transactionId"].as_str() {
                    Some(id) => {
                        let ongoing = self
                            .connectors
                            .iter()
                            .any(|c| c.tx.as_ref().is_some_and(|t| t.id == id));
                        Ok(json!({"ongoingIndicator": ongoing, "messagesInQueue": queued}))
                    }
                    None => Ok(json!({ "messagesInQueue": queued })),
                }
            }
            _ => Err((
                ErrorCode::NotSupported,
                format!("{action} is not supported by this station"),
            )),
        }
    }

    fn request_start(&mut self, p: &Value) -> Answer {
        let token = p["idToken"]["idToken"].as_str().unwrap_or_default().to_string();
        let token_type = p["idToken"]["type"].as_str().unwrap_or("Central").to_string();
        let group = p["groupIdToken"]["idToken"].as_str().map(str::to_string);
        let remote_id = p["remoteStartId"].as_i64().unwrap_or(0);
        let i = match &p["evseId"] {
            Value::Null => self
                .connectors
                .iter()
                .position(|c| c.usable() && c.authorized.is_none()),
            id => self.index_of(id),
        };
        let Some(i) = i else { return status("Rejected") };
        if let Some(tx) = &self.connectors[i].tx {
            return Ok(json!({"status": "Rejected", "transactionId": tx.id}));
        }
        if !self.connectors[i].usable() || !self.connectors[i].reservation_admits(&token, group.as_deref()) {
            return status("Rejected");
        }
        if !p["chargingProfile"].is_null() {
            let evse = self.connectors[i].id;
            match Profile::from_json(&p["chargingProfile"], evse) {
                Ok(profile) if profile.purpose == ProfilePurpose::Tx => self.profiles.install(profile),
                _ => return status("Rejected"),
            }
        }
        if self.settings.flag("AuthorizeRemoteTxRequests") {
            self.connectors[i].authorized = None;
            self.queue(
                "Authorize",
                json!({"idToken": {"idToken": token, "type": token_type}}),
                false,
                None,
                Purpose::Authorize { connector: i, token },
            );
        } else {
            self.authorized(i, &token, &token_type, group.as_deref(), Some(remote_id));
        }
        status("Accepted")
    }

    fn trigger_v201(&mut self, p: &Value) -> Answer {
        let only = match &p["evse"]["id"] {
            Value::Null => None,
            id => match self.index_of(id) {
                Some(i) => Some(i),
                None => return status("Rejected"),
            },
        };
        let targets: Vec<usize> = only.map_or_else(|| (0..self.connectors.len()).collect(), |i| vec![i]);
        match p["requestedMessage"].as_str().unwrap_or_default() {
            // F06.FR.17: a station whose boot was already accepted refuses to boot again on
            // request (1.6 has no such rule and keeps answering Accepted).
            "BootNotification" if self.registration == Registration::Accepted => return status("Rejected"),
            "SignChargingStationCertificate" => self.request_certificate("triggered"),
            "BootNotification" => {
                let mut payload = self.boot_payload_for_trigger();
                payload["reason"] = json!("Triggered");
                self.queue("BootNotification", payload, false, None, Purpose::Plain);
            }
            "Heartbeat" => self.queue("Heartbeat", json!({}), false, None, Purpose::Plain),
            "StatusNotification" => {
                for i in targets {
                    self.connectors[i].reported = None;
                    self.report_status(i);
                }
            }
            "MeterValues" | "TransactionEvent" => {
                for i in targets {
                    self.send_meter_values(i, "Trigger");
                }
            }
            "FirmwareStatusNotification" => {
                let s = self.firmware_status;
                self.queue(
                    "FirmwareStatusNotification",
                    json!({ "status": s }),
                    false,
                    None,
                    Purpose::Plain,
                );
            }
            "LogStatusNotification" => {
                let s = if self.diagnostics_status == "Uploading" {
                    "Uploading"
                } else {
                    "Idle"
                };
                self.queue(
                    "LogStatusNotification",
                    json!({ "status": s }),
                    false,
                    None,
                    Purpose::Plain,
                );
            }
            _ => return status("NotImplemented"),
        }
        status("Accepted")
    }

    fn boot_payload_for_trigger(&self) -> Value {
        json!({"reason": "Triggered", "chargingStation": {"model": self.spec.model, "vendorName": self.spec.vendor,
            "firmwareVersion": self.firmware}})
    }

    fn reserve_v201(&mut self, p: &Value) -> Answer {
        let id = p["id"].as_i64().unwrap_or(0);
        let wanted_type = p["connectorType"].as_str();
        let i = match &p["evseId"] {
            Value::Null => self.connectors.iter().position(|c| {
                wanted_type.is_none_or(|t| t == c.connector_type)
                    && c.reservation.is_none()
                    && c.usable()
                    && c.ev.is_none()
            }),
            v => self.index_of(v),
        };
        let Some(i) = i else {
            return status(if p["evseId"].is_null() { "Occupied" } else { "Rejected" });
        };
        if wanted_type.is_some_and(|t| t != self.connectors[i].connector_type) {
            return status("Rejected");
        }
        let verdict = self.reservation_verdict(i, id);
        if verdict != "Accepted" {
            return status(verdict);
        }
        self.place_reservation(
            i,
            Reservation {
                id,
                token: p["idToken"]["idToken"].as_str().unwrap_or_default().to_string(),
                group: p["groupIdToken"]["idToken"].as_str().map(str::to_string),
                expiry: time(&p["expiryDateTime"]).unwrap_or_else(Utc::now),
            },
        );
        status("Accepted")
    }

    fn get_variable(&self, d: &Value) -> Value {
        let component = d["component"]["name"].as_str().unwrap_or_default();
        let variable = d["variable"]["name"].as_str().unwrap_or_default();
        let mut r = json!({"component": d["component"], "variable": d["variable"]});
        if let Some(t) = d["attributeType"].as_str() {
            r["attributeType"] = json!(t);
            if t != "Actual" {
                r["attributeStatus"] = json!("NotSupportedAttributeType");
                return r;
            }
        }
        match self.settings.variable(component, variable) {
            // B06: a write-only variable (the password) is never read back.
            Some(s) if s.write_only => r["attributeStatus"] = json!("Rejected"),
            Some(s) => {
                r["attributeStatus"] = json!("Accepted");
                r["attributeValue"] = json!(s.value);
            }
            None if !self.settings.has_component(component) => r["attributeStatus"] = json!("UnknownComponent"),
            None => r["attributeStatus"] = json!("UnknownVariable"),
        }
        r
    }

    fn set_variable(&mut self, d: &Value) -> Value {
        let component = d["component"]["name"].as_str().unwrap_or_default();
        let variable = d["variable"]["name"].as_str().unwrap_or_default();
        let value = d["attributeValue"].as_str().unwrap_or_default();
        let mut r = json!({"component": d["component"], "variable": d["variable"]});
        if let Some(t) = d["attributeType"].as_str() {
            r["attributeType"] = json!(t);
            if t != "Actual" {
                r["attributeStatus"] = json!("NotSupportedAttributeType");
                return r;
            }
        }
        if (component, variable) == ("OCPPCommCtrlr", "NetworkConfigurationPriority") {
            r["attributeStatus"] = json!(self.set_network_priority(value));
            return r;
        }
        let known_component = self.settings.has_component(component);
        r["attributeStatus"] = json!(match self.settings.set_variable(component, variable, value) {
            Ok(()) => {
                match self.settings.variable(component, variable).and_then(|s| s.key) {
                    Some(key) => self.setting_changed(key),
                    None if (component, variable) == ("SecurityCtrlr", "BasicAuthPassword") => {
                        self.password_changed(value.to_string())
                    }
                    None => {}
                }
                "Accepted"
            }
            Err(Refusal::Unknown) if !known_component => "UnknownComponent",
            Err(Refusal::Unknown) => "UnknownVariable",
            Err(Refusal::Rejected) => "Rejected",
        });
        r
    }

    /// Device-model report entries, optionally only for some components.
    fn report_items(&self, components: Option<&[String]>) -> Vec<Value> {
        self.settings
            .all()
            .iter()
            .filter_map(|s| {
                let (component, variable) = s.variable?;
                if components.is_some_and(|c| !c.is_empty() && !c.iter().any(|n| n == component)) {
                    return None;
                }
                Some(json!({
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "variableAttribute": [if s.write_only {
                        json!({"type": "Actual", "mutability": "WriteOnly"})
                    } else {
                        json!({"type": "Actual", "value": s.value,
                            "mutability": if s.readonly { "ReadOnly" } else { "ReadWrite" }})
                    }],
                    "variableCharacteristics": {"dataType": s.kind.data_type(), "supportsMonitoring": false},
                }))
            })
            .collect()
    }

    /// Sends a report as NotifyReport messages of at most ItemsPerMessage entries.
    fn send_report(&mut self, request_id: i64, items: Vec<Value>) {
        let per = self
            .settings
            .variable("DeviceDataCtrlr", "ItemsPerMessage")
            .and_then(|s| s.value.parse::<usize>().ok())
            .unwrap_or(50)
            .max(1);
        let chunks: Vec<Vec<Value>> = items.chunks(per).map(<[Value]>::to_vec).collect();
        let n = chunks.len();
        for (seq, chunk) in chunks.into_iter().enumerate() {
            let payload = json!({"requestId": request_id, "generatedAt": now_rfc3339(), "seqNo": seq,
                "tbc": seq + 1 < n, "reportData": chunk});
            self.queue("NotifyReport", payload, false, None, Purpose::Plain);
        }
    }
}
