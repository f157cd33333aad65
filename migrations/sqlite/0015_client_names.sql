-- Listing clients by name prefix reads an index range, not every client.
CREATE INDEX clients_name ON clients (name);
