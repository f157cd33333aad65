-- Every management change, for the admin API's audit list (the log lines
-- stay too): what, to what, by whom, through which front door.
CREATE TABLE audit_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    event    TEXT NOT NULL,
    subject  TEXT NOT NULL,
    actor    TEXT NOT NULL,
    via      TEXT NOT NULL
);

-- Admin API creates repeated with the same Idempotency-Key get the first
-- answer again. The answer may hold a secret: it is kept sealed under the
-- master key, and only for a day.
CREATE TABLE idempotency (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status       INTEGER NOT NULL,
    response     BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE INDEX tokens_client ON tokens (client_id);
