-- The order clients were registered in, for listing by a cursor that no
-- later registration can sort before (SQLite's rowid does the same there).
ALTER TABLE clients ADD COLUMN seq BIGSERIAL;
CREATE UNIQUE INDEX clients_seq ON clients (seq);
