//! The sequence and the resume buffer: every live message gets the next sequence number and
//! goes into a bounded ring; a reconnecting client gets what it missed from the ring, or a
//! `resync` when the ring no longer holds it (or the stream restarted).
//!
//! Publishing and subscribing take one short lock (no await inside), so a subscriber's replay
//! and its live receiver meet without a gap or a duplicate: everything up to the replay's end
//! is in the replay, everything after it comes through the receiver.

use super::{Audience, Kind};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// One published message, serialized once for every connection.
#[derive(Debug)]
pub struct Message {
    pub seq: u64,
    pub kind: Kind,
    pub audience: Audience,
    /// `{"seq":N,"type":...,"data":...}`.
    pub json: String,
}

/// Where a subscriber starts.
#[derive(Debug)]
pub enum Resume {
    /// Messages after the client's `since`, oldest first (possibly none).
    Replay(Vec<Arc<Message>>),
    /// The ring no longer holds what the client missed, or the stream is not the one it saw:
    /// refetch over REST, then follow from the current sequence.
    Resync,
}

struct Ring {
    last_seq: u64,
    messages: VecDeque<Arc<Message>>,
}

/// Sequence numbers, the ring, and the fan-out to connections.
pub struct Sequencer {
    ring: Mutex<Ring>,
    capacity: usize,
    fanout: broadcast::Sender<Arc<Message>>,
    /// Random per process start: sequence numbers restart with it.
    stream: String,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("capacity", &self.capacity)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Sequencer {
    /// A sequencer keeping the last `capacity` messages; each connection may fall `backlog`
    /// messages behind before it is dropped.
    pub fn new(capacity: usize, backlog: usize) -> Sequencer {
        use rand::Rng;
        let stream = format!("{:016x}", rand::rng().random::<u64>());
        Sequencer {
            ring: Mutex::new(Ring {
                last_seq: 0,
                messages: VecDeque::with_capacity(capacity.min(4096)),
            }),
            capacity: capacity.max(1),
            fanout: broadcast::channel(backlog.max(1)).0,
            stream,
        }
    }

    /// This process's stream id.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves a consistent ring (each step is one push/pop).
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a message built from its sequence number; returns the number.
    pub fn publish(&self, kind: Kind, audience: Audience, data: &serde_json::Value) -> u64 {
        let mut ring = self.ring();
        ring.last_seq += 1;
        let seq = ring.last_seq;
        let json = serde_json::json!({ "seq": seq, "type": kind.as_str(), "data": data }).to_string();
        let message = Arc::new(Message {
            seq,
            kind,
            audience,
            json,
        });
        if ring.messages.len() >= self.capacity {
            ring.messages.pop_front();
        }
        ring.messages.push_back(message.clone());
        // No receivers is fine: nobody is connected.
        let _ = self.fanout.send(message);
        seq
    }

    /// The last sequence number published.
    pub fn last_seq(&self) -> u64 {
        self.ring().last_seq
    }

    /// Starts following: where to resume after `since` (None: from now on) on `stream`, the
    /// current last sequence number, and the receiver of everything published afterwards.
    pub fn subscribe(
        &self,
        since: Option<u64>,
        stream: Option<&str>,
    ) -> (Resume, u64, broadcast::Receiver<Arc<Message>>) {
        let ring = self.ring();
        let receiver = self.fanout.subscribe();
        let resume = match since {
            None => Resume::Replay(Vec::new()),
            Some(_) if stream.is_some_and(|s| s != self.stream) => Resume::Resync,
            // A number from the future: another stream (a restart the client did not name).
            Some(since) if since > ring.last_seq => Resume::Resync,
            Some(since) => {
                let oldest = ring.messages.front().map_or(ring.last_seq + 1, |m| m.seq);
                // Everything after `since` must still be held: the next one is `since + 1`.
                if since + 1 < oldest {
                    Resume::Resync
                } else {
                    Resume::Replay(ring.messages.iter().filter(|m| m.seq > since).cloned().collect())
                }
            }
        };
        (resume, ring.last_seq, receiver)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn everyone() -> Audience {
        Audience::default()
    }

    fn seqs(r: &Resume) -> Vec<u64> {
        match r {
            Resume::Replay(m) => m.iter().map(|m| m.seq).collect(),
            Resume::Resync => panic!("resync"),
        }
    }

    #[test]
    fn numbers_increase_and_messages_carry_them() {
        let s = Sequencer::new(8, 8);
        assert_eq!(s.publish(Kind::Session, everyone(), &json!({})), 1);
        assert_eq!(s.publish(Kind::Booking, everyone(), &json!({"x": 1})), 2);
        let (resume, last, _) = s.subscribe(Some(0), None);
        assert_eq!(last, 2);
        let Resume::Replay(m) = resume else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&m[1].json).unwrap();
        assert_eq!(v, json!({"seq": 2, "type": "booking", "data": {"x": 1}}));
    }

    #[test]
    fn resume_replays_what_was_missed_and_nothing_else() {
        let s = Sequencer::new(8, 8);
        for _ in 0..5 {
            s.publish(Kind::Session, everyone(), &json!({}));
        }
        assert_eq!(seqs(&s.subscribe(Some(3), None).0), vec![4, 5]);
        assert_eq!(seqs(&s.subscribe(Some(5), Some(s.stream())).0), Vec::<u64>::new());
        assert_eq!(seqs(&s.subscribe(None, None).0), Vec::<u64>::new());
    }

    #[test]
    fn resync_when_the_ring_moved_past_the_client() {
        let s = Sequencer::new(4, 8);
        for _ in 0..10 {
            s.publish(Kind::Session, everyone(), &json!({}));
        }
        // Ring holds 7..=10: a client at 6 misses nothing, one at 5 missed 6.
        assert_eq!(seqs(&s.subscribe(Some(6), None).0), vec![7, 8, 9, 10]);
        assert!(matches!(s.subscribe(Some(5), None).0, Resume::Resync));
        assert!(matches!(s.subscribe(Some(0), None).0, Resume::Resync));
    }

    #[test]
    fn resync_for_another_stream_or_a_number_from_the_future() {
        let s = Sequencer::new(4, 8);
        s.publish(Kind::Session, everyone(), &json!({}));
        assert!(matches!(s.subscribe(Some(1), Some("other")).0, Resume::Resync));
        assert!(matches!(s.subscribe(Some(2), None).0, Resume::Resync));
        // An empty ring and a client at 0: nothing missed.
        let fresh = Sequencer::new(4, 8);
        assert_eq!(seqs(&fresh.subscribe(Some(0), None).0), Vec::<u64>::new());
    }

    #[tokio::test]
    async fn after_the_replay_the_receiver_continues_without_gap_or_duplicate() {
        let s = Sequencer::new(8, 8);
        s.publish(Kind::Session, everyone(), &json!({}));
        let (resume, last, mut rx) = s.subscribe(Some(0), None);
        assert_eq!((seqs(&resume), last), (vec![1], 1));
        s.publish(Kind::Session, everyone(), &json!({}));
        assert_eq!(rx.recv().await.unwrap().seq, 2);
    }

    #[tokio::test]
    async fn a_receiver_that_falls_behind_the_backlog_learns_it() {
        let s = Sequencer::new(64, 2);
        let (_, _, mut rx) = s.subscribe(None, None);
        for _ in 0..5 {
            s.publish(Kind::Session, everyone(), &json!({}));
        }
        assert!(matches!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(_))));
    }
}
