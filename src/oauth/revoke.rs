//! RFC 7009: token revocation.

use super::{ErrorCode, OAuthError};
use crate::registry::Client;
use crate::token::TokenInfo;

/// RFC 7009 §2.2: an invalid, unknown or already revoked token answers 200
/// with nothing to do. §2.1: the server checks that the token was issued to
/// the caller; a client with `writ:introspect` may revoke any token.
pub fn decide<'t>(
    caller: &Client,
    token: Option<&'t TokenInfo>,
) -> Result<Option<&'t TokenInfo>, OAuthError> {
    match token {
        None => Ok(None),
        Some(t) if super::introspect::may_see(caller, t) => Ok(Some(t)),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        )),
    }
}
