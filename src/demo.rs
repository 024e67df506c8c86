//! `evcs --demo N`: N simulated chargers in the same process, connected to this process's own
//! OCPP endpoint and charging in a loop, so a newcomer sees stations, sessions and meter
//! values flow through the operator API at once. They alternate between OCPP 1.6 and 2.0.1.
//! Charger `DEMO-01` presents the token `DEMO-TAG-01`, and so on (one token each: the central
//! system refuses a token already in another transaction), registered as Accepted if missing.
//! A restart on the same data keeps them charging: the transactions the previous process left
//! Active are closed as abandoned when the chargers report their connectors free or start anew
//! (tests/transactions.rs, `demo_keeps_charging_across_restarts`).

use central_system::store::id_tokens::IdTokenFields;
use central_system::store::types::Ts;
use central_system::AppState;
use firmware_sim::charger::{self, Handle};
use firmware_sim::run::{drive_sessions, SessionPlan};
use firmware_sim::spec::StationSpec;
use ocpp::Version;
use std::net::SocketAddr;

/// The prefix of the tokens the demo chargers present.
pub const DEMO_TAG: &str = "DEMO-TAG-";

/// Starts `n` demo chargers against `addr` (the central system's listener).
pub async fn start(state: &AppState, addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Handle>> {
    // The listener may be on 0.0.0.0; the chargers dial loopback on its port.
    let url = format!("ws://127.0.0.1:{}/ocpp", addr.port());
    let mut handles = Vec::with_capacity(n);
    for i in 1..=n {
        let version = if i % 2 == 1 { Version::V16 } else { Version::V201 };
        let id = format!("DEMO-{i:02}");
        let token = format!("{DEMO_TAG}{i:02}");
        if state.store.id_token(&token).await?.is_none() {
            let fields = IdTokenFields {
                token_type: "ISO14443".into(),
                status: "Accepted".into(),
                expires_at: None,
                parent_id_token: None,
            };
            state.store.create_id_token(&token, fields, Ts::now()).await?;
        }
        let mut spec = StationSpec::new(&id, version, &url);
        spec.timing.meter_interval = 10;
        spec.ev.soc_percent = 10.0 + (i as f64 * 17.0) % 60.0;
        let (handle, events) = charger::spawn(spec)?;
        let plan = SessionPlan {
            count: None,
            token,
            secs: 60 + 15 * i as u64,
            gap_secs: 20,
        };
        tokio::spawn(drive_sessions(id, handle.sender(), events, plan));
        handles.push(handle);
    }
    Ok(handles)
}
