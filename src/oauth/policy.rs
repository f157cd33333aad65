//! Scope, audience and lifetime rules.

use super::{ErrorCode, OAuthError};

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Most scope tokens one request may name.
pub const MAX_SCOPES: usize = 100;
/// Longest scope value a request may name: a wildcard (`market:*`) would
/// otherwise grant any length, and every byte lands in the token (a URL
/// scope such as `https://api.example.com/auth/orders.read` fits easily).
pub const MAX_SCOPE_VALUE_BYTES: usize = 256;
/// Longest requested `scope` parameter, spaces included, so that a token
/// stays small enough for the `Authorization` header limits of common
/// proxies and servers (8 KiB).
pub const MAX_SCOPE_BYTES: usize = 2048;

/// Splits a space-delimited scope string into its distinct tokens, in order.
pub fn parse_scope(scope: &str) -> Result<Vec<&str>, OAuthError> {
    if scope.len() > MAX_SCOPE_BYTES {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the requested scope is longer than {MAX_SCOPE_BYTES} bytes"),
        ));
    }
    let mut tokens: Vec<&str> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if token.len() > MAX_SCOPE_VALUE_BYTES {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("a scope value is longer than {MAX_SCOPE_VALUE_BYTES} bytes"),
            ));
        }
        if tokens.len() == MAX_SCOPES {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("more than {MAX_SCOPES} scopes requested"),
            ));
        }
        if !is_scope_token(token) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the scope contains a character RFC 6749 §3.3 does not allow",
            ));
        }
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

/// Validates a list of allowed scopes as an operator writes them: scope tokens,
/// where a trailing `*` is a wildcard (`market:*`) and `*` appears nowhere else.
pub fn parse_scope_patterns(scope: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(token) {
            return Err(format!("malformed scope '{token}': RFC 6749 §3.3 allows printable ASCII except space, '\"' and '\\'"));
        }
        if token.trim_end_matches('*').contains('*') || token.ends_with("**") {
            return Err(format!(
                "malformed scope '{token}': '*' may only stand once, at the end"
            ));
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// Whether one allowed entry covers a requested token. `market:*` covers
/// `market:1234` but not `market:` alone; a requested token holding `*` is
/// only ever matched literally, so nobody obtains a wildcard they were not given.
pub fn pattern_allows(pattern: &str, token: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            !token.contains('*') && token.len() > prefix.len() && token.starts_with(prefix)
        }
        None => pattern == token,
    }
}

pub fn allowed(patterns: &[String], token: &str) -> bool {
    patterns.iter().any(|p| pattern_allows(p, token))
}

/// RFC 6749 §3.3: the requested scope must lie within what is allowed, else
/// `invalid_scope` (no silent down-scoping); no scope means the default.
pub fn resolve_scope(
    requested: Option<&str>,
    allowed_patterns: &[String],
    default: &[String],
) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(default.join(" "));
    };
    let tokens = parse_scope(requested)?;
    if let Some(denied) = tokens.iter().find(|t| !allowed(allowed_patterns, t)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the scope '{denied}' is not allowed for this client"),
        ));
    }
    Ok(tokens.join(" "))
}

/// Token lifetime: the client's, else the API's, else the server default;
/// never past the API's maximum. WSO2's `validity_period` only shortens it.
pub fn resolve_lifetime(
    client: Option<u64>,
    api: Option<u64>,
    api_max: Option<u64>,
    server_default: u64,
    validity_period: Option<u64>,
) -> u64 {
    let base = client.or(api).unwrap_or(server_default);
    let base = api_max.map_or(base, |max| base.min(max));
    validity_period.map_or(base, |v| v.min(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn rfc6749_3_3_scope_token_characters() {
        assert!(is_scope_token("market:1234"));
        assert!(is_scope_token("read:products"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token("é"));
        assert!(!is_scope_token(""));
    }

    #[test]
    fn wildcard_covers_suffix_only() {
        assert!(pattern_allows("market:*", "market:1234"));
        assert!(pattern_allows("market:*", "market:all"));
        assert!(!pattern_allows("market:*", "market:"));
        assert!(!pattern_allows("market:*", "markets:1"));
        assert!(!pattern_allows("market:*", "market:*x"));
        assert!(!pattern_allows("market:*", "market:*"));
        assert!(pattern_allows("read", "read"));
        assert!(!pattern_allows("read", "read2"));
    }

    #[test]
    fn patterns_allow_star_only_at_the_end() {
        assert!(parse_scope_patterns("a market:*").is_ok());
        assert!(parse_scope_patterns("a*b").is_err());
        assert!(parse_scope_patterns("a**").is_err());
        assert!(parse_scope_patterns("a\"").is_err());
    }

    #[test]
    fn rfc6749_3_3_outside_allowed_is_invalid_scope() {
        let err = resolve_scope(Some("market:1 admin"), &v(&["market:*"]), &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
        assert_eq!(
            err.description,
            "the scope 'admin' is not allowed for this client"
        );
    }

    #[test]
    fn rfc6749_3_3_no_scope_gives_default() {
        assert_eq!(
            resolve_scope(None, &v(&["market:*"]), &v(&["market:all"])).unwrap(),
            "market:all"
        );
        assert_eq!(resolve_scope(None, &v(&["a"]), &[]).unwrap(), "");
    }

    #[test]
    fn too_many_scopes_is_invalid_scope() {
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        let err = parse_scope(&many.join(" ")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
        assert!(parse_scope(&many[..MAX_SCOPES].join(" ")).is_ok());
    }

    #[test]
    fn one_scope_value_is_at_most_max_scope_value_bytes() {
        let allowed = v(&["market:*"]);
        let longest = format!("market:{}", "1".repeat(MAX_SCOPE_VALUE_BYTES - 7));
        assert_eq!(
            resolve_scope(Some(&longest), &allowed, &[]).unwrap(),
            longest
        );
        for len in [MAX_SCOPE_VALUE_BYTES - 6, 1000] {
            let long = format!("market:{}", "1".repeat(len));
            let err = resolve_scope(Some(&long), &allowed, &[]).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidScope);
            assert_eq!(
                err.description,
                format!("a scope value is longer than {MAX_SCOPE_VALUE_BYTES} bytes")
            );
        }
        // `market:` and 16,000 characters was once granted, making a 22 KB JWT.
        let huge = format!("market:{}", "1".repeat(16_000));
        let err = resolve_scope(Some(&huge), &allowed, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn the_requested_scope_is_at_most_max_scope_bytes() {
        let allowed = v(&["s:*"]);
        // Values of 100 bytes each, up to and then past the whole's bound.
        let value = |i: usize| format!("s:{i:03}{}", "x".repeat(95));
        let fits: Vec<String> = (0..MAX_SCOPE_BYTES / 101).map(value).collect();
        assert!(fits.join(" ").len() <= MAX_SCOPE_BYTES);
        assert!(resolve_scope(Some(&fits.join(" ")), &allowed, &[]).is_ok());
        let over: Vec<String> = (0..=MAX_SCOPE_BYTES / 101).map(value).collect();
        assert!(over.join(" ").len() > MAX_SCOPE_BYTES);
        let err = resolve_scope(Some(&over.join(" ")), &allowed, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
        assert_eq!(
            err.description,
            format!("the requested scope is longer than {MAX_SCOPE_BYTES} bytes")
        );
    }

    #[test]
    fn requested_scope_is_deduplicated() {
        assert_eq!(
            resolve_scope(Some("a  b a"), &v(&["a", "b"]), &[]).unwrap(),
            "a b"
        );
    }

    #[test]
    fn lifetime_client_then_api_then_default() {
        assert_eq!(resolve_lifetime(Some(60), Some(120), None, 3600, None), 60);
        assert_eq!(resolve_lifetime(None, Some(120), None, 3600, None), 120);
        assert_eq!(resolve_lifetime(None, None, None, 3600, None), 3600);
    }

    #[test]
    fn lifetime_capped_by_api_maximum() {
        assert_eq!(
            resolve_lifetime(Some(7200), Some(60), Some(600), 3600, None),
            600
        );
    }

    #[test]
    fn validity_period_only_shortens() {
        assert_eq!(resolve_lifetime(None, None, None, 3600, Some(30)), 30);
        assert_eq!(resolve_lifetime(None, None, None, 3600, Some(99999)), 3600);
        assert_eq!(
            resolve_lifetime(None, Some(100), Some(50), 3600, Some(u64::MAX)),
            50
        );
    }
}
