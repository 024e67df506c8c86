//! Booking API: accounts, stations, slots and bookings. Built in its own issue.
