-- PostgreSQL twin of migrations/sqlite. Flags are BIGINT 0/1 so both backends share every query.
-- Every write bumps this in the same transaction; servers watch it to know
-- when to rebuild their in-memory registry.
CREATE TABLE revision (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    public        BIGINT NOT NULL,
    scopes        TEXT NOT NULL,     -- space-delimited, may hold trailing-* patterns
    default_scope TEXT,              -- space-delimited; NULL when none was set
    lifetime      BIGINT,           -- seconds; NULL defers to the API or server
    grant_types   TEXT NOT NULL,     -- space-delimited
    enabled       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Only HMAC-SHA-256 of each secret is kept.
CREATE TABLE client_secrets (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    hash         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);

CREATE TABLE apis (
    identifier   TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    lifetime     BIGINT,
    max_lifetime BIGINT,
    algorithm    TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE grants (
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    api        TEXT NOT NULL REFERENCES apis (identifier) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, api)
);

-- Private keys are PKCS#8, sealed with AES-256-GCM under the master key.
CREATE TABLE keys (
    kid           TEXT PRIMARY KEY,
    algorithm     TEXT NOT NULL,
    private_key   BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,           -- no longer signs from then on
    publish_until BIGINT            -- dropped from the JWKS after this
);
