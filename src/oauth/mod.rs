//! The OAuth 2.0 protocol core: parsing, client authentication, policy and the
//! client_credentials grant. Nothing here knows about HTTP frameworks or SQL.

pub mod assertion;
pub mod client_auth;
pub mod client_credentials;
pub mod error;
pub mod introspect;
pub mod policy;
pub mod request;
pub mod revoke;
pub mod spiffe;
pub mod trust;

pub use error::{ErrorCode, OAuthError, RateLimited, Refusal};
