-- Password rotation (OCPP 2.0.1 A01) and the security-profile floor (A05); keep in step with the
-- other backend's 0005.
--
-- `pending_password_hash`: the argon2id hash of a password the station accepted through
-- SetVariables BasicAuthPassword (1.6: ChangeConfiguration AuthorizationKey). Until the station
-- first connects with it, both it and `password_hash` are valid; that connection moves it into
-- `password_hash` and so drops the old one (A01: the old one stays valid until then).
-- `security_profile`: the profile of the last accepted connection (0 none, 1 ws + Basic,
-- 2 wss + Basic, 3 wss + client certificate). `security_profile_floor`: the highest profile
-- seen or set by an admin; a connection below it is refused (A05: no downgrade by a connection).
ALTER TABLE stations ADD COLUMN pending_password_hash TEXT;
ALTER TABLE stations ADD COLUMN security_profile BIGINT;
ALTER TABLE stations ADD COLUMN security_profile_floor BIGINT NOT NULL DEFAULT 0;
