//! The `booking-api` binary.

use booking_api::Config;
use clap::Parser;

#[derive(Parser)]
#[command(name = "booking-api", version, about = "EV charging booking REST API")]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    service_kit::telemetry::init(cli.config.log_format);
    service_kit::server::raise_open_file_limit();
    booking_api::run(cli.config).await
}
