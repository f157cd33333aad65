//! One integration-test binary: real servers on 127.0.0.1:0, real SQLite
//! files, the real `writ` binary for the CLI, HTTP on the wire.

mod harness;
mod pg;

mod admin;
mod assertions;
mod backup;
mod cli;
mod clients;
mod connections;
mod console;
mod dialects;
mod discovery;
mod faults;
mod import;
mod interop;
mod issuer;
mod jwks_uri;
mod keys;
mod limits;
mod live;
mod logs;
mod master_key;
mod observability;
mod opaque;
mod opening;
mod postgres;
mod registration;
mod registry;
mod serve;
mod spiffe;
mod store;
mod sweep;
mod tls;
mod token;
mod workload;
