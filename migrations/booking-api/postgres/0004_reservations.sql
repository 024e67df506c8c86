-- Bookings on the charger (issue 11, section 3): the booking's id token pushed to the central
-- system, and a ReserveNow at the lead time. The state is durable so a restarted replica picks
-- up where the last one stopped; replicas claim work with a conditional UPDATE of a lease
-- (*_due_at), so two never send the same command. Times are epoch milliseconds.
--
-- token_push: what the central system must be told next: 'grant' (AuthorizeToken with the
--   booking's window) or 'revoke' (RevokeToken); NULL when it knows what it should.
-- token_rev: bumped by every change that sets token_push, so a push answered after the booking
--   changed again cannot mark the newer push done.
-- token_due_at: the push is due at or after this instant (retry time, or the lease of the
--   replica sending it); NULL: now.
ALTER TABLE bookings ADD COLUMN token_push TEXT;
ALTER TABLE bookings ADD COLUMN token_rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN token_due_at BIGINT;
-- reservation_state: where the charger-side reservation stands. NULL: none yet (ReserveNow is
--   due from the lead time before the slot); 'Reserving': a ReserveNow in flight; 'Reserved':
--   the charger accepted; 'Refused': it answered Occupied, Faulted, Unavailable, Rejected or an
--   error (not retried; an alert was raised); 'Cancel': CancelReservation due; 'Cancelled';
--   'Ended': the charger reported it Expired or Removed.
-- reservation_status: the charger's last word on it (Accepted, Occupied, ..., Offline, Timeout,
--   Expired, Removed, Cancelled), shown as the booking's reservationStatus.
-- reservation_note: why, in words, when it did not go as planned (reservationNote).
-- reservation_due_at: as token_due_at, for the reservation's commands.
ALTER TABLE bookings ADD COLUMN reservation_state TEXT;
ALTER TABLE bookings ADD COLUMN reservation_status TEXT;
ALTER TABLE bookings ADD COLUMN reservation_note TEXT;
ALTER TABLE bookings ADD COLUMN reservation_due_at BIGINT;
CREATE INDEX bookings_token_push ON bookings (token_push, token_due_at);
CREATE INDEX bookings_reservation_work ON bookings (status, reservation_state, starts_at);

-- Operator alerts: a charger refused or could not be reached for a booking. One alert per
-- booking and code, so a retried failure does not raise it again.
CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    booking_id BIGINT REFERENCES bookings (id),
    -- RESERVATION_REFUSED, RESERVATION_UNREACHABLE, TOKEN_REFUSED
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX alerts_booking_code ON alerts (booking_id, code);
CREATE INDEX alerts_station ON alerts (station_id, id);
