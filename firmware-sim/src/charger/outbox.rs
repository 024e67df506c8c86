//! The queue of calls the station will send, in order, one at a time.
//!
//! Transaction and meter messages are *durable*: kept while the station is offline, written to
//! `outbox.json` in the station's state directory on every change (write-then-rename, so a crash
//! leaves the old or the new file, never half of one), and replayed in order when the link
//! returns. Everything else (status, heartbeats) is *volatile* and dropped on disconnect: after
//! reconnecting the station reports its current state afresh.
//!
//! A 1.6 StartTransaction queued offline has no transaction id yet, and neither have the
//! MeterValues and StopTransaction queued after it. They carry the station's local transaction
//! number instead; the id the central system answers is recorded here (and persisted) and
//! written into the later messages as they are sent.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// What the station does with the answer to a queued call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Purpose {
    /// Nothing beyond logging.
    Plain,
    /// An Authorize for a token presented at a connector.
    Authorize {
        /// Connector index (0-based).
        connector: usize,
        /// The token presented.
        token: String,
    },
}

/// One call waiting to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// OCPP action.
    pub action: String,
    /// Payload (for 1.6 transaction messages, `transactionId` is filled in at send time).
    pub payload: Value,
    /// Kept across disconnects and restarts.
    pub durable: bool,
    /// The station's local number of the transaction this message belongs to (1.6).
    pub local_tx: Option<u64>,
    /// What to do with the answer.
    pub purpose: Purpose,
}

/// What survives a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    queue: Vec<Queued>,
    transaction_ids: BTreeMap<u64, i64>,
    next_local_tx: u64,
    registers_wh: Vec<f64>,
}

/// The send queue.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Queued>,
    transaction_ids: BTreeMap<u64, i64>,
    next_local_tx: u64,
    path: Option<PathBuf>,
}

impl Outbox {
    /// An outbox persisted in `dir` (created if missing), with what it held before; also returns
    /// the meter registers saved with it.
    pub fn open(dir: Option<&Path>) -> anyhow::Result<(Outbox, Vec<f64>)> {
        let Some(dir) = dir else {
            return Ok((
                Outbox {
                    next_local_tx: 1,
                    ..Outbox::default()
                },
                Vec::new(),
            ));
        };
        std::fs::create_dir_all(dir)?;
        let path = dir.join("outbox.json");
        let saved: Saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is corrupt ({e}); move it away to start afresh", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(e.into()),
        };
        Ok((
            Outbox {
                queue: saved.queue.into(),
                transaction_ids: saved.transaction_ids,
                next_local_tx: saved.next_local_tx.max(1),
                path: Some(path),
            },
            saved.registers_wh,
        ))
    }

    /// Appends a call.
    pub fn push(&mut self, item: Queued) {
        self.queue.push_back(item);
    }

    /// The next call to send.
    pub fn front(&self) -> Option<&Queued> {
        self.queue.front()
    }

    /// Removes the call at the front (it was answered).
    pub fn pop(&mut self) -> Option<Queued> {
        self.queue.pop_front()
    }

    /// Drops the volatile calls (on disconnect).
    pub fn drop_volatile(&mut self) {
        self.queue.retain(|q| q.durable);
    }

    /// Calls waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Durable calls waiting.
    pub fn durable_len(&self) -> usize {
        self.queue.iter().filter(|q| q.durable).count()
    }

    /// A new local transaction number.
    pub fn next_local_tx(&mut self) -> u64 {
        let n = self.next_local_tx;
        self.next_local_tx += 1;
        n
    }

    /// Records the central system's id for a local transaction.
    pub fn set_transaction_id(&mut self, local: u64, id: i64) {
        self.transaction_ids.insert(local, id);
        // Only the ids of transactions with messages still queued are needed.
        let live: Vec<u64> = self.queue.iter().filter_map(|q| q.local_tx).collect();
        self.transaction_ids.retain(|k, _| *k == local || live.contains(k));
    }

    /// The central system's id for a local transaction, once known.
    pub fn transaction_id(&self, local: u64) -> Option<i64> {
        self.transaction_ids.get(&local).copied()
    }

    /// Writes the durable state (no-op without a state directory).
    pub fn save(&self, registers_wh: &[f64]) -> anyhow::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let saved = Saved {
            queue: self.queue.iter().filter(|q| q.durable).cloned().collect(),
            transaction_ids: self.transaction_ids.clone(),
            next_local_tx: self.next_local_tx,
            registers_wh: registers_wh.to_vec(),
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&saved)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(action: &str, durable: bool, local_tx: Option<u64>) -> Queued {
        Queued {
            action: action.into(),
            payload: json!({"n": action}),
            durable,
            local_tx,
            purpose: Purpose::Plain,
        }
    }

    #[test]
    fn durable_calls_survive_a_restart_in_order_and_volatile_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (mut outbox, registers) = Outbox::open(Some(dir.path())).unwrap();
        assert!(registers.is_empty());
        let tx = outbox.next_local_tx();
        outbox.push(item("StatusNotification", false, None));
        outbox.push(item("StartTransaction", true, Some(tx)));
        outbox.push(item("MeterValues", true, Some(tx)));
        outbox.push(item("Heartbeat", false, None));
        outbox.push(item("StopTransaction", true, Some(tx)));
        outbox.save(&[1234.5]).unwrap();
        drop(outbox);

        let (mut reopened, registers) = Outbox::open(Some(dir.path())).unwrap();
        assert_eq!(registers, vec![1234.5]);
        let actions: Vec<String> = std::iter::from_fn(|| reopened.pop().map(|q| q.action)).collect();
        assert_eq!(actions, ["StartTransaction", "MeterValues", "StopTransaction"]);
        assert_eq!(reopened.next_local_tx(), tx + 1, "local numbers are not reused");
    }

    #[test]
    fn transaction_ids_are_kept_while_messages_need_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut outbox, _) = Outbox::open(Some(dir.path())).unwrap();
        outbox.push(item("StopTransaction", true, Some(1)));
        outbox.set_transaction_id(1, 77);
        outbox.save(&[]).unwrap();
        let (reopened, _) = Outbox::open(Some(dir.path())).unwrap();
        assert_eq!(reopened.transaction_id(1), Some(77));
    }

    #[test]
    fn a_corrupt_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("outbox.json"), b"{not json").unwrap();
        let err = Outbox::open(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn drop_volatile_keeps_only_durable() {
        let (mut outbox, _) = Outbox::open(None).unwrap();
        outbox.push(item("StatusNotification", false, None));
        outbox.push(item("MeterValues", true, Some(1)));
        outbox.drop_volatile();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox.durable_len(), 1);
    }
}
