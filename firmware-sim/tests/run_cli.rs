//! The `firmware-sim run` command line as a user runs it: `--sessions N --exit-when-done`
//! against `tests/python/csms.py`, an independent central system on the Python `ocpp` package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn csms_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/csms.py")
}

/// `EVCS_TEST_PYTHON` (scripts/test sets it), else the repository's `.venv`, else `python3`.
fn python() -> std::ffi::OsString {
    if let Some(python) = std::env::var_os("EVCS_TEST_PYTHON") {
        return python;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv.into_os_string()
    } else {
        "python3".into()
    }
}

#[test]
fn run_sessions_then_exit_against_an_independent_central_system() {
    for version in ["1.6", "2.0.1"] {
        let mut csms = Command::new(python())
            .arg(csms_script())
            .args(["--stay", "20"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with tests/python/requirements.txt installed (scripts/test does it)");
        let mut lines = BufReader::new(csms.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let port = first["port"].as_u64().expect("csms.py prints its port first");
        let out = Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
            .args(["run", "--url", &format!("ws://127.0.0.1:{port}/ocpp"), "--id", "CLI-1"])
            .args(["--version", version, "--sessions", "2", "--id-tag", "CLI-TAG"])
            .args(["--session-secs", "2", "--meter-interval", "1", "--exit-when-done"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{version}: exit {}:\n{stdout}", out.status);
        assert!(stdout.contains("session 2 of 2 done"), "{version}:\n{stdout}");
        assert!(stdout.contains(" -> [2,"), "{version}: frames are logged:\n{stdout}");
        assert!(!stdout.contains("VIOLATION"), "{version}:\n{stdout}");
        csms.kill().unwrap();
        let events: Vec<Value> = lines
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        csms.wait().unwrap();
        let calls = |action: &str| {
            events
                .iter()
                .filter(|e| e["event"] == "call" && e["action"] == action)
                .map(|e| e["payload"].clone())
                .collect::<Vec<Value>>()
        };
        if version == "1.6" {
            assert_eq!(calls("StartTransaction").len(), 2, "{events:?}");
            assert_eq!(calls("StopTransaction").len(), 2, "{events:?}");
            assert!(calls("MeterValues").len() >= 2, "meter values during the sessions");
        } else {
            let kinds: Vec<String> = calls("TransactionEvent")
                .iter()
                .map(|p| p["eventType"].as_str().unwrap_or_default().to_string())
                .collect();
            assert_eq!(kinds.iter().filter(|k| *k == "Started").count(), 2, "{kinds:?}");
            assert_eq!(kinds.iter().filter(|k| *k == "Ended").count(), 2, "{kinds:?}");
            assert!(kinds.iter().any(|k| k == "Updated"), "{kinds:?}");
        }
        assert!(events.iter().all(|e| e["event"] != "error"), "{events:?}");
    }
}
