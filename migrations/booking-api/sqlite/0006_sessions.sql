-- Charging sessions (issue 11 §5): one per charger transaction at a linked station, tied to the
-- booking whose id token (or remote-start id) the charger reported, or ad hoc (booking_id NULL).
-- Times are epoch milliseconds. Energy is Wh, power W, current A, SoC percent.
-- Events may arrive late, out of order or twice (a charger that was offline delivers its queue
-- later): the row is reconciled from whatever arrived (sessions::reconcile), so a transaction
-- that ended before its start arrived still yields one correct row.
CREATE TABLE charging_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The central system's station id and transaction id (unique together).
    central_station_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    -- The booking station linked to that charger, and its connectorId (1.6 connectorId, 2.0.1
    -- evseId); NULL while unknown.
    station_id BIGINT REFERENCES stations (id),
    connector_id BIGINT,
    booking_id BIGINT REFERENCES bookings (id),
    id_token TEXT,
    remote_start_id BIGINT,
    -- Active | Completed.
    status TEXT NOT NULL CHECK (status IN ('Active', 'Completed')),
    -- occurredAt of transactionStarted; NULL until it arrived.
    started_at BIGINT,
    meter_start_wh BIGINT,
    -- The lowest and the newest energy register (Wh) the meter summaries reported, and the
    -- measurement time of the newest summary applied: an older summary never overwrites it.
    first_register_wh BIGINT,
    register_wh BIGINT,
    summary_at BIGINT,
    power_w REAL,
    soc_percent REAL,
    current_a REAL,
    -- The end: the charger's transactionEnded (ended_by 'charger') or an operator's finalize
    -- ('operator'), which the charger's own end, arriving later, corrects.
    ended_at BIGINT,
    meter_stop_wh BIGINT,
    stop_reason TEXT,
    ended_by TEXT CHECK (ended_by IN ('charger', 'operator')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (central_station_id, transaction_id)
);
CREATE INDEX charging_sessions_booking ON charging_sessions (booking_id);
CREATE INDEX charging_sessions_station ON charging_sessions (station_id, id);
