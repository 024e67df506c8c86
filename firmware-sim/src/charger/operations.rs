//! What both versions do the same way when the central system asks: availability,
//! reservations, DataTransfer, uploads. `v16` and `v201` read their version's payloads and
//! call these.

use super::connector::{Availability, Reservation};
use super::engine::{Charger, Job};
use super::profiles::{Profile, Purpose as ProfilePurpose};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// A station's answer to a central-system call: the payload, or a CALLERROR.
pub(super) type Answer = Result<Value, (ocpp::ErrorCode, String)>;

/// An answer that is just `{"status": s}`.
pub(super) fn status(s: &str) -> Answer {
    Ok(json!({ "status": s }))
}

/// The vendor id this simulator answers DataTransfer for (it echoes the data).
pub const VENDOR_ID: &str = "org.evcs.firmware-sim";

/// The answer to DataTransfer: our vendor id echoes its data, any other is unknown.
pub fn data_transfer(p: &Value) -> Value {
    if p["vendorId"] != VENDOR_ID {
        return json!({"status": "UnknownVendorId"});
    }
    let mut answer = json!({"status": "Accepted"});
    if !p["data"].is_null() {
        answer["data"] = p["data"].clone();
    }
    answer
}

/// Parses an RFC 3339 time (the schema already checked the format).
pub(super) fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// How long until a wall-clock instant, from now (zero if past).
pub(super) fn until(t: Option<DateTime<Utc>>) -> Duration {
    t.and_then(|t| (t - Utc::now()).to_std().ok()).unwrap_or_default()
}

/// The firmware version a download location names (its file name without extension).
pub(super) fn firmware_from_location(location: &str) -> Option<String> {
    let file = location.rsplit('/').next()?.split(['?', '#']).next()?;
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    (!stem.is_empty()).then(|| stem.chars().take(50).collect())
}

/// A connector or EVSE number from a payload; one beyond `u32` becomes `u32::MAX`, which names
/// no connector, rather than wrapping round onto a real one.
pub(super) fn wire_id(id: &Value) -> Option<u32> {
    id.as_u64().map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

impl Charger {
    /// The index of connector (1.6) or EVSE (2.0.1) `id`, if it names one.
    pub(super) fn index_of(&self, id: &Value) -> Option<usize> {
        let id = id.as_u64()?;
        (id as usize).checked_sub(1).filter(|i| *i < self.connectors.len())
    }

    /// ChangeAvailability on some connectors: Scheduled where a transaction runs (applied when
    /// it ends), at once elsewhere.
    pub(super) fn set_availability(&mut self, indices: &[usize], target: Availability) -> &'static str {
        let mut scheduled = false;
        for &i in indices {
            let c = &mut self.connectors[i];
            if c.tx.is_some() && target == Availability::Inoperative {
                c.scheduled = Some(target);
                scheduled = true;
            } else {
                c.availability = target;
                c.scheduled = None;
                self.report_status(i);
            }
        }
        if scheduled {
            "Scheduled"
        } else {
            "Accepted"
        }
    }

    /// CancelReservation: Accepted if a connector held it.
    pub(super) fn cancel_reservation(&mut self, id: Option<i64>) -> &'static str {
        match self
            .connectors
            .iter()
            .position(|c| c.reservation.as_ref().map(|r| r.id) == id)
        {
            Some(i) => {
                self.connectors[i].reservation = None;
                self.report_status(i);
                "Accepted"
            }
            None => "Rejected",
        }
    }

    /// Puts a reservation on connector `i`, replacing one with the same id anywhere (a
    /// ReserveNow with a known id updates that reservation).
    pub(super) fn place_reservation(&mut self, i: usize, reservation: Reservation) {
        for c in &mut self.connectors {
            if c.reservation.as_ref().is_some_and(|r| r.id == reservation.id) {
                c.reservation = None;
            }
        }
        self.connectors[i].reservation = Some(reservation);
        self.report_status(i);
    }

    /// Queues an upload's status notifications (Uploading, then Uploaded) a step apart.
    pub(super) fn schedule_upload(&mut self, action: &'static str, payload: impl Fn(&str) -> Value) {
        let step = Duration::from_secs_f64(self.spec.timing.step_secs.max(0.0));
        let now = Instant::now();
        self.jobs.push((now + step, Job::Send(action, payload("Uploading"))));
        self.jobs.push((now + step * 2, Job::Send(action, payload("Uploaded"))));
    }

    /// Whether connector `i` can take reservation `id`: Accepted or the reason it cannot.
    pub(super) fn reservation_verdict(&self, i: usize, id: i64) -> &'static str {
        let c = &self.connectors[i];
        if c.fault.is_some() {
            "Faulted"
        } else if c.availability == Availability::Inoperative {
            "Unavailable"
        } else if c.tx.is_some() || c.ev.is_some() || c.reservation.as_ref().is_some_and(|r| r.id != id) {
            "Occupied"
        } else {
            "Accepted"
        }
    }

    /// SetChargingProfile for connector/EVSE `connector` (0: the station): Accepted when the
    /// profile reads and fits there.
    pub(super) fn set_profile(&mut self, connector: u32, profile: &Value) -> &'static str {
        if connector as usize > self.connectors.len() {
            return "Rejected";
        }
        match Profile::from_json(profile, connector) {
            Ok(profile) if self.profile_fits(&profile) => {
                self.profiles.install(profile);
                "Accepted"
            }
            _ => "Rejected",
        }
    }

    /// GetCompositeSchedule: the duration (at least 1 s) and the periods in the asked unit, or
    /// `None` when `connector` names no connector.
    pub(super) fn composite_schedule(&self, connector: u32, duration: &Value, amps: bool) -> Option<(i64, Vec<Value>)> {
        if connector as usize > self.connectors.len() {
            return None;
        }
        let duration = duration.as_i64().unwrap_or(0).max(1);
        let (periods, phases) = self.composite(connector, duration);
        Some((duration, super::profiles::periods_json(&periods, amps, phases)))
    }

    /// Whether a profile may be installed where it says.
    pub(super) fn profile_fits(&self, profile: &Profile) -> bool {
        match profile.purpose {
            ProfilePurpose::StationMax => profile.connector == 0,
            ProfilePurpose::TxDefault => true,
            ProfilePurpose::Tx => {
                profile.connector > 0
                    && self
                        .connectors
                        .get(profile.connector as usize - 1)
                        .is_some_and(|c| c.tx.is_some())
            }
        }
    }

    /// Composite schedule of connector `connector` (0: the station) and its phase count.
    pub(super) fn composite(&self, connector: u32, duration: i64) -> (Vec<(i64, f64)>, u8) {
        let (start, max_w, phases) = match connector.checked_sub(1).and_then(|i| self.connectors.get(i as usize)) {
            Some(c) => (c.tx.as_ref().map(|t| t.started), c.max_w, c.phases),
            None => (None, self.connectors.iter().map(|c| c.max_w).sum(), 3),
        };
        (
            self.profiles
                .composite(connector, Utc::now(), duration, start, phases, max_w),
            phases,
        )
    }

    /// A setting changed: apply what takes effect at once.
    pub(super) fn setting_changed(&mut self, key: &str) {
        match key {
            "AuthorizationKey" => {
                let hex = self.settings.get(key).map(|s| s.value.clone()).unwrap_or_default();
                if let Some(password) = super::settings::password_from_hex(&hex) {
                    self.password_changed(password);
                }
            }
            "HeartbeatInterval" => {
                self.heartbeat_every = Duration::from_secs(self.settings.int("HeartbeatInterval").max(1));
            }
            "MeterValueSampleInterval" => {
                let every = self.settings.int("MeterValueSampleInterval");
                for i in 0..self.connectors.len() {
                    if self.connectors[i].tx.is_some() {
                        self.next_sample[i] = (every > 0).then(|| Instant::now() + Duration::from_secs(every));
                    }
                }
            }
            _ => {}
        }
    }

    /// Queues the firmware-update sequence from `start`, then the reboot into the new version.
    pub(super) fn schedule_firmware(
        &mut self,
        start: Instant,
        payload: impl Fn(&str) -> Value,
        version: Option<String>,
    ) {
        let step = Duration::from_secs_f64(self.spec.timing.step_secs.max(0.0));
        for (n, s) in ["Downloading", "Downloaded", "Installing"].iter().enumerate() {
            self.jobs.push((
                start + step * n as u32,
                Job::Send("FirmwareStatusNotification", payload(s)),
            ));
        }
        self.jobs.push((
            start + step * 3,
            Job::Send("FirmwareStatusNotification", payload("Installed")),
        ));
        self.jobs
            .push((start + step * 4, Job::Reboot("FirmwareUpdate", version)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_version_from_location() {
        assert_eq!(
            firmware_from_location("https://fw.example/sim-2.1.0.bin").as_deref(),
            Some("sim-2.1.0")
        );
        assert_eq!(firmware_from_location("ftp://x/fw?token=1").as_deref(), Some("fw"));
        assert_eq!(firmware_from_location("https://x/"), None);
    }
}
