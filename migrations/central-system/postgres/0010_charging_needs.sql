-- ISO 15118 charging needs and the profiles computed from them (OCPP 2.0.1 K15-K17); keep in
-- step with the other backend's 0010.
--
-- `ev_charging_needs`: every NotifyEVChargingNeeds, with the answer given (`status` Accepted or
-- Rejected, `reason` the statusInfo reasonCode). `payload` is the request as received: a
-- renegotiation (K16, or after an EV schedule that did not fit) recomputes from it.
-- `transaction_id` is the CSMS transaction on the EVSE (NULL when there was none: Rejected).
-- Powers in W (BIGINT like every quantity here; `ev_max_w` NULL when the EV gave no limit),
-- energy in Wh, times in UTC milliseconds. `operator_limit_w`: the cap of the latest K16
-- renegotiation by the operator, kept for later recomputations of the same needs.
-- `renegotiations`: automatic renegotiations after a rejected EV schedule (bounded, so a
-- station whose EV never fits cannot make the CSMS loop).
CREATE TABLE ev_charging_needs (
    id                BIGSERIAL PRIMARY KEY,
    station_id        TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
    evse_id           BIGINT NOT NULL,
    transaction_id    BIGINT,
    energy_transfer   TEXT NOT NULL,
    departure_at      BIGINT,
    energy_amount_wh  BIGINT,
    ev_min_w          BIGINT NOT NULL,
    ev_max_w          BIGINT,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    reason            TEXT,
    operator_limit_w  BIGINT,
    renegotiations    BIGINT NOT NULL DEFAULT 0,
    received_at       BIGINT NOT NULL
);
CREATE INDEX ev_charging_needs_station ON ev_charging_needs (station_id, id);

-- Every TxProfile the CSMS sent for some needs: `request` is the SetChargingProfile payload,
-- `cause` why it was sent (`needs`, `operator` for a K16 renegotiation, `ev-schedule` after
-- a rejected EV schedule), `status` the station's answer (Pending until it answers, then
-- Accepted, Rejected, CallError, or Undelivered when offline or silent). The EV's schedule
-- (NotifyEVChargingSchedule) checked against it is stored on the same row with the verdict.
CREATE TABLE ev_charging_profiles (
    id                  BIGSERIAL PRIMARY KEY,
    needs_id            BIGINT NOT NULL REFERENCES ev_charging_needs(id) ON DELETE CASCADE,
    station_id          TEXT NOT NULL,
    evse_id             BIGINT NOT NULL,
    transaction_id      BIGINT NOT NULL,
    cause               TEXT NOT NULL,
    request             TEXT NOT NULL,
    status              TEXT NOT NULL,
    ev_schedule         TEXT,
    ev_schedule_status  TEXT,
    ev_schedule_detail  TEXT,
    ev_schedule_at      BIGINT,
    created_at          BIGINT NOT NULL
);
CREATE INDEX ev_charging_profiles_needs ON ev_charging_profiles (needs_id, id);
CREATE INDEX ev_charging_profiles_transaction ON ev_charging_profiles (transaction_id, id);

-- The ChargingStationMaxProfile the operator set on a station (SetChargingProfile through the
-- API, answered Accepted), one per station, forgotten when a ClearChargingProfile that covers
-- it is Accepted. Computed TxProfiles stay within it.
CREATE TABLE station_max_profiles (
    station_id  TEXT PRIMARY KEY REFERENCES stations(id) ON DELETE CASCADE,
    profile_id  BIGINT NOT NULL,
    profile     TEXT NOT NULL,
    set_at      BIGINT NOT NULL
);
