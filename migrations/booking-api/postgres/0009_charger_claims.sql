-- An Admin approves a BackOffice's claim of a charger (issue 11 §3): linking a station to a
-- central-system station id only claims it. Until an Admin approves the claim the station takes
-- no bookings and owners do not see it, so a BackOffice cannot take over a charger it does not
-- own by naming its id.
-- claim_status: Pending (new stations), Approved or Rejected. Stations created before this
--   migration had been linked under the older rule and stay in service: Approved.
-- claim_decided_by / claim_decided_at / claim_note: the Admin's decision (also audited).
ALTER TABLE stations ADD COLUMN claim_status TEXT NOT NULL DEFAULT 'Approved';
ALTER TABLE stations ADD COLUMN claim_decided_by BIGINT;
ALTER TABLE stations ADD COLUMN claim_decided_at BIGINT;
ALTER TABLE stations ADD COLUMN claim_note TEXT;
CREATE INDEX stations_claim_status ON stations (claim_status);
