//! Collects observations into an HDR histogram and prints the summary.

use super::{Counters, LoadArgs, Observation};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Latencies in microseconds and CALLERRORs by code.
pub struct Collected {
    latency: Option<Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

/// Drains observations until every station is done.
pub async fn collect(mut rx: mpsc::UnboundedReceiver<Observation>) -> Collected {
    // 1 µs to 60 s at 3 significant digits.
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
    let mut errors = BTreeMap::new();
    while let Some(o) = rx.recv().await {
        match o {
            Observation::Latencies(batch) => {
                if let Some(h) = latency.as_mut() {
                    for us in batch {
                        let _ = h.record(us.clamp(1, 60_000_000));
                    }
                }
            }
            Observation::CallError(code) => *errors.entry(code).or_insert(0) += 1,
        }
    }
    Collected { latency, errors }
}

/// Prints the human summary or JSON.
pub fn print(args: &LoadArgs, c: &Counters, collected: &Collected, connect_secs: f64, window_secs: f64) {
    let results = c.results.load(Ordering::Relaxed);
    let throughput = results as f64 / window_secs.max(0.001);
    let q = |p: f64| collected.latency.as_ref().map_or(0, |h| h.value_at_quantile(p));
    let max = collected.latency.as_ref().map_or(0, |h| h.max());
    let report = json!({
        "stations": args.stations,
        "version": args.version,
        "pattern": format!("{:?}", args.pattern).to_lowercase(),
        "samplesPerMessage": args.samples,
        "booted": c.booted.load(Ordering::Relaxed),
        "connectFailures": c.connect_failures.load(Ordering::Relaxed),
        "connectSeconds": connect_secs,
        "connectRatePerSecond": c.booted.load(Ordering::Relaxed) as f64 / connect_secs.max(0.001),
        "windowSeconds": window_secs,
        "callResults": results,
        "throughputPerSecond": throughput,
        "latencyMicros": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": max},
        "callErrors": collected.errors,
        "disconnects": c.disconnects.load(Ordering::Relaxed),
    });
    if args.json {
        println!("{report}");
        return;
    }
    println!(
        "stations          {} ({} booted, {} failed) over OCPP {}",
        args.stations, report["booted"], report["connectFailures"], args.version
    );
    println!(
        "connect           {connect_secs:.2} s ({:.0} stations/s)",
        report["connectRatePerSecond"].as_f64().unwrap_or(0.0)
    );
    println!(
        "pattern           {} with {} sampled values per MeterValues",
        report["pattern"].as_str().unwrap_or(""),
        args.samples
    );
    println!("throughput        {throughput:.0} CALL/s over {window_secs:.1} s ({results} answered)");
    println!(
        "latency (µs)      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        max
    );
    println!("CALLERRORs        {:?}", collected.errors);
    println!("disconnects       {}", report["disconnects"]);
}
