//! File descriptors in the one process: chargers keep theirs when the booking API is flooded.
//!
//! Both listeners take a connection permit before `accept`, so each service holds at most its
//! `max_connections` sockets; connections beyond wait in the kernel's backlog, costing this
//! process nothing. What remains is making both limits fit the open-file limit together: when
//! they do not, the booking API gets at most an eighth of the descriptors and the central
//! system (chargers and the operator API) the rest, after a reserve for database files, logs
//! and outgoing connections. Without this, 1,050 silent booking connections used up the
//! default 1,024 descriptors and the OCPP listener stopped accepting chargers.

/// Descriptors kept for everything but client connections.
const RESERVED: u64 = 256;

/// The connection limits `(central, booking)` that fit in `open_files` descriptors.
pub fn share(open_files: u64, central: usize, booking: usize) -> (usize, usize) {
    let available = usize::try_from(open_files.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    if central.saturating_add(booking) <= available {
        return (central, booking);
    }
    let booking = booking.min(available / 8).max(1);
    let central = central.min(available.saturating_sub(booking)).max(1);
    (central, booking)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn limits_that_fit_are_kept() {
        assert_eq!(share(100_000, 20_000, 1_024), (20_000, 1_024));
    }

    #[test]
    fn chargers_keep_most_descriptors_when_both_do_not_fit() {
        // The default limits on a 20,000-descriptor process.
        assert_eq!(share(20_000, 20_000, 1_024), (18_720, 1_024));
        // A default soft limit of 1,024 that could not be raised.
        let (central, booking) = share(1_024, 20_000, 1_024);
        assert_eq!((central, booking), (672, 96));
        assert!(central as u64 + booking as u64 + 256 <= 1_024);
    }
}
