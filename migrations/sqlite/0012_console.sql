-- The web console's one-time sign-in links and its sessions. Both are
-- bearer values, so only their HMAC under the master key's secret key is
-- kept: a copy of the database signs no one in.
CREATE TABLE console_signin_links (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used        INTEGER NOT NULL DEFAULT 0,
    -- Who asked for the link (the operator at the command line).
    created_by  TEXT NOT NULL
);

CREATE TABLE console_sessions (
    hash        BLOB PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- Names the sign-in in audit events: the operator and the link's id.
    label       TEXT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
