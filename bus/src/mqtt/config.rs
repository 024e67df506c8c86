//! Broker address, credentials, limits and the topic layout.

use crate::contract::EventEnvelope;
use crate::transport::BusError;
use crate::StationId;
use rumqttc::v5::MqttOptions;
use std::time::Duration;

/// How to reach the broker and lay out topics.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
    /// First topic level(s), e.g. `evcs`; lets several deployments share one broker.
    pub prefix: String,
    /// How long the broker keeps a consumer's session (and its queued events) while it is away.
    pub session_expiry: Duration,
    /// Largest packet this client accepts (events and commands are small; a generic call's
    /// payload may not be).
    pub max_packet_bytes: u32,
    /// At least 5 s (rumqttc refuses less); the watchdog fires after three of these.
    pub keep_alive: Duration,
    /// Ceiling of the reconnect backoff.
    pub max_backoff: Duration,
    /// How long [`Bus::publish`] waits for the broker's PUBACK before reporting failure.
    pub ack_timeout: Duration,
}

impl MqttConfig {
    /// Reads `mqtt://[user:password@]host[:port]`.
    pub fn from_url(url: &str, prefix: &str) -> Result<Self, BusError> {
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| BusError::Transport(format!("unsupported MQTT URL (want mqtt://host:port): {url}")))?;
        let rest = rest.trim_end_matches('/');
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((user.to_owned(), password.to_owned())), hostport)
            }
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse()
                    .map_err(|_| BusError::Transport(format!("bad port in {url}")))?;
                (host.to_owned(), port)
            }
            None => (hostport.to_owned(), 1883),
        };
        if host.is_empty() || prefix.is_empty() || prefix.contains(['+', '#', '\0']) {
            return Err(BusError::Transport(
                "MQTT host and a wildcard-free topic prefix are required".into(),
            ));
        }
        Ok(Self {
            host,
            port,
            credentials,
            prefix: prefix.trim_matches('/').to_owned(),
            session_expiry: Duration::from_secs(3600),
            max_packet_bytes: 256 * 1024,
            keep_alive: Duration::from_secs(10),
            max_backoff: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(10),
        })
    }

    pub(super) fn options(&self, client_id: &str, persistent: bool) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, &self.host, self.port);
        // rumqttc panics below 5 s.
        o.set_keep_alive(self.keep_alive.max(Duration::from_secs(5)))
            .set_clean_start(!persistent)
            .set_max_packet_size(Some(self.max_packet_bytes))
            .set_manual_acks(true);
        if persistent {
            o.set_session_expiry_interval(Some(u32::try_from(self.session_expiry.as_secs()).unwrap_or(u32::MAX)));
        }
        if let Some((user, password)) = &self.credentials {
            o.set_credentials(user, password);
        }
        o
    }

    pub(super) fn event_topic(&self, event: &EventEnvelope) -> String {
        format!(
            "{}/v1/events/{}/{}",
            self.prefix,
            event.station_id.topic_level(),
            event.event.kind()
        )
    }

    pub(super) fn command_topic(&self, station: &StationId) -> String {
        format!("{}/v1/commands/{}", self.prefix, station.topic_level())
    }
}

/// MQTT client ids allow more, but brokers only promise `0-9a-zA-Z`; keep ours readable.
pub(super) fn client_id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::MqttConfig;

    #[test]
    fn url_parsing() {
        let c = MqttConfig::from_url("mqtt://u:p@127.0.0.1:1884", "evcs").expect("valid");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1884));
        assert_eq!(c.credentials, Some(("u".into(), "p".into())));
        assert_eq!(
            MqttConfig::from_url("mqtt://broker", "a/b/").expect("valid").prefix,
            "a/b"
        );
        assert!(MqttConfig::from_url("http://x", "evcs").is_err());
        assert!(MqttConfig::from_url("mqtt://x", "a/#").is_err());
    }
}
