//! Station certificate management (OCPP 2.0.1 A02, A03 and M; the 1.6 security whitepaper's
//! A02/A03 and M).
//!
//! ## Flow
//! A station sends SignCertificate with a CSR -> [`csr::check`] (well formed, signature,
//! CN = station id, O = configured organization) -> the [`authority::StationCa`] signs it and
//! the certificate is recorded (`Issued`) -> the station is answered Accepted -> a task sends
//! CertificateSigned with the chain (station certificate + CA) and records the station's answer
//! (`Installed`, `Rejected`, `Undelivered`). A refused CSR is answered Rejected and stored as a
//! security event. CertificateSigned goes out from a task of its own because the session that
//! handles SignCertificate must first answer it: the call waits in the session's queue.
//!
//! ## Renewal
//! [`trigger_renewal`] asks a station to send a new CSR (2.0.1 TriggerMessage
//! SignChargingStationCertificate, 1.6 ExtendedTriggerMessage SignChargePointCertificate); the
//! operator calls it through the REST API, and [`sweep`] calls it every
//! `--station-cert-check-secs` for connected stations whose latest installed certificate ends
//! within `--station-cert-renew-days`.

pub mod authority;
pub mod csr;

use crate::app::AppState;
use crate::ocpp_ws::commands::{self, CommandError};
use crate::ocpp_ws::registry::CallOutcome;
use crate::store::certificates::NewCertificate;
use crate::store::types::Ts;
use authority::StationCa;
use chrono::{DateTime, Duration, Utc};
use ocpp::Version;
use serde_json::{json, Value};

/// The certificate type a version's CertificateSigned names (1.6 has no field; this is the
/// whitepaper's name, stored with the certificate).
pub fn station_certificate_type(version: Version) -> &'static str {
    match version {
        Version::V16 => "ChargePointCertificate",
        _ => "ChargingStationCertificate",
    }
}

/// The station CA and the rules for what it signs.
#[derive(Debug)]
pub struct Certificates {
    /// The CA.
    pub ca: StationCa,
    /// The O every CSR must name (`None`: the CA has none and none is configured; any O passes).
    pub organization: Option<String>,
    /// Validity of issued certificates.
    pub validity: Duration,
    /// Renew when the latest certificate ends within this.
    pub renew_before: Duration,
}

/// The answer to a SignCertificate, and the certificate to send after it when Accepted.
#[derive(Debug)]
pub struct SignOutcome {
    /// The SignCertificate response payload.
    pub response: Value,
    /// Set when Accepted: the serial and the chain for CertificateSigned.
    pub deliver: Option<(String, String)>,
}

/// Handles a SignCertificate of either version: checks the CSR, signs and records it, or
/// stores the refusal as a security event. `certificate_type` is the 2.0.1 field (absent: a
/// station certificate).
pub async fn sign_request(
    state: &AppState,
    station_id: &str,
    version: Version,
    csr_pem: &str,
    certificate_type: Option<&str>,
    now: DateTime<Utc>,
) -> SignOutcome {
    let rejected = |reason: &str| SignOutcome {
        response: rejected_response(version, reason),
        deliver: None,
    };
    if certificate_type.is_some_and(|t| t != "ChargingStationCertificate") {
        // ISO 15118 (V2G) certificates need a V2G root this central system does not have.
        tracing::info!(station = %station_id, ?certificate_type, "SignCertificate for a V2G certificate rejected");
        return rejected("V2G certificates are not signed here");
    }
    let certs = &state.certificates;
    let checked = match csr::check(csr_pem, station_id, certs.organization.as_deref()) {
        Ok(checked) => checked,
        Err(rejection) => {
            tracing::warn!(station = %station_id, security_event = rejection.event_type(), reason = %rejection, "CSR refused");
            let detail = rejection.to_string();
            if let Err(e) = state
                .store
                .insert_security_event(
                    station_id,
                    "csms",
                    rejection.event_type(),
                    Some(&detail),
                    Ts::from_datetime(now),
                )
                .await
            {
                tracing::error!(station = %station_id, error = %e, "could not store the security event");
            }
            return rejected(&detail);
        }
    };
    let issued = match certs.ca.sign(&checked, certs.validity, now) {
        Ok(issued) => issued,
        Err(e) => {
            tracing::error!(station = %station_id, error = %e, "signing a checked CSR failed");
            return rejected("the certificate could not be signed");
        }
    };
    let record = NewCertificate {
        station_id,
        serial: &issued.serial,
        certificate_type: station_certificate_type(version),
        not_before: Ts::from_datetime(issued.not_before),
        not_after: Ts::from_datetime(issued.not_after),
        certificate_pem: &issued.cert_pem,
    };
    if let Err(e) = state
        .store
        .insert_issued_certificate(&record, Ts::from_datetime(now))
        .await
    {
        tracing::error!(station = %station_id, error = %e, "could not record the issued certificate");
        return rejected("the certificate could not be recorded");
    }
    tracing::info!(station = %station_id, serial = %issued.serial, not_after = %issued.not_after, "station certificate issued");
    SignOutcome {
        response: json!({ "status": "Accepted" }),
        deliver: Some((issued.serial, issued.chain_pem)),
    }
}

fn rejected_response(version: Version, reason: &str) -> Value {
    match version {
        Version::V16 => json!({ "status": "Rejected" }),
        // statusInfo.additionalInfo is at most 512 characters.
        _ => json!({ "status": "Rejected", "statusInfo": {
            "reasonCode": "InvalidCSR",
            "additionalInfo": reason.chars().take(512).collect::<String>(),
        }}),
    }
}

/// Sends CertificateSigned with `chain` and records the station's answer on the certificate.
/// Runs in a task of its own (see the module docs).
pub async fn deliver(state: AppState, station_id: String, version: Version, serial: String, chain: String) {
    let payload = match version {
        Version::V16 => json!({ "certificateChain": chain }),
        _ => json!({ "certificateChain": chain, "certificateType": "ChargingStationCertificate" }),
    };
    let status = match commands::call(&state, &station_id, "CertificateSigned", payload).await {
        Ok(CallOutcome::Result(answer)) if answer["status"] == "Accepted" => "Installed",
        Ok(CallOutcome::Result(answer)) => {
            tracing::warn!(station = %station_id, %serial, %answer, "the station rejected its certificate");
            "Rejected"
        }
        Ok(CallOutcome::Error { code, .. }) => {
            tracing::warn!(station = %station_id, %serial, %code, "CertificateSigned answered with a CALLERROR");
            "Undelivered"
        }
        Err(e) => {
            tracing::warn!(station = %station_id, %serial, error = %e, "CertificateSigned not delivered");
            "Undelivered"
        }
    };
    if let Err(e) = state.store.set_certificate_status(&serial, status).await {
        tracing::error!(station = %station_id, %serial, error = %e, "could not record the certificate's status");
    }
}

/// The trigger that asks a station of `version` for a new CSR: action and payload.
pub fn renewal_call(version: Version) -> (&'static str, Value) {
    match version {
        Version::V16 => (
            "ExtendedTriggerMessage",
            json!({ "requestedMessage": "SignChargePointCertificate" }),
        ),
        _ => (
            "TriggerMessage",
            json!({ "requestedMessage": "SignChargingStationCertificate" }),
        ),
    }
}

/// Asks a connected station to renew its certificate; returns the action sent and the answer.
pub async fn trigger_renewal(state: &AppState, station_id: &str) -> Result<(&'static str, CallOutcome), CommandError> {
    let version = commands::connected_version(state, station_id).ok_or(CommandError::Offline)?;
    let (action, payload) = renewal_call(version);
    let outcome = commands::call(state, station_id, action, payload).await?;
    Ok((action, outcome))
}

/// Triggers renewal for connected stations whose certificate ends within the renewal window,
/// and prunes security events past `--message-retention-days`, every
/// `--station-cert-check-secs` (and once at start), until shutdown.
pub async fn sweep(state: AppState) {
    let every = std::time::Duration::from_secs(state.config.station_cert_check_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = sweep_once(&state, Utc::now()).await {
            tracing::warn!(error = %e, "certificate renewal sweep failed");
        }
        // Security events follow the stored messages' retention: a station that keeps sending
        // bad CSRs must not grow the table for ever.
        let keep = Duration::days(i64::from(state.config.message_retention_days));
        match state
            .store
            .prune_security_events(Ts::from_datetime(Utc::now() - keep))
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "old security events pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning security events failed"),
        }
    }
}

/// One renewal sweep at `now`; returns the stations it triggered.
pub async fn sweep_once(state: &AppState, now: DateTime<Utc>) -> Result<Vec<String>, crate::store::StoreError> {
    let connected = state.registry.station_ids();
    let deadline = Ts::from_datetime(now + state.certificates.renew_before);
    let due = state.store.certificates_expiring(&connected, deadline).await?;
    for station in &due {
        // Sequential: a sweep is rare, and it keeps one call per station in flight.
        match trigger_renewal(state, station).await {
            Ok((action, outcome)) => {
                tracing::info!(station = %station, action, ?outcome, "certificate renewal triggered")
            }
            Err(e) => tracing::warn!(station = %station, error = %e, "certificate renewal trigger failed"),
        }
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_trigger_per_version() {
        assert_eq!(renewal_call(Version::V16).0, "ExtendedTriggerMessage");
        assert_eq!(
            renewal_call(Version::V16).1["requestedMessage"],
            "SignChargePointCertificate"
        );
        assert_eq!(renewal_call(Version::V201).0, "TriggerMessage");
        assert_eq!(
            renewal_call(Version::V201).1["requestedMessage"],
            "SignChargingStationCertificate"
        );
    }

    #[test]
    fn rejections_carry_a_reason_in_201_only() {
        assert_eq!(rejected_response(Version::V16, "x"), json!({"status": "Rejected"}));
        let long = "r".repeat(600);
        let v201 = rejected_response(Version::V201, &long);
        assert_eq!(v201["statusInfo"]["reasonCode"], "InvalidCSR");
        assert_eq!(v201["statusInfo"]["additionalInfo"].as_str().map(str::len), Some(512));
    }
}
