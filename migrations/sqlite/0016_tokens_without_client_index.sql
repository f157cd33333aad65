-- A client's tokens are listed by reading the newest tokens in selector
-- order (store/tokens.rs): an index by client cost every token a B-tree
-- insert, and with many clients a page of its own in each commit.
DROP INDEX tokens_client;
