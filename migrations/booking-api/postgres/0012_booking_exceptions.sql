-- A booking closed by an exception (NoShow, Aborted, CancelOnSite) keeps which one and why:
-- staff give the reason, the no-show sweeper writes its own.
ALTER TABLE bookings ADD COLUMN exception TEXT;
ALTER TABLE bookings ADD COLUMN exception_reason TEXT;
