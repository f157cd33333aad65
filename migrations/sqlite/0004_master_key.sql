-- A value derived from the master key under its own label, written at first
-- use: a process holding another master key is refused before it writes
-- anything that nobody could use.
CREATE TABLE master_key (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    verifier BLOB NOT NULL
);
