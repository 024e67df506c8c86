-- What a booking needs to reach a charger (issue 11).
-- id_token: the driver's id token for this booking (1.6 idTag, 2.0.1 idToken of type
--   Central), unique, pushed to the central system on approval, sent with ReserveNow and
--   RemoteStart, and the key that ties a charger's transaction back to the booking.
-- connector_id: the station connector (station_connectors.connector_id) assigned to the
--   booking; NULL until one is assigned.
-- remote_start_id: the remote-start id of the check-in's RemoteStart, when one was sent.
ALTER TABLE bookings ADD COLUMN id_token TEXT;
ALTER TABLE bookings ADD COLUMN connector_id BIGINT;
ALTER TABLE bookings ADD COLUMN remote_start_id BIGINT;
CREATE UNIQUE INDEX bookings_id_token ON bookings (id_token);
CREATE INDEX bookings_connector ON bookings (station_id, connector_id, starts_at);
