//! Configuration: flags with environment-variable equivalents and defaults that make the
//! embedded mode work with no configuration at all.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What happens when a station id the central system does not know connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownStations {
    /// Refuse the WebSocket upgrade with 404 (production).
    Reject,
    /// Register it with status Pending: it connects, its boot is answered Pending until an
    /// operator accepts it.
    Pending,
    /// Register and accept it (embedded default: point a charger at it and see it).
    Accept,
}

pub use service_kit::telemetry::LogFormat;

/// Central-system settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the one listener serving OCPP WebSockets and the REST API.
    #[arg(long, global = true, env = "EVCS_LISTEN", default_value = "0.0.0.0:9000")]
    pub listen: SocketAddr,

    /// Directory for the embedded database and generated secrets.
    #[arg(long, global = true, env = "EVCS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://FILE` or `postgres://...` (default: a SQLite file under the data dir).
    #[arg(long, global = true, env = "EVCS_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Policy for station ids that are not registered.
    #[arg(
        long,
        global = true,
        env = "EVCS_UNKNOWN_STATIONS",
        value_enum,
        default_value = "accept"
    )]
    pub unknown_stations: UnknownStations,

    /// Refuse registered stations that have neither a password nor a client certificate.
    #[arg(long, global = true, env = "EVCS_REQUIRE_AUTH", default_value_t = false)]
    pub require_auth: bool,

    /// Heartbeat interval sent in BootNotification responses, in seconds.
    #[arg(long, global = true, env = "EVCS_HEARTBEAT_INTERVAL", default_value_t = 300)]
    pub heartbeat_interval: u32,

    /// Retry interval for stations whose boot is answered Pending or Rejected, in seconds.
    #[arg(long, global = true, env = "EVCS_BOOT_RETRY_INTERVAL", default_value_t = 60)]
    pub boot_retry_interval: u32,

    /// WebSocket ping interval in seconds (0 disables); a station silent for two intervals is dropped.
    #[arg(long, global = true, env = "EVCS_PING_INTERVAL", default_value_t = 60)]
    pub ping_interval: u64,

    /// Seconds to wait for a station's answer to a central-system call.
    #[arg(long, global = true, env = "EVCS_CALL_TIMEOUT", default_value_t = 30)]
    pub call_timeout: u64,

    /// Most simultaneous connections (WebSocket and HTTP) before new ones wait.
    #[arg(long, global = true, env = "EVCS_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Largest OCPP frame handled; larger ones are answered with GenericError.
    #[arg(long, global = true, env = "EVCS_MAX_FRAME_BYTES", default_value_t = 65_536)]
    pub max_frame_bytes: usize,

    /// Largest REST request body in bytes; a larger one is answered 413 `PAYLOAD_TOO_LARGE`.
    #[arg(long, global = true, env = "EVCS_MAX_BODY_BYTES", default_value_t = service_kit::extract::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9091`), not on the public listener.
    #[arg(long, global = true, env = "EVCS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Secret that signs operator JWTs (default: generated once and kept in the data dir).
    #[arg(long, global = true, env = "EVCS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM certificate chain for TLS (security profiles 2 and 3); plain WebSocket without it.
    #[arg(long, global = true, env = "EVCS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for TLS.
    #[arg(long, global = true, env = "EVCS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle that signs station client certificates (security profile 3).
    #[arg(long, global = true, env = "EVCS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Log every OCPP frame to the per-station frame log.
    #[arg(long, global = true, env = "EVCS_FRAME_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub frame_log: bool,

    /// Frames kept per station in the frame log.
    #[arg(long, global = true, env = "EVCS_FRAME_LOG_SIZE", default_value_t = 500)]
    pub frame_log_size: i64,

    /// Milliseconds an acknowledged meter reading may wait before its batch is committed.
    #[arg(long, global = true, env = "EVCS_METER_FLUSH_MS", default_value_t = 100)]
    pub meter_flush_ms: u64,

    /// Log format.
    #[arg(long, global = true, env = "EVCS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("central-system.db").display()))
    }

    /// The warning logged at start when stations can connect without credentials, naming the
    /// flags that close that door; `None` when they cannot.
    pub fn open_access_warning(&self) -> Option<String> {
        let mut open = Vec::new();
        let mut fix = Vec::new();
        if self.unknown_stations == UnknownStations::Accept {
            open.push("any unregistered station id is accepted (--unknown-stations accept)");
            fix.push("--unknown-stations reject");
        }
        if !self.require_auth {
            open.push("registered stations without a password or certificate connect unauthenticated");
            fix.push("--require-auth");
        }
        (!open.is_empty()).then(|| {
            format!(
                "stations can connect without credentials: {}; for production set {}",
                open.join(", and "),
                fix.join(" ")
            )
        })
    }

    /// Ping interval, if enabled.
    pub fn ping_interval(&self) -> Option<Duration> {
        (self.ping_interval > 0).then(|| Duration::from_secs(self.ping_interval))
    }

    /// Call timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout.max(1))
    }

    /// A configuration for tests: an ephemeral port and the given database.
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url,
            unknown_stations: UnknownStations::Accept,
            require_auth: false,
            heartbeat_interval: 300,
            boot_retry_interval: 5,
            ping_interval: 60,
            call_timeout: 10,
            max_connections: 20_000,
            max_frame_bytes: 65_536,
            max_body_bytes: service_kit::extract::DEFAULT_MAX_BODY_BYTES,
            metrics_listen: None,
            jwt_secret: Some("test-secret-with-enough-entropy-0123456789".into()),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            frame_log: true,
            frame_log_size: 500,
            meter_flush_ms: 20,
            log_format: LogFormat::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_access_is_named_with_the_flags_that_close_it() {
        let mut config = Config::for_tests(PathBuf::from("."), None);
        let warning = config.open_access_warning().unwrap_or_default();
        assert!(warning.contains("--unknown-stations reject"), "{warning}");
        assert!(warning.contains("--require-auth"), "{warning}");
        config.unknown_stations = UnknownStations::Pending;
        let warning = config.open_access_warning().unwrap_or_default();
        assert!(!warning.contains("--unknown-stations"), "{warning}");
        assert!(warning.contains("--require-auth"), "{warning}");
        config.require_auth = true;
        assert_eq!(config.open_access_warning(), None);
    }
}
