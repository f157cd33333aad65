//! Writ: an OAuth 2.0 authorization server for machine-to-machine tokens.
//!
//! Dependencies point one way: `http` → `oauth` → `token` / `keys` / `registry` → `store`.

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
/// The OAuth 2.0 protocol core: no HTTP and no SQL.
pub mod oauth;
/// The in-memory snapshot of clients, APIs, grants and keys read on every request.
pub mod registry;
/// Starting the server: store, keys, registry refresh, listener.
pub mod server;
/// Persistence (SQLite).
pub mod store;
/// Access token formats (RFC 9068 JWT).
pub mod token;
/// Value types shared by every layer: token format, claims profile, algorithm.
pub mod types;
