-- Token format per client and per API ('jwt' or 'opaque'; NULL: inherit).
ALTER TABLE clients ADD COLUMN token_format TEXT;
ALTER TABLE apis ADD COLUMN token_format TEXT;

-- Key lifecycle: NULL activated_at is a *next* key (published, not signing).
ALTER TABLE keys ADD COLUMN activated_at INTEGER;
UPDATE keys SET activated_at = created_at;

-- Opaque access tokens. A token is a public selector (`id`, time-ordered, so
-- inserts append to the B-tree instead of dirtying random pages) and a
-- secret part; only an HMAC-SHA-256 of the whole token is kept.
CREATE TABLE tokens (
    id         BLOB PRIMARY KEY,
    hash       BLOB NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    audience   TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX tokens_expires ON tokens (expires_at);

-- Revoked JWTs, by jti, until they would have expired anyway.
CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_jtis_expires ON revoked_jtis (expires_at);
