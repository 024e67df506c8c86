//! Load mode: thousands of stations that connect at a ramp rate, boot, and then send
//! MeterValues either in a closed loop (each waits for its answer, then sends again: measures
//! peak throughput) or at a fixed rate per station (open loop: measures latency at a given
//! load), or stay idle with heartbeats (measures the server's memory per connection).
//!
//! Latencies (CALL written -> CALLRESULT read) go into one HDR histogram via a channel, in
//! batches per station, so stations stay cheap and the report's percentiles cover every message.

mod processes;
pub mod report;
mod station;

use clap::{Args, ValueEnum};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Traffic pattern of each station after boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// Send the next MeterValues as soon as the previous one is answered.
    Closed,
    /// Send `--rate` MeterValues per second per station.
    Open,
    /// Only heartbeats every `--heartbeat` seconds.
    Idle,
    /// Random charging sessions: heartbeats in the gaps, then Authorize, start, MeterValues at
    /// `--rate`, stop (gaps and lengths exponential around `--session-gap`/`--session-secs`).
    Sessions,
}

/// Options of `firmware-sim load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Central-system OCPP URL without the station id, e.g. ws://127.0.0.1:9000/ocpp. Several
    /// URLs (the flag repeated, or separated by commas) spread the stations over several
    /// central-system nodes, round robin by station index (so `--processes` and `--first` keep
    /// the same assignment).
    #[arg(long, default_value = "ws://127.0.0.1:9000/ocpp", value_delimiter = ',')]
    pub url: Vec<String>,
    /// Number of stations.
    #[arg(long, default_value_t = 100)]
    pub stations: usize,
    /// Station id prefix (ids are PREFIX00001...).
    #[arg(long, default_value = "LOAD-")]
    pub prefix: String,
    /// Index of the first station (to split a fleet over several processes).
    #[arg(long, default_value_t = 0)]
    pub first: usize,
    /// OCPP version.
    #[arg(long, default_value = "1.6", value_parser = ["1.6", "2.0.1"])]
    pub version: String,
    /// New connections per second.
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// Seconds of measured traffic after all stations booted.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Traffic pattern.
    #[arg(long, value_enum, default_value = "closed")]
    pub pattern: Pattern,
    /// MeterValues per second per station (open pattern).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Sampled values per MeterValues message (energy register first, then power, current...).
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
    /// Heartbeat interval in seconds (idle pattern).
    #[arg(long, default_value_t = 30)]
    pub heartbeat: u64,
    /// Mean idle gap between sessions, seconds (sessions pattern).
    #[arg(long, default_value_t = 30.0)]
    pub session_gap: f64,
    /// Mean session length, seconds (sessions pattern).
    #[arg(long, default_value_t = 60.0)]
    pub session_secs: f64,
    /// Token the sessions present (sessions pattern).
    #[arg(long, default_value = "LOAD-TAG")]
    pub id_tag: String,
    /// Split the stations over this many processes (each has its own open-files limit); the
    /// parent merges their reports.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Include the raw latency histogram in the JSON report (used to merge processes).
    #[arg(long, hide = true)]
    pub histogram: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write every MeterValues answered with a CALLRESULT to this file at exit, as lines
    /// `STATION FIRST_WH LAST_WH` (runs of the energy register, which rises by 25 Wh per
    /// message), so a durability check can look each acknowledged reading up in the database.
    #[arg(long)]
    pub acked_out: Option<std::path::PathBuf>,
}

impl LoadArgs {
    /// The central-system URL of the station with this index: round robin over `--url`'s
    /// comma-separated list.
    pub fn url_for(&self, index: usize) -> &str {
        crate::spec::round_robin(&self.url, index).unwrap_or_default()
    }
}

/// Counters shared by all stations.
#[derive(Default)]
pub struct Counters {
    /// Stations connected and booted.
    pub booted: AtomicU64,
    /// Connection or boot failures.
    pub connect_failures: AtomicU64,
    /// Connections lost during the run.
    pub disconnects: AtomicU64,
    /// Connections re-established after a loss.
    pub reconnects: AtomicU64,
    /// CALLRESULTs received in the measured window.
    pub results: AtomicU64,
    /// CALLERRORs received (codes are in the histogram channel).
    pub errors: AtomicU64,
    /// Set when the measured window starts.
    pub measuring: AtomicBool,
    /// Acknowledged MeterValues per station (only with `--acked-out`).
    pub acked: std::sync::Mutex<Vec<(String, Vec<u64>)>>,
}

/// An observation sent to the collector.
pub enum Observation {
    /// CALLs answered with CALLRESULT after these many microseconds (sent in batches, so the
    /// collector is not woken once per message).
    Latencies(Vec<u64>),
    /// A CALL answered with this CALLERROR code.
    CallError(String),
}

/// Runs the load and prints the report (from several child processes with `--processes`).
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    if args.processes > 1 {
        anyhow::ensure!(
            args.acked_out.is_none(),
            "--acked-out records one process's stations: use it without --processes"
        );
        return processes::run(args).await;
    }
    let summary = run_here(&args).await?;
    report::print(&args, &summary);
    Ok(())
}

/// Runs this process's share of the load and summarises it.
pub async fn run_here(args: &LoadArgs) -> anyhow::Result<report::Summary> {
    run_here_until(args, std::future::pending()).await
}

/// Like [`run_here`], but the measured window also ends when `stop` completes (a test that
/// kills the server ends the load as soon as it has what it needs).
pub async fn run_here_until(
    args: &LoadArgs,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<report::Summary> {
    let args = args.clone();
    let counters = Arc::new(Counters::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(report::collect(rx));
    let started = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(args.stations);
    let gap = Duration::from_secs_f64(1.0 / args.ramp.max(0.001));
    let mut next = tokio::time::Instant::now();
    for i in 0..args.stations {
        tokio::time::sleep_until(next).await;
        next += gap;
        let id = format!("{}{:05}", args.prefix, args.first + i);
        let url = args.url_for(args.first + i).to_string();
        tasks.push(tokio::spawn(station::run(
            id,
            url,
            args.clone(),
            counters.clone(),
            tx.clone(),
            stop_rx.clone(),
        )));
    }
    // Wait until every station booted (or failed), then measure for `duration`.
    let ramp_deadline = Instant::now() + Duration::from_secs(120);
    while counters.booted.load(Ordering::Relaxed) + counters.connect_failures.load(Ordering::Relaxed)
        < args.stations as u64
        && Instant::now() < ramp_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    counters.measuring.store(true, Ordering::Relaxed);
    let window_start = Instant::now();
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(args.duration)) => {}
        _ = stop => {}
    }
    counters.measuring.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let window = window_start.elapsed().as_secs_f64();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    drop(tx);
    let collected = collector.await?;
    if let Some(path) = &args.acked_out {
        let acked = std::mem::take(&mut *counters.acked.lock().unwrap_or_else(|p| p.into_inner()));
        std::fs::write(path, acked_runs(&acked))?;
    }
    Ok(report::Summary::new(&args, &counters, collected, connect_secs, window))
}

/// Energy readings in runs of 25 Wh steps, one line per run: `STATION FIRST_WH LAST_WH`.
fn acked_runs(acked: &[(String, Vec<u64>)]) -> String {
    let mut out = String::new();
    for (station, energies) in acked {
        let mut run: Option<(u64, u64)> = None;
        for &e in energies {
            run = match run {
                Some((first, last)) if e == last + station::ENERGY_STEP_WH => Some((first, e)),
                Some((first, last)) => {
                    out.push_str(&format!("{station} {first} {last}\n"));
                    Some((e, e))
                }
                None => Some((e, e)),
            };
        }
        if let Some((first, last)) = run {
            out.push_str(&format!("{station} {first} {last}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_readings_are_written_as_runs() {
        let acked = vec![
            ("A".to_string(), vec![100, 125, 150, 200, 225]),
            ("B".to_string(), vec![]),
            ("C".to_string(), vec![5]),
        ];
        assert_eq!(acked_runs(&acked), "A 100 150\nA 200 225\nC 5 5\n");
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn args(url: &str) -> LoadArgs {
        use clap::Parser;
        Cli::parse_from(["load", "--url", url]).load
    }

    #[test]
    fn stations_spread_round_robin_over_several_urls() {
        use clap::Parser;
        let a = args("ws://a/ocpp, ws://b/ocpp,ws://c/ocpp");
        let picked: Vec<&str> = (0..7).map(|i| a.url_for(i)).collect();
        assert_eq!(
            picked,
            [
                "ws://a/ocpp",
                "ws://b/ocpp",
                "ws://c/ocpp",
                "ws://a/ocpp",
                "ws://b/ocpp",
                "ws://c/ocpp",
                "ws://a/ocpp"
            ]
        );
        assert_eq!(args("ws://only/ocpp").url_for(5), "ws://only/ocpp");
        let repeated = Cli::parse_from(["load", "--url", "ws://a/ocpp", "--url", "ws://b/ocpp"]).load;
        assert_eq!(
            (repeated.url_for(0), repeated.url_for(3)),
            ("ws://a/ocpp", "ws://b/ocpp")
        );
    }
}
