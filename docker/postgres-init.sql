-- One PostgreSQL server, one database per service: the central system uses the image's
-- default database (evcs); the booking API gets its own.
CREATE DATABASE booking OWNER evcs;
