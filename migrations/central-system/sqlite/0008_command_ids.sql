-- Counters for the ids the central system chooses for the commands it sends: the 2.0.1
-- remoteStartId (echoed back in TransactionEvent) and reservation ids, when the operator does
-- not give one. Ids come from here, never from the clock, so two commands in the same
-- millisecond or on two nodes cannot get the same id. One row per kind; allocation is
-- `UPDATE ... SET last_id = last_id + 1 ... RETURNING last_id`, which the row lock serialises.
CREATE TABLE command_ids (
    kind    TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
INSERT INTO command_ids (kind, last_id) VALUES ('remote_start', 0), ('reservation', 0);
