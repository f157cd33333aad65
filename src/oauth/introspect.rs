//! RFC 7662: token introspection.

use serde_json::{json, Value};

use super::request::Params;
use super::OAuthError;
use crate::registry::Client;
use crate::token::TokenInfo;

/// RFC 7662 §2.1 / RFC 7009 §2.1: `token` is REQUIRED, `token_type_hint`
/// OPTIONAL (a hint only: both formats are told apart without it).
pub fn token_param(params: &Params) -> Result<&str, OAuthError> {
    params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("the 'token' parameter is missing"))
}

/// A client sees the tokens issued to it; a client holding the
/// `writ:introspect` scope (a resource server) sees every token.
pub fn may_see(caller: &Client, token: &TokenInfo) -> bool {
    caller.id == token.client_id || caller.may_introspect_any()
}

/// RFC 7662 §2.2. An inactive answer says nothing else, so it cannot tell an
/// unknown token from an expired, revoked or hidden one. A token is active
/// only while its client (`holder`) exists and is enabled: disabling a client
/// whose secret leaked must stop its tokens too. An active answer also
/// carries the static claims of the token's client.
pub fn response(
    caller: &Client,
    token: Option<&TokenInfo>,
    holder: Option<&Client>,
    issuer: &str,
) -> Value {
    let holder = holder.filter(|h| h.enabled);
    match (token, holder) {
        (Some(t), Some(holder)) if may_see(caller, t) && holder.id == t.client_id => {
            let mut v = json!({
                "active": true,
                "client_id": t.client_id,
                "sub": t.client_id,
                "aud": t.audience,
                "iss": issuer,
                "exp": t.expires_at,
                "iat": t.issued_at,
                "jti": t.jti,
                "token_type": "Bearer",
            });
            if !t.scope.is_empty() {
                v["scope"] = json!(t.scope);
            }
            if let (Some(extra), Value::Object(map)) = (holder.claims.as_ref(), &mut v) {
                for (k, val) in extra {
                    map.entry(k.clone()).or_insert_with(|| val.clone());
                }
            }
            v
        }
        _ => json!({"active": false}),
    }
}
