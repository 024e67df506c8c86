//! Limits on stations that are not (yet) Accepted, so that unknown ids admitted under
//! `--unknown-stations pending` cannot be used to flood the service.
//!
//! - [`AttemptLimiter`]: connection attempts per minute, per station id and per client
//!   address, for ids that are unknown or not Accepted (a fixed one-minute window per key; the
//!   table of keys is bounded and refuses new keys while full of live ones).
//! - [`MessageRate`]: a token bucket per session, used while the station is not Accepted.
//! - The cap on Pending registrations is checked in the upgrade (see `upgrade.rs`), under
//!   [`AttemptLimiter::registering`] so that concurrent upgrades cannot overshoot it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at once; beyond this, expired windows are dropped, and if none has expired
/// new keys are refused (an attacker cycling ids must not grow memory).
const MAX_KEYS: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(60);

/// What a connection attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttemptKey {
    /// A station id.
    Station(String),
    /// A client address.
    Address(IpAddr),
}

/// Connection attempts per key and minute.
#[derive(Debug)]
pub struct AttemptLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<AttemptKey, (Instant, u32)>>,
    /// Held while checking the Pending cap and registering, so the cap is exact.
    pub registering: tokio::sync::Mutex<()>,
}

impl AttemptLimiter {
    /// A limiter allowing `per_minute` attempts per key (0: no limit).
    pub fn new(per_minute: u32) -> AttemptLimiter {
        AttemptLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// Counts an attempt for every key; `Err(retry_after)` if any of them is over its limit.
    pub fn attempt(&self, keys: &[AttemptKey], now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_KEYS {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let mut refused: Option<Duration> = None;
        for key in keys {
            if !windows.contains_key(key) && windows.len() >= MAX_KEYS {
                refused = Some(refused.unwrap_or(WINDOW));
                continue;
            }
            let (start, count) = windows.entry(key.clone()).or_insert((now, 0));
            if now.duration_since(*start) >= WINDOW {
                *start = now;
                *count = 0;
            }
            *count = count.saturating_add(1);
            if *count > self.per_minute {
                let wait = WINDOW.saturating_sub(now.duration_since(*start));
                refused = Some(refused.map_or(wait, |r| r.max(wait)));
            }
        }
        refused.map_or(Ok(()), Err)
    }
}

/// A token bucket: `rate` messages per second, bursts of `2 * rate`.
#[derive(Debug, Clone)]
pub struct MessageRate {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl MessageRate {
    /// A full bucket for `rate` messages per second (0: no limit).
    pub fn new(rate: u32, now: Instant) -> MessageRate {
        let rate = f64::from(rate);
        MessageRate {
            rate,
            tokens: rate * 2.0,
            last: now,
        }
    }

    /// Takes a token; false when the bucket is empty.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_limited_per_key_and_window() {
        let limiter = AttemptLimiter::new(3);
        let t0 = Instant::now();
        let ip = AttemptKey::Address(IpAddr::from([127, 0, 0, 1]));
        let keys = |id: &str| [AttemptKey::Station(id.to_string()), ip.clone()];
        assert!(limiter.attempt(&keys("a"), t0).is_ok());
        assert!(limiter.attempt(&keys("a"), t0).is_ok());
        assert!(limiter.attempt(&keys("b"), t0).is_ok());
        // The address has had three attempts: a fourth is refused whatever the id.
        let wait = limiter.attempt(&keys("c"), t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // A new window starts a minute later.
        assert!(limiter.attempt(&keys("c"), t0 + WINDOW).is_ok());
        assert!(AttemptLimiter::new(0).attempt(&keys("a"), t0).is_ok());
    }

    #[test]
    fn the_key_table_stays_bounded() {
        let limiter = AttemptLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            assert!(limiter.attempt(&[AttemptKey::Station(i.to_string())], t0).is_ok());
        }
        assert!(limiter.attempt(&[AttemptKey::Station("new".into())], t0).is_err());
        // Once the windows expire, their keys make room.
        assert!(limiter
            .attempt(&[AttemptKey::Station("new".into())], t0 + WINDOW)
            .is_ok());
        assert!(limiter.windows.lock().unwrap_or_else(|p| p.into_inner()).len() <= MAX_KEYS);
    }

    #[test]
    fn message_rate_allows_bursts_then_the_rate() {
        let t0 = Instant::now();
        let mut rate = MessageRate::new(2, t0);
        assert_eq!((0..10).filter(|_| rate.allow(t0)).count(), 4);
        assert!(rate.allow(t0 + Duration::from_millis(500)));
        assert!(!rate.allow(t0 + Duration::from_millis(500)));
        let mut unlimited = MessageRate::new(0, t0);
        assert!((0..100).all(|_| unlimited.allow(t0)));
    }
}
