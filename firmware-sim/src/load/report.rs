//! Collects observations into an HDR histogram and summarises a run, as text or JSON. A
//! summary can carry its raw histogram, so the reports of several processes merge exactly.

use super::{Counters, LoadArgs, Observation};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Latencies in microseconds and CALLERRORs by code.
pub struct Collected {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

#[allow(clippy::expect_used)]
fn histogram() -> Histogram<u64> {
    // Constant, valid bounds (1 µs to 60 s at 3 significant digits): this cannot fail.
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Drains observations until every station is done.
pub async fn collect(mut rx: mpsc::UnboundedReceiver<Observation>) -> Collected {
    let mut latency = histogram();
    let mut errors = BTreeMap::new();
    while let Some(o) = rx.recv().await {
        match o {
            Observation::Latencies(batch) => {
                for us in batch {
                    let _ = latency.record(us.clamp(1, 60_000_000));
                }
            }
            Observation::CallError(code) => *errors.entry(code).or_insert(0) += 1,
        }
    }
    Collected { latency, errors }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Stations started.
    pub stations: usize,
    /// OCPP version.
    pub version: String,
    /// Traffic pattern.
    pub pattern: String,
    /// Sampled values per MeterValues.
    pub samples_per_message: usize,
    /// Processes the stations ran in.
    pub processes: usize,
    /// Stations that connected and booted.
    pub booted: u64,
    /// Stations that could not connect or boot.
    pub connect_failures: u64,
    /// Seconds from the first connection until every station booted.
    pub connect_seconds: f64,
    /// Booted stations per second of connect time.
    pub connect_rate_per_second: f64,
    /// Length of the measured window.
    pub window_seconds: f64,
    /// CALLRESULTs in the window.
    pub call_results: u64,
    /// CALLRESULTs per second.
    pub throughput_per_second: f64,
    /// CALL -> CALLRESULT latency.
    pub latency_micros: Percentiles,
    /// CALLERRORs by code.
    pub call_errors: BTreeMap<String, u64>,
    /// Connections lost.
    pub disconnects: u64,
    /// Connections re-established.
    pub reconnects: u64,
    /// The raw histogram as (value, count) pairs, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histogram: Vec<(u64, u64)>,
}

impl Summary {
    /// Summarises one process's run.
    pub fn new(args: &LoadArgs, c: &Counters, collected: Collected, connect_secs: f64, window_secs: f64) -> Summary {
        let results = c.results.load(Ordering::Relaxed);
        let booted = c.booted.load(Ordering::Relaxed);
        let histogram = if args.histogram {
            collected
                .latency
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        } else {
            Vec::new()
        };
        Summary {
            stations: args.stations,
            version: args.version.clone(),
            pattern: format!("{:?}", args.pattern).to_lowercase(),
            samples_per_message: args.samples,
            processes: 1,
            booted,
            connect_failures: c.connect_failures.load(Ordering::Relaxed),
            connect_seconds: connect_secs,
            connect_rate_per_second: booted as f64 / connect_secs.max(0.001),
            window_seconds: window_secs,
            call_results: results,
            throughput_per_second: results as f64 / window_secs.max(0.001),
            latency_micros: percentiles(&collected.latency),
            call_errors: collected.errors,
            disconnects: c.disconnects.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            histogram,
        }
    }

    /// Merges the summaries of processes that ran side by side.
    pub fn merge(parts: Vec<Summary>) -> Option<Summary> {
        let mut iter = parts.into_iter();
        let mut total = iter.next()?;
        let mut latency = histogram();
        let mut record = |pairs: &[(u64, u64)]| {
            for (v, n) in pairs {
                let _ = latency.record_n(*v, *n);
            }
        };
        record(&total.histogram);
        for p in iter {
            record(&p.histogram);
            total.stations += p.stations;
            total.processes += p.processes;
            total.booted += p.booted;
            total.connect_failures += p.connect_failures;
            // Processes connect in parallel: the fleet is up when the slowest is.
            total.connect_seconds = total.connect_seconds.max(p.connect_seconds);
            total.window_seconds = total.window_seconds.max(p.window_seconds);
            total.call_results += p.call_results;
            // Each process measured its own window; their rates add up.
            total.throughput_per_second += p.throughput_per_second;
            for (code, n) in p.call_errors {
                *total.call_errors.entry(code).or_insert(0) += n;
            }
            total.disconnects += p.disconnects;
            total.reconnects += p.reconnects;
        }
        total.connect_rate_per_second = total.booted as f64 / total.connect_seconds.max(0.001);
        total.latency_micros = percentiles(&latency);
        total.histogram.clear();
        Some(total)
    }
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// Prints the human summary or JSON.
pub fn print(args: &LoadArgs, s: &Summary) {
    if args.json {
        println!("{}", serde_json::to_string(s).unwrap_or_default());
        return;
    }
    println!(
        "stations          {} ({} booted, {} failed) over OCPP {} in {} process(es)",
        s.stations, s.booted, s.connect_failures, s.version, s.processes
    );
    println!(
        "connect           {:.2} s ({:.0} stations/s)",
        s.connect_seconds, s.connect_rate_per_second
    );
    println!(
        "pattern           {} with {} sampled values per MeterValues",
        s.pattern, s.samples_per_message
    );
    println!(
        "throughput        {:.0} CALL/s over {:.1} s ({} answered)",
        s.throughput_per_second, s.window_seconds, s.call_results
    );
    let l = &s.latency_micros;
    println!(
        "latency (µs)      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    println!("CALLERRORs        {:?}", s.call_errors);
    println!("disconnects       {} ({} reconnected)", s.disconnects, s.reconnects);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(stations: usize, results: u64, latencies: &[u64]) -> Summary {
        let mut h = histogram();
        for l in latencies {
            h.record(*l).unwrap();
        }
        Summary {
            stations,
            version: "1.6".into(),
            pattern: "closed".into(),
            samples_per_message: 3,
            processes: 1,
            booted: stations as u64,
            connect_failures: 0,
            connect_seconds: 2.0,
            connect_rate_per_second: stations as f64 / 2.0,
            window_seconds: 10.0,
            call_results: results,
            throughput_per_second: results as f64 / 10.0,
            latency_micros: percentiles(&h),
            call_errors: BTreeMap::from([("GenericError".to_string(), 1)]),
            disconnects: 1,
            reconnects: 1,
            histogram: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    #[test]
    fn process_reports_merge_exactly() {
        let merged = Summary::merge(vec![part(100, 1000, &[100; 10]), part(50, 500, &[1000; 10])]).unwrap();
        assert_eq!(merged.stations, 150);
        assert_eq!(merged.processes, 2);
        assert_eq!(merged.call_results, 1500);
        assert_eq!(merged.throughput_per_second, 150.0);
        assert_eq!(merged.call_errors["GenericError"], 2);
        assert_eq!(merged.latency_micros.p50, 100);
        assert!(merged.latency_micros.p90 >= 999, "{:?}", merged.latency_micros);
        assert!(merged.histogram.is_empty());
        assert!(Summary::merge(Vec::new()).is_none());
    }
}
