-- What each registry write touched, in the same transaction as the write:
-- nodes apply only these (invalidate one client, rebuild the small API and
-- key snapshot) instead of re-reading everything. Old entries are pruned;
-- a node that fell behind them starts afresh.
CREATE TABLE changes (
    revision INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL
);
CREATE INDEX changes_revision ON changes (revision);
