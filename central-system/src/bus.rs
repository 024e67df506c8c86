//! Building this node's event and command bus from the configuration: the in-process bus (the
//! default, for the all-in-one binary) or an MQTT 5 broker.

use crate::config::{BusKind, Config};
use anyhow::Context;
use evcs_bus::{Bus, InProcBus, MqttBus, MqttConfig};
use std::sync::Arc;

/// Connects the bus `config` asks for. MQTT waits for the broker to acknowledge the reply
/// subscription (up to 10 s), so a wrong URL fails the start instead of every later command;
/// later outages are ridden out by the bus's reconnects.
pub async fn connect(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match config.bus {
        BusKind::Inproc => Arc::new(InProcBus::new()),
        BusKind::Mqtt => {
            let url = config
                .mqtt_url
                .as_deref()
                .context("--bus mqtt needs --mqtt-url (mqtt://[user:password@]host[:port])")?;
            let mqtt = MqttConfig::from_url(url, &config.bus_topic_prefix).context("reading --mqtt-url")?;
            Arc::new(
                MqttBus::connect(mqtt, &config.node_id())
                    .await
                    .context("connecting to the MQTT broker")?,
            )
        }
    })
}
