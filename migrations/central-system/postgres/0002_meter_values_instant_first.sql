-- The replay key now starts with the instant. Live readings carry the current time, so new
-- keys land at the right edge of the index and a batch from 10,000 stations dirties a handful
-- of index pages instead of one page per station.
ALTER TABLE meter_values DROP CONSTRAINT meter_values_station_id_evse_id_sampled_at_sample_key_key;
ALTER TABLE meter_values ADD CONSTRAINT meter_values_replay_key UNIQUE (sampled_at, station_id, evse_id, sample_key);
