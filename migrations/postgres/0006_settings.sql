-- Facts every process on the database needs, whatever its own configuration:
-- `longest_token_lifetime`, the longest server default token lifetime any
-- process opened the database with, so a key rotation from anywhere keeps
-- the retiring key published for at least that long.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
