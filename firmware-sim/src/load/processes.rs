//! `--processes N`: the fleet split over child processes, because one process may hold at
//! most as many sockets as its open-files limit allows (20,000 on the project's machines).
//! Each child runs a contiguous range of station numbers and reports JSON with its raw
//! histogram; the parent merges the reports exactly.

use super::report::{self, Summary};
use super::LoadArgs;
use anyhow::{bail, Context};
use tokio::process::Command;

/// Runs the children and prints the merged report.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the firmware-sim binary")?;
    let n = args.processes.min(args.stations.max(1));
    let per = args.stations / n;
    let mut children = Vec::new();
    let mut first = args.first;
    for i in 0..n {
        let count = if i + 1 == n { args.stations - per * (n - 1) } else { per };
        let mut cmd = Command::new(&exe);
        cmd.arg("load")
            .args([
                "--url",
                &args.url.join(","),
                "--prefix",
                &args.prefix,
                "--version",
                &args.version,
            ])
            .args(["--stations", &count.to_string(), "--first", &first.to_string()])
            // Each child ramps its share so the fleet ramps at the requested rate.
            .args(["--ramp", &(args.ramp / n as f64).to_string()])
            .args(["--duration", &args.duration.to_string()])
            .args(["--pattern", pattern_flag(&args)])
            .args(["--rate", &args.rate.to_string(), "--samples", &args.samples.to_string()])
            .args(["--heartbeat", &args.heartbeat.to_string()])
            .args(["--session-gap", &args.session_gap.to_string()])
            .args(["--session-secs", &args.session_secs.to_string()])
            .args(["--id-tag", &args.id_tag])
            .args(["--threads", &args.threads.unwrap_or(1).to_string()])
            .args(["--json", "--histogram"])
            .kill_on_drop(true);
        children.push(cmd.output());
        first += count;
    }
    let mut parts = Vec::new();
    for child in children {
        let out = child.await.context("running a load process")?;
        if !out.status.success() {
            bail!(
                "a load process failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        parts
            .push(serde_json::from_str::<Summary>(line).with_context(|| format!("reading a child's report {line:?}"))?);
    }
    let merged = Summary::merge(parts).context("no process ran")?;
    report::print(&args, &merged);
    Ok(())
}

fn pattern_flag(args: &LoadArgs) -> &'static str {
    match args.pattern {
        super::Pattern::Closed => "closed",
        super::Pattern::Open => "open",
        super::Pattern::Idle => "idle",
        super::Pattern::Sessions => "sessions",
    }
}
