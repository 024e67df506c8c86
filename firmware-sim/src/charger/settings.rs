//! The station's configuration: the standard OCPP 1.6 configuration keys, and the same settings
//! as 2.0.1 device-model variables (component + variable), so one store serves both
//! GetConfiguration/ChangeConfiguration and GetVariables/SetVariables/GetBaseReport.

/// The type of a setting's value, which a change must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-negative integer.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A comma-separated list of measurands.
    Measurands,
    /// Free text.
    Text,
    /// A 2.0.1 BasicAuthPassword: 16 to 40 printable ASCII characters (A00.FR.205).
    Password,
    /// A 1.6 AuthorizationKey: the hex of a 16 to 20 byte printable password.
    HexPassword,
}

impl Kind {
    /// The 2.0.1 `dataType` of variables of this kind.
    pub fn data_type(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::Measurands => "MemberList",
            Kind::Text | Kind::Password | Kind::HexPassword => "string",
        }
    }
}

/// One setting.
#[derive(Debug, Clone)]
pub struct Setting {
    /// Its 1.6 configuration key, if 1.6 has it.
    pub key: Option<&'static str>,
    /// Its 2.0.1 component and variable, if 2.0.1 has it.
    pub variable: Option<(&'static str, &'static str)>,
    /// Current value.
    pub value: String,
    /// Whether the central system may not change it.
    pub readonly: bool,
    /// Whether the central system may set it but never read it back (passwords).
    pub write_only: bool,
    /// Value type.
    pub kind: Kind,
}

/// Measurands a meter of this simulator can sample.
pub const MEASURANDS: [&str; 5] = [
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
];

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such key or variable.
    Unknown,
    /// Read-only, or a value of the wrong type.
    Rejected,
}

/// All settings of a station.
#[derive(Debug, Clone)]
pub struct Settings {
    items: Vec<Setting>,
}

impl Settings {
    /// The defaults for a station with `connectors` connectors and the given intervals.
    pub fn new(connectors: usize, heartbeat: u64, meter_interval: u64, aligned_interval: u64) -> Settings {
        use Kind::*;
        let s =
            |key: Option<&'static str>, var: Option<(&'static str, &'static str)>, value: String, ro: bool, kind| {
                Setting {
                    key,
                    variable: var,
                    value,
                    readonly: ro,
                    write_only: false,
                    kind,
                }
            };
        let sampled = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC".to_string();
        let items = vec![
            s(
                Some("AllowOfflineTxForUnknownId"),
                Some(("AuthCtrlr", "OfflineTxForUnknownIdEnabled")),
                "false".into(),
                false,
                Boolean,
            ),
            s(
                Some("AuthorizationCacheEnabled"),
                Some(("AuthCacheCtrlr", "Enabled")),
                "true".into(),
                false,
                Boolean,
            ),
            s(
                Some("AuthorizeRemoteTxRequests"),
                Some(("AuthCtrlr", "AuthorizeRemoteStart")),
                "false".into(),
                false,
                Boolean,
            ),
            s(
                Some("ClockAlignedDataInterval"),
                Some(("AlignedDataCtrlr", "Interval")),
                aligned_interval.to_string(),
                false,
                Integer,
            ),
            s(
                Some("ConnectionTimeOut"),
                Some(("TxCtrlr", "EVConnectionTimeOut")),
                "120".into(),
                false,
                Integer,
            ),
            s(Some("ConnectorPhaseRotation"), None, "0.RST".into(), false, Text),
            s(Some("GetConfigurationMaxKeys"), None, "50".into(), true, Integer),
            s(
                Some("HeartbeatInterval"),
                Some(("OCPPCommCtrlr", "HeartbeatInterval")),
                heartbeat.to_string(),
                false,
                Integer,
            ),
            s(
                Some("LocalAuthorizeOffline"),
                Some(("AuthCtrlr", "LocalAuthorizeOffline")),
                "true".into(),
                false,
                Boolean,
            ),
            s(
                Some("LocalPreAuthorize"),
                Some(("AuthCtrlr", "LocalPreAuthorize")),
                "false".into(),
                false,
                Boolean,
            ),
            s(
                Some("MeterValuesAlignedData"),
                Some(("AlignedDataCtrlr", "Measurands")),
                "Energy.Active.Import.Register".into(),
                false,
                Measurands,
            ),
            s(
                Some("MeterValuesSampledData"),
                Some(("SampledDataCtrlr", "TxUpdatedMeasurands")),
                sampled,
                false,
                Measurands,
            ),
            s(
                Some("MeterValueSampleInterval"),
                Some(("SampledDataCtrlr", "TxUpdatedInterval")),
                meter_interval.to_string(),
                false,
                Integer,
            ),
            s(Some("NumberOfConnectors"), None, connectors.to_string(), true, Integer),
            s(
                Some("ResetRetries"),
                Some(("OCPPCommCtrlr", "ResetRetries")),
                "3".into(),
                false,
                Integer,
            ),
            s(
                Some("StopTransactionOnEVSideDisconnect"),
                Some(("TxCtrlr", "StopTxOnEVSideDisconnect")),
                "true".into(),
                false,
                Boolean,
            ),
            s(
                Some("StopTransactionOnInvalidId"),
                Some(("TxCtrlr", "StopTxOnInvalidId")),
                "true".into(),
                false,
                Boolean,
            ),
            s(Some("StopTxnAlignedData"), None, "".into(), false, Measurands),
            s(
                Some("StopTxnSampledData"),
                Some(("SampledDataCtrlr", "TxEndedMeasurands")),
                "Energy.Active.Import.Register".into(),
                false,
                Measurands,
            ),
            s(
                Some("SupportedFeatureProfiles"),
                None,
                "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger".into(),
                true,
                Text,
            ),
            s(
                Some("TransactionMessageAttempts"),
                Some(("OCPPCommCtrlr", "MessageAttempts")),
                "3".into(),
                false,
                Integer,
            ),
            s(
                Some("TransactionMessageRetryInterval"),
                Some(("OCPPCommCtrlr", "MessageAttemptInterval")),
                "10".into(),
                false,
                Integer,
            ),
            s(
                Some("UnlockConnectorOnEVSideDisconnect"),
                Some(("TxCtrlr", "UnlockOnEVSideDisconnect")),
                "true".into(),
                false,
                Boolean,
            ),
            s(
                Some("WebSocketPingInterval"),
                Some(("OCPPCommCtrlr", "WebSocketPingInterval")),
                "0".into(),
                false,
                Integer,
            ),
            s(
                Some("LocalAuthListEnabled"),
                Some(("LocalAuthListCtrlr", "Enabled")),
                "true".into(),
                false,
                Boolean,
            ),
            s(
                Some("LocalAuthListMaxLength"),
                Some(("LocalAuthListCtrlr", "Entries")),
                "1000".into(),
                true,
                Integer,
            ),
            s(
                Some("SendLocalListMaxLength"),
                Some(("LocalAuthListCtrlr", "ItemsPerMessage")),
                "100".into(),
                true,
                Integer,
            ),
            s(
                Some("ReserveConnectorZeroSupported"),
                None,
                "false".into(),
                true,
                Boolean,
            ),
            s(
                None,
                Some(("ReservationCtrlr", "Enabled")),
                "true".into(),
                true,
                Boolean,
            ),
            s(
                Some("ChargeProfileMaxStackLevel"),
                Some(("SmartChargingCtrlr", "ProfileStackLevel")),
                "10".into(),
                true,
                Integer,
            ),
            s(
                Some("ChargingScheduleAllowedChargingRateUnit"),
                Some(("SmartChargingCtrlr", "RateUnit")),
                "Current,Power".into(),
                true,
                Text,
            ),
            s(
                Some("ChargingScheduleMaxPeriods"),
                Some(("SmartChargingCtrlr", "PeriodsPerSchedule")),
                "24".into(),
                true,
                Integer,
            ),
            s(
                Some("MaxChargingProfilesInstalled"),
                Some(("SmartChargingCtrlr", "Entries")),
                "20".into(),
                true,
                Integer,
            ),
            s(
                None,
                Some(("SmartChargingCtrlr", "Enabled")),
                "true".into(),
                true,
                Boolean,
            ),
            s(
                None,
                Some(("DeviceDataCtrlr", "ItemsPerMessage")),
                "50".into(),
                true,
                Integer,
            ),
            s(
                None,
                Some(("TxCtrlr", "TxStartPoint")),
                "PowerPathClosed".into(),
                true,
                Text,
            ),
            s(
                None,
                Some(("TxCtrlr", "TxStopPoint")),
                "EVConnected,Authorized".into(),
                true,
                Text,
            ),
        ];
        Settings { items }
    }

    /// Adds the security settings (1.6 security whitepaper, 2.0.1 SecurityCtrlr and the
    /// network priority): the organization a CSR names, the security profile in force, the
    /// write-only password, CSR retry timing.
    pub fn with_security(mut self, organization: &str, profile: u8, priority: &str) -> Settings {
        let s = |key, variable, value: &str, readonly, write_only, kind| Setting {
            key,
            variable,
            value: value.to_string(),
            readonly,
            write_only,
            kind,
        };
        let profile = profile.to_string();
        self.items.extend([
            s(Some("AuthorizationKey"), None, "", false, true, Kind::HexPassword),
            s(
                None,
                Some(("SecurityCtrlr", "BasicAuthPassword")),
                "",
                false,
                true,
                Kind::Password,
            ),
            // 1.6 raises the profile with ChangeConfiguration; 2.0.1 only with SetNetworkProfile.
            s(Some("SecurityProfile"), None, &profile, false, false, Kind::Integer),
            s(
                None,
                Some(("SecurityCtrlr", "SecurityProfile")),
                &profile,
                true,
                false,
                Kind::Integer,
            ),
            s(
                Some("CpoName"),
                Some(("SecurityCtrlr", "OrganizationName")),
                organization,
                false,
                false,
                Kind::Text,
            ),
            s(
                Some("CertSigningWaitMinimum"),
                Some(("SecurityCtrlr", "CertSigningWaitMinimum")),
                "30",
                false,
                false,
                Kind::Integer,
            ),
            s(
                Some("CertSigningRepeatTimes"),
                Some(("SecurityCtrlr", "CertSigningRepeatTimes")),
                "3",
                false,
                false,
                Kind::Integer,
            ),
            s(
                None,
                Some(("OCPPCommCtrlr", "NetworkConfigurationPriority")),
                priority,
                false,
                false,
                Kind::Text,
            ),
        ]);
        self
    }

    /// Sets a value the station itself maintains (read-only to the central system), by 1.6 key
    /// or 2.0.1 variable.
    pub fn force(&mut self, key: Option<&str>, variable: Option<(&str, &str)>, value: &str) {
        for s in &mut self.items {
            let by_key = key.is_some_and(|k| s.key == Some(k));
            let by_variable = variable.is_some_and(|v| s.variable == Some(v));
            if by_key || by_variable {
                s.value = value.to_string();
            }
        }
    }

    /// Every setting.
    pub fn all(&self) -> &[Setting] {
        &self.items
    }

    /// The 1.6 value of `key`.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.items.iter().find(|s| s.key == Some(key))
    }

    /// The 2.0.1 variable `component.variable`.
    pub fn variable(&self, component: &str, variable: &str) -> Option<&Setting> {
        self.items.iter().find(|s| s.variable == Some((component, variable)))
    }

    /// Whether `component` exists in the device model.
    pub fn has_component(&self, component: &str) -> bool {
        self.items
            .iter()
            .any(|s| s.variable.is_some_and(|(c, _)| c == component))
    }

    /// An integer setting by its 1.6 key (0 when unset or not a number).
    pub fn int(&self, key: &str) -> u64 {
        self.get(key).and_then(|s| s.value.parse().ok()).unwrap_or(0)
    }

    /// A boolean setting by its 1.6 key.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|s| s.value.eq_ignore_ascii_case("true"))
    }

    /// The measurands of a list setting, in the order configured.
    pub fn measurands(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|s| {
                s.value
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Changes a 1.6 key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Refusal> {
        let i = self
            .items
            .iter()
            .position(|s| s.key == Some(key))
            .ok_or(Refusal::Unknown)?;
        self.set_at(i, value)
    }

    /// Changes a 2.0.1 variable.
    pub fn set_variable(&mut self, component: &str, variable: &str, value: &str) -> Result<(), Refusal> {
        let i = self
            .items
            .iter()
            .position(|s| s.variable == Some((component, variable)))
            .ok_or(Refusal::Unknown)?;
        self.set_at(i, value)
    }

    fn set_at(&mut self, i: usize, value: &str) -> Result<(), Refusal> {
        let setting = &mut self.items[i];
        if setting.readonly || !valid(setting.kind, value) {
            return Err(Refusal::Rejected);
        }
        setting.value = if setting.kind == Kind::Boolean {
            value.to_ascii_lowercase()
        } else {
            value.to_string()
        };
        Ok(())
    }
}

fn valid(kind: Kind, value: &str) -> bool {
    match kind {
        Kind::Integer => value.parse::<u32>().is_ok(),
        Kind::Boolean => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        Kind::Measurands => value
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .all(|m| MEASURANDS.contains(&m)),
        Kind::Text => value.len() <= 500,
        Kind::Password => (16..=40).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()),
        Kind::HexPassword => password_from_hex(value).is_some(),
    }
}

/// The password a 1.6 AuthorizationKey carries: hex digits (either case) of 16 to 20 printable
/// ASCII bytes.
pub fn password_from_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || !(32..=40).contains(&hex.len()) {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    bytes
        .iter()
        .all(u8::is_ascii_graphic)
        .then(|| String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_variables_are_one_store() {
        let mut s = Settings::new(2, 300, 60, 0);
        assert_eq!(s.int("HeartbeatInterval"), 300);
        assert_eq!(s.int("NumberOfConnectors"), 2);
        s.set_variable("OCPPCommCtrlr", "HeartbeatInterval", "42").unwrap();
        assert_eq!(s.int("HeartbeatInterval"), 42);
        s.set("AuthorizeRemoteTxRequests", "TRUE").unwrap();
        assert!(s.flag("AuthorizeRemoteTxRequests"));
        assert_eq!(s.variable("AuthCtrlr", "AuthorizeRemoteStart").unwrap().value, "true");
        assert!(s.has_component("TxCtrlr") && !s.has_component("Nope"));
    }

    #[test]
    fn changes_are_refused_by_kind_and_mutability() {
        let mut s = Settings::new(1, 300, 60, 0);
        assert_eq!(s.set("NoSuchKey", "1"), Err(Refusal::Unknown));
        assert_eq!(s.set("NumberOfConnectors", "3"), Err(Refusal::Rejected));
        assert_eq!(s.set("HeartbeatInterval", "-5"), Err(Refusal::Rejected));
        assert_eq!(s.set("HeartbeatInterval", "soon"), Err(Refusal::Rejected));
        assert_eq!(s.set("LocalPreAuthorize", "yes"), Err(Refusal::Rejected));
        assert_eq!(
            s.set("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus"),
            Err(Refusal::Rejected)
        );
        s.set("MeterValuesSampledData", "Power.Active.Import, SoC").unwrap();
        assert_eq!(
            s.measurands("MeterValuesSampledData"),
            vec!["Power.Active.Import", "SoC"]
        );
        assert_eq!(s.set_variable("TxCtrlr", "Nope", "1"), Err(Refusal::Unknown));
    }

    #[test]
    fn passwords_are_checked_by_version() {
        let mut s = Settings::new(1, 300, 60, 0).with_security("EVCS", 1, "0");
        let hex: String = "an0ther-Station-p#20".bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(password_from_hex(&hex).as_deref(), Some("an0ther-Station-p#20"));
        assert_eq!(
            password_from_hex(&hex.to_lowercase()).as_deref(),
            Some("an0ther-Station-p#20")
        );
        s.set("AuthorizationKey", &hex).unwrap();
        for bad in [
            "",
            "4142",
            &hex[1..],
            "ZZ".repeat(16).as_str(),
            "20".repeat(16).as_str(),
        ] {
            assert_eq!(s.set("AuthorizationKey", bad), Err(Refusal::Rejected), "{bad:?}");
        }
        s.set_variable("SecurityCtrlr", "BasicAuthPassword", "a-password-of-16")
            .unwrap();
        for bad in ["short", "with space in the password", &"x".repeat(41)] {
            assert_eq!(
                s.set_variable("SecurityCtrlr", "BasicAuthPassword", bad),
                Err(Refusal::Rejected),
                "{bad:?}"
            );
        }
        assert!(s.variable("SecurityCtrlr", "BasicAuthPassword").unwrap().write_only);
        assert_eq!(
            s.set_variable("SecurityCtrlr", "SecurityProfile", "3"),
            Err(Refusal::Rejected),
            "2.0.1 raises the profile with SetNetworkProfile only"
        );
        s.force(None, Some(("SecurityCtrlr", "SecurityProfile")), "3");
        assert_eq!(s.variable("SecurityCtrlr", "SecurityProfile").unwrap().value, "3");
        assert_eq!(s.get("CpoName").unwrap().value, "EVCS");
    }
}
