-- Clients are listed in the order they were registered: SQLite's rowid
-- gives it (PostgreSQL gets a sequence column in its migration 0007).
SELECT 1;
