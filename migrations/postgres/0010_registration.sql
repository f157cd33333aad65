-- RFC 7592: the registration access token of a dynamically registered
-- client, stored only as an HMAC, gone with its client.
CREATE TABLE registration_tokens (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    hash      BYTEA NOT NULL
);
