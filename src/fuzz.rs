//! The properties the fuzz targets in `fuzz/` check, one function per target.
//!
//! They live here, not in `fuzz/`, so that the inputs the fuzzer kept
//! (`fuzz/regressions/`) are replayed by the ordinary test run as well. Each
//! function takes any bytes and panics only when a property fails: a parser
//! that panics, or accepts something it cannot give back unchanged.

use std::sync::LazyLock;

use base64::Engine;

use crate::config::{Config, Overrides};
use crate::keys::{b64url, ClientKeys, SigningKey};
use crate::oauth::assertion::{self, Audience, MAX_JTI_BYTES, MAX_LIFETIME, SKEW};
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::policy::{self, MAX_SCOPES};
use crate::oauth::request::{BodyFormat, Params, TokenRequest, MAX_PARAMS};
use crate::oauth::{introspect, spiffe, ErrorCode};
use crate::store::TrustRuleRecord;
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
    ("assertion", assertion),
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

/// A client's key, and an assertion it signed, for the `assertion` target.
struct Signer {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    keys: ClientKeys,
    /// `header.payload` of `genuine`: the only signing input the flipping
    /// and raw modes can present with a valid signature.
    genuine_input: String,
    genuine: String,
}

const CLIENT: &str = "client-1";
const EXTERNAL: &str = "https://issuer.test";
const TRUST_DOMAIN: &str = "example.org";
/// The fixed clock of the `assertion` target.
const NOW: i64 = 1_800_000_000;

impl Signer {
    fn sign_input(&self, input: &str) -> String {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).expect("signs");
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

static SIGNER: LazyLock<Signer> = LazyLock::new(|| {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
    let point = pair.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": b64url(&point[1..33]), "y": b64url(&point[33..])}]});
    let keys = ClientKeys::parse(&jwks.to_string()).expect("a valid JWK Set");
    let genuine_input = format!(
        "{}.{}",
        b64url(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#),
        b64url(
            serde_json::json!({"iss": CLIENT, "sub": CLIENT, "aud": ISSUER,
                "exp": NOW + 60, "iat": NOW, "jti": "j-1"})
            .to_string()
            .as_bytes()
        )
    );
    let mut signer = Signer {
        pair,
        keys,
        genuine_input,
        genuine: String::new(),
    };
    signer.genuine = signer.sign_input(&signer.genuine_input);
    signer
});

/// A client assertion, as `private_key_jwt`, an external issuer's token and
/// a SPIFFE JWT-SVID are checked, with fixed keys and clock. The first byte
/// picks how: 0 mod 3 sends the rest as it is; 1 flips bits of a genuine
/// assertion; 2 signs, with the client's real key, the rest as the claims
/// (next byte even) or as the header (odd) beside defaults. Whatever
/// passes must have been signed by the key, and must meet every check:
/// `iss`/`sub`, `aud` naming this server alone, bounded `exp`, the `jti`
/// rules, a trust rule, an SVID's trust domain.
pub fn assertion(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signer = &*SIGNER;
    let (presented, signed_by_us) = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(t) => (t.to_owned(), false),
            Err(_) => return,
        },
        1 => {
            let mut bytes = signer.genuine.clone().into_bytes();
            for pair in rest.chunks_exact(2) {
                let at = pair[0] as usize * bytes.len() / 256;
                bytes[at] ^= pair[1];
            }
            match String::from_utf8(bytes) {
                Ok(t) => (t, false),
                Err(_) => return,
            }
        }
        _ => {
            let Some((&which, json)) = rest.split_first() else {
                return;
            };
            let default_header = br#"{"alg":"ES256","kid":"k1"}"#.as_slice();
            let default_claims = serde_json::json!({"iss": CLIENT, "sub": CLIENT,
                "aud": ISSUER, "exp": NOW + 60, "jti": "j-2"})
            .to_string();
            let (header, claims) = if which % 2 == 0 {
                (default_header, json)
            } else {
                (json, default_claims.as_bytes())
            };
            let input = format!("{}.{}", b64url(header), b64url(claims));
            (signer.sign_input(&input), true)
        }
    };
    let audience = Audience {
        issuer: ISSUER.into(),
        token_endpoints: vec![],
    };
    let rule = |issuer: &str, subject: &str| TrustRuleRecord {
        id: 1,
        client_id: CLIENT.into(),
        issuer: issuer.into(),
        subject: Some(subject.into()),
        audience: None,
        claims: Default::default(),
        created_at: 0,
    };
    let rules = [
        rule(EXTERNAL, "repo:acme/*"),
        rule(
            &spiffe::rule_issuer(TRUST_DOMAIN),
            "spiffe://example.org/billing",
        ),
    ];
    let own = assertion::verify(&presented, CLIENT, &signer.keys, &audience, NOW);
    let external =
        assertion::verify_external(&presented, &signer.keys, &rules, EXTERNAL, ISSUER, NOW);
    let svid = spiffe::verify(
        &presented,
        &signer.keys,
        TRUST_DOMAIN,
        &rules,
        &audience,
        NOW,
    );
    if own.is_err() && external.is_err() && svid.is_err() {
        return;
    }
    // Only what the key signed verifies: a changed header or payload never.
    let (input, _) = presented
        .rsplit_once('.')
        .expect("a verified JWS has three parts");
    assert!(
        signed_by_us || input == signer.genuine_input,
        "an assertion the key never signed verified: {presented}"
    );
    let part = |i: usize| -> serde_json::Map<String, serde_json::Value> {
        let b64 = input.split('.').nth(i).expect("two parts");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .expect("a verified part is base64url");
        serde_json::from_slice(&bytes).expect("a verified part is a JSON object")
    };
    let (header, claims) = (part(0), part(1));
    assert_eq!(header.get("alg").and_then(|a| a.as_str()), Some("ES256"));
    assert!(!header.contains_key("crit"), "{presented}");
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
    let aud_is_us = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == ISSUER,
        Some(serde_json::Value::Array(a)) => a.len() == 1 && a[0] == ISSUER,
        _ => false,
    };
    let exp = claims
        .get("exp")
        .and_then(|e| e.as_f64())
        .expect("a verified assertion has a numeric exp");
    let exp_ok = exp + (SKEW as f64) > NOW as f64 && exp <= (NOW + MAX_LIFETIME + SKEW + 1) as f64;
    if let Ok(v) = &own {
        assert!(
            text("iss") == Some(CLIENT) && text("sub") == Some(CLIENT),
            "{presented}"
        );
        assert!(aud_is_us && exp_ok, "{presented}");
        let jti = v.jti.as_deref().expect("a client's assertion has a jti");
        assert!(!jti.is_empty() && jti.len() <= MAX_JTI_BYTES && text("jti") == Some(jti));
        assert_eq!(v.replay_scope, CLIENT);
    }
    if let Ok(v) = &external {
        assert_eq!(text("iss"), Some(EXTERNAL), "{presented}");
        assert!(
            text("sub").is_some_and(|s| s.starts_with("repo:acme/")),
            "{presented}"
        );
        assert!(aud_is_us && exp_ok, "{presented}");
        assert_eq!(v.jti.as_deref(), text("jti"));
        assert_eq!(v.replay_scope, EXTERNAL);
    }
    if let Ok(v) = &svid {
        assert_eq!(
            text("sub"),
            Some("spiffe://example.org/billing"),
            "{presented}"
        );
        assert!(aud_is_us && exp_ok, "{presented}");
        assert_eq!(v.jti, None, "an SVID's jti is never recorded");
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

    /// The `assertion` target's seeds reach each verifier's success path,
    /// so the fuzzer starts from assertions that pass and mutates them.
    #[test]
    fn assertion_seeds_pass_each_verifier() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/assertion");
        let signer = &*SIGNER;
        let audience = Audience {
            issuer: ISSUER.into(),
            token_endpoints: vec![],
        };
        let signed = |seed: &str| {
            let data = std::fs::read(root.join(seed)).unwrap();
            assert_eq!(&data[..2], b"\x02\x00", "{seed} is a claims seed");
            let header = b64url(br#"{"alg":"ES256","kid":"k1"}"#);
            signer.sign_input(&format!("{header}.{}", b64url(&data[2..])))
        };
        assert!(assertion::verify(&signed("client"), CLIENT, &signer.keys, &audience, NOW).is_ok());
        let rules = [TrustRuleRecord {
            id: 1,
            client_id: CLIENT.into(),
            issuer: EXTERNAL.into(),
            subject: Some("repo:acme/*".into()),
            audience: None,
            claims: Default::default(),
            created_at: 0,
        }];
        assert!(assertion::verify_external(
            &signed("external"),
            &signer.keys,
            &rules,
            EXTERNAL,
            ISSUER,
            NOW
        )
        .is_ok());
        let rules = [TrustRuleRecord {
            issuer: spiffe::rule_issuer(TRUST_DOMAIN),
            subject: Some("spiffe://example.org/billing".into()),
            ..rules[0].clone()
        }];
        let svid = spiffe::verify(
            &signed("svid"),
            &signer.keys,
            TRUST_DOMAIN,
            &rules,
            &audience,
            NOW,
        );
        assert_eq!(svid.unwrap().jti, None);
        assert!(assertion::verify(&signer.genuine, CLIENT, &signer.keys, &audience, NOW).is_ok());
    }
}
