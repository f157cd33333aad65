//! Writ: an OAuth 2.0 authorization server for machine-to-machine tokens.
//!
//! Imports run one way, down this list; `types`, `clock` and `config` are
//! leaves any module may use:
//!
//! `cli` / `server` → `http` → `oauth` → `token` → `registry` → `keys` → `store`

/// Management operations and their rules, shared by every front door.
pub mod admin;
/// The command line: `serve` and the management subcommands.
pub mod cli;
/// Time as a value: the system clock, or a fixed one in tests.
pub mod clock;
/// Settings from flags, environment, a TOML file and defaults.
pub mod config;
/// The properties checked by the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub mod fuzz;
/// HTTP endpoints: thin handlers that parse, call the protocol core, render.
pub mod http;
/// Master key, key encryption at rest, client secrets, signing keys and JWKS.
pub mod keys;
/// Prometheus metrics: what is counted and how.
pub mod metrics;
/// The OAuth 2.0 protocol core: parsing, client authentication, the grant's
/// checks, introspection and revocation rules. No HTTP and no SQL.
pub mod oauth;
/// The in-memory snapshot of clients, APIs, grants and keys read on every request.
pub mod registry;
/// Starting the server: store, keys, registry, listener, background tasks.
pub mod server;
/// Persistence on SQLite (embedded, the default) or PostgreSQL (several
/// nodes), one file per table.
pub mod store;
/// Access tokens: RFC 9068 JWTs and opaque tokens kept in the store; issued,
/// looked up and revoked here only.
pub mod token;
/// Value types shared by every layer: token format, claims profile, algorithm.
pub mod types;
