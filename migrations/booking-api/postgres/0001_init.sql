-- Booking API schema, PostgreSQL flavour (the SQLite file is the same schema with INTEGER
-- AUTOINCREMENT ids and REAL coordinates). Portable types only: timestamps are BIGINT milliseconds
-- since the Unix epoch (UTC), flags BIGINT 0/1, power in W and energy in Wh as BIGINT.

-- People of every role. Owners log in with their NIC, everyone else with their email.
-- status: active | inactive (owners deactivated) | pending | rejected (BackOffice applications).
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'backoffice', 'operator', 'owner')),
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'pending', 'rejected')),
    nic TEXT UNIQUE,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT,
    business_name TEXT,
    -- The BackOffice that employs an operator.
    backoffice_id BIGINT REFERENCES accounts (id),
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX accounts_role_status ON accounts (role, status, id);

-- Refresh tokens: only their SHA-256 is stored; each use rotates the token (the old row gets
-- revoked_at), and presenting a revoked one revokes every token of the account.
CREATE TABLE refresh_tokens (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);

-- Vehicles of an owner; connector_types is a comma-separated list of connector type names.
CREATE TABLE vehicles (
    id BIGSERIAL PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES accounts (id),
    make TEXT NOT NULL,
    model TEXT NOT NULL,
    plate TEXT NOT NULL,
    battery_wh BIGINT NOT NULL,
    connector_types TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (owner_id, plate)
);

-- Stations, owned by the BackOffice that created them and linked to the central system's
-- station id. schedule is JSON: {"weekly": [{day, open, close}], "exceptions": [{date, closed, intervals}]},
-- interpreted in the station's IANA time zone.
CREATE TABLE stations (
    id BIGSERIAL PRIMARY KEY,
    backoffice_id BIGINT NOT NULL REFERENCES accounts (id),
    central_station_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    latitude DOUBLE PRECISION NOT NULL,
    longitude DOUBLE PRECISION NOT NULL,
    time_zone TEXT NOT NULL,
    slot_minutes BIGINT NOT NULL,
    auto_approve BIGINT NOT NULL,
    tariff_ref TEXT,
    active BIGINT NOT NULL,
    schedule TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX stations_location ON stations (latitude, longitude);
CREATE INDEX stations_backoffice ON stations (backoffice_id);

-- Connectors (EVSEs) of a station as the central system knows them; the bookable ones make a
-- slot's capacity.
CREATE TABLE station_connectors (
    station_id BIGINT NOT NULL REFERENCES stations (id),
    connector_id BIGINT NOT NULL,
    connector_type TEXT NOT NULL,
    max_power_w BIGINT NOT NULL,
    bookable BIGINT NOT NULL,
    PRIMARY KEY (station_id, connector_id)
);

-- Which stations an operator may act on; its BackOffice changes the set.
CREATE TABLE operator_stations (
    operator_id BIGINT NOT NULL REFERENCES accounts (id),
    station_id BIGINT NOT NULL REFERENCES stations (id),
    PRIMARY KEY (operator_id, station_id)
);
CREATE INDEX operator_stations_station ON operator_stations (station_id);

-- Slot inventory over a rolling horizon. A booking reserves a unit with
-- `UPDATE slots SET booked = booked + 1 WHERE id = ? AND booked < capacity`; the CHECK makes the
-- database itself refuse an over-booked slot, whatever the application does.
CREATE TABLE slots (
    id BIGSERIAL PRIMARY KEY,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    booked BIGINT NOT NULL DEFAULT 0,
    UNIQUE (station_id, starts_at),
    CHECK (booked >= 0 AND booked <= capacity)
);

-- Bookings. starts_at/ends_at copy the slot's times so history survives inventory changes.
CREATE TABLE bookings (
    id BIGSERIAL PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES accounts (id),
    station_id BIGINT NOT NULL REFERENCES stations (id),
    slot_id BIGINT NOT NULL,
    vehicle_id BIGINT REFERENCES vehicles (id),
    status TEXT NOT NULL CHECK (status IN ('Pending', 'Approved', 'CheckedIn', 'Completed', 'Cancelled', 'Rejected', 'NoShow', 'Aborted')),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bookings_owner ON bookings (owner_id, id);
CREATE INDEX bookings_station ON bookings (station_id, starts_at);
CREATE INDEX bookings_status ON bookings (status, ends_at);

-- Stored responses of booking creations by Idempotency-Key, per account, kept until expires_at.
CREATE TABLE idempotency_keys (
    account_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Audit trail: one row per state change, written in the same transaction as the change.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_id BIGINT,
    actor_role TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE INDEX audit_events_time ON audit_events (created_at);

-- Notification outbox: queued in the transaction of the change, delivered by the dispatcher
-- through the configured adapter, sent_at set once delivered. A dispatcher leases a batch
-- (leased_until, attempts + 1) before delivering it, so replicas do not send the same
-- notification twice; a crashed dispatcher's lease runs out and the batch is retried.
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient_id BIGINT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    leased_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_recipient ON notifications (recipient_id, id);
CREATE INDEX notifications_unsent ON notifications (sent_at, id);
