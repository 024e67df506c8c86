//! `evcs`: the whole system in one process on the embedded defaults (SQLite files under
//! `./data`): the central system (OCPP and operator API, port 9000) and the booking API (port
//! 9100), optionally with simulated demo chargers. Both services share the central system's
//! event/command bus.

// glibc malloc fragments and contends under many small per-message allocations; mimalloc
// measured markedly faster on the MeterValues path (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod demo;
mod demo_bookings;
mod limits;

use central_system::auth::jwt::MintToken;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "evcs",
    version,
    about = "EV charging backend: OCPP central system and booking API in one process",
    after_help = "The booking API also reads its own EVCS_BOOKING_* variables (policies, token \
                  lifetimes, admin e-mail; see booking-api/README.md)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The central system's settings (global flags: they also work after `mint-token`).
    #[command(flatten)]
    central: central_system::Config,
    /// Booking API listen address.
    #[arg(long, env = "EVCS_BOOKING_LISTEN", default_value = "0.0.0.0:9100")]
    booking_listen: SocketAddr,
    /// Booking API database (default: `booking.db`, SQLite, in the data directory).
    #[arg(long, env = "EVCS_BOOKING_DATABASE_URL", hide_env_values = true)]
    booking_database_url: Option<String>,
    /// Start this many simulated chargers (alternating OCPP 1.6 and 2.0.1) that charge in a
    /// loop against this process, so sessions show up in the API at once.
    #[arg(long, env = "EVCS_DEMO", default_value_t = 0)]
    demo: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed operator JWT for the central system's API, signed with the secret the
    /// server uses (`--jwt-secret`, else the one kept in `--data-dir`).
    MintToken(MintToken),
}

/// The booking API's settings alone, read from the environment (flags would clash with the
/// central system's).
#[derive(Parser)]
struct BookingEnv {
    #[command(flatten)]
    config: booking_api::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    central_system::telemetry::init(cli.central.log_format);
    if let Some(Command::MintToken(mint)) = &cli.command {
        println!("{}", mint.token(&cli.central)?);
        return Ok(());
    }

    // The booking API's own settings come from its EVCS_BOOKING_* variables; the data directory
    // is the central system's unless EVCS_BOOKING_DATA_DIR says otherwise.
    let mut booking_config = BookingEnv::try_parse_from(["evcs"])?.config;
    if std::env::var_os("EVCS_BOOKING_DATA_DIR").is_none() {
        booking_config.data_dir = cli.central.data_dir.clone();
    }
    booking_config.listen = cli.booking_listen;
    booking_config.database_url = cli.booking_database_url.clone();
    if let Some(open_files) = service_kit::server::raise_open_file_limit() {
        let wanted = (cli.central.max_connections, booking_config.max_connections);
        let (central, booking) = limits::share(open_files, wanted.0, wanted.1);
        if (central, booking) != wanted {
            tracing::info!(
                open_files,
                central,
                booking,
                "connection limits shared out to fit the open-file limit"
            );
        }
        (cli.central.max_connections, booking_config.max_connections) = (central, booking);
    }

    let central = central_system::Application::build(cli.central).await?;
    // One bus for the process: the booking API consumes what the central system publishes on
    // its bus (in-process by default, the broker with `--bus mqtt`), whatever EVCS_BOOKING_BUS says.
    let booking =
        booking_api::Application::build_sharing_bus(booking_config, Some(central.state().bus.clone())).await?;
    let state = central.state();

    // One stop signal, or either service ending, stops both.
    let stop = CancellationToken::new();
    service_kit::shutdown::cancel_on_signal(stop.clone());
    {
        let (stop, c, b) = (stop.clone(), state.shutdown.clone(), booking.state().shutdown.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            c.cancel();
            b.cancel();
        });
    }
    let _demo = if cli.demo > 0 {
        let handles = demo::start(&state, central.local_addr(), cli.demo).await?;
        println!(
            "started {} demo chargers (DEMO-01..) presenting {}01..",
            handles.len(),
            demo::DEMO_TAG
        );
        let booked = demo_bookings::start(booking.state(), central.local_addr(), booking.local_addr()).await?;
        let mut handles = handles;
        handles.push(booked);
        handles
    } else {
        Vec::new()
    };
    let (central_done, booking_done) = tokio::join!(
        async {
            let r = central.run_until_stopped().await;
            stop.cancel();
            r
        },
        async {
            let r = booking.run_until_stopped().await;
            stop.cancel();
            r
        }
    );
    central_done?;
    booking_done
}
