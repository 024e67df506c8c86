//! `firmware-sim`: simulated OCPP chargers. For now the `load` subcommand (many chargers as a
//! load generator); single-charger runs and scenarios come with the simulator's own issue.

mod load;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "firmware-sim", version, about = "OCPP 1.6J / 2.0.1 charger simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run many stations against a central system and report throughput and latency.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(
                    args.threads
                        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                )
                .enable_all()
                .build()?;
            runtime.block_on(load::run(args))
        }
    }
}
