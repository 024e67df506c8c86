-- Every connector status and every charger online/offline change the central system reported,
-- kept in the order they occurred, for reports (charger availability, actual occupancy).
-- connector_key 0 is the charger itself, its status 'Online' or 'Offline'. Rows are only ever
-- inserted: a late event is history too (reports sort by at).
CREATE TABLE status_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    central_station_id TEXT NOT NULL,
    connector_key BIGINT NOT NULL,
    status TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX status_history_by_charger ON status_history (central_station_id, at);
-- The last status of one connector before a report's range.
CREATE INDEX status_history_by_connector ON status_history (central_station_id, connector_key, at);

-- Reports read sessions by start and invoices by issue, per station.
CREATE INDEX charging_sessions_station_start ON charging_sessions (station_id, started_at);
CREATE INDEX invoices_station_issued ON invoices (station_id, issued_at);

-- Availability and occupancy of one station's bookable connectors on one complete local day,
-- computed from the history once and reused by reports. Valid for the time zone and connector
-- set it was computed with; a late status change deletes its day and every later one.
CREATE TABLE status_days (
    station_id BIGINT NOT NULL REFERENCES stations (id),
    day TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    connectors TEXT NOT NULL,
    observed_ms BIGINT NOT NULL,
    available_ms BIGINT NOT NULL,
    occupied_ms BIGINT NOT NULL,
    PRIMARY KEY (station_id, day)
);

-- Reports count bookings per station, start and status without visiting the table.
CREATE INDEX bookings_reports ON bookings (station_id, starts_at, status, exception);
