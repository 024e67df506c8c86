-- Station certificates (OCPP 2.0.1 A02/A03 and M; 1.6 security whitepaper); keep in step with
-- the other backend's 0007.
--
-- `station_certificates`: every certificate the station CA signed in answer to a
-- SignCertificate. `status`: Issued (signed, CertificateSigned not yet answered), Installed
-- (the station answered Accepted), Rejected (it answered Rejected), Undelivered (no answer:
-- offline, timeout, CALLERROR). Renewal looks at the latest Installed one per station.
-- `serial` is upper-case hex; times are UTC milliseconds like everywhere else.
CREATE TABLE station_certificates (
    id               BIGSERIAL PRIMARY KEY,
    station_id       TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    serial           TEXT NOT NULL UNIQUE,
    certificate_type TEXT NOT NULL,
    status           TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    issued_at        BIGINT NOT NULL,
    certificate_pem  TEXT NOT NULL
);
CREATE INDEX station_certificates_station ON station_certificates (station_id, not_after);

-- Security events: those the CSMS detects (a refused CSR, source 'csms') and those stations
-- report with SecurityEventNotification (source 'station'). Kept without a foreign key so an
-- event about an id that was deleted (or never registered) is not lost. `occurred_at` is when
-- it happened (a station's own timestamp for its events), `recorded_at` when it was stored: the
-- retention (--message-retention-days) counts from the latter, which a station cannot forge.
CREATE TABLE security_events (
    id          BIGSERIAL PRIMARY KEY,
    station_id  TEXT NOT NULL,
    source      TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    detail      TEXT,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX security_events_station ON security_events (station_id, id);
CREATE INDEX security_events_recorded ON security_events (recorded_at);
