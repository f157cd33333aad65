//! The properties the fuzz targets in `fuzz/` check, one function per target.
//!
//! They live here, not in `fuzz/`, so that the inputs the fuzzer kept
//! (`fuzz/regressions/`) are replayed by the ordinary test run as well. Each
//! function takes any bytes and panics only when a property fails: a parser
//! that panics, or accepts something it cannot give back unchanged.

use std::sync::LazyLock;

use base64::Engine;

use crate::config::{Config, Overrides};
use crate::keys::SigningKey;
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::policy::{self, MAX_SCOPES};
use crate::oauth::request::{BodyFormat, Params, TokenRequest, MAX_PARAMS};
use crate::oauth::{introspect, ErrorCode};
use crate::token::{jwt, opaque};
use crate::types::Algorithm;

/// A fuzz target: any bytes in, a panic only when a property fails.
pub type Target = fn(&[u8]);

/// The targets, by the name of their folder under `fuzz/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("form", form),
    ("json", json),
    ("basic", basic),
    ("scope", scope),
    ("token", token),
    ("config", config),
];

/// An `application/x-www-form-urlencoded` body, as every POST endpoint reads it.
pub fn form(data: &[u8]) {
    let Ok(params) = BodyFormat::Form.parse(data) else {
        return;
    };
    check_params(&params);
    let mut again = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.iter() {
        again.append_pair(name, value);
    }
    let again = again.finish();
    assert_eq!(
        Params::from_form(again.as_bytes()).expect("re-encoded form parses"),
        params,
        "form round trip"
    );
    read_as_every_endpoint(params);
}

/// An `application/json` body.
pub fn json(data: &[u8]) {
    let Ok(params) = BodyFormat::Json.parse(data) else {
        return;
    };
    check_params(&params);
    let object: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(n, v)| (n.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    let again = serde_json::to_vec(&object).expect("serialises");
    assert_eq!(
        Params::from_json(&again, &[]).expect("re-encoded JSON parses"),
        params,
        "JSON round trip"
    );
    read_as_every_endpoint(params);
}

fn check_params(params: &Params) {
    assert!(params.iter().count() <= MAX_PARAMS);
    let mut names: Vec<&str> = params.iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), params.iter().count(), "a name appears twice");
    assert!(
        params.iter().all(|(_, v)| !v.is_empty()),
        "an empty value kept"
    );
}

fn read_as_every_endpoint(params: Params) {
    let _ = introspect::token_param(&params);
    if let Ok(request) = TokenRequest::from_params(params) {
        assert!(request.validity_period != Some(0));
        if let Some(scope) = &request.scope {
            let _ = policy::parse_scope(scope);
        }
        let _ = ClientCredentials::extract(None, request.credentials);
    }
}

/// An `Authorization` header value (RFC 6749 §2.3.1, RFC 7617).
pub fn basic(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    match ClientCredentials::extract(Some(header), Default::default()) {
        Ok(ClientCredentials::Basic { id, secret }) => {
            assert!(!id.is_empty() && !secret.is_empty());
            // Encoded the way RFC 6749 §2.3.1 says a client must, it reads back the same.
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    encode(&id),
                    encode(&secret)
                ))
            );
            assert_eq!(
                ClientCredentials::extract(Some(&header), Default::default()).expect("re-encoded"),
                ClientCredentials::Basic { id, secret },
                "Basic round trip"
            );
        }
        Ok(other) => panic!("a header gave {other:?}"),
        Err(e) => {
            assert!(matches!(e.code, ErrorCode::InvalidClient));
            assert!(e.basic_challenge, "a refused Basic header gets a challenge");
        }
    }
}

/// A requested scope, and an operator's allowed scope patterns.
pub fn scope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tokens) = policy::parse_scope(text) {
        assert!(tokens.len() <= MAX_SCOPES);
        assert!(tokens.iter().all(|t| policy::is_scope_token(t)));
        let joined = tokens.join(" ");
        assert_eq!(policy::parse_scope(&joined).unwrap(), tokens);
    }
    if let Ok(patterns) = policy::parse_scope_patterns(text) {
        for p in &patterns {
            assert!(policy::is_scope_token(p));
            // A pattern covers itself only when it is a literal.
            assert_eq!(policy::pattern_allows(p, p), !p.ends_with('*'), "{p}");
            // Nobody is granted a wildcard they were not given.
            for requested in text.split(' ') {
                if policy::pattern_allows(p, requested) {
                    assert!(
                        !requested.contains('*') || requested == p,
                        "{p} {requested}"
                    );
                }
            }
        }
    }
}

struct Issued {
    key: SigningKey,
    token: String,
    claims: jwt::Verified,
}

const ISSUER: &str = "https://writ.test";

static ISSUED: LazyLock<Issued> = LazyLock::new(|| {
    let (key, _) = SigningKey::generate(Algorithm::EdDSA).expect("key");
    let claims = jwt::Claims {
        iss: ISSUER,
        sub: "svc",
        client_id: "svc",
        aud: "https://api.test",
        iat: 1_000,
        exp: 2_000,
        jti: "j1",
        scope: "read write",
        gty: None,
        azp: None,
        extra: None,
    };
    let token = jwt::mint(&key, &claims).expect("mint");
    let claims = jwt::verify(&token, |_| Some(&key), ISSUER, 1_500).expect("own token verifies");
    Issued { key, token, claims }
});

/// A presented token, as introspection and revocation read it. Even bytes of
/// the first input byte flip bits in a real token; odd ones send the input as
/// it is. Only Writ's own token, unchanged in meaning, may verify.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let issued = &*ISSUED;
    let presented = if mode % 2 == 0 {
        let mut bytes = issued.token.clone().into_bytes();
        for pair in rest.chunks_exact(2) {
            let at = pair[0] as usize * bytes.len() / 256;
            bytes[at] ^= pair[1];
        }
        match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return,
        }
    } else {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    };
    let key_for = |kid: &str| (kid == issued.key.kid).then_some(&issued.key);
    if let Some(claims) = jwt::verify(&presented, key_for, ISSUER, 1_500) {
        assert_eq!(
            claims, issued.claims,
            "a changed token verified: {presented}"
        );
    }
    if let Some(selector) = opaque::selector(&presented) {
        assert!(presented.starts_with(opaque::PREFIX));
        assert_eq!(presented.len(), opaque::PREFIX.len() + 64);
        // The selector is the token's own leading bytes, and the token is
        // their one encoding: no other spelling finds the same row.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&presented[opaque::PREFIX.len()..])
            .expect("a token with a selector decodes");
        assert_eq!(raw[..selector.len()], selector, "{presented}");
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw),
            presented[opaque::PREFIX.len()..],
            "{presented}"
        );
    }
}

/// A TOML config file: parsed, then checked as `writ serve` checks it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = Config::parse_file(text) {
        if let Ok(config) = Config::from_parts(file, &Overrides::default()) {
            assert!(config.token_lifetime > 0);
            assert!(config.opaque_max_batch > 0);
            assert!(config.limits.max_connections > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input the fuzzers kept, found something with, or were seeded
    /// with still holds every property.
    #[test]
    fn fuzz_corpus_replays() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            for folder in ["seeds", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    let data = std::fs::read(&path).unwrap();
                    let outcome = std::panic::catch_unwind(|| target(&data));
                    assert!(outcome.is_ok(), "{} fails", path.display());
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= TARGETS.len(), "only {replayed} inputs found");
    }
}
