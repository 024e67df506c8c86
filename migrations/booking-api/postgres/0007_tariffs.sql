-- Tariffs (issue 12): OCPI 2.2.1 tariff objects, versioned and assigned to stations.
-- Times are epoch milliseconds (UTC). Prices live inside the OCPI JSON as exact decimals; the
-- money the engine computes from them is served as integer minor units plus an ISO 4217 code.

-- A tariff: a named series of versions, owned by a BackOffice (NULL: an admin's tariff, which
-- any station may use).
CREATE TABLE tariffs (
    id BIGSERIAL PRIMARY KEY,
    backoffice_id BIGINT REFERENCES accounts (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by BIGINT REFERENCES accounts (id)
);
CREATE INDEX tariffs_backoffice ON tariffs (backoffice_id, id);

-- The versions of a tariff. Append-only: a change is a new version, never an update, so a
-- session is always priced (and re-priced) with the version in force at its start: the one
-- with the greatest valid_from at or before that start. Versions are numbered 1, 2, ... per
-- tariff and take effect in that order (valid_from strictly increases, enforced by the API;
-- the unique keys make two writers racing for the same number fail instead of both winning).
CREATE TABLE tariff_versions (
    tariff_id BIGINT NOT NULL REFERENCES tariffs (id),
    version BIGINT NOT NULL,
    valid_from BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- The OCPI Tariff object as validated (billing::tariff::ValidTariff).
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by BIGINT REFERENCES accounts (id),
    PRIMARY KEY (tariff_id, version),
    UNIQUE (tariff_id, valid_from)
);

-- Which tariff a station uses from when on, optionally for one connector type only ('' means
-- every connector type; a type-specific row wins over ''). Also append-only: the assignment in
-- force at a session's start is the one with the greatest valid_from at or before it.
CREATE TABLE station_tariffs (
    id BIGSERIAL PRIMARY KEY,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    connector_type TEXT NOT NULL DEFAULT '',
    tariff_id BIGINT NOT NULL REFERENCES tariffs (id),
    valid_from BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by BIGINT REFERENCES accounts (id),
    UNIQUE (station_id, connector_type, valid_from)
);
