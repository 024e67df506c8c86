//! `evcs`: the whole system in one process on the embedded defaults (SQLite under `./data`).
//! For now that is the central system, optionally with simulated demo chargers; the booking API
//! joins it in its own issue.

// glibc malloc fragments and contends under many small per-message allocations; mimalloc
// measured markedly faster on the MeterValues path (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod demo;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "evcs",
    version,
    about = "EV charging backend: OCPP central system (and soon the booking API) in one process"
)]
struct Cli {
    #[command(flatten)]
    central: central_system::Config,
    /// Start this many simulated chargers (alternating OCPP 1.6 and 2.0.1) that charge in a
    /// loop against this process, so sessions show up in the API at once.
    #[arg(long, env = "EVCS_DEMO", default_value_t = 0)]
    demo: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    central_system::telemetry::init(cli.central.log_format);
    let app = central_system::Application::build(cli.central).await?;
    let state = app.state();
    service_kit::shutdown::cancel_on_signal(state.shutdown.clone());
    let _demo = if cli.demo > 0 {
        let handles = demo::start(&state, app.local_addr(), cli.demo).await?;
        println!(
            "started {} demo chargers (DEMO-01..) presenting {}01..",
            handles.len(),
            demo::DEMO_TAG
        );
        handles
    } else {
        Vec::new()
    };
    app.run_until_stopped().await
}
