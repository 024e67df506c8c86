//! OCPP security profiles (2.0.1 A00/A05; 1.6 security whitepaper) as seen at the upgrade.
//!
//! The profile is what the connection proved, not what the station claims: a verified client
//! certificate naming the station is 3, Basic credentials over TLS 2, over plain ws 1, nothing 0.
//! Each station keeps the highest profile it has connected at as a floor (A05: the CSMS
//! shall not let a station fall back to a lower profile), so an attacker who can reach the
//! plain-ws port with a stolen password cannot use it once the station has moved to TLS.

/// No credentials (only when `--require-auth` is off).
pub const NONE: i64 = 0;
/// Plain WebSocket with HTTP Basic.
pub const BASIC: i64 = 1;
/// TLS with HTTP Basic.
pub const TLS_BASIC: i64 = 2;
/// TLS with a client certificate.
pub const TLS_CLIENT_CERT: i64 = 3;

/// The profile a connection has shown.
pub fn of_connection(tls: bool, client_cert: bool, basic: bool) -> i64 {
    match (tls, client_cert, basic) {
        (true, true, _) => TLS_CLIENT_CERT,
        (true, false, true) => TLS_BASIC,
        (false, _, true) => BASIC,
        _ => NONE,
    }
}

/// Whether an admin-set floor is a profile at all.
pub fn valid(profile: i64) -> bool {
    (NONE..=TLS_CLIENT_CERT).contains(&profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_of_connection() {
        assert_eq!(of_connection(false, false, false), NONE);
        assert_eq!(of_connection(false, false, true), BASIC);
        assert_eq!(of_connection(true, false, false), NONE);
        assert_eq!(of_connection(true, false, true), TLS_BASIC);
        assert_eq!(of_connection(true, true, false), TLS_CLIENT_CERT);
        assert_eq!(of_connection(true, true, true), TLS_CLIENT_CERT);
        assert!(valid(0) && valid(3) && !valid(-1) && !valid(4));
    }
}
