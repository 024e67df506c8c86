//! Building and running the service: state, routes, background workers, shutdown.

use crate::accounts::login_limit::LoginLimiter;
use crate::accounts::{self, AdminCredentials};
use crate::api;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{BusArgs, BusKind, Config};
use crate::notifications::{self, LogNotifier, Notifier};
use anyhow::Context;
use evcs_bus::{Bus, EventStream, InProcBus, MqttBus, MqttConfig};
use service_kit::db::{Db, Migrations};
use service_kit::jwt::JwtKeys;
use service_kit::password::Passwords;
use service_kit::server::PlainTcp;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/booking-api/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/booking-api/postgres");

/// The booking database's migrations, per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

/// Everything handlers and workers share.
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// Storage.
    pub db: Db,
    /// Access-token keys.
    pub jwt: JwtKeys,
    /// The one source of "now".
    pub clock: SharedClock,
    /// The bounded pool that hashes and verifies passwords.
    pub passwords: Passwords,
    /// Failed logins per identifier and client address.
    pub login_limiter: LoginLimiter,
    /// A hash verified when a login names no account, so timing does not tell.
    pub dummy_hash: String,
    /// Delivers queued notifications.
    pub notifier: Arc<dyn Notifier>,
    /// Wakes the notification dispatcher after a commit that queued some.
    pub dispatch_wakeup: Notify,
    /// Wakes the charger reservation worker after a booking change that asks for charger work.
    pub charger_wakeup: Notify,
    /// Wakes the billing worker after a session completed.
    pub billing_wakeup: Notify,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// The bus the central system's events arrive on (and, later, commands leave by).
    pub bus: Arc<dyn Bus>,
    /// The live WebSocket's sequence, resume buffer and connection counts: changes are
    /// published into it after their commit.
    pub live: crate::live::Live,
    /// The keys of QR check-in tokens and connector codes.
    pub checkin_keys: crate::checkin::tokens::Keyring,
}

// By hand: `dyn Bus` has no Debug.
impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("db", &self.db)
            .field("clock", &self.clock)
            .field("notifier", &self.notifier)
            .finish_non_exhaustive()
    }
}

/// Cheaply clonable shared state.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Asks the dispatcher to deliver queued notifications now.
    pub fn wake_dispatcher(&self) {
        self.dispatch_wakeup.notify_one();
    }

    /// Asks the reservation worker ([`crate::reservations::worker`]) for a round now.
    pub fn wake_charger_work(&self) {
        self.charger_wakeup.notify_one();
    }

    /// Asks the billing worker ([`crate::billing::invoices::worker`]) to invoice now.
    pub fn wake_billing(&self) {
        self.billing_wakeup.notify_one();
    }
}

/// Optional parts of the service, for embedding and tests.
pub struct Parts {
    /// The clock (default: the system clock).
    pub clock: SharedClock,
    /// The notification adapter (default: the log).
    pub notifier: Arc<dyn Notifier>,
    /// Run the maintenance worker and the notification dispatcher (default: yes). Tests that
    /// drive [`run_maintenance`] and [`notifications::dispatch`] themselves turn them off.
    pub background: bool,
    /// A bus shared with the rest of the process (the all-in-one `evcs` hands the central
    /// system and the booking API one [`evcs_bus::InProcBus`]); `None`: the one `--bus` names.
    pub shared_bus: Option<Arc<dyn Bus>>,
}

impl Default for Parts {
    fn default() -> Parts {
        Parts {
            clock: Arc::new(SystemClock),
            notifier: Arc::new(LogNotifier),
            background: true,
            shared_bus: None,
        }
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("clock", &self.clock)
            .field("notifier", &self.notifier)
            .field("background", &self.background)
            .field("shared_bus", &self.shared_bus.is_some())
            .finish()
    }
}

/// The bus `config` names: a fresh in-process bus, or a connection to the MQTT broker.
async fn connect_bus(config: &BusArgs) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match config.kind {
        BusKind::Inproc => Arc::new(InProcBus::new()),
        BusKind::Mqtt => {
            let url = config
                .mqtt_url
                .as_ref()
                .context("--bus mqtt needs --mqtt-url (EVCS_BOOKING_MQTT_URL)")?;
            let mqtt = MqttConfig::from_url(url.expose(), &config.topic_prefix)?;
            Arc::new(
                MqttBus::connect(mqtt, &config.member)
                    .await
                    .context("connecting to the MQTT broker")?,
            )
        }
    })
}

/// A built, not yet running, booking API.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    initial_admin: Option<AdminCredentials>,
    background: bool,
    /// Subscribed at build time, so nothing published between build and run is missed.
    events: EventStream,
}

impl Application {
    /// Connects and migrates storage, creates the first admin on an empty database (printing
    /// its password once on stdout), builds the inventory and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_sharing_bus(config, None).await
    }

    /// Like [`Application::build`]; with `shared_bus`, events come from that bus instead of
    /// the one `--bus` names (the all-in-one binary passes the bus it also gives the central
    /// system).
    pub async fn build_sharing_bus(config: Config, shared_bus: Option<Arc<dyn Bus>>) -> anyhow::Result<Application> {
        #[allow(unused_mut)] // mutated with the smtp feature only
        let mut parts = Parts {
            shared_bus,
            ..Parts::default()
        };
        #[cfg(feature = "smtp")]
        if let Some(url) = &config.smtp_url {
            parts.notifier = Arc::new(notifications::smtp::SmtpNotifier::new(url.expose(), &config.smtp_from)?);
        }
        let app = Self::build_with(config, parts).await?;
        if let Some(admin) = &app.initial_admin {
            println!(
                "booking-api: created the admin account {} with password {} (shown once; change it with PUT /api/v1/me/password)",
                admin.email, admin.password
            );
        }
        Ok(app)
    }

    /// Like [`Application::build`] with a given clock and notifier, without printing.
    pub async fn build_with(config: Config, parts: Parts) -> anyhow::Result<Application> {
        let background = parts.background;
        let db = Db::connect(&config.database_url(), MIGRATIONS).await?;
        let secret = service_kit::secrets::stored_secret(
            config.jwt_secret.as_ref().map(|s| s.expose()),
            &config.data_dir,
            "booking-jwt-secret",
        )?;
        let checkin_keys = crate::checkin::keys::load(&config.checkin, &config.data_dir)?;
        let passwords = Passwords::new(&config.passwords.config())?;
        let initial_admin = accounts::bootstrap_admin(&db, &passwords, &config.admin_email, parts.clock.now_ms())
            .await
            .context("creating the first admin")?;
        let dummy_hash = passwords.hash("not a real password".into()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let bus = match parts.shared_bus {
            Some(bus) => bus,
            None => connect_bus(&config.bus).await?,
        };
        let events = bus
            .subscribe(crate::chargers::consumer::GROUP, &config.bus.member)
            .await
            .context("subscribing to the bus")?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?,
            ),
            None => None,
        };
        let state = AppState(Arc::new(Shared {
            login_limiter: LoginLimiter::new(
                config.policy.login_max_failures,
                config.policy.login_max_failures_per_address,
                config.policy.login_window_secs,
            ),
            passwords,
            config,
            db,
            jwt: JwtKeys::new(secret.as_bytes(), crate::api::auth::SCOPE),
            clock: parts.clock,
            dummy_hash,
            notifier: parts.notifier,
            dispatch_wakeup: Notify::new(),
            charger_wakeup: Notify::new(),
            billing_wakeup: Notify::new(),
            metrics: crate::metrics::Metrics::new(),
            shutdown: CancellationToken::new(),
            bus,
            live: crate::live::Live::new(),
            checkin_keys,
        }));
        crate::stations::sync_all(&state)
            .await
            .context("building the slot inventory")?;
        Ok(Application {
            listener,
            metrics_listener,
            state,
            initial_admin,
            background,
            events,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.listen)
    }

    /// The bound address of `--metrics-listen`, when set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The first admin's credentials, when this start created it.
    pub fn initial_admin(&self) -> Option<&AdminCredentials> {
        self.initial_admin.as_ref()
    }

    /// Serves until the shutdown token is cancelled, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics_listener,
            state,
            background,
            events,
            ..
        } = self;
        // The projection is fed whether or not the periodic workers run: tests that drive those
        // by hand still publish chargers and wait for them.
        let consumer = tokio::spawn(crate::chargers::consumer::run(state.clone(), events));
        let router = api::router(state.clone());
        let metrics_server = metrics_listener.map(|listener| {
            let shutdown = state.shutdown.clone();
            let router = api::metrics_router()
                .fallback(service_kit::extract::not_found)
                .with_state(state.clone());
            tokio::spawn(async move {
                let serving =
                    axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await });
                if let Err(e) = serving.await {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            })
        });
        tracing::info!(
            addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            backend = state.db.backend(),
            "booking API listening"
        );
        let (workers, dispatcher, reservations, billing) = if background {
            (
                Some(tokio::spawn(run_workers(state.clone()))),
                Some(tokio::spawn(run_dispatcher(state.clone()))),
                Some(tokio::spawn(crate::reservations::worker(state.clone()))),
                Some(tokio::spawn(crate::billing::invoices::worker(state.clone()))),
            )
        } else {
            (None, None, None, None)
        };
        let tracker = TaskTracker::new();
        service_kit::server::serve(
            listener,
            router,
            PlainTcp,
            state.config.connection_limits(),
            state.shutdown.clone(),
            tracker.clone(),
        )
        .await;
        state.shutdown.cancel();
        // In-flight requests finish (each connection closes gracefully within 5 s).
        tracker.close();
        tracker.wait().await;
        for task in [
            workers,
            dispatcher,
            reservations,
            billing,
            metrics_server,
            Some(consumer),
        ]
        .into_iter()
        .flatten()
        {
            let _ = task.await;
        }
        // Deliver what the last requests queued.
        if let Err(e) = notifications::dispatch(&state).await {
            tracing::warn!(error = %e, "final notification dispatch failed");
        }
        state.db.close().await;
        tracing::info!("booking API stopped");
        Ok(())
    }
}

/// One round of the periodic work: extend the inventory horizon, mark no-shows, forget expired
/// idempotency keys.
pub async fn run_maintenance(state: &AppState) -> anyhow::Result<()> {
    let added = crate::stations::sync_all(state).await?;
    let no_shows = crate::bookings::sweep_no_shows(state).await?;
    let purged = crate::bookings::store::purge_idempotency(&state.db, state.clock.now_ms()).await?;
    let offline = crate::alerts::charger::sweep_offline(state).await?.len();
    tracing::debug!(added, no_shows, purged, offline, "maintenance round");
    Ok(())
}

async fn run_workers(state: AppState) {
    let period = Duration::from_secs(state.config.policy.worker_interval_secs.max(1));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(e) = run_maintenance(&state).await {
            tracing::warn!(error = %e, "maintenance round failed");
        }
    }
}

/// Notifications queued within this window after a wake-up are delivered together: under load
/// the dispatcher then runs a few times a second instead of once per commit.
const DISPATCH_COALESCE: Duration = Duration::from_millis(50);

async fn run_dispatcher(state: AppState) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.dispatch_wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(DISPATCH_COALESCE) => {}
        }
        // Drain: a full batch means more may be waiting.
        loop {
            match notifications::dispatch(&state).await {
                Ok(n) if n >= 100 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "notification dispatch failed");
                    break;
                }
            }
        }
    }
}
