//! The `central-system` binary: serve, or mint an operator token.

// glibc malloc fragments and contends under many small per-message allocations; mimalloc
// measured markedly faster on the MeterValues path (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use central_system::auth::jwt::{Claims, JwtKeys, Role};
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
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed operator JWT (for bootstrapping API access).
    MintToken {
        /// Role claim.
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
        /// Subject claim.
        #[arg(long, default_value = "cli")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    central_system::telemetry::init(cli.config.log_format);
    match cli.command {
        Some(Command::MintToken { role, subject, ttl }) => {
            let secret = central_system::secrets::jwt_secret(&cli.config)?;
            let now = chrono::Utc::now().timestamp();
            let token = JwtKeys::new(secret.as_bytes()).sign(&Claims {
                sub: subject,
                role,
                iat: now,
                exp: now + ttl.max(1),
            });
            println!("{token}");
            Ok(())
        }
        None => {
            service_kit::server::raise_open_file_limit();
            central_system::run(cli.config).await
        }
    }
}
