-- Opaque tokens' selectors now begin with the millisecond they expire
-- (store/tokens.rs, `selector_prefix`): the expired ones are a range at the
-- start of the primary key, which the purge deletes by. An index on
-- expires_at cost every token issued a B-tree insert of its own.
DROP INDEX IF EXISTS tokens_expires;
