-- The web console's one-time sign-in links and its sessions. Both are
-- bearer values, so only their HMAC under the master key's secret key is
-- kept: a copy of the database signs no one in.
CREATE TABLE console_signin_links (
    id          BIGSERIAL PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used        BIGINT NOT NULL DEFAULT 0,
    -- Who asked for the link (the operator at the command line).
    created_by  TEXT NOT NULL
);

CREATE TABLE console_sessions (
    hash        BYTEA PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- Names the sign-in in audit events: the operator and the link's id.
    label       TEXT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
