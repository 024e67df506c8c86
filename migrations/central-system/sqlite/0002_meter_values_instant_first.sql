-- The replay key now starts with the instant. Live readings carry the current time, so new
-- keys land at the right edge of the index and a batch from 10,000 stations dirties a handful
-- of index pages instead of one page per station (which the WAL then writes out in full).
-- SQLite cannot change a table's UNIQUE constraint in place, so the table is rebuilt.
CREATE TABLE meter_values_rebuilt (
    id             INTEGER PRIMARY KEY,
    station_id     TEXT NOT NULL,
    transaction_id BIGINT,
    evse_id        BIGINT NOT NULL,
    connector_id   BIGINT NOT NULL,
    sampled_at     BIGINT NOT NULL,
    sample_key     TEXT NOT NULL,
    energy_wh      BIGINT,
    samples        TEXT NOT NULL,
    UNIQUE (sampled_at, station_id, evse_id, sample_key)
);
INSERT INTO meter_values_rebuilt (id, station_id, transaction_id, evse_id, connector_id, sampled_at, sample_key, energy_wh, samples)
    SELECT id, station_id, transaction_id, evse_id, connector_id, sampled_at, sample_key, energy_wh, samples FROM meter_values;
DROP TABLE meter_values;
ALTER TABLE meter_values_rebuilt RENAME TO meter_values;
CREATE INDEX meter_values_tx ON meter_values (transaction_id, sampled_at) WHERE transaction_id IS NOT NULL;
