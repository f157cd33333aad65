-- Clients whose public keys are published at a URL (RFC 7591 §2
-- `jwks_uri`) rather than registered inline: Writ fetches and caches them.
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
