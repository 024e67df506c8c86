//! Building the event and command bus from the configuration (`--bus`, `--mqtt-url`,
//! `--bus-topic-prefix`, `--node-id`). The rest of the service sees only `Arc<dyn Bus>`.

use crate::config::{BusKind, Config};
use anyhow::Context;
use evcs_bus::{Bus, InProcBus, MqttBus, MqttConfig};
use std::sync::Arc;

/// Connects the configured transport. MQTT needs `--mqtt-url`; the broker must answer at
/// start-up (later outages are ridden out by the bus's reconnects and the outbox's retries).
pub async fn connect(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match config.bus {
        BusKind::Inproc => Arc::new(InProcBus::new()),
        BusKind::Mqtt => {
            let url = config
                .mqtt_url
                .as_deref()
                .context("--bus mqtt needs --mqtt-url (EVCS_MQTT_URL)")?;
            let mqtt = MqttConfig::from_url(url, &config.bus_topic_prefix).context("reading --mqtt-url")?;
            let node = config.node_id();
            let bus = MqttBus::connect(mqtt, &node)
                .await
                .with_context(|| format!("connecting to the MQTT broker as node {node}"))?;
            tracing::info!(node, prefix = %config.bus_topic_prefix, "MQTT bus connected");
            Arc::new(bus)
        }
    })
}
