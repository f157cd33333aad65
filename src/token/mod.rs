//! Access token formats.

pub mod jwt;
