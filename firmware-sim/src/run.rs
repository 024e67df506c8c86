//! `firmware-sim run`: one or more stations from flags or a station file, optionally running
//! `--sessions N` charging sessions by themselves, controlled from stdin, every frame logged.
//!
//! Stdin commands (one per line; `@ID` first addresses one station, otherwise all):
//! `plug [C]`, `unplug [C]`, `tag TOKEN [C]`, `stop [C]`, `fault CODE [C]`, `clear [C]`,
//! `soc PERCENT [C]`, `power KW [C]`, `offline`, `online`, `call ACTION {json}`, `quit`.

use crate::charger::{self, Control, Event, Handle};
use crate::spec::{self, ConnectorSpec, SecuritySpec, StationSpec};
use clap::Args;
use ocpp::Version;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{broadcast, mpsc};

/// Options of `firmware-sim run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Central-system OCPP URL without the station id. Repeated (or comma-separated), the
    /// stations of a `--stations` file that name no URL spread over them round robin.
    #[arg(long, default_value = "ws://127.0.0.1:9000/ocpp", value_delimiter = ',')]
    pub url: Vec<String>,
    /// Station id (ignored with --stations).
    #[arg(long, default_value = "SIM-0001")]
    pub id: String,
    /// OCPP version.
    #[arg(long, default_value = "1.6", value_parser = ["1.6", "2.0.1"])]
    pub version: String,
    /// TOML station file with [[station]] tables (instead of --id/--version).
    #[arg(long)]
    pub stations: Option<PathBuf>,
    /// Number of connectors (1.6) or EVSEs (2.0.1).
    #[arg(long, default_value_t = 1)]
    pub connectors: u32,
    /// Maximum power per connector, kW.
    #[arg(long, default_value_t = 22.0)]
    pub max_kw: f64,
    /// Basic-auth password (security profiles 1 and 2).
    #[arg(long, env = "FIRMWARE_SIM_PASSWORD")]
    pub password: Option<String>,
    /// PEM CA that signed the server's certificate (wss://).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (security profile 3).
    #[arg(long)]
    pub client_cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(long)]
    pub client_key: Option<PathBuf>,
    /// Organization (O) of the station's certificate requests (1.6 CpoName, 2.0.1
    /// SecurityCtrlr.OrganizationName).
    #[arg(long)]
    pub organization: Option<String>,
    /// Directory for the offline queue and meter registers (a subdirectory per station).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Charging sessions to run by itself on connector 1, then keep serving.
    #[arg(long, default_value_t = 0)]
    pub sessions: u32,
    /// Token the automatic sessions present.
    #[arg(long, default_value = "SIM-TAG")]
    pub id_tag: String,
    /// Length of each automatic session, seconds.
    #[arg(long, default_value_t = 60)]
    pub session_secs: u64,
    /// Meter sample interval, seconds.
    #[arg(long, default_value_t = 60)]
    pub meter_interval: u64,
    /// Heartbeat interval until the central system sets one, seconds.
    #[arg(long, default_value_t = 300)]
    pub heartbeat: u64,
    /// Exit once the automatic sessions are done (instead of serving until Ctrl-C).
    #[arg(long)]
    pub exit_when_done: bool,
    /// Do not print frames, only events.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    fn specs(&self) -> anyhow::Result<Vec<StationSpec>> {
        let mut specs = match &self.stations {
            Some(file) => spec::load_file(file, &self.url)?,
            None => {
                let version = Version::from_label(&self.version).unwrap_or(Version::V16);
                let url = spec::round_robin(&self.url, 0).unwrap_or_default();
                let mut s = StationSpec::new(&self.id, version, url);
                s.connectors = (0..self.connectors.max(1))
                    .map(|_| ConnectorSpec {
                        connector_type: "cType2".into(),
                        max_kw: self.max_kw,
                        phases: 3,
                    })
                    .collect();
                s.security = SecuritySpec {
                    password: self.password.clone(),
                    ca: self.ca.clone(),
                    client_cert: self.client_cert.clone(),
                    client_key: self.client_key.clone(),
                    organization: self.organization.clone(),
                    cert_renew_days: None,
                };
                s.timing.meter_interval = self.meter_interval;
                s.timing.heartbeat = self.heartbeat;
                vec![s]
            }
        };
        for s in &mut specs {
            if let (None, Some(dir)) = (&s.state_dir, &self.state_dir) {
                s.state_dir = Some(dir.join(&s.id));
            }
            s.check()?;
        }
        Ok(specs)
    }
}

/// Runs the stations until Ctrl-C, `quit`, or (with `--exit-when-done`) the sessions' end.
/// Returns the number of protocol violations seen.
pub async fn run(args: RunArgs) -> anyhow::Result<u64> {
    let specs = args.specs()?;
    let violations = Arc::new(AtomicU64::new(0));
    let mut stations: Vec<(String, Handle)> = Vec::new();
    let mut drivers = Vec::new();
    for spec in specs {
        let id = spec.id.clone();
        let (handle, first) = charger::spawn(spec)?;
        // The first receiver sees every event; the sessions driver must not miss the boot.
        tokio::spawn(log_events(
            id.clone(),
            first.resubscribe(),
            args.quiet,
            violations.clone(),
        ));
        if args.sessions > 0 {
            let plan = SessionPlan {
                count: Some(args.sessions),
                token: args.id_tag.clone(),
                secs: args.session_secs,
                gap_secs: 1,
            };
            drivers.push(tokio::spawn(drive_sessions(id.clone(), handle.sender(), first, plan)));
        }
        stations.push((id, handle));
    }
    let sessions_done = async {
        for d in drivers {
            let _ = d.await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = read_commands(&stations) => {}
        _ = sessions_done, if args.exit_when_done && args.sessions > 0 => {}
    }
    for (_, h) in stations {
        let _ = h.shutdown().await;
    }
    Ok(violations.load(Ordering::Relaxed))
}

async fn wait_for(events: &mut broadcast::Receiver<Event>, secs: u64, pred: impl Fn(&Event) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(e)) if pred(&e) => return true,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return false,
        }
    }
}

/// Automatic charging sessions on connector 1.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    /// How many sessions (`None`: forever).
    pub count: Option<u32>,
    /// The token the driver presents.
    pub token: String,
    /// Length of each session, seconds.
    pub secs: u64,
    /// Pause between sessions, seconds.
    pub gap_secs: u64,
}

/// Runs sessions on connector 1 once the station has booted: plug, present the token, charge,
/// present it again to stop, unplug.
pub async fn drive_sessions(
    id: String,
    station: mpsc::UnboundedSender<Control>,
    mut events: broadcast::Receiver<Event>,
    plan: SessionPlan,
) {
    let send = |c: Control| {
        let _ = station.send(c);
    };
    if !wait_for(&mut events, 300, |e| matches!(e, Event::Booted(s) if s == "Accepted")).await {
        eprintln!("{id}: never booted; no sessions run");
        return;
    }
    let mut n = 0;
    while plan.count.is_none_or(|c| n < c) {
        n += 1;
        send(Control::Plug(1));
        send(Control::Present(1, plan.token.clone()));
        if !wait_for(&mut events, 120, |e| matches!(e, Event::TransactionStarted(1, _))).await {
            eprintln!("{id}: session {n} did not start");
            send(Control::Unplug(1));
            tokio::time::sleep(Duration::from_secs(plan.gap_secs.max(5))).await;
            continue;
        }
        tokio::time::sleep(Duration::from_secs(plan.secs)).await;
        send(Control::Present(1, plan.token.clone()));
        wait_for(&mut events, 30, |e| matches!(e, Event::TransactionEnded(1, _))).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        send(Control::Unplug(1));
        tokio::time::sleep(Duration::from_secs(plan.gap_secs)).await;
        match plan.count {
            Some(c) => println!("{id} * session {n} of {c} done"),
            None => println!("{id} * session {n} done"),
        }
    }
    // Let the last messages reach the central system before an --exit-when-done exit.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

async fn log_events(id: String, mut events: broadcast::Receiver<Event>, quiet: bool, violations: Arc<AtomicU64>) {
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                eprintln!("{id}: log lagged, {n} events not shown");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let now = chrono::Utc::now().format("%H:%M:%S%.3f");
        match event {
            Event::Frame(out, text) => {
                if !quiet {
                    println!("{now} {id} {} {text}", if out { "->" } else { "<-" });
                }
            }
            Event::Violation(v) => {
                violations.fetch_add(1, Ordering::Relaxed);
                println!("{now} {id} ! VIOLATION {v}");
            }
            other => println!("{now} {id} * {}", describe(&other)),
        }
    }
}

/// A one-line description of an event for the log.
pub fn describe(e: &Event) -> String {
    match e {
        Event::Connected => "connected".into(),
        Event::Disconnected(why) => format!("disconnected: {why}"),
        Event::Booted(s) => format!("boot {s}"),
        Event::Status(c, s) => format!("connector {c} {s}"),
        Event::TransactionStarted(c, id) => format!("transaction {id} started on {c}"),
        Event::TransactionEnded(c, why) => format!("transaction on {c} ended: {why}"),
        Event::CallReceived(a, _) => format!("central system called {a}"),
        Event::Response(a, Ok(_)) => format!("{a} answered"),
        Event::Response(a, Err(e)) => format!("{a} failed: {e}"),
        Event::Violation(v) => format!("violation: {v}"),
        Event::Refused(c, why) => format!("refused on {c}: {why}"),
        Event::Rebooting => "rebooting".into(),
        Event::Security(what) => format!("security: {what}"),
        Event::Frame(out, t) => format!("{} {t}", if *out { "->" } else { "<-" }),
    }
}

/// Parses one stdin command into (station filter, controls).
pub fn parse_command(line: &str) -> Result<(Option<String>, Control), String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let target = match words.first() {
        Some(w) if w.starts_with('@') => Some(words.remove(0)[1..].to_string()),
        _ => None,
    };
    let connector = |i: usize| -> Result<u32, String> {
        words
            .get(i)
            .map_or(Ok(1), |w| w.parse().map_err(|_| format!("bad connector {w:?}")))
    };
    let number = |i: usize| -> Result<f64, String> {
        words
            .get(i)
            .ok_or("a number is missing")?
            .parse()
            .map_err(|_| "not a number".to_string())
    };
    let word = |i: usize| words.get(i).map(|s| s.to_string()).ok_or("an argument is missing");
    let control = match words.first().copied() {
        Some("plug") => Control::Plug(connector(1)?),
        Some("unplug") => Control::Unplug(connector(1)?),
        Some("tag") => Control::Present(connector(2)?, word(1)?),
        Some("stop") => Control::Stop(connector(1)?),
        Some("fault") => Control::Fault(connector(2)?, word(1)?),
        Some("clear") => Control::ClearFault(connector(1)?),
        Some("soc") => Control::SetSoc(connector(2)?, number(1)?),
        Some("power") => Control::SetEvPower(connector(2)?, number(1)?),
        Some("renegotiate") => Control::Renegotiate(connector(1)?),
        Some("offline") => Control::Offline,
        Some("online") => Control::Online,
        Some("call") => {
            let action = word(1)?;
            let json = line
                .split_once('{')
                .map(|(_, rest)| format!("{{{rest}"))
                .unwrap_or_else(|| "{}".into());
            let payload = serde_json::from_str(&json).map_err(|e| format!("bad JSON payload: {e}"))?;
            Control::Call(action, payload)
        }
        Some("quit") => Control::Shutdown,
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("empty command".into()),
    };
    Ok((target, control))
}

async fn read_commands(stations: &[(String, Handle)]) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        match parse_command(&line) {
            Ok((_, Control::Shutdown)) => return,
            Ok((target, control)) => {
                for (id, h) in stations {
                    if target.as_deref().is_none_or(|t| t == id) {
                        h.send(control.clone());
                    }
                }
            }
            Err(e) => eprintln!("{e}"),
        }
    }
    // Stdin closed (e.g. run in the background): keep serving until Ctrl-C.
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_commands() {
        assert!(matches!(parse_command("plug"), Ok((None, Control::Plug(1)))));
        assert!(matches!(parse_command("@CP-2 unplug 2"), Ok((Some(t), Control::Unplug(2))) if t == "CP-2"));
        assert!(matches!(parse_command("tag ABC 2"), Ok((None, Control::Present(2, t))) if t == "ABC"));
        assert!(matches!(parse_command("soc 80"), Ok((None, Control::SetSoc(1, s))) if s == 80.0));
        assert!(matches!(parse_command("call DataTransfer {\"vendorId\": \"x\"}"),
            Ok((None, Control::Call(a, p))) if a == "DataTransfer" && p["vendorId"] == "x"));
        assert!(matches!(
            parse_command("renegotiate 2"),
            Ok((None, Control::Renegotiate(2)))
        ));
        for bad in ["", "jump", "plug x", "soc", "tag", "call DataTransfer {nope"] {
            assert!(parse_command(bad).is_err(), "{bad:?}");
        }
    }
}
