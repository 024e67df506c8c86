//! `firmware-sim scenario FILE`: a scripted station with assertions, a per-step report and an
//! exit code (0 all steps passed, 1 a step failed or the central system broke the protocol).
//!
//! A scenario is TOML: a `[station]` table (a station-file entry; `url` may come from `--url`)
//! and `[[step]]` tables run in order, each with `do = "..."`. Steps that wait take `timeout`
//! (seconds, default 30). Events are consumed in order: a waiting step skips events that do not
//! match it, and the next step looks only at what came after. Shipped examples are in
//! `firmware-sim/scenarios/`.

use crate::charger::{self, Control, Event, Handle};
use crate::spec::StationSpec;
use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for the report.
    #[serde(default)]
    pub name: String,
    /// The station.
    pub station: StationSpec,
    /// The steps.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Wait for the WebSocket to open.
    Connect {
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Wait for the BootNotification answer and check its status.
    Boot {
        /// Expected status (default Accepted).
        status: Option<String>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Plug the EV in.
    Plug {
        /// Connector (default 1).
        connector: Option<u32>,
    },
    /// Unplug the EV.
    Unplug {
        /// Connector (default 1).
        connector: Option<u32>,
    },
    /// Present a token and, with `expect`, check the Authorize answer.
    Authorize {
        /// The token.
        token: String,
        /// Connector (default 1).
        connector: Option<u32>,
        /// Fields the Authorize answer must contain.
        expect: Option<Value>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Wait until a transaction starts.
    TransactionStarted {
        /// Connector (default 1).
        connector: Option<u32>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Charge for `secs` seconds with the EV drawing at most `kw`.
    Charge {
        /// Seconds.
        secs: f64,
        /// EV power limit, kW.
        kw: Option<f64>,
        /// Connector (default 1).
        connector: Option<u32>,
    },
    /// Stop the transaction locally and wait for its end.
    Stop {
        /// Connector (default 1).
        connector: Option<u32>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Wait until a transaction ends, optionally with a reason.
    TransactionEnded {
        /// Connector (default 1).
        connector: Option<u32>,
        /// Expected 1.6-style reason (`Local`, `Remote`, `EVDisconnected`, ...).
        reason: Option<String>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Wait until a connector reports a status.
    Status {
        /// Connector (default 1).
        connector: Option<u32>,
        /// Status as the version spells it.
        status: String,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Drop the link.
    Offline,
    /// Restore the link and wait for the connection.
    Online {
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Wait for a call from the central system, check its payload, optionally answer it.
    ExpectCall {
        /// The action.
        action: String,
        /// Fields the payload must contain.
        payload: Option<Value>,
        /// The answer to send instead of the firmware's.
        answer: Option<Value>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Send a call and check the answer.
    Send {
        /// The action.
        action: String,
        /// The payload.
        payload: Value,
        /// Fields the answer must contain.
        expect: Option<Value>,
        /// The CALLERROR code expected instead of an answer.
        expect_error: Option<String>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Wait for the answer to a call the station made by itself (e.g. `StartTransaction`).
    ExpectResponse {
        /// The action.
        action: String,
        /// Fields the answer must contain.
        payload: Option<Value>,
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Raise a fault.
    Fault {
        /// 1.6 error code.
        code: String,
        /// Connector (default 1).
        connector: Option<u32>,
    },
    /// Clear the fault.
    ClearFault {
        /// Connector (default 1).
        connector: Option<u32>,
    },
    /// Set the EV's state of charge.
    Soc {
        /// Percent.
        percent: f64,
        /// Connector (default 1).
        connector: Option<u32>,
    },
    /// Wait for the station to reboot and boot again (after a Reset or firmware update).
    Rebooted {
        /// Seconds to wait.
        timeout: Option<u64>,
    },
    /// Pause.
    Wait {
        /// Seconds.
        secs: f64,
    },
}

impl Step {
    /// A short label for the report.
    pub fn label(&self) -> String {
        let c = |c: &Option<u32>| c.unwrap_or(1);
        match self {
            Step::Connect { .. } => "connect".into(),
            Step::Boot { status, .. } => format!("boot -> {}", status.as_deref().unwrap_or("Accepted")),
            Step::Plug { connector } => format!("plug {}", c(connector)),
            Step::Unplug { connector } => format!("unplug {}", c(connector)),
            Step::Authorize { token, connector, .. } => format!("authorize {token} at {}", c(connector)),
            Step::TransactionStarted { connector, .. } => format!("transaction started on {}", c(connector)),
            Step::Charge { secs, kw, .. } => match kw {
                Some(kw) => format!("charge {secs} s at {kw} kW"),
                None => format!("charge {secs} s"),
            },
            Step::Stop { connector, .. } => format!("stop {}", c(connector)),
            Step::TransactionEnded { connector, reason, .. } => {
                format!(
                    "transaction ended on {} {}",
                    c(connector),
                    reason.as_deref().unwrap_or("")
                )
            }
            Step::Status { connector, status, .. } => format!("connector {} {status}", c(connector)),
            Step::Offline => "offline".into(),
            Step::Online { .. } => "online".into(),
            Step::ExpectCall { action, .. } => format!("expect call {action}"),
            Step::Send { action, .. } => format!("send {action}"),
            Step::ExpectResponse { action, .. } => format!("expect response to {action}"),
            Step::Fault { code, connector } => format!("fault {code} on {}", c(connector)),
            Step::ClearFault { connector } => format!("clear fault on {}", c(connector)),
            Step::Soc { percent, connector } => format!("SoC {percent} % on {}", c(connector)),
            Step::Rebooted { .. } => "rebooted".into(),
            Step::Wait { secs } => format!("wait {secs} s"),
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Step label.
    pub label: String,
    /// `None` passed; `Some(why)` failed.
    pub failure: Option<String>,
    /// Time taken.
    pub elapsed: Duration,
}

/// The outcome of a scenario.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// Steps run (the run stops at the first failure).
    pub steps: Vec<StepReport>,
    /// Steps not run.
    pub skipped: usize,
    /// Protocol or schema violations by the central system.
    pub violations: Vec<String>,
}

impl Report {
    /// Whether every step passed and nothing broke the protocol.
    pub fn passed(&self) -> bool {
        self.skipped == 0 && self.steps.iter().all(|s| s.failure.is_none()) && self.violations.is_empty()
    }

    /// The human report.
    pub fn render(&self) -> String {
        let mut out = format!("scenario {}\n", self.name);
        for (n, s) in self.steps.iter().enumerate() {
            let mark = if s.failure.is_none() { "ok  " } else { "FAIL" };
            out += &format!("{mark} {:>2} {} ({:.2} s)\n", n + 1, s.label, s.elapsed.as_secs_f64());
            if let Some(f) = &s.failure {
                out += &format!("         {f}\n");
            }
        }
        if self.skipped > 0 {
            out += &format!("     {} step(s) not run\n", self.skipped);
        }
        for v in &self.violations {
            out += &format!("VIOLATION {v}\n");
        }
        out += if self.passed() { "PASSED\n" } else { "FAILED\n" };
        out
    }
}

/// Reads a scenario file; `url` fills in a station without one.
pub fn load(path: &Path, url: Option<&str>) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, url).with_context(|| format!("in {}", path.display()))
}

/// Parses a scenario.
pub fn parse(text: &str, url: Option<&str>) -> anyhow::Result<Scenario> {
    let mut s: Scenario = toml::from_str(text)?;
    if let Some(url) = url {
        s.station.url = Some(url.to_string());
    }
    s.station.check()?;
    if s.steps.is_empty() {
        anyhow::bail!("no [[step]]");
    }
    Ok(s)
}

/// Whether `actual` contains every field of `expected` with the same value (recursively for
/// objects; arrays and scalars compare whole).
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (a, e) => a == e,
    }
}

struct Runner {
    handle: Handle,
    events: broadcast::Receiver<Event>,
    violations: Vec<String>,
    log: bool,
}

impl Runner {
    /// Waits for the first event that `f` accepts (`Some(Ok)`) or rejects (`Some(Err)`).
    async fn wait<T>(
        &mut self,
        secs: u64,
        what: &str,
        mut f: impl FnMut(&Event) -> Option<Result<T, String>>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(e)) => e,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err("the station stopped".into()),
                Err(_) => return Err(format!("timed out after {secs} s waiting for {what}")),
            };
            self.observe(&event);
            if let Some(r) = f(&event) {
                return r;
            }
        }
    }

    fn observe(&mut self, e: &Event) {
        if self.log {
            match e {
                Event::Frame(out, t) => println!("      {} {t}", if *out { "->" } else { "<-" }),
                other => println!("      * {}", crate::run::describe(other)),
            }
        }
        if let Event::Violation(v) = e {
            self.violations.push(v.clone());
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let t = |t: &Option<u64>| t.unwrap_or(30);
        let c = |c: &Option<u32>| c.unwrap_or(1);
        match step {
            Step::Connect { timeout } => {
                self.wait(t(timeout), "the connection", |e| {
                    matches!(e, Event::Connected).then_some(Ok(()))
                })
                .await
            }
            Step::Boot { status, timeout } => {
                let want = status.clone().unwrap_or_else(|| "Accepted".into());
                self.wait(t(timeout), "the boot answer", |e| match e {
                    Event::Booted(s) if *s == want => Some(Ok(())),
                    Event::Booted(s) => Some(Err(format!("boot answered {s}"))),
                    _ => None,
                })
                .await
            }
            Step::Plug { connector } => {
                self.handle.send(Control::Plug(c(connector)));
                Ok(())
            }
            Step::Unplug { connector } => {
                self.handle.send(Control::Unplug(c(connector)));
                Ok(())
            }
            Step::Authorize {
                token,
                connector,
                expect,
                timeout,
            } => {
                self.handle.send(Control::Present(c(connector), token.clone()));
                let Some(expect) = expect else { return Ok(()) };
                let connector = c(connector);
                self.wait(t(timeout), "the Authorize answer", |e| match e {
                    Event::Response(a, Ok(p)) if a == "Authorize" => Some(if contains(p, expect) {
                        Ok(())
                    } else {
                        Err(format!("Authorize answered {p}, expected {expect}"))
                    }),
                    Event::Response(a, Err(err)) if a == "Authorize" => Some(Err(format!("Authorize failed: {err}"))),
                    Event::Refused(n, why) if *n == connector => Some(Err(format!("refused locally: {why}"))),
                    _ => None,
                })
                .await
            }
            Step::TransactionStarted { connector, timeout } => {
                let n = c(connector);
                self.wait(t(timeout), "a transaction start", |e| match e {
                    Event::TransactionStarted(x, _) if *x == n => Some(Ok(())),
                    Event::Refused(x, why) if *x == n => Some(Err(format!("refused: {why}"))),
                    _ => None,
                })
                .await
            }
            Step::Charge { secs, kw, connector } => {
                if let Some(kw) = kw {
                    self.handle.send(Control::SetEvPower(c(connector), *kw));
                }
                let until = tokio::time::Instant::now() + Duration::from_secs_f64(secs.max(0.0));
                // Keep reading events meanwhile so violations are seen and nothing lags.
                loop {
                    match tokio::time::timeout_at(until, self.events.recv()).await {
                        Ok(Ok(e)) => self.observe(&e),
                        Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                        Ok(Err(broadcast::error::RecvError::Closed)) => return Err("the station stopped".into()),
                        Err(_) => return Ok(()),
                    }
                }
            }
            Step::Stop { connector, timeout } => {
                let n = c(connector);
                self.handle.send(Control::Stop(n));
                self.wait(t(timeout), "the transaction end", |e| {
                    matches!(e, Event::TransactionEnded(x, _) if *x == n).then_some(Ok(()))
                })
                .await
            }
            Step::TransactionEnded {
                connector,
                reason,
                timeout,
            } => {
                let n = c(connector);
                self.wait(t(timeout), "the transaction end", |e| match e {
                    Event::TransactionEnded(x, why) if *x == n => Some(match reason {
                        Some(r) if r != why => Err(format!("ended with reason {why}, expected {r}")),
                        _ => Ok(()),
                    }),
                    _ => None,
                })
                .await
            }
            Step::Status {
                connector,
                status,
                timeout,
            } => {
                let n = c(connector);
                self.wait(t(timeout), &format!("status {status}"), |e| {
                    matches!(e, Event::Status(x, s) if *x == n && s == status).then_some(Ok(()))
                })
                .await
            }
            Step::Offline => {
                self.handle.send(Control::Offline);
                self.wait(5, "the disconnection", |e| {
                    matches!(e, Event::Disconnected(_)).then_some(Ok(()))
                })
                .await
            }
            Step::Online { timeout } => {
                self.handle.send(Control::Online);
                self.wait(t(timeout), "the connection", |e| {
                    matches!(e, Event::Connected).then_some(Ok(()))
                })
                .await
            }
            Step::ExpectCall {
                action,
                payload,
                answer,
                timeout,
            } => {
                if let Some(a) = answer {
                    self.handle.send(Control::Override(action.clone(), Ok(a.clone())));
                }
                self.wait(t(timeout), &format!("a {action} call"), |e| match e {
                    Event::CallReceived(a, p) if a == action => Some(match payload {
                        Some(want) if !contains(p, want) => Err(format!("{action} carried {p}, expected {want}")),
                        _ => Ok(()),
                    }),
                    _ => None,
                })
                .await
            }
            Step::Send {
                action,
                payload,
                expect,
                expect_error,
                timeout,
            } => {
                self.handle.send(Control::Call(action.clone(), payload.clone()));
                self.wait(t(timeout), &format!("the {action} answer"), |e| match e {
                    Event::Response(a, result) if a == action => Some(match (result, expect_error, expect) {
                        (Err(err), Some(code), _) if err.starts_with(code.as_str()) => Ok(()),
                        (Err(err), _, _) => Err(format!("{action} failed: {err}")),
                        (Ok(p), Some(code), _) => Err(format!("expected CALLERROR {code}, got {p}")),
                        (Ok(p), None, Some(want)) if !contains(p, want) => {
                            Err(format!("answered {p}, expected {want}"))
                        }
                        (Ok(_), None, _) => Ok(()),
                    }),
                    _ => None,
                })
                .await
            }
            Step::ExpectResponse {
                action,
                payload,
                timeout,
            } => {
                self.wait(t(timeout), &format!("the {action} answer"), |e| match e {
                    Event::Response(a, Ok(p)) if a == action => Some(match payload {
                        Some(want) if !contains(p, want) => Err(format!("answered {p}, expected {want}")),
                        _ => Ok(()),
                    }),
                    Event::Response(a, Err(err)) if a == action => Some(Err(format!("{action} failed: {err}"))),
                    _ => None,
                })
                .await
            }
            Step::Fault { code, connector } => {
                self.handle.send(Control::Fault(c(connector), code.clone()));
                Ok(())
            }
            Step::ClearFault { connector } => {
                self.handle.send(Control::ClearFault(c(connector)));
                Ok(())
            }
            Step::Soc { percent, connector } => {
                self.handle.send(Control::SetSoc(c(connector), *percent));
                Ok(())
            }
            Step::Rebooted { timeout } => {
                let secs = t(timeout);
                self.wait(secs, "the reboot", |e| matches!(e, Event::Rebooting).then_some(Ok(())))
                    .await?;
                self.wait(secs, "the boot after the reboot", |e| match e {
                    Event::Booted(s) if s == "Accepted" => Some(Ok(())),
                    _ => None,
                })
                .await
            }
            Step::Wait { secs } => {
                tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
                Ok(())
            }
        }
    }
}

/// Runs a scenario to its verdict. With `log`, prints frames and events as they happen.
pub async fn execute(scenario: Scenario, log: bool) -> anyhow::Result<Report> {
    let (handle, events) = charger::spawn(scenario.station.clone())?;
    let mut runner = Runner {
        handle,
        events,
        violations: Vec::new(),
        log,
    };
    let mut steps = Vec::new();
    let mut skipped = 0;
    for (n, step) in scenario.steps.iter().enumerate() {
        let started = Instant::now();
        let result = runner.step(step).await;
        let failed = result.is_err();
        steps.push(StepReport {
            label: step.label(),
            failure: result.err(),
            elapsed: started.elapsed(),
        });
        if log {
            println!("{}", if failed { "FAIL" } else { "ok" });
        }
        if failed {
            skipped = scenario.steps.len() - n - 1;
            break;
        }
    }
    // Drain what arrived meanwhile, so late violations count.
    while let Ok(e) = runner.events.try_recv() {
        runner.observe(&e);
    }
    let Runner { handle, violations, .. } = runner;
    let _ = handle.shutdown().await;
    Ok(Report {
        name: scenario.name,
        steps,
        skipped,
        violations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_matching() {
        let actual = json!({"idTagInfo": {"status": "Accepted", "expiryDate": "x"}, "n": [1, 2]});
        assert!(contains(&actual, &json!({"idTagInfo": {"status": "Accepted"}})));
        assert!(!contains(&actual, &json!({"idTagInfo": {"status": "Blocked"}})));
        assert!(!contains(&actual, &json!({"n": [1]})));
        assert!(contains(&actual, &json!({})));
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                load(&path, Some("ws://127.0.0.1:9/ocpp")).unwrap();
                n += 1;
            }
        }
        assert!(n >= 4, "scenarios shipped: {n}");
    }

    #[test]
    fn bad_scenarios_are_refused() {
        for (text, why) in [
            ("[station]\nid = \"A\"\n", "step"),
            ("[station]\nid = \"A\"\n[[step]]\ndo = \"fly\"", "unknown variant"),
            (
                "[station]\nid = \"A\"\n[[step]]\ndo = \"plug\"\nconector = 1",
                "unknown field",
            ),
        ] {
            let err = format!("{:#}", parse(text, Some("ws://x/ocpp")).unwrap_err());
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
