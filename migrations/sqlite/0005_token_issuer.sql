-- The issuer an opaque token was issued under: like a JWT's `iss`, a token
-- from another issuer (a restore under a new --issuer) is not active. NULL
-- (tokens from before this column) counts as the current issuer.
ALTER TABLE tokens ADD COLUMN issuer TEXT;
