//! Building and running the service: state, routes, listener, shutdown.

use crate::api;
use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::handlers::data_transfer::DataTransferHandlers;
use crate::metrics::Metrics;
use crate::ocpp_ws::pending::AttemptLimiter;
use crate::ocpp_ws::registry::Registry;
use crate::ocpp_ws::upgrade;
use crate::outbox::{MeterSummaries, Publisher, PublisherConfig, PublisherStats};
use crate::server;
use crate::store::retention::{FrameBudget, MessageBudget, MessageRetention};
use crate::store::types::Ts;
use crate::store::writer::{BatchWriter, WriterConfig};
use crate::store::Store;
use anyhow::Context;
use axum::routing::get;
use axum::Router;
use service_kit::password::Passwords;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything request handlers and sessions share.
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// Storage.
    pub store: Store,
    /// Meter/frame batch writer.
    pub writer: BatchWriter,
    /// Stores charger messages within their budgets.
    pub messages: MessageRetention,
    /// Connection attempts of stations that are unknown or not Accepted.
    pub attempts: AttemptLimiter,
    /// Connected stations.
    pub registry: Registry,
    /// The event and command bus (in-process by default, MQTT with `--bus mqtt`). Events reach
    /// it only through the outbox.
    pub bus: Arc<dyn evcs_bus::Bus>,
    /// This node's name on the bus.
    pub node_id: String,
    /// Metrics.
    pub metrics: Metrics,
    /// Operator token keys.
    pub jwt: JwtKeys,
    /// Vendor DataTransfer handlers.
    pub data_transfer: DataTransferHandlers,
    /// The station CA and its signing rules.
    pub certificates: crate::certificates::Certificates,
    /// The bounded pool that hashes and verifies station passwords.
    pub passwords: Passwords,
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// Tracks connections and sessions, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// The latest meter values per transaction, for `meterSummary` events.
    pub meter_summaries: MeterSummaries,
    /// The outbox publisher's counters (for `/metrics`).
    pub outbox_stats: Arc<PublisherStats>,
}

impl std::fmt::Debug for Shared {
    // By hand because the bus is a trait object; the pools and channels add nothing to a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("registry", &self.registry)
            .field("node_id", &self.node_id)
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

/// A built, not yet running, central system.
pub struct Application {
    publisher_config: PublisherConfig,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Application {
    /// Connects storage, binds the listener and prepares TLS.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with(config, DataTransferHandlers::default()).await
    }

    /// Like [`Application::build`], with vendor DataTransfer handlers.
    pub async fn build_with(config: Config, data_transfer: DataTransferHandlers) -> anyhow::Result<Application> {
        let bus = crate::bus::connect(&config).await?;
        Self::build_with_bus(config, data_transfer, bus).await
    }

    /// Like [`Application::build_with`], on a bus the caller built (tests wrap one to make it
    /// fail; an all-in-one process shares one in-process bus between its services).
    pub async fn build_with_bus(
        config: Config,
        data_transfer: DataTransferHandlers,
        bus: Arc<dyn evcs_bus::Bus>,
    ) -> anyhow::Result<Application> {
        // Compile every schema now, so no charger's first message pays for it.
        ocpp::schema::preload().map_err(|v| anyhow::anyhow!("compiling the OCPP schemas: {v}"))?;
        let store = Store::connect(&config.database_url()).await?;
        store
            .mark_all_offline(&config.node_id())
            .await
            .context("resetting online flags")?;
        let certificates = certificates(&config)?;
        // The station CA is a client-certificate root, so what it signs works for profile 3.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(
                cert,
                key,
                config.tls_client_ca.as_deref(),
                &[certificates.ca.cert_der().clone()],
            )?),
            _ => None,
        };
        let secret = crate::secrets::jwt_secret(&config)?;
        let writer = BatchWriter::spawn(
            &config.database_url(),
            WriterConfig {
                max_wait: Duration::from_millis(config.meter_flush_ms),
                commit_attempts: config.meter_commit_attempts.max(1),
                frame_budget: FrameBudget {
                    rows_per_station: config.frame_log_size.max(1),
                    bytes_per_station: config.frame_log_station_bytes.max(1),
                    total_bytes: config.frame_log_total_bytes.max(1),
                    not_accepted_bytes: config.pending_log_bytes.max(1),
                },
                log_frames: config.frame_log,
                outbox_wake: store.outbox_wake().clone(),
                ..WriterConfig::default()
            },
        )
        .await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let messages = MessageRetention::new(MessageBudget {
            max_payload_bytes: config.message_max_bytes,
            bytes_per_station: config.message_station_bytes.max(1),
            total_bytes: config.message_total_bytes.max(1),
            retention: Duration::from_secs(u64::from(config.message_retention_days) * 24 * 3600),
        });
        let attempts = AttemptLimiter::new(config.pending_connect_rate);
        let passwords = Passwords::new(&config.passwords.config())?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener {addr}"))?,
            ),
            None => None,
        };
        let node_id = config.node_id();
        let meter_summaries = MeterSummaries::new(Duration::from_secs(config.meter_summary_secs));
        let publisher_config = PublisherConfig {
            retention: Duration::from_secs(config.outbox_retention_secs),
            ..PublisherConfig::default()
        };
        let state = AppState(Arc::new(Shared {
            certificates,
            passwords,
            bus,
            node_id,
            config,
            store,
            writer,
            messages,
            attempts,
            registry: Registry::default(),
            metrics: Metrics::new(),
            jwt: crate::auth::jwt::operator_keys(secret.as_bytes()),
            data_transfer,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            meter_summaries,
            outbox_stats: Arc::default(),
        }));
        Ok(Application {
            publisher_config,
            listener,
            metrics_listener,
            state,
            tls,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.state.config.listen)
    }

    /// The bound address of `--metrics-listen`, when set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (tests reach the store and registry through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains and flushes.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            publisher_config,
            listener,
            metrics_listener,
            state,
            tls,
        } = self;
        let router = router(state.clone());
        if let Some(warning) = state.config.open_access_warning() {
            tracing::warn!("{warning}");
        }
        let metrics_server = metrics_listener.map(|listener| {
            let shutdown = state.shutdown.clone();
            let router = api::health::metrics_router()
                .fallback(api::not_found)
                .with_state(state.clone());
            tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics listening");
            tokio::spawn(async move {
                let serving = axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await });
                if let Err(e) = serving.await {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            })
        });
        tracing::info!(
            addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            tls = tls.is_some(),
            backend = state.store.backend(),
            "central system listening"
        );
        state.tracker.spawn(sweep_messages(state.clone()));
        state
            .tracker
            .spawn(crate::bus_commands::serve(state.clone(), state.node_id.clone()));
        state.tracker.spawn(crate::certificates::sweep(state.clone()));
        let publisher = Publisher::spawn(
            state.store.clone(),
            state.bus.clone(),
            publisher_config,
            state.outbox_stats.clone(),
        );
        server::serve(
            listener,
            router,
            tls,
            state.config.connection_limits(),
            state.shutdown.clone(),
            state.tracker.clone(),
        )
        .await;
        // Stop accepting, let sessions close their sockets, then commit what they queued.
        state.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 10 s");
        }
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        state.writer.flush().await;
        // The sessions' last events (stationOffline) are committed now: one more round.
        publisher.stop(Duration::from_secs(5)).await;
        state.store.close().await;
        tracing::info!("central system stopped");
        Ok(())
    }
}

/// The station CA (configured or embedded) and the signing rules from the configuration.
fn certificates(config: &Config) -> anyhow::Result<crate::certificates::Certificates> {
    let ca = crate::certificates::authority::StationCa::load_or_create(
        config.station_ca_cert.as_deref(),
        config.station_ca_key.as_deref(),
        &config.data_dir,
    )?;
    let organization = config
        .station_cert_organization
        .clone()
        .or_else(|| ca.organization().map(str::to_string));
    if organization.is_none() {
        tracing::warn!("the station CA names no organization and none is configured: CSRs may name any O");
    }
    Ok(crate::certificates::Certificates {
        ca,
        organization,
        validity: chrono::Duration::days(i64::from(config.station_cert_validity_days.max(1))),
        renew_before: chrono::Duration::days(i64::from(config.station_cert_renew_days)),
    })
}

/// Applies the message retention and budgets every 10 minutes (and once at start), until
/// shutdown.
async fn sweep_messages(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match state.messages.sweep(&state.store, Ts::now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "stored messages pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning stored messages failed"),
        }
    }
}

/// All routes: OCPP endpoint, operator API, health, and metrics unless they have their own
/// listener.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/ocpp/{station_id}", get(upgrade::upgrade))
        .merge(api::health::router());
    if state.config.metrics_listen.is_none() {
        router = router.merge(api::health::metrics_router());
    }
    router
        .nest("/api/v1", api::router())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(service_kit::extract::body_limit(state.config.max_body_bytes))
        .with_state(state)
}
