-- Every write bumps this in the same transaction; servers watch it to know
-- when to rebuild their in-memory registry.
CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    public        INTEGER NOT NULL,
    scopes        TEXT NOT NULL,     -- space-delimited, may hold trailing-* patterns
    default_scope TEXT,              -- space-delimited; NULL when none was set
    lifetime      INTEGER,           -- seconds; NULL defers to the API or server
    grant_types   TEXT NOT NULL,     -- space-delimited
    enabled       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Only HMAC-SHA-256 of each secret is kept.
CREATE TABLE client_secrets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id    TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    hash         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);

CREATE TABLE apis (
    identifier   TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    lifetime     INTEGER,
    max_lifetime INTEGER,
    algorithm    TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE grants (
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    api        TEXT NOT NULL REFERENCES apis (identifier) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, api)
);

-- Private keys are PKCS#8, sealed with AES-256-GCM under the master key.
CREATE TABLE keys (
    kid           TEXT PRIMARY KEY,
    algorithm     TEXT NOT NULL,
    private_key   BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,           -- no longer signs from then on
    publish_until INTEGER            -- dropped from the JWKS after this
);
