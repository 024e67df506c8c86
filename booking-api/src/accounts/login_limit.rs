//! The login rate limit: failed attempts per identifier and per client address in a sliding
//! window.
//!
//! An attempt is reserved before the password is checked, and counts as a failure from that
//! moment: checking is slow (argon2), so a limiter that counted afterwards let 500 concurrent
//! guesses for one account all through before the first failure was recorded. Policy:
//! - a wrong password (or unknown identifier) keeps its reservation: one failure for the
//!   identifier and one for the address;
//! - a successful login forgets the identifier's failures and gives back its own reservation
//!   on the address, but not the address's other failures (logging in to one's own account must
//!   not reset a guessing budget shared with other identifiers);
//! - an attempt whose password was never checked (the password pool was full, the database
//!   failed) is given back on both.
//!
//! In memory: each replica limits on its own, which bounds guessing to `replicas x max` per
//! window. The client address is the TCP peer, unless the peer is one of the configured trusted
//! proxies: then it is the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy
//! (entries further left are whatever the client wrote, so they are never believed).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed and in-progress logins per key in a sliding window.
#[derive(Debug)]
pub struct LoginLimiter {
    attempts: Mutex<HashMap<String, VecDeque<i64>>>,
    per_identifier: usize,
    per_address: usize,
    window_ms: i64,
}

/// Which limit refused a login, with the seconds until it admits one again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Too many failures for this identifier.
    Identifier(i64),
    /// Too many failures from this client address.
    Address(i64),
}

/// A reserved attempt; see the module's policy for what each outcome does with it.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure unless succeeded() or unchecked() gives it back"]
pub struct Attempt {
    identifier: String,
    address: Option<String>,
    at: i64,
}

/// Addresses of one client: an IPv4 address, or an IPv6 /64 (one subscriber's usual share).
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The client a login came from: the TCP `peer`, or behind `trusted` proxies the address they
/// forwarded (see the module's notes).
pub fn client_address(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(list) = forwarded_for else {
        return Some(peer);
    };
    for entry in list.rsplit(',').map(str::trim) {
        match entry.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
            // A malformed entry: the last trusted hop is all that is known.
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

impl LoginLimiter {
    /// At most `per_identifier` failures per identifier and `per_address` per client address
    /// within `window_secs`.
    pub fn new(per_identifier: usize, per_address: usize, window_secs: i64) -> LoginLimiter {
        LoginLimiter {
            attempts: Mutex::new(HashMap::new()),
            per_identifier: per_identifier.max(1),
            per_address: per_address.max(1),
            window_ms: window_secs.max(1) * 1000,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        self.attempts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserves an attempt for `identifier` from `address`, or says which limit refuses it.
    pub fn reserve(&self, identifier: &str, address: Option<IpAddr>, now_ms: i64) -> Result<Attempt, Limited> {
        let id_key = format!("id:{identifier}");
        let addr_key = address.map(address_key);
        let horizon = now_ms - self.window_ms;
        let mut map = self.lock();
        if map.len() > 100_000 {
            // Keep memory bounded under a spray of identifiers: forget the stale ones.
            map.retain(|_, times| times.back().is_some_and(|t| *t > horizon));
        }
        let wait = |times: Option<&mut VecDeque<i64>>, max: usize| -> Option<i64> {
            let times = times?;
            while times.front().is_some_and(|t| *t <= horizon) {
                times.pop_front();
            }
            (times.len() >= max).then(|| {
                let oldest = times.front().copied().unwrap_or(now_ms);
                ((oldest + self.window_ms - now_ms + 999) / 1000).max(1)
            })
        };
        if let Some(secs) = wait(map.get_mut(&id_key), self.per_identifier) {
            return Err(Limited::Identifier(secs));
        }
        if let Some(key) = &addr_key {
            if let Some(secs) = wait(map.get_mut(key), self.per_address) {
                return Err(Limited::Address(secs));
            }
            map.entry(key.clone()).or_default().push_back(now_ms);
        }
        map.entry(id_key.clone()).or_default().push_back(now_ms);
        Ok(Attempt {
            identifier: id_key,
            address: addr_key,
            at: now_ms,
        })
    }

    fn give_back(map: &mut HashMap<String, VecDeque<i64>>, key: &str, at: i64) {
        if let Some(times) = map.get_mut(key) {
            if let Some(i) = times.iter().position(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                map.remove(key);
            }
        }
    }

    /// The password was right: the identifier starts afresh, the address gets this one back.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut map = self.lock();
        map.remove(&attempt.identifier);
        if let Some(key) = &attempt.address {
            Self::give_back(&mut map, key, attempt.at);
        }
    }

    /// The password was never checked: the attempt does not count.
    pub fn unchecked(&self, attempt: Attempt) {
        let mut map = self.lock();
        Self::give_back(&mut map, &attempt.identifier, attempt.at);
        if let Some(key) = &attempt.address {
            Self::give_back(&mut map, key, attempt.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const AWAY: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7)));

    #[test]
    fn an_identifier_is_refused_after_max_attempts_within_the_window() {
        let l = LoginLimiter::new(3, 100, 60);
        for t in [0, 1_000, 2_000] {
            let _failed = l.reserve("a", HOME, t).expect("admitted");
        }
        assert_eq!(l.reserve("a", AWAY, 3_000).err(), Some(Limited::Identifier(57)));
        assert!(l.reserve("b", HOME, 3_000).is_ok());
        // The oldest failure leaves the window.
        let _failed = l.reserve("a", HOME, 60_001).expect("admitted");
        assert!(l.reserve("a", HOME, 60_002).is_err());
    }

    #[test]
    fn attempts_count_while_in_progress() {
        // 500 concurrent attempts reserve before any is checked: only the limit gets through.
        let l = LoginLimiter::new(5, 1_000, 900);
        let admitted: Vec<Attempt> = (0..500).filter_map(|_| l.reserve("owner", HOME, 0).ok()).collect();
        assert_eq!(admitted.len(), 5);
    }

    #[test]
    fn an_address_is_refused_after_max_attempts_whatever_the_identifier() {
        let l = LoginLimiter::new(5, 3, 60);
        for who in ["a", "b", "c"] {
            let _failed = l.reserve(who, HOME, 0).expect("admitted");
        }
        assert_eq!(l.reserve("d", HOME, 10_000).err(), Some(Limited::Address(50)));
        assert!(l.reserve("d", AWAY, 10_000).is_ok());
        // Without an address (a request not from a socket) only the identifier limits.
        assert!(l.reserve("e", None, 10_000).is_ok());
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let l = LoginLimiter::new(5, 1, 60);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        let _failed = l.reserve("a", Some(one), 0).expect("admitted");
        assert!(matches!(l.reserve("b", Some(same_64), 0), Err(Limited::Address(_))));
        assert!(l.reserve("b", Some(other_64), 0).is_ok());
    }

    #[test]
    fn success_clears_the_identifier_but_only_its_own_attempt_on_the_address() {
        let l = LoginLimiter::new(2, 3, 60);
        let _failed = l.reserve("a", HOME, 0).expect("admitted");
        let _failed = l.reserve("b", HOME, 1).expect("admitted");
        let ok = l.reserve("a", HOME, 2).expect("admitted");
        l.succeeded(ok);
        // "a" starts afresh: two more failures are allowed.
        let _failed = l.reserve("a", AWAY, 3).expect("admitted");
        let _failed = l.reserve("a", AWAY, 4).expect("admitted");
        assert!(l.reserve("a", AWAY, 5).is_err());
        // HOME still has its two failures (a, b) and got the successful one back: one left.
        let _failed = l.reserve("c", HOME, 6).expect("admitted");
        assert!(matches!(l.reserve("d", HOME, 7), Err(Limited::Address(_))));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let inner: IpAddr = "10.0.0.2".parse().expect("ip");
        let client: IpAddr = "203.0.113.5".parse().expect("ip");
        let trusted = [proxy, inner];
        // Not from a proxy: the header is the client's own claim.
        assert_eq!(client_address(Some(client), Some("1.2.3.4"), &trusted), Some(client));
        // From a proxy: the rightmost untrusted entry, not what the client prepended.
        let xff = "6.6.6.6, 203.0.113.5, 10.0.0.2";
        assert_eq!(client_address(Some(proxy), Some(xff), &trusted), Some(client));
        assert_eq!(client_address(Some(proxy), None, &trusted), Some(proxy));
        assert_eq!(client_address(Some(proxy), Some("junk"), &trusted), Some(proxy));
        assert_eq!(client_address(None, Some(xff), &trusted), None);
    }

    #[test]
    fn an_unchecked_attempt_does_not_count() {
        let l = LoginLimiter::new(1, 1, 60);
        let busy = l.reserve("a", HOME, 0).expect("admitted");
        l.unchecked(busy);
        let _failed = l.reserve("a", HOME, 1).expect("admitted again");
        assert!(l.reserve("a", HOME, 2).is_err());
    }
}
