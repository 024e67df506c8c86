//! Configuration: flags with environment-variable equivalents and defaults that make the
//! embedded mode work with no configuration at all.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which transport the event and command bus uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BusKind {
    /// In this process (tokio channels): the all-in-one default, nothing to run.
    Inproc,
    /// An MQTT 5 broker (`--mqtt-url`): separate processes, several nodes.
    Mqtt,
}

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

/// When a SQLite commit is on disk (PRAGMA synchronous, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronous {
    /// Commits survive a crash of the process; the last ones can be lost on power loss.
    Normal,
    /// Every commit is fsynced before chargers are answered: survives power loss.
    Full,
}

use service_kit::password::PasswordConfig;
use service_kit::server::ConnectionLimits;
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

    /// SQLite only: `full` fsyncs every commit, so acknowledged readings survive a power loss
    /// (`normal`: they survive a crash of the process; the last commits can be lost on power loss).
    #[arg(
        long,
        global = true,
        env = "EVCS_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "normal"
    )]
    pub sqlite_synchronous: SqliteSynchronous,

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

    /// Seconds a connection may take to send a complete request head, counted from when it
    /// starts waiting for one (so it also closes idle keep-alive connections).
    #[arg(long, global = true, env = "EVCS_HTTP_HEADER_TIMEOUT", default_value_t = 30)]
    pub http_header_timeout: u64,

    /// Argon2id cost of station passwords.
    #[command(flatten)]
    pub passwords: PasswordArgs,

    /// Largest OCPP frame handled; larger ones are answered with GenericError, and the frame
    /// log stores at most this many bytes of a frame (marked truncated).
    #[arg(long, global = true, env = "EVCS_MAX_FRAME_BYTES", default_value_t = 65_536)]
    pub max_frame_bytes: usize,

    /// Largest REST request body in bytes; a larger one is answered 413 `PAYLOAD_TOO_LARGE`.
    #[arg(long, global = true, env = "EVCS_MAX_BODY_BYTES", default_value_t = service_kit::extract::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9091`), not on the public listener.
    #[arg(long, global = true, env = "EVCS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Event and command bus: `inproc` (in this process) or `mqtt` (an MQTT 5 broker, see
    /// `--mqtt-url`).
    #[arg(long, global = true, env = "EVCS_BUS", value_enum, default_value = "inproc")]
    pub bus: BusKind,

    /// MQTT broker for `--bus mqtt`: `mqtt://[user:password@]host[:port]`.
    #[arg(long, global = true, env = "EVCS_MQTT_URL", hide_env_values = true)]
    pub mqtt_url: Option<String>,

    /// First topic level(s) of every bus topic, so several deployments can share a broker.
    #[arg(long, global = true, env = "EVCS_BUS_TOPIC_PREFIX", default_value = "evcs")]
    pub bus_topic_prefix: String,

    /// This node's name on the bus, unique per running process (default: `central-{host}-{port}`).
    #[arg(long, global = true, env = "EVCS_NODE_ID")]
    pub node_id: Option<String>,

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

    /// PEM certificate of the CA that signs station certificates (SignCertificate, A02/A03);
    /// the TLS listener trusts it for client certificates (profile 3). Default: a CA generated
    /// on first start in the data dir (`station-ca.pem`, `station-ca-key.pem`).
    #[arg(long, global = true, env = "EVCS_STATION_CA_CERT", requires = "station_ca_key")]
    pub station_ca_cert: Option<PathBuf>,

    /// PEM (PKCS#8) private key of `--station-ca-cert`.
    #[arg(long, global = true, env = "EVCS_STATION_CA_KEY", requires = "station_ca_cert")]
    pub station_ca_key: Option<PathBuf>,

    /// The organization (O) a station's CSR must name (default: the station CA's O).
    #[arg(long, global = true, env = "EVCS_STATION_CERT_ORGANIZATION")]
    pub station_cert_organization: Option<String>,

    /// Days a signed station certificate is valid.
    #[arg(long, global = true, env = "EVCS_STATION_CERT_VALIDITY_DAYS", default_value_t = 365)]
    pub station_cert_validity_days: u32,

    /// Connected stations whose certificate ends within this many days are asked to renew it.
    #[arg(long, global = true, env = "EVCS_STATION_CERT_RENEW_DAYS", default_value_t = 30)]
    pub station_cert_renew_days: u32,

    /// Seconds between sweeps for station certificates due for renewal.
    #[arg(long, global = true, env = "EVCS_STATION_CERT_CHECK_SECS", default_value_t = 3600)]
    pub station_cert_check_secs: u64,

    /// Log every OCPP frame to the per-station frame log.
    #[arg(long, global = true, env = "EVCS_FRAME_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub frame_log: bool,

    /// Frames kept per station in the frame log.
    #[arg(long, global = true, env = "EVCS_FRAME_LOG_SIZE", default_value_t = 500)]
    pub frame_log_size: i64,

    /// Bytes of frame log kept per station (oldest frames pruned first).
    #[arg(long, global = true, env = "EVCS_FRAME_LOG_STATION_BYTES", default_value_t = 4 << 20)]
    pub frame_log_station_bytes: i64,

    /// Bytes of frame log kept in total, across all stations.
    #[arg(long, global = true, env = "EVCS_FRAME_LOG_TOTAL_BYTES", default_value_t = 1 << 30)]
    pub frame_log_total_bytes: i64,

    /// Largest stored message payload (DataTransfer, NotifyReport, security events...); longer
    /// ones are stored cut to this size and marked truncated.
    #[arg(long, global = true, env = "EVCS_MESSAGE_MAX_BYTES", default_value_t = 65_536)]
    pub message_max_bytes: usize,

    /// Bytes of stored messages kept per station (oldest pruned first).
    #[arg(long, global = true, env = "EVCS_MESSAGE_STATION_BYTES", default_value_t = 16 << 20)]
    pub message_station_bytes: i64,

    /// Bytes of stored messages kept in total.
    #[arg(long, global = true, env = "EVCS_MESSAGE_TOTAL_BYTES", default_value_t = 1 << 30)]
    pub message_total_bytes: i64,

    /// Days a stored message is kept.
    #[arg(long, global = true, env = "EVCS_MESSAGE_RETENTION_DAYS", default_value_t = 90)]
    pub message_retention_days: u32,

    /// Most stations in registration status Pending that `--unknown-stations pending` may
    /// create; beyond it new ids are refused with 503.
    #[arg(long, global = true, env = "EVCS_PENDING_LIMIT", default_value_t = 100)]
    pub pending_limit: i64,

    /// Bytes of frame log kept in total for stations that are not Accepted.
    #[arg(long, global = true, env = "EVCS_PENDING_LOG_BYTES", default_value_t = 1 << 20)]
    pub pending_log_bytes: i64,

    /// Messages per second a station that is not Accepted may send (bursts of twice as many);
    /// beyond it the connection is closed (1008).
    #[arg(long, global = true, env = "EVCS_PENDING_MESSAGE_RATE", default_value_t = 2)]
    pub pending_message_rate: u32,

    /// Connection attempts per minute for a station id that is unknown or not Accepted, and
    /// per client address for such ids; beyond it the upgrade is refused with 429.
    #[arg(long, global = true, env = "EVCS_PENDING_CONNECT_RATE", default_value_t = 10)]
    pub pending_connect_rate: u32,

    /// Milliseconds the batch writer holds a batch open for more readings before committing it.
    /// Chargers are answered only after the commit, so this adds to their latency; 0 (the
    /// default) commits at once and lets the next batch gather while a commit runs.
    #[arg(long, global = true, env = "EVCS_METER_FLUSH_MS", default_value_t = 0)]
    pub meter_flush_ms: u64,

    /// Attempts at committing a batch of readings before its chargers get InternalError (the
    /// backoff doubles from 50 ms; 8 attempts take about 11 s).
    #[arg(
        long,
        global = true,
        env = "EVCS_METER_COMMIT_ATTEMPTS",
        default_value_t = 8,
        hide = true
    )]
    pub meter_commit_attempts: u32,

    /// Seconds a 2.0.1 station has after an accepted boot to send an event for each of its
    /// Active transactions; those it stays silent about are closed as abandoned. Longer than
    /// the stations' TxUpdatedInterval, so a running transaction reports in time.
    #[arg(long, global = true, env = "EVCS_ABANDON_AFTER_BOOT_SECS", default_value_t = 300)]
    pub abandon_after_boot_secs: u64,

    /// Milliseconds between writes of a connected station's `lastSeenAt` (every message counts;
    /// the write is throttled because the hot path handles tens of thousands of messages a
    /// second: 10,000 stations cost about 170 single-row updates a second at the default).
    #[arg(long, global = true, env = "EVCS_LAST_SEEN_WRITE_MS", default_value_t = 60_000)]
    pub last_seen_write_ms: u64,

    /// Log format.
    #[arg(long, global = true, env = "EVCS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Seconds between two `meterSummary` events of one transaction (one also goes with every
    /// transaction event); readings never cross the bus one by one.
    #[arg(long, global = true, env = "EVCS_METER_SUMMARY_SECS", default_value_t = 60)]
    pub meter_summary_secs: u64,

    /// Seconds published events stay in the outbox table before they are deleted.
    #[arg(long, global = true, env = "EVCS_OUTBOX_RETENTION_SECS", default_value_t = 3600)]
    pub outbox_retention_secs: u64,

    /// The most power one station may draw, W: the site limit that ISO 15118 charging
    /// profiles (K15-K17) stay within, together with any ChargingStationMaxProfile set on it.
    #[arg(long, global = true, env = "EVCS_STATION_MAX_POWER_W", default_value_t = 22_000)]
    pub station_max_power_w: u32,

    /// The ISO 15118 energy transfer modes this site serves (comma-separated); charging needs
    /// asking for another are answered Rejected (`UnsupportedRequest`).
    #[arg(
        long,
        global = true,
        env = "EVCS_ISO15118_ENERGY_TRANSFER",
        value_delimiter = ',',
        value_parser = ["DC", "AC_single_phase", "AC_two_phase", "AC_three_phase"],
        default_value = "DC,AC_single_phase,AC_two_phase,AC_three_phase"
    )]
    pub iso15118_energy_transfer: Vec<String>,
}

/// Argon2id parameters and the size of the pool that verifies station passwords.
#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
    /// Argon2id memory cost of new password hashes, KiB (existing hashes keep their own).
    #[arg(long, global = true, env = "EVCS_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,

    /// Argon2id passes (iterations) of new password hashes.
    #[arg(long, global = true, env = "EVCS_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id lanes (parallelism) of new password hashes.
    #[arg(long, global = true, env = "EVCS_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,

    /// Password checks running at once (default: one per core); each holds the memory cost.
    #[arg(long, global = true, env = "EVCS_PASSWORD_WORKERS")]
    pub password_workers: Option<usize>,

    /// Password checks waiting beyond those before an upgrade is answered 503 (default: 4 per
    /// worker).
    #[arg(long, global = true, env = "EVCS_PASSWORD_QUEUE")]
    pub password_queue: Option<usize>,
}

impl Default for PasswordArgs {
    fn default() -> PasswordArgs {
        let d = PasswordConfig::default();
        PasswordArgs {
            argon2_memory_kib: d.memory_kib,
            argon2_iterations: d.iterations,
            argon2_parallelism: d.parallelism,
            password_workers: d.workers,
            password_queue: d.queue,
        }
    }
}

impl PasswordArgs {
    /// The pool's configuration.
    pub fn config(&self) -> PasswordConfig {
        PasswordConfig {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
            workers: self.password_workers,
            queue: self.password_queue,
        }
    }
}

impl Config {
    /// Connection limit and header-read timeout of the listener.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.http_header_timeout.max(1)),
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("central-system.db").display()));
        if self.sqlite_synchronous == SqliteSynchronous::Full
            && url.starts_with("sqlite:")
            && !url.contains("synchronous=")
        {
            let separator = if url.contains('?') { '&' } else { '?' };
            return format!("{url}{separator}synchronous=full");
        }
        url
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

    /// This node's name on the bus (MQTT client ids, command serving): `--node-id`, else
    /// `central-{host}-{port}`, unique per process on one host and stable across its restarts.
    pub fn node_id(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        // Linux keeps the name here; elsewhere `HOSTNAME` usually has it.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("central-{host}-{}", self.listen.port())
    }

    /// Ping interval, if enabled.
    pub fn ping_interval(&self) -> Option<Duration> {
        (self.ping_interval > 0).then(|| Duration::from_secs(self.ping_interval))
    }

    /// Call timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout.max(1))
    }

    /// The bound after a 2.0.1 boot (see `abandon_after_boot_secs`).
    pub fn abandon_after_boot(&self) -> Duration {
        Duration::from_secs(self.abandon_after_boot_secs)
    }

    /// How long a connected station may stay unheard and its Active transactions still count
    /// as going on (for ConcurrentTx): two heartbeat or ping intervals, whichever is longer,
    /// plus the `lastSeenAt` write interval.
    pub fn liveness_window(&self) -> Duration {
        let beat = u64::from(self.heartbeat_interval).max(self.ping_interval);
        Duration::from_secs(beat.saturating_mul(2)) + Duration::from_millis(self.last_seen_write_ms)
    }

    /// A configuration for tests: an ephemeral port and the given database.
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url,
            sqlite_synchronous: SqliteSynchronous::Normal,
            unknown_stations: UnknownStations::Accept,
            require_auth: false,
            heartbeat_interval: 300,
            boot_retry_interval: 5,
            ping_interval: 60,
            call_timeout: 10,
            max_connections: 20_000,
            http_header_timeout: 30,
            passwords: PasswordArgs::default(),
            max_frame_bytes: 65_536,
            max_body_bytes: service_kit::extract::DEFAULT_MAX_BODY_BYTES,
            metrics_listen: None,
            bus: BusKind::Inproc,
            mqtt_url: None,
            bus_topic_prefix: "evcs".into(),
            node_id: None,
            jwt_secret: Some("test-secret-with-enough-entropy-0123456789".into()),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            station_ca_cert: None,
            station_ca_key: None,
            station_cert_organization: None,
            station_cert_validity_days: 365,
            station_cert_renew_days: 30,
            station_cert_check_secs: 3600,
            frame_log: true,
            frame_log_size: 500,
            frame_log_station_bytes: 4 << 20,
            frame_log_total_bytes: 1 << 30,
            message_max_bytes: 65_536,
            message_station_bytes: 16 << 20,
            message_total_bytes: 1 << 30,
            message_retention_days: 90,
            pending_limit: 100,
            pending_log_bytes: 1 << 20,
            pending_message_rate: 2,
            pending_connect_rate: 10,
            meter_flush_ms: 0,
            meter_commit_attempts: 8,
            abandon_after_boot_secs: 300,
            last_seen_write_ms: 60_000,
            log_format: LogFormat::Text,
            meter_summary_secs: 60,
            outbox_retention_secs: 3600,
            station_max_power_w: 22_000,
            iso15118_energy_transfer: ["DC", "AC_single_phase", "AC_two_phase", "AC_three_phase"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_synchronous_full_goes_into_sqlite_urls_only() {
        let mut config = Config::for_tests(PathBuf::from("/d"), None);
        assert_eq!(config.database_url(), "sqlite:///d/central-system.db");
        config.sqlite_synchronous = SqliteSynchronous::Full;
        assert_eq!(config.database_url(), "sqlite:///d/central-system.db?synchronous=full");
        config.database_url = Some("sqlite://x.db?mode=rwc".into());
        assert_eq!(config.database_url(), "sqlite://x.db?mode=rwc&synchronous=full");
        config.database_url = Some("postgres://h/db".into());
        assert_eq!(config.database_url(), "postgres://h/db");
    }

    #[test]
    fn liveness_window_covers_two_beats_and_the_last_seen_throttle() {
        let mut c = Config::for_tests(PathBuf::from("."), None);
        (c.heartbeat_interval, c.ping_interval, c.last_seen_write_ms) = (300, 60, 60_000);
        assert_eq!(c.liveness_window(), Duration::from_secs(660));
        (c.heartbeat_interval, c.ping_interval, c.last_seen_write_ms) = (30, 0, 0);
        assert_eq!(c.liveness_window(), Duration::from_secs(60));
    }

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
