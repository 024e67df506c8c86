-- Storage quotas for the frame log and the stored charger messages.
-- size: bytes stored (the budgets add these up instead of measuring text on every prune);
-- original_size: the size as received when the stored text was cut to the size limit, NULL
-- when it is whole.
ALTER TABLE ocpp_frames ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ocpp_frames ADD COLUMN original_size BIGINT;
UPDATE ocpp_frames SET size = length(CAST(frame AS BLOB));

ALTER TABLE station_messages ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE station_messages ADD COLUMN original_size BIGINT;
UPDATE station_messages SET size = length(CAST(payload AS BLOB));
-- Retention deletes by age across all stations.
CREATE INDEX station_messages_received ON station_messages (received_at);
-- Budgets add up sizes per station: with size in the index they never read the text.
DROP INDEX ocpp_frames_station;
CREATE INDEX ocpp_frames_station ON ocpp_frames (station_id, id, size);
CREATE INDEX station_messages_size ON station_messages (station_id, id, size);
