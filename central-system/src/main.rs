//! The `central-system` binary: serve, or mint an operator token.

// glibc malloc fragments and contends under many small per-message allocations; mimalloc
// measured markedly faster on the MeterValues path (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use central_system::auth::jwt::MintToken;
use central_system::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "central-system",
    version,
    about = "OCPP 1.6J / 2.0.1 central system with an operator REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The settings are global flags, so `mint-token --jwt-secret X` works as well as
    /// `--jwt-secret X mint-token`.
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed operator JWT (for bootstrapping API access).
    MintToken(MintToken),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    central_system::telemetry::init(cli.config.log_format);
    match cli.command {
        Some(Command::MintToken(mint)) => {
            println!("{}", mint.token(&cli.config)?);
            Ok(())
        }
        None => {
            service_kit::server::raise_open_file_limit();
            central_system::run(cli.config).await
        }
    }
}
