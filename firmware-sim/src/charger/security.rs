//! The station side of OCPP security, both versions: its certificate (a CSR when triggered or
//! when the installed one nears its end, retried per CertSigningWaitMinimum /
//! CertSigningRepeatTimes; CertificateSigned checked against the pending key and installed),
//! the HTTP Basic password (2.0.1 BasicAuthPassword, 1.6 AuthorizationKey), the security
//! profile and network profiles (2.0.1 SetNetworkProfile + NetworkConfigurationPriority, 1.6
//! ChangeConfiguration SecurityProfile), and CustomerInformation (2.0.1 N09/N10).
//!
//! A change of credentials takes effect on a new connection: the engine closes the socket after
//! the answer went out and reconnects at once (a reboot for a new network profile). Until that
//! connection succeeds the change is on trial: after [`TRIAL_ATTEMPTS`] failed attempts the
//! station falls back to what it connected with before, so a credential the central system
//! does not take cannot lock the station out.

use super::certificate::{self, ChainRejection};
use super::engine::{now_rfc3339, Charger};
use super::network::{Identity, Network};
use super::operations::{status, Answer};
use super::outbox::Purpose;
use super::Event;
use chrono::Utc;
use ocpp::Version;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// Failed connection attempts with new credentials before falling back to the old ones.
pub(super) const TRIAL_ATTEMPTS: u32 = 3;

/// The least time between two certificate renewals the station starts by itself.
const AUTO_RENEWAL_PAUSE: Duration = Duration::from_secs(3600);

/// The organization a station's CSR names when none is configured (that of the central
/// system's embedded station CA).
pub const DEFAULT_ORGANIZATION: &str = "EVCS";

/// Days before its certificate ends that a station renews it, unless configured.
pub const DEFAULT_RENEW_DAYS: u32 = 30;

/// A SignCertificate waiting for its CertificateSigned.
#[derive(Debug, Clone)]
pub(super) struct PendingCsr {
    pub request: certificate::Request,
    /// When to send it again if no certificate came.
    pub retry_at: Instant,
    /// Times sent.
    pub sent: u32,
}

/// Credentials being tried, and what to return to if they fail.
#[derive(Debug, Clone)]
pub(super) struct Trial {
    pub previous: Network,
    pub failures: u32,
    pub what: String,
}

impl Charger {
    /// Generates a key pair and sends SignCertificate with its CSR (A02 when `why` is a
    /// trigger, A03 when the station renews by itself).
    pub(super) fn request_certificate(&mut self, why: &str) {
        let organization = self
            .settings
            .get("CpoName")
            .map(|s| s.value.clone())
            .unwrap_or_default();
        let request = match certificate::request(&self.spec.id, &organization) {
            Ok(r) => r,
            Err(e) => {
                self.emit(Event::Violation(format!("cannot generate a key pair: {e:#}")));
                return;
            }
        };
        self.emit(Event::Security(format!("certificate requested ({why})")));
        self.pending_csr = Some(PendingCsr {
            request,
            retry_at: Instant::now(),
            sent: 0,
        });
        self.send_csr();
    }

    fn send_csr(&mut self) {
        let Some(pending) = self.pending_csr.as_mut() else {
            return;
        };
        let wait = self.settings.int("CertSigningWaitMinimum").max(1);
        // Each resend waits twice as long as the one before (A02.FR.17/18).
        let factor = 1u64 << pending.sent.min(16);
        pending.sent += 1;
        pending.retry_at = Instant::now() + Duration::from_secs(wait.saturating_mul(factor));
        let mut payload = json!({ "csr": pending.request.csr_pem });
        if self.version == Version::V201 {
            payload["certificateType"] = json!("ChargingStationCertificate");
        }
        self.queue("SignCertificate", payload, false, None, Purpose::Plain);
    }

    /// CertificateSigned: installs the chain when it was issued for the pending key, else
    /// refuses it and reports a security event.
    pub(super) fn certificate_signed(&mut self, chain: &str) -> Answer {
        let now = Utc::now();
        let checked = match &self.pending_csr {
            Some(p) => certificate::check_chain(chain, &p.request.key_pem, &self.spec.id, now),
            None => Err(ChainRejection::NotRequested),
        };
        let (chain_pem, not_after) = match checked {
            Ok(ok) => ok,
            Err(why) => {
                self.emit(Event::Security(format!("certificate refused: {why}")));
                let event = match self.version {
                    Version::V16 => "InvalidChargePointCertificate",
                    _ => "InvalidChargingStationCertificate",
                };
                let tech: String = why.to_string().chars().take(255).collect();
                self.queue(
                    "SecurityEventNotification",
                    json!({"type": event, "timestamp": now_rfc3339(), "techInfo": tech}),
                    false,
                    None,
                    Purpose::Plain,
                );
                return match self.version {
                    Version::V16 => status("Rejected"),
                    _ => Ok(json!({"status": "Rejected", "statusInfo": {
                        "reasonCode": "InvalidCertificate",
                        "additionalInfo": why.to_string().chars().take(512).collect::<String>(),
                    }})),
                };
            }
        };
        let Some(pending) = self.pending_csr.take() else {
            return status("Rejected");
        };
        let before = self.network.clone();
        self.network.identity = Some(Identity {
            chain_pem,
            key_pem: pending.request.key_pem,
        });
        self.save_network();
        self.emit(Event::Security(format!(
            "certificate installed, valid until {not_after}"
        )));
        // Under profile 3 the new certificate is the credential: prove it on a new connection
        // now, keeping the old one to fall back to (A02: the old one stays until the new works).
        if self.network.security_profile() >= 3 {
            self.relink("new certificate", before);
        }
        status("Accepted")
    }

    /// The central system set a new Basic password: reconnect with it.
    pub(super) fn password_changed(&mut self, password: String) {
        let before = self.network.clone();
        self.network.password = Some(password);
        self.save_network();
        self.emit(Event::Security("password changed".into()));
        if self.network.security_profile() < 3 {
            self.relink("new password", before);
        }
    }

    /// 1.6 ChangeConfiguration SecurityProfile: raise it and reconnect with it.
    pub(super) fn raise_security_profile(&mut self, value: &str) -> &'static str {
        let before = self.network.clone();
        let Ok(profile) = value.trim().parse::<u8>() else {
            return "Rejected";
        };
        if let Err(why) = self.network.raise_profile(profile) {
            self.emit(Event::Security(format!("security profile {value} refused: {why}")));
            return "Rejected";
        }
        self.sync_profile_settings();
        self.save_network();
        self.emit(Event::Security(format!("security profile {profile}")));
        self.relink("new security profile", before);
        "Accepted"
    }

    /// 2.0.1 SetNetworkProfile: the profile goes into its slot; it is used after a reboot when
    /// NetworkConfigurationPriority puts it first.
    pub(super) fn set_network_profile(&mut self, slot: i64, data: &Value) -> Answer {
        match self.network.set_profile(slot, data) {
            Ok(()) => {
                self.save_network();
                self.emit(Event::Security(format!("network profile stored in slot {slot}")));
                status("Accepted")
            }
            Err(why) => {
                self.emit(Event::Security(format!("SetNetworkProfile refused: {why}")));
                status("Rejected")
            }
        }
    }

    /// 2.0.1 SetVariables NetworkConfigurationPriority: existing slots only; applies at the next
    /// reboot.
    pub(super) fn set_network_priority(&mut self, value: &str) -> &'static str {
        match self.network.set_priority(value) {
            Ok(()) => {
                let text = self.network.priority_text();
                self.settings
                    .force(None, Some(("OCPPCommCtrlr", "NetworkConfigurationPriority")), &text);
                self.save_network();
                "Accepted"
            }
            Err(why) => {
                self.emit(Event::Security(format!("NetworkConfigurationPriority refused: {why}")));
                "Rejected"
            }
        }
    }

    /// At a reboot: connect with the first slot of the priority list, on trial.
    pub(super) fn apply_network_priority(&mut self) {
        let choice = self.network.first_choice();
        if choice != self.network.active {
            let before = self.network.clone();
            self.network.active = choice;
            self.sync_profile_settings();
            self.emit(Event::Security(format!("using network profile {choice}")));
            self.trial = Some(Trial {
                previous: before,
                failures: 0,
                what: format!("network profile {choice}"),
            });
        }
    }

    /// Closes the link after the answer and reconnects with the new credentials, on trial.
    fn relink(&mut self, what: &str, before: Network) {
        if self.trial.is_none() {
            self.trial = Some(Trial {
                previous: before,
                failures: 0,
                what: what.to_string(),
            });
        }
        self.relink = Some(what.to_string());
    }

    /// A connection with the credentials on trial failed: after [`TRIAL_ATTEMPTS`] go back.
    pub(super) fn trial_failed(&mut self) {
        let Some(trial) = self.trial.as_mut() else { return };
        trial.failures += 1;
        if trial.failures < TRIAL_ATTEMPTS {
            return;
        }
        if let Some(trial) = self.trial.take() {
            self.network = trial.previous;
            self.sync_profile_settings();
            self.save_network();
            self.emit(Event::Security(format!(
                "{} failed; back to the previous credentials",
                trial.what
            )));
        }
    }

    /// The profile settings follow the network profile in use.
    pub(super) fn sync_profile_settings(&mut self) {
        let profile = self.network.security_profile().to_string();
        self.settings.force(
            Some("SecurityProfile"),
            Some(("SecurityCtrlr", "SecurityProfile")),
            &profile,
        );
    }

    pub(super) fn save_network(&self) {
        if let Err(e) = self.network.save() {
            self.emit(Event::Violation(format!(
                "cannot persist the network configuration: {e:#}"
            )));
        }
    }

    /// Resends an unanswered CSR, and renews a certificate that nears its end (A03), once the
    /// station is online.
    pub(super) fn certificate_due(&mut self, now: Instant) {
        if !self.online() {
            return;
        }
        if let Some(p) = &self.pending_csr {
            let repeat = self.settings.int("CertSigningRepeatTimes");
            if now >= p.retry_at && u64::from(p.sent) <= repeat {
                self.send_csr();
            }
            return;
        }
        if self.last_auto_renewal.is_some_and(|t| now < t + AUTO_RENEWAL_PAUSE) {
            return;
        }
        let Some(identity) = &self.network.identity else { return };
        let days = self.spec.security.cert_renew_days.unwrap_or(DEFAULT_RENEW_DAYS);
        let due = certificate::not_after(&identity.chain_pem)
            .is_some_and(|end| certificate::renewal_due(end, Utc::now(), days));
        if due {
            self.last_auto_renewal = Some(now);
            self.request_certificate("the certificate nears its end");
        }
    }

    /// 2.0.1 CustomerInformation (N09 report, N10 clear): the answer, then
    /// NotifyCustomerInformation with what the station holds on the customer.
    pub(super) fn customer_information(&mut self, p: &Value) -> Answer {
        let token = p["idToken"]["idToken"].as_str();
        let identifier = p["customerIdentifier"].as_str();
        let certificate = p["customerCertificate"]["serialNumber"].as_str();
        if token.is_none() && identifier.is_none() && certificate.is_none() {
            // N09.FR.09-ish: a request naming no customer.
            return status("Invalid");
        }
        let (report, clear) = (p["report"] == true, p["clear"] == true);
        if !report && !clear {
            return status("Rejected");
        }
        let request_id = p["requestId"].as_i64().unwrap_or(0);
        let mut lines = Vec::new();
        if let Some(token) = token {
            if report {
                lines.extend(self.customer_data(token));
            }
            if clear {
                let forgot = self.auth.forget(token);
                lines.push(if forgot {
                    format!("idToken {token}: authorization cache entry cleared")
                } else {
                    format!("idToken {token}: nothing to clear")
                });
            }
        }
        if let Some(id) = identifier {
            lines.push(format!("customerIdentifier {id}: no data held"));
        }
        if let Some(serial) = certificate {
            lines.push(format!("customer certificate {serial}: no data held"));
        }
        self.send_customer_information(request_id, &lines.join("; "));
        status("Accepted")
    }

    /// What the station holds on `token`: list and cache entries, transactions, reservations.
    fn customer_data(&self, token: &str) -> Vec<String> {
        let mut out = Vec::new();
        let (list, cache) = self.auth.entries(token);
        if let Some(s) = list {
            out.push(format!("idToken {token}: local list {s}"));
        }
        if let Some(s) = cache {
            out.push(format!("idToken {token}: authorization cache {s}"));
        }
        for c in &self.connectors {
            if let Some(tx) = c.tx.as_ref().filter(|t| t.token == token) {
                out.push(format!("idToken {token}: transaction {} on EVSE {}", tx.id, c.id));
            }
            if let Some(r) = c.reservation.as_ref().filter(|r| r.token == token) {
                out.push(format!("idToken {token}: reservation {} on EVSE {}", r.id, c.id));
            }
        }
        if out.is_empty() {
            out.push(format!("idToken {token}: no data held"));
        }
        out
    }

    /// NotifyCustomerInformation in pieces of at most 512 characters (the schema's limit).
    fn send_customer_information(&mut self, request_id: i64, data: &str) {
        let chars: Vec<char> = data.chars().collect();
        let pieces: Vec<String> = chars.chunks(512).map(|c| c.iter().collect()).collect();
        let pieces = if pieces.is_empty() { vec![String::new()] } else { pieces };
        let n = pieces.len();
        for (seq, piece) in pieces.into_iter().enumerate() {
            let payload = json!({"data": piece, "tbc": seq + 1 < n, "seqNo": seq,
                "generatedAt": now_rfc3339(), "requestId": request_id});
            self.queue("NotifyCustomerInformation", payload, false, None, Purpose::Plain);
        }
    }
}
