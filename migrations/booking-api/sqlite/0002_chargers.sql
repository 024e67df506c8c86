-- The booking API's projection of what the central system reports over the bus (issue 11).
-- Times are epoch milliseconds; `*_at` from an event is its occurredAt.

-- Event ids already applied: delivery is at least once, so a redelivered event is refused
-- here, in the same transaction as its effect.
CREATE TABLE processed_events (
    event_id TEXT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);

-- Every charger the central system has reported.
CREATE TABLE chargers (
    central_station_id TEXT PRIMARY KEY,
    online BIGINT NOT NULL,
    -- occurredAt of the event that set `online`; an older online/offline event loses.
    online_changed_at BIGINT NOT NULL,
    ocpp_version TEXT,
    vendor TEXT,
    model TEXT,
    firmware_version TEXT,
    booted_at BIGINT,
    -- occurredAt of the newest event of any kind.
    last_seen_at BIGINT NOT NULL
);

-- Connectors a charger has reported a status for, keyed by the 1.6 connectorId or the 2.0.1
-- evseId (see chargers::projection::connector_key).
CREATE TABLE charger_connectors (
    central_station_id TEXT NOT NULL REFERENCES chargers (central_station_id),
    connector_key BIGINT NOT NULL,
    status TEXT NOT NULL,
    -- occurredAt of the status; an older status never overwrites a newer one.
    status_at BIGINT NOT NULL,
    -- When this projection wrote the row.
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (central_station_id, connector_key)
);
