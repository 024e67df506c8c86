//! Configuration: flags with `EVCS_BOOKING_*` environment variables, and defaults that make the
//! embedded mode work with no configuration at all.

use clap::Args;
use service_kit::password::PasswordConfig;
use service_kit::secrets::Secret;
use service_kit::server::ConnectionLimits;
use service_kit::telemetry::LogFormat;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Booking-API settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the REST listener.
    #[arg(long, env = "EVCS_BOOKING_LISTEN", default_value = "0.0.0.0:9100")]
    pub listen: SocketAddr,

    /// Directory for the embedded database and generated secrets.
    #[arg(long, env = "EVCS_BOOKING_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://FILE` or `postgres://...` (default: `DATA_DIR/booking.db`).
    #[arg(long, env = "EVCS_BOOKING_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Secret that signs access tokens (default: generated once into `DATA_DIR/booking-jwt-secret`).
    #[arg(long, env = "EVCS_BOOKING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Largest request body in bytes; a larger one is answered 413 `PAYLOAD_TOO_LARGE`.
    #[arg(long, env = "EVCS_BOOKING_MAX_BODY_BYTES", default_value_t = service_kit::extract::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9191`), not on the public listener.
    #[arg(long, env = "EVCS_BOOKING_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Email of the admin account created on first start with an empty database.
    #[arg(long, env = "EVCS_BOOKING_ADMIN_EMAIL", default_value = "admin@evcs.local")]
    pub admin_email: String,

    /// Most simultaneous connections before new ones wait in the backlog.
    #[arg(long, env = "EVCS_BOOKING_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Seconds a connection may take to send a complete request head, counted from when it
    /// starts waiting for one (so it also closes idle keep-alive connections).
    #[arg(long, env = "EVCS_BOOKING_HTTP_HEADER_TIMEOUT", default_value_t = 10)]
    pub http_header_timeout: u64,

    /// Reverse proxies whose `X-Forwarded-For` names the client for the login limit
    /// (comma-separated IP addresses; none by default: the TCP peer is the client).
    #[arg(long, env = "EVCS_BOOKING_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// The bus the central system's events arrive on.
    #[command(flatten)]
    pub bus: BusArgs,

    /// Argon2id cost of account passwords and the pool that checks them.
    #[command(flatten)]
    pub passwords: PasswordArgs,

    /// Policy values (horizons, cutoffs, token lifetimes, rate limits).
    #[command(flatten)]
    pub policy: Policy,

    /// QR check-in: signing keys and token lifetime.
    #[command(flatten)]
    pub checkin: crate::checkin::keys::CheckinArgs,
    /// Bookings on the charger: reservation lead time, retries, command timeout.
    #[command(flatten)]
    pub reservations: crate::reservations::Settings,

    /// SMTP server for email notifications, e.g. `smtps://user:pass@mail.example.com`
    /// (notifications are only logged without it).
    #[cfg(feature = "smtp")]
    #[arg(long, env = "EVCS_BOOKING_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// Sender of notification emails.
    #[cfg(feature = "smtp")]
    #[arg(long, env = "EVCS_BOOKING_SMTP_FROM", default_value = "EVCS <noreply@evcs.local>")]
    pub smtp_from: String,

    /// Log format.
    #[arg(
        long = "booking-log-format",
        env = "EVCS_BOOKING_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Policy values; every one has a flag and an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Policy {
    /// How far ahead a booking may start, in days.
    #[arg(long, env = "EVCS_BOOKING_HORIZON_DAYS", default_value_t = 7)]
    pub booking_horizon_days: i64,

    /// Reschedule and cancel are refused this many hours before the start.
    #[arg(long, env = "EVCS_BOOKING_CUTOFF_HOURS", default_value_t = 12)]
    pub cutoff_hours: i64,

    /// Days of slot inventory kept ahead by the background worker.
    #[arg(long, env = "EVCS_BOOKING_INVENTORY_DAYS", default_value_t = 14)]
    pub inventory_days: i64,

    /// Seconds between runs of the inventory and no-show worker.
    #[arg(long, env = "EVCS_BOOKING_WORKER_INTERVAL_SECS", default_value_t = 300)]
    pub worker_interval_secs: u64,

    /// Earliest check-in, in minutes before the start.
    #[arg(long, env = "EVCS_BOOKING_EARLY_CHECKIN_MINUTES", default_value_t = 15)]
    pub early_checkin_minutes: i64,

    /// Minutes after the slot's end before an approved booking becomes NoShow.
    #[arg(long, env = "EVCS_BOOKING_NO_SHOW_GRACE_MINUTES", default_value_t = 15)]
    pub no_show_grace_minutes: i64,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "EVCS_BOOKING_ACCESS_TOKEN_SECS", default_value_t = 900)]
    pub access_token_secs: i64,

    /// Lifetime of refresh tokens, in days.
    #[arg(long, env = "EVCS_BOOKING_REFRESH_TOKEN_DAYS", default_value_t = 30)]
    pub refresh_token_days: i64,

    /// Failed logins per identifier within the window before logins are refused with 429.
    #[arg(long, env = "EVCS_BOOKING_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: usize,

    /// Failed logins from one client address (IPv6: its /64) within the window, whatever the
    /// identifier, before its logins are refused with 429.
    #[arg(long, env = "EVCS_BOOKING_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 30)]
    pub login_max_failures_per_address: usize,

    /// Window of the login rate limit, in seconds.
    #[arg(long, env = "EVCS_BOOKING_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: i64,

    /// Days a booking response is kept for its Idempotency-Key.
    #[arg(long, env = "EVCS_BOOKING_IDEMPOTENCY_DAYS", default_value_t = 7)]
    pub idempotency_days: i64,

    /// Minutes a linked charger may stay disconnected before a CHARGER_OFFLINE alert is raised
    /// (checked by the maintenance worker; 0: never).
    #[arg(long, env = "EVCS_BOOKING_ALERT_OFFLINE_MINUTES", default_value_t = 10)]
    pub alert_offline_minutes: i64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            booking_horizon_days: 7,
            cutoff_hours: 12,
            inventory_days: 14,
            worker_interval_secs: 300,
            early_checkin_minutes: 15,
            no_show_grace_minutes: 15,
            access_token_secs: 900,
            refresh_token_days: 30,
            login_max_failures: 5,
            login_max_failures_per_address: 30,
            login_window_secs: 900,
            idempotency_days: 7,
            alert_offline_minutes: 10,
        }
    }
}

/// Which bus transport carries the central system's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusKind {
    /// In-process channels: the all-in-one `evcs` hands both services one bus; a standalone
    /// booking API then hears nothing but what is published in its own process.
    Inproc,
    /// An MQTT 5 broker (`--mqtt-url`).
    Mqtt,
}

/// Bus settings.
#[derive(Debug, Clone, Args)]
pub struct BusArgs {
    /// Bus transport.
    #[arg(long = "bus", env = "EVCS_BOOKING_BUS", value_enum, default_value = "inproc")]
    pub kind: BusKind,

    /// Broker of `--bus mqtt`: `mqtt://[user:password@]host[:port]`.
    #[arg(long, env = "EVCS_BOOKING_MQTT_URL", hide_env_values = true)]
    pub mqtt_url: Option<Secret>,

    /// First topic level(s) on the broker; the same as the central system's.
    #[arg(
        long = "bus-topic-prefix",
        env = "EVCS_BOOKING_BUS_TOPIC_PREFIX",
        default_value = "evcs"
    )]
    pub topic_prefix: String,

    /// This replica's stable name in the `booking-api` consumer group (its MQTT session, and
    /// the events queued for it while it is away, follow the name across restarts).
    #[arg(
        long = "bus-member",
        env = "EVCS_BOOKING_BUS_MEMBER",
        default_value = "booking-api-1"
    )]
    pub member: String,
}

impl Default for BusArgs {
    fn default() -> BusArgs {
        BusArgs {
            kind: BusKind::Inproc,
            mqtt_url: None,
            topic_prefix: "evcs".into(),
            member: "booking-api-1".into(),
        }
    }
}

/// Argon2id parameters and the size of the pool that hashes and verifies account passwords.
#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
    /// Argon2id memory cost of new password hashes, KiB (existing hashes keep their own).
    #[arg(long, env = "EVCS_BOOKING_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,

    /// Argon2id passes (iterations) of new password hashes.
    #[arg(long, env = "EVCS_BOOKING_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id lanes (parallelism) of new password hashes.
    #[arg(long, env = "EVCS_BOOKING_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,

    /// Password checks running at once (default: one per core); each holds the memory cost.
    #[arg(long, env = "EVCS_BOOKING_PASSWORD_WORKERS")]
    pub password_workers: Option<usize>,

    /// Password checks waiting beyond those before a login is answered 503 (default: 4 per
    /// worker).
    #[arg(long, env = "EVCS_BOOKING_PASSWORD_QUEUE")]
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

    /// The defaults of the embedded mode, data under `data_dir` (what `evcs` uses when it does not
    /// parse booking flags itself).
    pub fn embedded(data_dir: PathBuf) -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 9100)),
            data_dir,
            database_url: None,
            jwt_secret: None,
            max_body_bytes: service_kit::extract::DEFAULT_MAX_BODY_BYTES,
            metrics_listen: None,
            admin_email: "admin@evcs.local".into(),
            max_connections: 1024,
            http_header_timeout: 10,
            trusted_proxies: Vec::new(),
            bus: BusArgs::default(),
            passwords: PasswordArgs::default(),
            policy: Policy::default(),
            checkin: crate::checkin::keys::CheckinArgs::default(),
            reservations: crate::reservations::Settings::default(),
            #[cfg(feature = "smtp")]
            smtp_url: None,
            #[cfg(feature = "smtp")]
            smtp_from: "EVCS <noreply@evcs.local>".into(),
            log_format: LogFormat::Text,
        }
    }

    /// A configuration for tests: an ephemeral local port and the given database.
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: Some(Secret::new("booking-test-secret-0123456789abcdef")),
            database_url,
            ..Config::embedded(data_dir)
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("booking.db").display()))
    }
}
