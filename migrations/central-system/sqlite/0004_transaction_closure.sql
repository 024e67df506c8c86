-- Transactions the central system closes itself, and starts it refused (keep in step with the
-- other backend's 0004).
--
-- `status` gains `Refused`: a start whose token was not Accepted. It never counts as the token's
-- ongoing transaction, and the station's stop still completes it (the status stays `Refused`).
-- `end_reason` says who ended the transaction when it was not the station: `Abandoned` (the
-- station started another on the same EVSE, or rebooted and reported none) or `Operator` (ended
-- through the REST API); for a `Refused` row it holds the token status answered (`Invalid`,
-- `ConcurrentTx`, ...). `end_note` is the human-readable why. `closed_at` is when the central
-- system closed it; `last_heard_at` the last time the station reported on it (its last event or
-- reading), which is also the `ended_at` such a close records.
ALTER TABLE transactions ADD COLUMN end_reason TEXT;
ALTER TABLE transactions ADD COLUMN end_note TEXT;
ALTER TABLE transactions ADD COLUMN closed_at BIGINT;
ALTER TABLE transactions ADD COLUMN last_heard_at BIGINT;
-- ConcurrentTx looks up the token's Active transaction on every start: without this index
-- that is a scan of every transaction ever stored.
CREATE INDEX transactions_active_token ON transactions (id_token) WHERE status = 'Active';
