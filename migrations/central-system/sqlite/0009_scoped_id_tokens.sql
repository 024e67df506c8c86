-- Station-scoped, time-windowed id tokens (issue 11): the booking API pushes each approved
-- booking's token with the bus command AuthorizeToken and withdraws it with RevokeToken.
-- station_id: the only station the token is valid at; NULL (every token the operator
--   registers) means anywhere.
-- valid_from: the token is refused before this instant (ms since the epoch); NULL means at
--   once. With a station scope, expires_at is the end of the window.
-- Outside its station a scoped token is refused NotAtThisLocation, outside its window
-- NotAtThisTime (1.6 chargers, which know neither status, are told Invalid).
ALTER TABLE id_tokens ADD COLUMN station_id TEXT;
ALTER TABLE id_tokens ADD COLUMN valid_from BIGINT;
