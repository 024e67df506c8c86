-- QR check-in tokens (issue 11, section 4). The raw token is an HMAC-SHA256-signed string
-- handed to the booking's owner; only its SHA-256 (hex) is stored, so a copy of this table
-- cannot be used to check in. A token is single use: used_at is set, in the check-in's
-- transaction, by a conditional update that only one scan can win.
-- key_id: the signing key's id (kid), kept for audits of key rotation.
-- used_by: the account that scanned it (an operator, or the owner at the connector).
CREATE TABLE checkin_tokens (
    token_hash TEXT PRIMARY KEY,
    booking_id BIGINT NOT NULL REFERENCES bookings (id),
    key_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by BIGINT
);
CREATE INDEX checkin_tokens_booking ON checkin_tokens (booking_id);
