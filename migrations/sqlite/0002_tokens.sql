-- Token format per client and per API ('jwt' or 'opaque'; NULL: inherit).
ALTER TABLE clients ADD COLUMN token_format TEXT;
ALTER TABLE apis ADD COLUMN token_format TEXT;

-- Key lifecycle: NULL activated_at is a *next* key (published, not signing).
ALTER TABLE keys ADD COLUMN activated_at INTEGER;
UPDATE keys SET activated_at = created_at;

-- Opaque access tokens, by HMAC-SHA-256 of the token; the token itself is never stored.
CREATE TABLE tokens (
    hash       BLOB PRIMARY KEY,
    jti        TEXT NOT NULL,
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
