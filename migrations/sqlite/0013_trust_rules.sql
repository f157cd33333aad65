-- Workload identity: a client that trusts tokens from external issuers
-- (GitHub Actions, GitLab CI, Kubernetes service accounts…) instead of
-- holding keys. A token authenticates the client when its issuer is a
-- rule's and its claims match that rule.
-- subject: the `sub` claim, exactly or as a pattern with `*`; claims: a JSON
-- object of further conditions (claim name or JSON pointer → value or
-- pattern); audience: the `aud` the token must carry (default: Writ's issuer).
CREATE TABLE client_trust_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    issuer     TEXT NOT NULL,
    subject    TEXT,
    audience   TEXT,
    claims     TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX client_trust_rules_client ON client_trust_rules (client_id);
