-- Static claims a client's tokens carry (a JSON object), and the claim
-- profile of an API's JWTs ('standard' or 'auth0'; NULL: standard).
ALTER TABLE clients ADD COLUMN claims TEXT;
ALTER TABLE apis ADD COLUMN claims_profile TEXT;
