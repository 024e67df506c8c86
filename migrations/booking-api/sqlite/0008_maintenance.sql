-- Maintenance windows (issue 13, staff and maintenance): a whole station (connector_id NULL) or
-- one of its connectors out of service from starts_at to ends_at (epoch ms, UTC).
--
-- Inventory: while a window is not cancelled, the slots it overlaps lose the units it blocks
-- (every bookable connector for a station window, the one connector otherwise); slots.capacity
-- holds the effective figure, so the conditional UPDATE that books a slot refuses them in the
-- database (maintenance::store::blocked_units is the one expression).
--
-- Charger: at starts_at the charger's connector(s) go Inoperative (ChangeAvailability), at
-- ends_at Operative again. The background rounds keep the state here, so a restarted replica
-- carries on: *_applied_at once the charger accepted, attempts and last_error of the tries,
-- due_at a claim's lease or the next retry (NULL: due now).
--
-- Ending a window early sets ends_at to that instant (ended_early_at records it); cancelling one
-- before it started sets cancelled_at and frees its slots.
CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    connector_id BIGINT,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_by BIGINT REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    ended_early_at BIGINT,
    inoperative_applied_at BIGINT,
    operative_applied_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    due_at BIGINT,
    CHECK (ends_at > starts_at)
);

CREATE INDEX maintenance_windows_station ON maintenance_windows (station_id, ends_at);
-- The rounds look for windows whose charger side is not done.
CREATE INDEX maintenance_windows_pending ON maintenance_windows (starts_at)
    WHERE operative_applied_at IS NULL AND cancelled_at IS NULL;
