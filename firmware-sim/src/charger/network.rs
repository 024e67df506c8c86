//! What the station connects with, as the central system may change it at run time: network
//! profiles in numbered slots (2.0.1 SetNetworkProfile) and their priority
//! (`OCPPCommCtrlr.NetworkConfigurationPriority`), the security profile in force, the HTTP Basic
//! password (2.0.1 `SecurityCtrlr.BasicAuthPassword`, 1.6 `AuthorizationKey`) and the installed
//! client certificate.
//!
//! Slot 0 starts as the station file says. Like a real station's non-volatile memory,
//! everything the central system changed survives a restart when the station has a state
//! directory: `network.json` (slots, priority, password) and the certificate and its key as
//! `station-cert.pem` and `station-key.pem` (the key owner-only). Delete them to start from the
//! station file again.

use crate::spec::StationSpec;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Highest network-profile slot this station has (slots 0 to 4).
pub const MAX_SLOT: i64 = 4;

/// One way to reach a central system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkProfile {
    /// Central-system URL without the station id.
    pub url: String,
    /// OCPP security profile: 1 (Basic over ws), 2 (Basic over wss), 3 (client certificate).
    pub security_profile: u8,
}

/// A client certificate chain and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The station certificate first, then its issuers.
    pub chain_pem: String,
    /// The private key.
    pub key_pem: String,
}

/// Why a SetNetworkProfile is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileRefusal {
    /// Only OCPP 2.0.1 over JSON is spoken here.
    #[error("only OCPP20 over JSON is supported")]
    Protocol,
    /// The slot does not exist or carries the connection in use.
    #[error("slot {0} cannot be written")]
    Slot(i64),
    /// Lower than the profile in force (A05: a station is never downgraded).
    #[error("security profile {0} is below the one in force")]
    Downgrade(i64),
    /// Profile 3 without an installed certificate.
    #[error("security profile 3 needs an installed station certificate")]
    NoCertificate,
    /// Not a ws:// or wss:// URL, or ws:// with TLS profiles.
    #[error("url {0:?} does not fit security profile {1}")]
    Url(String, i64),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    slots: BTreeMap<i64, NetworkProfile>,
    priority: Vec<i64>,
    password: Option<String>,
}

/// The station's network configuration.
#[derive(Debug, Clone)]
pub struct Network {
    /// Profiles by slot.
    pub slots: BTreeMap<i64, NetworkProfile>,
    /// Slots in the order they are tried; the first one that exists is used after a reboot.
    pub priority: Vec<i64>,
    /// The slot of the connection in use.
    pub active: i64,
    /// HTTP Basic password (user name: the station id).
    pub password: Option<String>,
    /// The installed client certificate, if any.
    pub identity: Option<Identity>,
    dir: Option<PathBuf>,
}

/// The security profile a station file describes: 3 with a client certificate, 2 over wss,
/// else 1.
pub fn profile_of(spec: &StationSpec) -> u8 {
    if spec.security.client_cert.is_some() {
        3
    } else if spec.url.as_deref().is_some_and(|u| u.starts_with("wss://")) {
        2
    } else {
        1
    }
}

impl Network {
    /// The configuration of `spec`, overridden by what its state directory kept.
    pub fn open(spec: &StationSpec) -> anyhow::Result<Network> {
        let identity = match (&spec.security.client_cert, &spec.security.client_key) {
            (Some(cert), Some(key)) => Some(Identity {
                chain_pem: std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?,
                key_pem: std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?,
            }),
            _ => None,
        };
        let mut network = Network {
            slots: BTreeMap::from([(
                0,
                NetworkProfile {
                    url: spec.url.clone().unwrap_or_default(),
                    security_profile: profile_of(spec),
                },
            )]),
            priority: vec![0],
            active: 0,
            password: spec.security.password.clone(),
            identity,
            dir: spec.state_dir.clone(),
        };
        let Some(dir) = spec.state_dir.as_deref() else {
            return Ok(network);
        };
        let path = dir.join("network.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is corrupt; move it away to start afresh", path.display()))?;
                if !saved.slots.is_empty() {
                    network.slots = saved.slots;
                    network.priority = saved.priority;
                }
                network.password = saved.password.or(network.password);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let (cert, key) = (dir.join("station-cert.pem"), dir.join("station-key.pem"));
        if cert.exists() && key.exists() {
            network.identity = Some(Identity {
                chain_pem: std::fs::read_to_string(&cert)?,
                key_pem: std::fs::read_to_string(&key)?,
            });
        }
        network.active = network.first_choice();
        Ok(network)
    }

    /// The slot a (re)booting station connects with: the first in the priority list that exists.
    pub fn first_choice(&self) -> i64 {
        self.priority
            .iter()
            .copied()
            .find(|s| self.slots.contains_key(s))
            .or_else(|| self.slots.keys().next().copied())
            .unwrap_or(0)
    }

    /// The profile in use.
    pub fn current(&self) -> Option<&NetworkProfile> {
        self.slots.get(&self.active)
    }

    /// The security profile in force.
    pub fn security_profile(&self) -> u8 {
        self.current().map_or(1, |p| p.security_profile)
    }

    /// Applies SetNetworkProfile's `configurationSlot` and `connectionData`.
    pub fn set_profile(&mut self, slot: i64, data: &serde_json::Value) -> Result<(), ProfileRefusal> {
        if data["ocppVersion"] != "OCPP20" || data["ocppTransport"] != "JSON" {
            return Err(ProfileRefusal::Protocol);
        }
        if !(0..=MAX_SLOT).contains(&slot) || slot == self.active {
            return Err(ProfileRefusal::Slot(slot));
        }
        let profile = data["securityProfile"].as_i64().unwrap_or(0);
        if !(1..=3).contains(&profile) || profile < i64::from(self.security_profile()) {
            return Err(ProfileRefusal::Downgrade(profile));
        }
        if profile == 3 && self.identity.is_none() {
            return Err(ProfileRefusal::NoCertificate);
        }
        let url = data["ocppCsmsUrl"].as_str().unwrap_or_default().to_string();
        let fits = url.starts_with("wss://") || (url.starts_with("ws://") && profile == 1);
        if !fits {
            return Err(ProfileRefusal::Url(url, profile));
        }
        self.slots.insert(
            slot,
            NetworkProfile {
                url,
                security_profile: profile as u8,
            },
        );
        Ok(())
    }

    /// Checks and sets `NetworkConfigurationPriority` (a comma-separated list of existing slots).
    pub fn set_priority(&mut self, value: &str) -> Result<(), String> {
        let slots: Vec<i64> = value
            .split(',')
            .map(|s| s.trim().parse::<i64>().map_err(|_| format!("{s:?} is not a slot")))
            .collect::<Result<_, _>>()?;
        if slots.is_empty() {
            return Err("no slot".into());
        }
        if let Some(missing) = slots.iter().find(|s| !self.slots.contains_key(s)) {
            return Err(format!("slot {missing} holds no profile"));
        }
        self.priority = slots;
        Ok(())
    }

    /// The priority list as the device model shows it.
    pub fn priority_text(&self) -> String {
        self.priority.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    }

    /// 1.6 `SecurityProfile`: raises the profile of the connection in use (never lowers it);
    /// TLS profiles move a ws:// URL to wss://.
    pub fn raise_profile(&mut self, profile: u8) -> Result<(), ProfileRefusal> {
        if !(1..=3).contains(&profile) || profile < self.security_profile() {
            return Err(ProfileRefusal::Downgrade(i64::from(profile)));
        }
        if profile == 3 && self.identity.is_none() {
            return Err(ProfileRefusal::NoCertificate);
        }
        if let Some(p) = self.slots.get_mut(&self.active) {
            p.security_profile = profile;
            if profile >= 2 {
                if let Some(rest) = p.url.strip_prefix("ws://") {
                    p.url = format!("wss://{rest}");
                }
            }
        }
        Ok(())
    }

    /// Writes the configuration to the state directory (no-op without one).
    pub fn save(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        std::fs::create_dir_all(dir)?;
        let saved = Saved {
            slots: self.slots.clone(),
            priority: self.priority.clone(),
            password: self.password.clone(),
        };
        write_private(&dir.join("network.json"), &serde_json::to_vec_pretty(&saved)?)?;
        if let Some(identity) = &self.identity {
            write_private(&dir.join("station-key.pem"), identity.key_pem.as_bytes())?;
            write_private(&dir.join("station-cert.pem"), identity.chain_pem.as_bytes())?;
        }
        Ok(())
    }
}

/// Writes a file readable by its owner only (it may hold a password or a private key), by
/// write-then-rename so a crash leaves the old or the new file.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ocpp::Version;
    use serde_json::json;

    fn data(url: &str, profile: i64) -> serde_json::Value {
        json!({"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url,
               "messageTimeout": 30, "securityProfile": profile, "ocppInterface": "Wired0"})
    }

    #[test]
    fn the_station_file_fills_slot_zero() {
        let mut spec = StationSpec::new("CP-1", Version::V201, "ws://cs/ocpp");
        spec.security.password = Some("p".repeat(16));
        let n = Network::open(&spec).unwrap();
        assert_eq!(n.current().unwrap().url, "ws://cs/ocpp");
        assert_eq!((n.security_profile(), n.active), (1, 0));
        spec.url = Some("wss://cs/ocpp".into());
        assert_eq!(profile_of(&spec), 2);
    }

    #[test]
    fn set_network_profile_rules() {
        let spec = StationSpec::new("CP-1", Version::V201, "wss://cs/ocpp");
        let mut n = Network::open(&spec).unwrap();
        assert_eq!(
            n.set_profile(0, &data("wss://b/ocpp", 2)),
            Err(ProfileRefusal::Slot(0)),
            "in use"
        );
        assert_eq!(n.set_profile(9, &data("wss://b/ocpp", 2)), Err(ProfileRefusal::Slot(9)));
        assert_eq!(
            n.set_profile(1, &data("wss://b/ocpp", 1)),
            Err(ProfileRefusal::Downgrade(1))
        );
        assert_eq!(
            n.set_profile(1, &data("wss://b/ocpp", 3)),
            Err(ProfileRefusal::NoCertificate)
        );
        assert!(matches!(
            n.set_profile(1, &data("ws://b/ocpp", 2)),
            Err(ProfileRefusal::Url(..))
        ));
        let mut soap = data("wss://b/ocpp", 2);
        soap["ocppTransport"] = json!("SOAP");
        assert_eq!(n.set_profile(1, &soap), Err(ProfileRefusal::Protocol));
        n.set_profile(1, &data("wss://b/ocpp", 2)).unwrap();
        assert_eq!(n.set_priority("2,0"), Err("slot 2 holds no profile".into()));
        assert!(n.set_priority("x").is_err());
        n.set_priority("1, 0").unwrap();
        assert_eq!(n.priority_text(), "1,0");
        assert_eq!(n.first_choice(), 1, "applies at the next reboot");
        assert_eq!(n.active, 0, "not before");
        n.identity = Some(Identity {
            chain_pem: "c".into(),
            key_pem: "k".into(),
        });
        n.set_profile(2, &data("wss://c/ocpp", 3)).unwrap();
    }

    #[test]
    fn raising_the_1_6_profile_never_lowers_and_moves_to_tls() {
        let spec = StationSpec::new("CP-1", Version::V16, "ws://cs:9000/ocpp");
        let mut n = Network::open(&spec).unwrap();
        assert_eq!(n.raise_profile(3), Err(ProfileRefusal::NoCertificate));
        n.raise_profile(2).unwrap();
        assert_eq!(n.current().unwrap().url, "wss://cs:9000/ocpp");
        assert_eq!(n.raise_profile(1), Err(ProfileRefusal::Downgrade(1)));
    }

    #[test]
    fn changes_survive_a_restart_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = StationSpec::new("CP-1", Version::V201, "wss://cs/ocpp");
        spec.state_dir = Some(dir.path().to_path_buf());
        spec.security.password = Some("old-password-0001".into());
        let mut n = Network::open(&spec).unwrap();
        n.password = Some("new-password-0002".into());
        n.identity = Some(Identity {
            chain_pem: "CHAIN".into(),
            key_pem: "KEY".into(),
        });
        n.set_profile(1, &data("wss://b/ocpp", 3)).unwrap();
        n.set_priority("1,0").unwrap();
        n.save().unwrap();
        let again = Network::open(&spec).unwrap();
        assert_eq!(again.password.as_deref(), Some("new-password-0002"));
        assert_eq!(again.identity, n.identity);
        assert_eq!((again.active, again.security_profile()), (1, 3));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("station-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
