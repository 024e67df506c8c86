//! OCPP 1.6J: the station's answers to the central system's calls.

use super::connector::{Availability, Reservation};
use super::engine::{now_rfc3339, Charger, Reboot};
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
    pub(super) fn handle_v16(&mut self, action: &str, p: &Value) -> Answer {
        match action {
            "RemoteStartTransaction" => self.remote_start_v16(p),
            "RemoteStopTransaction" => {
                let id = p["transactionId"].to_string();
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
                let hard = p["type"] == "Hard";
                for i in 0..self.connectors.len() {
                    if self.connectors[i].tx.is_some() {
                        self.stop_transaction(
                            i,
                            if hard {
                                StopReason::HardReset
                            } else {
                                StopReason::SoftReset
                            },
                        );
                    }
                }
                // A soft reset lets the stop messages go out first; a hard one waits less.
                let grace = if hard { 2 } else { 10 };
                self.reboot = Some(Reboot {
                    deadline: Instant::now() + Duration::from_secs(grace),
                    when_idle: false,
                    reason: "RemoteReset",
                });
                status("Accepted")
            }
            "ChangeAvailability" => {
                let target = if p["type"] == "Operative" {
                    Availability::Operative
                } else {
                    Availability::Inoperative
                };
                let indices: Vec<usize> = if p["connectorId"] == 0 {
                    (0..self.connectors.len()).collect()
                } else {
                    match self.index_of(&p["connectorId"]) {
                        Some(i) => vec![i],
                        None => return status("Rejected"),
                    }
                };
                status(self.set_availability(&indices, target))
            }
            "UnlockConnector" => match self.index_of(&p["connectorId"]) {
                None => status("NotSupported"),
                Some(i) => {
                    if self.connectors[i].tx.is_some() {
                        self.stop_transaction(i, StopReason::UnlockCommand);
                    }
                    status("Unlocked")
                }
            },
            "GetConfiguration" => {
                let wanted: Option<Vec<&str>> = p["key"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect());
                let max = self.settings.int("GetConfigurationMaxKeys") as usize;
                let entry = |s: &super::settings::Setting| {
                    let mut e = json!({"key": s.key.unwrap_or_default(), "readonly": s.readonly});
                    // A write-only key (AuthorizationKey) is listed without its value.
                    if !s.write_only {
                        e["value"] = json!(s.value);
                    }
                    e
                };
                match wanted {
                    Some(keys) if !keys.is_empty() => {
                        let known: Vec<Value> = keys.iter().filter_map(|k| self.settings.get(k)).map(entry).collect();
                        let unknown: Vec<&str> = keys
                            .iter()
                            .copied()
                            .filter(|k| self.settings.get(k).is_none())
                            .collect();
                        let mut answer = json!({"configurationKey": known});
                        if !unknown.is_empty() {
                            answer["unknownKey"] = json!(unknown);
                        }
                        Ok(answer)
                    }
                    _ => {
                        let all: Vec<Value> = self
                            .settings
                            .all()
                            .iter()
                            .filter(|s| s.key.is_some())
                            .take(max.max(1))
                            .map(entry)
                            .collect();
                        Ok(json!({"configurationKey": all}))
                    }
                }
            }
            "ChangeConfiguration" => {
                let key = p["key"].as_str().unwrap_or_default();
                let value = p["value"].as_str().unwrap_or_default();
                if key == "SecurityProfile" {
                    return status(self.raise_security_profile(value));
                }
                match self.settings.set(key, value) {
                    Ok(()) => {
                        self.setting_changed(key);
                        status("Accepted")
                    }
                    Err(Refusal::Unknown) => status("NotSupported"),
                    Err(Refusal::Rejected) => status("Rejected"),
                }
            }
            "ClearCache" => {
                self.auth.clear_cache();
                status("Accepted")
            }
            "DataTransfer" => Ok(data_transfer(p)),
            "TriggerMessage" => self.trigger_v16(p),
            "ExtendedTriggerMessage" => self.extended_trigger_v16(p),
            "CertificateSigned" => self.certificate_signed(p["certificateChain"].as_str().unwrap_or_default()),
            "ReserveNow" => self.reserve_v16(p),
            "CancelReservation" => status(self.cancel_reservation(p["reservationId"].as_i64())),
            "SetChargingProfile" => {
                let connector = wire_id(&p["connectorId"]).unwrap_or(0);
                status(self.set_profile(connector, &p["csChargingProfiles"]))
            }
            "ClearChargingProfile" => {
                let purpose = p["chargingProfilePurpose"].as_str().and_then(ProfilePurpose::from_name);
                let n = self.profiles.clear(
                    p["id"].as_i64(),
                    wire_id(&p["connectorId"]),
                    purpose,
                    p["stackLevel"].as_i64(),
                );
                status(if n > 0 { "Accepted" } else { "Unknown" })
            }
            "GetCompositeSchedule" => {
                let connector = wire_id(&p["connectorId"]).unwrap_or(0);
                let amps = p["chargingRateUnit"] == "A";
                let Some((duration, periods)) = self.composite_schedule(connector, &p["duration"], amps) else {
                    return status("Rejected");
                };
                Ok(json!({
                    "status": "Accepted",
                    "connectorId": connector,
                    "scheduleStart": now_rfc3339(),
                    "chargingSchedule": {
                        "duration": duration,
                        "chargingRateUnit": if amps { "A" } else { "W" },
                        "chargingSchedulePeriod": periods,
                    },
                }))
            }
            "GetDiagnostics" => {
                let name = format!(
                    "diagnostics-{}-{}.log",
                    self.spec.id,
                    Utc::now().format("%Y%m%dT%H%M%S")
                );
                self.schedule_upload("DiagnosticsStatusNotification", |s| json!({ "status": s }));
                Ok(json!({ "fileName": name }))
            }
            "UpdateFirmware" => {
                let start = Instant::now() + until(time(&p["retrieveDate"]));
                let new_version = firmware_from_location(p["location"].as_str().unwrap_or_default());
                self.schedule_firmware(start, |s| json!({ "status": s }), new_version);
                Ok(json!({}))
            }
            "SendLocalList" => {
                if !self.settings.flag("LocalAuthListEnabled") {
                    return status("NotSupported");
                }
                let entries = p["localAuthorizationList"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| {
                                let token = e["idTag"].as_str()?.to_string();
                                Some((token, e["idTagInfo"]["status"].as_str().map(str::to_string)))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let version = p["listVersion"].as_i64().unwrap_or(0);
                match self.auth.update(version, p["updateType"] == "Full", entries) {
                    Ok(()) => status("Accepted"),
                    Err(_) => status("VersionMismatch"),
                }
            }
            "GetLocalListVersion" => Ok(json!({ "listVersion": self.auth.list_version })),
            _ => Err((
                ErrorCode::NotSupported,
                format!("{action} is not supported by this station"),
            )),
        }
    }

    fn remote_start_v16(&mut self, p: &Value) -> Answer {
        let token = p["idTag"].as_str().unwrap_or_default().to_string();
        let i = match &p["connectorId"] {
            Value::Null => self
                .connectors
                .iter()
                .position(|c| c.usable() && c.authorized.is_none()),
            id => self.index_of(id),
        };
        let Some(i) =
            i.filter(|i| self.connectors[*i].usable() && self.connectors[*i].reservation_admits(&token, None))
        else {
            return status("Rejected");
        };
        if !p["chargingProfile"].is_null() {
            let connector = self.connectors[i].id;
            match Profile::from_json(&p["chargingProfile"], connector) {
                Ok(profile) if profile.purpose == ProfilePurpose::Tx => self.profiles.install(profile),
                _ => return status("Rejected"),
            }
        }
        if self.settings.flag("AuthorizeRemoteTxRequests") {
            self.queue(
                "Authorize",
                json!({"idTag": token}),
                false,
                None,
                Purpose::Authorize { connector: i, token },
            );
        } else {
            self.authorized(i, &token, "Central", None, None);
        }
        status("Accepted")
    }

    fn trigger_v16(&mut self, p: &Value) -> Answer {
        let only = match &p["connectorId"] {
            Value::Null => None,
            id => match self.index_of(id) {
                Some(i) => Some(i),
                None if id == 0 => None,
                None => return status("Rejected"),
            },
        };
        let targets: Vec<usize> = only.map_or_else(|| (0..self.connectors.len()).collect(), |i| vec![i]);
        match p["requestedMessage"].as_str().unwrap_or_default() {
            "BootNotification" => {
                let payload = json!({"chargePointVendor": self.spec.vendor, "chargePointModel": self.spec.model,
                    "firmwareVersion": self.firmware});
                self.queue("BootNotification", payload, false, None, Purpose::Plain);
            }
            "Heartbeat" => self.queue("Heartbeat", json!({}), false, None, Purpose::Plain),
            "StatusNotification" => {
                for i in targets {
                    self.connectors[i].reported = None;
                    self.report_status(i);
                }
            }
            "MeterValues" => {
                for i in targets {
                    self.send_meter_values(i, "Trigger");
                }
            }
            "DiagnosticsStatusNotification" => {
                let s = self.diagnostics_status;
                let s = if matches!(s, "Uploading" | "Uploaded") {
                    s
                } else {
                    "Idle"
                };
                self.queue(
                    "DiagnosticsStatusNotification",
                    json!({ "status": s }),
                    false,
                    None,
                    Purpose::Plain,
                );
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
            _ => return status("NotImplemented"),
        }
        status("Accepted")
    }

    /// The 1.6 security whitepaper's ExtendedTriggerMessage: the messages of TriggerMessage
    /// plus SignChargePointCertificate and LogStatusNotification.
    fn extended_trigger_v16(&mut self, p: &Value) -> Answer {
        match p["requestedMessage"].as_str().unwrap_or_default() {
            "SignChargePointCertificate" => {
                self.request_certificate("triggered");
                status("Accepted")
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
                status("Accepted")
            }
            _ => self.trigger_v16(p),
        }
    }

    fn reserve_v16(&mut self, p: &Value) -> Answer {
        let Some(i) = self.index_of(&p["connectorId"]) else {
            // Connector 0 needs ReserveConnectorZeroSupported, which this station does not offer.
            return status("Rejected");
        };
        let id = p["reservationId"].as_i64().unwrap_or(0);
        let verdict = self.reservation_verdict(i, id);
        if verdict != "Accepted" {
            return status(verdict);
        }
        self.place_reservation(
            i,
            Reservation {
                id,
                token: p["idTag"].as_str().unwrap_or_default().to_string(),
                group: p["parentIdTag"].as_str().map(str::to_string),
                expiry: time(&p["expiryDate"]).unwrap_or_else(Utc::now),
            },
        );
        status("Accepted")
    }
}
