//! `evcs`: the whole system in one process on the embedded defaults (SQLite under `./data`).
//! For now that is the central system; the booking API joins it in its own issue.

// glibc malloc fragments and contends under many small per-message allocations; mimalloc
// measured markedly faster on the MeterValues path (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    central_system::telemetry::init(cli.central.log_format);
    central_system::run(cli.central).await
}
