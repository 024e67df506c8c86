-- Central system schema (SQLite flavour; keep in step with ../postgres/0001_init.sql).
-- Conventions: timestamps are BIGINT milliseconds since the Unix epoch (UTC); flags are BIGINT 0/1;
-- energy is BIGINT Wh; text enums hold the OCPP names. Both backends accept the same queries.

-- Registered chargers. password_hash is an argon2id PHC string (security profiles 1 and 2).
CREATE TABLE stations (
    id                  TEXT PRIMARY KEY,
    description         TEXT,
    password_hash       TEXT,
    registration_status TEXT NOT NULL DEFAULT 'Accepted',
    ocpp_version        TEXT,
    vendor              TEXT,
    model               TEXT,
    serial_number       TEXT,
    firmware_version    TEXT,
    iccid               TEXT,
    imsi                TEXT,
    meter_type          TEXT,
    meter_serial_number TEXT,
    online              BIGINT NOT NULL DEFAULT 0,
    last_boot_at        BIGINT,
    last_seen_at        BIGINT,
    connected_at        BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- Live status per EVSE/connector; 1.6 connector k is EVSE k connector 1, connector 0 is 0/0.
CREATE TABLE connectors (
    station_id   TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    evse_id      BIGINT NOT NULL,
    connector_id BIGINT NOT NULL,
    status       TEXT NOT NULL,
    error_code   TEXT,
    info         TEXT,
    status_at    BIGINT NOT NULL,
    PRIMARY KEY (station_id, evse_id, connector_id)
);

-- Id tokens the CSMS authorises. parent_id_token is the 1.6 parentIdTag / 2.0.1 groupIdToken.
CREATE TABLE id_tokens (
    id_token        TEXT PRIMARY KEY,
    token_type      TEXT NOT NULL DEFAULT 'ISO14443',
    status          TEXT NOT NULL,
    expires_at      BIGINT,
    parent_id_token TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Transactions of both versions. id is the CSMS id (the 1.6 transactionId);
-- station_tx_id is the 2.0.1 transactionId, or for 1.6 a replay key built from the start
-- message, so a resent start finds the existing row instead of creating another.
CREATE TABLE transactions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id       TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    station_tx_id    TEXT NOT NULL,
    evse_id          BIGINT NOT NULL,
    connector_id     BIGINT NOT NULL,
    id_token         TEXT,
    status           TEXT NOT NULL,
    charging_state   TEXT,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    meter_start_wh   BIGINT,
    meter_stop_wh    BIGINT,
    stop_reason      TEXT,
    reservation_id   BIGINT,
    last_seq_no      BIGINT,
    updated_at       BIGINT NOT NULL,
    UNIQUE (station_id, station_tx_id)
);
CREATE INDEX transactions_started ON transactions (started_at);
CREATE INDEX transactions_station_status ON transactions (station_id, status);

-- Meter readings, one row per sampled instant of an EVSE: the normalised sampled values are a
-- JSON array in `samples`, and the energy register (Energy.Active.Import.Register at the Outlet,
-- in Wh) is copied into `energy_wh` so energy per transaction is plain SQL. One row per instant
-- instead of one per sampled value keeps the hot insert path to a third of the index work.
-- The unique key makes replays idempotent: the same instant with the same set of measurands
-- (`sample_key`, a digest of measurand/phase/location) is stored once, whichever message reported it.
CREATE TABLE meter_values (
    id             INTEGER PRIMARY KEY,
    station_id     TEXT NOT NULL,
    transaction_id BIGINT,
    evse_id        BIGINT NOT NULL,
    connector_id   BIGINT NOT NULL,
    sampled_at     BIGINT NOT NULL,
    sample_key     TEXT NOT NULL,
    energy_wh      BIGINT,
    samples        TEXT NOT NULL,
    UNIQUE (station_id, evse_id, sampled_at, sample_key)
);
CREATE INDEX meter_values_tx ON meter_values (transaction_id, sampled_at) WHERE transaction_id IS NOT NULL;

-- Recent OCPP frames per station, pruned to a bounded number per station.
CREATE TABLE ocpp_frames (
    id         INTEGER PRIMARY KEY,
    station_id TEXT NOT NULL,
    logged_at  BIGINT NOT NULL,
    direction  TEXT NOT NULL,
    frame      TEXT NOT NULL
);
CREATE INDEX ocpp_frames_station ON ocpp_frames (station_id, id);

-- Messages stored as received and acknowledged (security events, firmware/log/diagnostics
-- status, NotifyEvent, reservation updates and the rest of the 2.0.1 catalogue).
CREATE TABLE station_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id  TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    action      TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX station_messages_station ON station_messages (station_id, action, id);

-- The 2.0.1 device model as reported by NotifyReport (one row per variable attribute).
CREATE TABLE device_variables (
    station_id         TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    component          TEXT NOT NULL,
    component_instance TEXT NOT NULL DEFAULT '',
    evse_id            BIGINT NOT NULL DEFAULT 0,
    connector_id       BIGINT NOT NULL DEFAULT 0,
    variable           TEXT NOT NULL,
    variable_instance  TEXT NOT NULL DEFAULT '',
    attribute_type     TEXT NOT NULL DEFAULT 'Actual',
    value              TEXT,
    mutability         TEXT,
    data_type          TEXT,
    unit               TEXT,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (station_id, component, component_instance, evse_id, connector_id, variable, variable_instance, attribute_type)
);

-- Reservations made through the CSMS (ReserveNow) and their reported fate.
CREATE TABLE reservations (
    station_id     TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    reservation_id BIGINT NOT NULL,
    evse_id        BIGINT NOT NULL,
    id_token       TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    status         TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (station_id, reservation_id)
);
