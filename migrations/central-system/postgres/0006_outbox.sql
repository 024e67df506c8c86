-- The event outbox (issue 11 §2); keep in step with the other backend's 0006.
--
-- Every state change the bus contract has an event for writes its `evcs_bus::EventEnvelope`
-- here in the same database transaction as the change, so an event is never lost and never
-- published for a change that rolled back. The publisher task sends unsent rows in `id` order
-- and sets `sent_at` once the bus acknowledged them; sent rows are pruned after a retention.
--
-- `id`: the order of writing (per station, writes are sequential, so it is the station's order).
-- `event_id`: the envelope's UUID as text (36 characters; text binds the same way on both
-- backends), unique so consumers can deduplicate on it and a retried write cannot add it twice.
-- `kind`: `Event::kind()`, for operators reading the table. `envelope`: the JSON as published.
-- Times are BIGINT milliseconds UTC, as everywhere in this database.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE CHECK (length(event_id) = 36),
    station_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);

-- The publisher's scan: unsent rows in order. Partial, so it stays as small as the backlog.
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
-- The pruning scan: sent rows by age.
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
