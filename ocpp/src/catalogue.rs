//! The message catalogue: every action of each version and who may send it.

use crate::Version;

/// Who sends the CALL of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The charger (charge point / charging station) sends the request.
    Station,
    /// The central system (CSMS) sends the request.
    Csms,
    /// Either side may send it (DataTransfer).
    Both,
}

impl Initiator {
    /// Whether a request of this action may come from a charger.
    pub fn station_may_send(self) -> bool {
        matches!(self, Initiator::Station | Initiator::Both)
    }

    /// Whether a request of this action may come from the central system.
    pub fn csms_may_send(self) -> bool {
        matches!(self, Initiator::Csms | Initiator::Both)
    }
}

use Initiator::{Both, Csms, Station};

/// OCPP 1.6J: the 28 messages of the six feature profiles, then the 11 of the security extension.
pub const V16: &[(&str, Initiator)] = &[
    ("Authorize", Station),
    ("BootNotification", Station),
    ("CancelReservation", Csms),
    ("ChangeAvailability", Csms),
    ("ChangeConfiguration", Csms),
    ("ClearCache", Csms),
    ("ClearChargingProfile", Csms),
    ("DataTransfer", Both),
    ("DiagnosticsStatusNotification", Station),
    ("FirmwareStatusNotification", Station),
    ("GetCompositeSchedule", Csms),
    ("GetConfiguration", Csms),
    ("GetDiagnostics", Csms),
    ("GetLocalListVersion", Csms),
    ("Heartbeat", Station),
    ("MeterValues", Station),
    ("RemoteStartTransaction", Csms),
    ("RemoteStopTransaction", Csms),
    ("ReserveNow", Csms),
    ("Reset", Csms),
    ("SendLocalList", Csms),
    ("SetChargingProfile", Csms),
    ("StartTransaction", Station),
    ("StatusNotification", Station),
    ("StopTransaction", Station),
    ("TriggerMessage", Csms),
    ("UnlockConnector", Csms),
    ("UpdateFirmware", Csms),
    // Security extension (OCPP 1.6 Security Whitepaper edition 3).
    ("CertificateSigned", Csms),
    ("DeleteCertificate", Csms),
    ("ExtendedTriggerMessage", Csms),
    ("GetInstalledCertificateIds", Csms),
    ("GetLog", Csms),
    ("InstallCertificate", Csms),
    ("LogStatusNotification", Station),
    ("SecurityEventNotification", Station),
    ("SignCertificate", Station),
    ("SignedFirmwareStatusNotification", Station),
    ("SignedUpdateFirmware", Csms),
];

/// OCPP 2.0.1: all 64 messages.
pub const V201: &[(&str, Initiator)] = &[
    ("Authorize", Station),
    ("BootNotification", Station),
    ("CancelReservation", Csms),
    ("CertificateSigned", Csms),
    ("ChangeAvailability", Csms),
    ("ClearCache", Csms),
    ("ClearChargingProfile", Csms),
    ("ClearDisplayMessage", Csms),
    ("ClearVariableMonitoring", Csms),
    ("ClearedChargingLimit", Station),
    ("CostUpdated", Csms),
    ("CustomerInformation", Csms),
    ("DataTransfer", Both),
    ("DeleteCertificate", Csms),
    ("FirmwareStatusNotification", Station),
    ("Get15118EVCertificate", Station),
    ("GetBaseReport", Csms),
    ("GetCertificateStatus", Station),
    ("GetChargingProfiles", Csms),
    ("GetCompositeSchedule", Csms),
    ("GetDisplayMessages", Csms),
    ("GetInstalledCertificateIds", Csms),
    ("GetLocalListVersion", Csms),
    ("GetLog", Csms),
    ("GetMonitoringReport", Csms),
    ("GetReport", Csms),
    ("GetTransactionStatus", Csms),
    ("GetVariables", Csms),
    ("Heartbeat", Station),
    ("InstallCertificate", Csms),
    ("LogStatusNotification", Station),
    ("MeterValues", Station),
    ("NotifyChargingLimit", Station),
    ("NotifyCustomerInformation", Station),
    ("NotifyDisplayMessages", Station),
    ("NotifyEVChargingNeeds", Station),
    ("NotifyEVChargingSchedule", Station),
    ("NotifyEvent", Station),
    ("NotifyMonitoringReport", Station),
    ("NotifyReport", Station),
    ("PublishFirmware", Csms),
    ("PublishFirmwareStatusNotification", Station),
    ("ReportChargingProfiles", Station),
    ("RequestStartTransaction", Csms),
    ("RequestStopTransaction", Csms),
    ("ReservationStatusUpdate", Station),
    ("ReserveNow", Csms),
    ("Reset", Csms),
    ("SecurityEventNotification", Station),
    ("SendLocalList", Csms),
    ("SetChargingProfile", Csms),
    ("SetDisplayMessage", Csms),
    ("SetMonitoringBase", Csms),
    ("SetMonitoringLevel", Csms),
    ("SetNetworkProfile", Csms),
    ("SetVariableMonitoring", Csms),
    ("SetVariables", Csms),
    ("SignCertificate", Station),
    ("StatusNotification", Station),
    ("TransactionEvent", Station),
    ("TriggerMessage", Csms),
    ("UnlockConnector", Csms),
    ("UnpublishFirmware", Csms),
    ("UpdateFirmware", Csms),
];

/// All actions of `version` with their initiator.
pub fn actions(version: Version) -> &'static [(&'static str, Initiator)] {
    match version {
        Version::V16 => V16,
        Version::V201 => V201,
    }
}

/// Who initiates `action` in `version`, or `None` when the version has no such action.
pub fn initiator(version: Version, action: &str) -> Option<Initiator> {
    actions(version)
        .iter()
        .find(|(name, _)| *name == action)
        .map(|(_, who)| *who)
}

/// The catalogue's own `'static` spelling of `action`, when the version has it (lets callers use
/// action names as labels without allocating or trusting the peer's string).
pub fn canonical(version: Version, action: &str) -> Option<&'static str> {
    actions(version)
        .iter()
        .find(|(name, _)| *name == action)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_sizes_match_the_specifications() {
        assert_eq!(V16.len(), 28 + 11);
        assert_eq!(V201.len(), 64);
        for version in [Version::V16, Version::V201] {
            let mut names: Vec<_> = actions(version).iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), actions(version).len(), "duplicate in {version}");
        }
    }

    #[test]
    fn directions() {
        assert_eq!(initiator(Version::V16, "StartTransaction"), Some(Initiator::Station));
        assert_eq!(initiator(Version::V201, "StartTransaction"), None);
        assert_eq!(
            initiator(Version::V201, "RequestStartTransaction"),
            Some(Initiator::Csms)
        );
        assert!(initiator(Version::V16, "DataTransfer").is_some_and(|i| i.station_may_send() && i.csms_may_send()));
    }
}
