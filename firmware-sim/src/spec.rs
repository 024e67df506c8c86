//! What a simulated station is: identity, version, connectors, EV, credentials. Built from
//! `run` flags or read from a TOML station file (`[[station]]` tables, see `stations.example.toml`).

use anyhow::{bail, Context};
use ocpp::Version;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One simulated charging station.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StationSpec {
    /// Station id (the last path segment of the OCPP URL).
    pub id: String,
    /// OCPP version: "1.6" or "2.0.1".
    #[serde(default = "default_version")]
    pub version: Version,
    /// Central-system URL without the station id, e.g. `ws://127.0.0.1:9000/ocpp`.
    #[serde(default)]
    pub url: Option<String>,
    /// Vendor name reported at boot.
    #[serde(default = "default_vendor")]
    pub vendor: String,
    /// Model reported at boot.
    #[serde(default = "default_model")]
    pub model: String,
    /// Serial number reported at boot.
    #[serde(default)]
    pub serial: Option<String>,
    /// Firmware version reported at boot.
    #[serde(default = "default_firmware")]
    pub firmware: String,
    /// Connectors (1.6) or EVSEs with one connector each (2.0.1), numbered from 1.
    #[serde(default = "default_connectors")]
    pub connectors: Vec<ConnectorSpec>,
    /// The EV that gets plugged in.
    #[serde(default)]
    pub ev: EvSpec,
    /// Credentials and TLS settings (security profiles 1, 2 and 3).
    #[serde(default)]
    pub security: SecuritySpec,
    /// Timing of the firmware.
    #[serde(default)]
    pub timing: TimingSpec,
    /// Directory where the offline queue and meter registers persist across restarts.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// ISO 15118 (2.0.1 only): the EV negotiates its charging with the central system.
    #[serde(default)]
    pub iso15118: Option<Iso15118Spec>,
}

/// What an ISO 15118 EV tells and proposes (OCPP 2.0.1 K15-K17).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Iso15118Spec {
    /// `requestedEnergyTransfer`: `AC_single_phase`, `AC_two_phase`, `AC_three_phase` or `DC`.
    #[serde(default = "default_energy_transfer")]
    pub energy_transfer: String,
    /// Minutes from the transaction's start to the EV's departure; 0 sends no departure time.
    #[serde(default = "default_departure_mins")]
    pub departure_mins: u64,
    /// The EV's minimum current per phase, A (AC).
    #[serde(default = "default_min_current")]
    pub min_current: u32,
    /// The schedule the EV proposes after each TxProfile it receives.
    #[serde(default)]
    pub schedule: EvSchedulePolicy,
}

impl Default for Iso15118Spec {
    fn default() -> Self {
        Iso15118Spec {
            energy_transfer: default_energy_transfer(),
            departure_mins: default_departure_mins(),
            min_current: default_min_current(),
            schedule: EvSchedulePolicy::default(),
        }
    }
}

/// How the EV's NotifyEVChargingSchedule relates to the TxProfile it got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvSchedulePolicy {
    /// The profile's own schedule: it fits.
    #[default]
    Fit,
    /// Twice the profile's limits, every time: it never fits.
    Exceed,
    /// Twice the limits for the first profile of a transaction, then fitting ones: the central
    /// system has to renegotiate once.
    ExceedOnce,
}

/// A connector (1.6) or an EVSE with its connector (2.0.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConnectorSpec {
    /// Connector type as 2.0.1 names it (`cType2`, `cCCS2`, `sType2`, ...).
    #[serde(default = "default_connector_type")]
    pub connector_type: String,
    /// Maximum power in kW.
    #[serde(default = "default_max_kw")]
    pub max_kw: f64,
    /// Number of phases (1 or 3; DC connectors report 3).
    #[serde(default = "default_phases")]
    pub phases: u8,
}

/// The EV's battery and on-board charger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EvSpec {
    /// Usable battery capacity in kWh.
    pub capacity_kwh: f64,
    /// State of charge when plugged in, in percent.
    pub soc_percent: f64,
    /// Most power the EV accepts, in kW.
    pub max_kw: f64,
}

impl Default for EvSpec {
    fn default() -> Self {
        EvSpec {
            capacity_kwh: 60.0,
            soc_percent: 20.0,
            max_kw: 11.0,
        }
    }
}

/// Security profile settings. Profile 1: `password`; 2: `password` + `ca` with a `wss://` URL;
/// 3: `client-cert` + `client-key` (+ `ca`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecuritySpec {
    /// HTTP Basic password (the user name is the station id).
    pub password: Option<String>,
    /// PEM file of the CA that signed the server certificate (default: none trusted but this).
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain (profile 3).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate (profile 3).
    pub client_key: Option<PathBuf>,
    /// The organization (O) the station's certificate requests name: 1.6 `CpoName`, 2.0.1
    /// `SecurityCtrlr.OrganizationName` (default `EVCS`, the central system's embedded CA).
    pub organization: Option<String>,
    /// Days before its certificate ends that the station asks for a new one (default 30).
    pub cert_renew_days: Option<u32>,
}

/// Timing knobs, in seconds unless named otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TimingSpec {
    /// Meter sample interval during a transaction (MeterValueSampleInterval /
    /// SampledDataCtrlr.TxUpdatedInterval).
    pub meter_interval: u64,
    /// Clock-aligned sample interval, 0 for none (ClockAlignedDataInterval / AlignedDataCtrlr.Interval).
    pub aligned_interval: u64,
    /// Heartbeat interval used until the central system sets one.
    pub heartbeat: u64,
    /// First reconnect delay; doubles up to `reconnect-max`, with jitter.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
    /// How long to wait for the answer to a call before giving up on the connection.
    pub call_timeout: u64,
    /// Seconds between the steps of a firmware update or a log upload.
    pub step_secs: f64,
    /// How long a reset's reboot takes, in milliseconds.
    pub reboot_ms: u64,
    /// Seconds of simulated time per real second for the EV battery (speeds up SoC tests).
    pub time_scale: f64,
}

impl Default for TimingSpec {
    fn default() -> Self {
        TimingSpec {
            meter_interval: 60,
            aligned_interval: 0,
            heartbeat: 300,
            reconnect_min_ms: 1000,
            reconnect_max_ms: 60_000,
            call_timeout: 30,
            step_secs: 1.0,
            reboot_ms: 1000,
            time_scale: 1.0,
        }
    }
}

impl TimingSpec {
    /// The call timeout as a duration.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout.max(1))
    }
}

/// A TOML station file: `url` as a default, then `[[station]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StationFile {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    station: Vec<StationSpec>,
}

/// Reads a station file; stations without a `url` get the file's, then one of `default_urls`
/// (round robin by the station's position in the file).
pub fn load_file(path: &Path, default_urls: &[String]) -> anyhow::Result<Vec<StationSpec>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_file(&text, default_urls).with_context(|| format!("in {}", path.display()))
}

/// Parses the text of a station file.
pub fn parse_file(text: &str, default_urls: &[String]) -> anyhow::Result<Vec<StationSpec>> {
    let file: StationFile = toml::from_str(text)?;
    if file.station.is_empty() {
        bail!("no [[station]] table");
    }
    let mut stations = file.station;
    for (i, s) in stations.iter_mut().enumerate() {
        if s.url.is_none() {
            s.url = file
                .url
                .clone()
                .or_else(|| round_robin(default_urls, i).map(str::to_string));
        }
        s.check()?;
    }
    Ok(stations)
}

/// Station `index`'s URL from a list of central-system URLs, round robin (each entry may
/// itself hold several separated by commas); `None` for an empty list. This is how a fleet
/// spreads over several central-system nodes for multi-node tests, without a load balancer.
pub fn round_robin(urls: &[String], index: usize) -> Option<&str> {
    let all: Vec<&str> = urls
        .iter()
        .flat_map(|u| u.split(','))
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    (!all.is_empty()).then(|| all[index % all.len()])
}

impl StationSpec {
    /// A station with the defaults for everything but its id, version and URL.
    pub fn new(id: &str, version: Version, url: &str) -> StationSpec {
        StationSpec {
            id: id.to_string(),
            version,
            url: Some(url.to_string()),
            vendor: default_vendor(),
            model: default_model(),
            serial: None,
            firmware: default_firmware(),
            connectors: default_connectors(),
            ev: EvSpec::default(),
            security: SecuritySpec::default(),
            timing: TimingSpec::default(),
            state_dir: None,
            iso15118: None,
        }
    }

    /// Refuses specs that cannot work, with the reason.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.id.is_empty() || self.id.len() > 48 || self.id.contains('/') {
            bail!("station id {:?} must be 1 to 48 characters without '/'", self.id);
        }
        if self.url.is_none() {
            bail!("station {}: no central-system url", self.id);
        }
        if self.connectors.is_empty() {
            bail!("station {}: at least one connector", self.id);
        }
        for c in &self.connectors {
            if c.max_kw.is_nan() || c.max_kw <= 0.0 || !(c.phases == 1 || c.phases == 3) {
                bail!("station {}: connector power must be > 0 and phases 1 or 3", self.id);
            }
        }
        if !(self.ev.capacity_kwh > 0.0 && self.ev.max_kw > 0.0 && (0.0..=100.0).contains(&self.ev.soc_percent)) {
            bail!("station {}: EV capacity and power must be > 0 and SoC 0..=100", self.id);
        }
        if self.security.client_cert.is_some() != self.security.client_key.is_some() {
            bail!("station {}: client-cert and client-key go together", self.id);
        }
        if let Some(iso) = &self.iso15118 {
            if self.version != Version::V201 {
                bail!("station {}: iso15118 needs OCPP 2.0.1", self.id);
            }
            if !["DC", "AC_single_phase", "AC_two_phase", "AC_three_phase"].contains(&iso.energy_transfer.as_str()) {
                bail!(
                    "station {}: unknown iso15118 energy-transfer {:?}",
                    self.id,
                    iso.energy_transfer
                );
            }
        }
        if self.timing.time_scale <= 0.0 {
            bail!("station {}: time-scale must be > 0", self.id);
        }
        Ok(())
    }

    /// The full WebSocket URL of this station.
    pub fn station_url(&self) -> String {
        format!(
            "{}/{}",
            self.url.as_deref().unwrap_or_default().trim_end_matches('/'),
            self.id
        )
    }
}

fn default_version() -> Version {
    Version::V16
}
fn default_vendor() -> String {
    "EVCS".into()
}
fn default_model() -> String {
    "FirmwareSim".into()
}
fn default_firmware() -> String {
    "1.0.0".into()
}
fn default_connector_type() -> String {
    "cType2".into()
}
fn default_max_kw() -> f64 {
    22.0
}
fn default_energy_transfer() -> String {
    "AC_three_phase".into()
}
fn default_departure_mins() -> u64 {
    480
}
fn default_min_current() -> u32 {
    6
}
fn default_phases() -> u8 {
    3
}
fn default_connectors() -> Vec<ConnectorSpec> {
    vec![ConnectorSpec {
        connector_type: default_connector_type(),
        max_kw: default_max_kw(),
        phases: default_phases(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_file_with_defaults_and_overrides() {
        let text = r#"
            url = "ws://cs:9000/ocpp"
            [[station]]
            id = "CP-1"
            [[station]]
            id = "CP-2"
            version = "2.0.1"
            url = "wss://other/ocpp"
            connectors = [{ connector-type = "cCCS2", max-kw = 150.0 }, {}]
            security = { password = "secret" }
            timing = { meter-interval = 5, heartbeat = 60, reconnect-min-ms = 100, reconnect-max-ms = 1000,
                       call-timeout = 10, step-secs = 0.5, reboot-ms = 100, aligned-interval = 0, time-scale = 1.0 }
        "#;
        let stations = parse_file(text, &[]).unwrap();
        assert_eq!(stations[0].station_url(), "ws://cs:9000/ocpp/CP-1");
        assert_eq!(stations[0].version, Version::V16);
        assert_eq!(stations[1].version, Version::V201);
        assert_eq!(stations[1].station_url(), "wss://other/ocpp/CP-2");
        assert_eq!(stations[1].connectors.len(), 2);
        assert_eq!(stations[1].connectors[0].connector_type, "cCCS2");
        assert_eq!(stations[1].connectors[1].max_kw, 22.0);
        assert_eq!(stations[1].timing.meter_interval, 5);
        assert_eq!(stations[1].iso15118, None);
    }

    #[test]
    fn stations_without_a_url_spread_over_the_default_urls() {
        let text = "[[station]]\nid = \"A\"\n[[station]]\nid = \"B\"\n[[station]]\nid = \"C\"\n\
                    [[station]]\nid = \"D\"\nurl = \"ws://own/ocpp\"";
        let urls = vec!["ws://a/ocpp".to_string(), "ws://b/ocpp".to_string()];
        let stations = parse_file(text, &urls).unwrap();
        let picked: Vec<String> = stations.iter().map(StationSpec::station_url).collect();
        assert_eq!(
            picked,
            ["ws://a/ocpp/A", "ws://b/ocpp/B", "ws://a/ocpp/C", "ws://own/ocpp/D"]
        );
        // A file-wide url wins over the flag's list.
        let text = format!("url = \"ws://file/ocpp\"\n{text}");
        assert_eq!(parse_file(&text, &urls).unwrap()[1].station_url(), "ws://file/ocpp/B");
        assert_eq!(round_robin(&["ws://x, ws://y".to_string()], 3), Some("ws://y"));
        assert_eq!(round_robin(&[], 0), None);
    }

    #[test]
    fn iso15118_table_with_defaults() {
        let text = "url = \"ws://x\"\n[[station]]\nid = \"A\"\nversion = \"2.0.1\"\n\
                    iso15118 = { schedule = \"exceed-once\", departure-mins = 60 }";
        let stations = parse_file(text, &[]).unwrap();
        let iso = stations[0].iso15118.clone().unwrap();
        assert_eq!(iso.schedule, EvSchedulePolicy::ExceedOnce);
        assert_eq!((iso.departure_mins, iso.min_current), (60, 6));
        assert_eq!(iso.energy_transfer, "AC_three_phase");
    }

    #[test]
    fn bad_station_files_are_refused_with_a_reason() {
        for (text, why) in [
            ("", "no [[station]]"),
            ("[[station]]\nid = \"A\"", "no central-system url"),
            (
                "url = \"ws://x\"\n[[station]]\nid = \"A\"\nversion = \"1.5\"",
                "unknown variant",
            ),
            ("url = \"ws://x\"\n[[station]]\nid = \"A\"\ncolour = 1", "unknown field"),
            ("url = \"ws://x\"\n[[station]]\nid = \"A/B\"", "without '/'"),
            (
                "url = \"ws://x\"\n[[station]]\nid = \"A\"\nconnectors = []",
                "at least one connector",
            ),
            (
                "url = \"ws://x\"\n[[station]]\nid = \"A\"\niso15118 = {}",
                "iso15118 needs OCPP 2.0.1",
            ),
            (
                "url = \"ws://x\"\n[[station]]\nid = \"A\"\nversion = \"2.0.1\"\niso15118 = { energy-transfer = \"AC\" }",
                "unknown iso15118 energy-transfer",
            ),
        ] {
            let err = format!("{:#}", parse_file(text, &[]).unwrap_err());
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
