//! A bounded memory of recent event ids, for consumers that must be idempotent.
//!
//! QoS 1 means at least once: after a reconnect the broker may deliver an event again. A
//! consumer that writes to a database should also record the event id there (a unique key) in
//! the same transaction as its effect; this helper keeps the common case cheap.

use std::collections::{HashSet, VecDeque};

/// Remembers the last `capacity` event ids.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Dedup {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            seen: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
        }
    }

    /// True the first time an id is seen (process the event), false for a repeat (skip it).
    pub fn first_time(&mut self, event_id: &str) -> bool {
        if self.seen.contains(event_id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(event_id.to_owned());
        self.order.push_back(event_id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Dedup;

    #[test]
    fn repeats_are_refused_until_they_age_out() {
        let mut d = Dedup::new(2);
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c"));
        assert!(!d.first_time("b"));
        assert!(d.first_time("a"), "a aged out of a memory of two");
    }
}
