-- Alerts get a lifecycle (issue 13): Open, then Acknowledged, then Resolved (an Open alert may
-- be resolved directly); each step records who and when, and is audited.
-- Charger troubles (a Faulted connector, a fault or security event, a long disconnection) raise
-- alerts without a booking; dedup_key keeps one unresolved alert per station, cause and
-- connector or kind, and a resolved one frees the key for the next report.
ALTER TABLE alerts ADD COLUMN status TEXT NOT NULL DEFAULT 'Open' CHECK (status IN ('Open', 'Acknowledged', 'Resolved'));
ALTER TABLE alerts ADD COLUMN connector_id BIGINT;
ALTER TABLE alerts ADD COLUMN dedup_key TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_at BIGINT;
ALTER TABLE alerts ADD COLUMN acknowledged_by BIGINT REFERENCES accounts (id);
ALTER TABLE alerts ADD COLUMN resolved_at BIGINT;
ALTER TABLE alerts ADD COLUMN resolved_by BIGINT REFERENCES accounts (id);
ALTER TABLE alerts ADD COLUMN resolution_note TEXT;
CREATE UNIQUE INDEX alerts_unresolved_key ON alerts (dedup_key) WHERE dedup_key IS NOT NULL AND status <> 'Resolved';
CREATE INDEX alerts_status ON alerts (status, id);
