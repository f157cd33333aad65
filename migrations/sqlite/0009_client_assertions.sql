-- Clients that authenticate with a JWT signed by their own key
-- (private_key_jwt, RFC 7523 §2.2), and how each client may authenticate.
-- jwks: the client's public keys, a JWK Set (RFC 7517 §5) as JSON text.
ALTER TABLE clients ADD COLUMN jwks TEXT;
-- auth_methods: space-delimited RFC 7591 token_endpoint_auth_method values.
ALTER TABLE clients ADD COLUMN auth_methods TEXT NOT NULL DEFAULT '';
UPDATE clients SET auth_methods =
    CASE WHEN public = 1 THEN 'none' ELSE 'client_secret_basic client_secret_post' END;

-- The jti of every assertion accepted, until it expires: a replay is
-- refused on every node (RFC 7523 §3 item 7).
CREATE TABLE client_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
