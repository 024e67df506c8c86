-- Invoices (issue 12): one per completed, priced charging session, issued by the BackOffice that
-- owns the station and numbered without gaps per BackOffice and kind (the number is taken from
-- invoice_series in the transaction that inserts the invoice, so a rollback returns it).
-- Issued documents are immutable: a correction is a credit note (kind 'credit_note', numbered in
-- its own series) that cancels the invoice in full, and, when the session changed, a new
-- invoice. The triggers refuse UPDATE and DELETE, whatever the application does.
-- Amounts are integer minor units of `currency`; times are epoch milliseconds.
CREATE TABLE invoice_series (
    backoffice_id BIGINT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    last_number BIGINT NOT NULL,
    PRIMARY KEY (backoffice_id, kind)
);

CREATE TABLE invoices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backoffice_id BIGINT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    number BIGINT NOT NULL,
    session_id BIGINT REFERENCES charging_sessions (id),
    station_id BIGINT REFERENCES stations (id),
    -- The EV owner of the session's booking; NULL for an ad-hoc session (a walk-in's token).
    owner_id BIGINT REFERENCES accounts (id),
    -- A credit note: the invoice it cancels, and why.
    credits_invoice_id BIGINT REFERENCES invoices (id),
    reason TEXT,
    currency TEXT NOT NULL,
    total_excl_vat BIGINT NOT NULL,
    total_vat BIGINT NOT NULL,
    total_incl_vat BIGINT NOT NULL,
    tariff_id BIGINT,
    tariff_version BIGINT,
    -- The document as issued (seller, buyer, station, session, lines, VAT per rate), JSON.
    body TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (backoffice_id, kind, number)
);
CREATE UNIQUE INDEX invoices_credited_once ON invoices (credits_invoice_id) WHERE credits_invoice_id IS NOT NULL;
CREATE INDEX invoices_session ON invoices (session_id, id);
CREATE INDEX invoices_owner ON invoices (owner_id, id);
CREATE INDEX invoices_backoffice ON invoices (backoffice_id, id);

CREATE TRIGGER invoices_immutable BEFORE UPDATE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices are immutable: issue a credit note');
END;
CREATE TRIGGER invoices_kept BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices are never deleted');
END;

-- A session's revision counts its saved changes; billed_revision is the one billing last
-- priced. A completed session is (re)considered while billed_revision is NULL or older (a
-- late correction of the end re-bills it). A counter, not a time: two changes within one
-- millisecond must not look like one.
ALTER TABLE charging_sessions ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE charging_sessions ADD COLUMN billed_revision BIGINT;
CREATE INDEX charging_sessions_unbilled ON charging_sessions (status, billed_revision);
