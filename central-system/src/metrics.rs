//! Prometheus metrics: connected stations, messages by action and direction, CALLERRORs by
//! code and handling latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of the message counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// OCPP action (a catalogue name or `unknown`).
    pub action: &'static str,
    /// `in` (from stations) or `out` (to stations).
    pub direction: &'static str,
    /// `call`, `result` or `error`.
    pub kind: &'static str,
}

/// Labels of the CALLERROR counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The wire code.
    pub code: String,
    /// `sent` (our answer) or `received` (a station's answer to us).
    pub direction: &'static str,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// OCPP action (a catalogue name or `unknown`).
    pub action: &'static str,
}

/// All metrics of the service.
pub struct Metrics {
    registry: Registry,
    /// Stations with an open WebSocket.
    pub connected_stations: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// OCPP messages.
    pub messages: Family<MessageLabels, Counter<u64, AtomicU64>>,
    /// CALLERRORs.
    pub call_errors: Family<ErrorLabels, Counter<u64, AtomicU64>>,
    /// Time from receiving a CALL to sending its answer, in seconds.
    pub handling_seconds: Family<ActionLabels, Histogram>,
    /// Connections refused at the upgrade (auth, unknown station, subprotocol).
    pub rejected_upgrades: Counter<u64, AtomicU64>,
    /// Connections refused because their security profile is below the station's floor.
    pub security_profile_downgrades: Counter<u64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ocpp");
        let connected_stations = Gauge::default();
        let messages = Family::<MessageLabels, Counter<u64, AtomicU64>>::default();
        let call_errors = Family::<ErrorLabels, Counter<u64, AtomicU64>>::default();
        let handling_seconds = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_025, 2.0, 18))
        });
        let rejected_upgrades = Counter::default();
        let security_profile_downgrades = Counter::default();
        registry.register(
            "connected_stations",
            "Stations with an open WebSocket",
            connected_stations.clone(),
        );
        registry.register(
            "messages",
            "OCPP messages by action, direction and kind",
            messages.clone(),
        );
        registry.register("call_errors", "CALLERRORs by code and direction", call_errors.clone());
        registry.register(
            "handling_seconds",
            "Time from receiving a CALL to sending its answer",
            handling_seconds.clone(),
        );
        registry.register(
            "rejected_upgrades",
            "WebSocket upgrades refused",
            rejected_upgrades.clone(),
        );
        registry.register(
            "security_profile_downgrades",
            "Station connections refused below the station's security-profile floor",
            security_profile_downgrades.clone(),
        );
        Metrics {
            registry,
            connected_stations,
            messages,
            call_errors,
            handling_seconds,
            rejected_upgrades,
            security_profile_downgrades,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
