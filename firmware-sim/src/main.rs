//! `firmware-sim`: simulated OCPP 1.6J / 2.0.1 charging stations (see the library's docs).

use clap::{Parser, Subcommand};
use firmware_sim::{answer, load, run, scenario};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "firmware-sim", version, about = "OCPP 1.6J / 2.0.1 charger simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one or more stations (flags or a station file), optionally with automatic sessions.
    Run(run::RunArgs),
    /// Run a scripted scenario and report a verdict (exit code 0 passed, 1 failed).
    Scenario {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Central-system URL, overriding the scenario's.
        #[arg(long)]
        url: Option<String>,
        /// Print every frame and event while running.
        #[arg(long)]
        verbose: bool,
    },
    /// Run many stations against a central system and report throughput and latency.
    Load(load::LoadArgs),
    /// Answer every CALL at once and do nothing else (measures the load generator itself).
    Answer(answer::AnswerArgs),
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Each simulated charger is a socket: let the hard limit, not the default soft 1024, decide.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let threads = match &cli.command {
        Command::Load(args) => args.threads,
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Run(args) => {
                let violations = run::run(args).await?;
                if violations > 0 {
                    eprintln!("{violations} protocol violation(s) by the central system");
                    return Ok(ExitCode::FAILURE);
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Scenario { file, url, verbose } => {
                let s = scenario::load(&file, url.as_deref())?;
                let report = scenario::execute(s, verbose).await?;
                print!("{}", report.render());
                Ok(if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Command::Load(args) => {
                load::run(args).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Answer(args) => {
                answer::serve(args).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
