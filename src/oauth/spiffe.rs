//! SPIFFE JWT-SVIDs as client assertions (draft-ietf-oauth-spiffe-client-auth
//! §"Client Authentication with JWT-SVIDs"): a workload's JWT-SVID, whose
//! `sub` is its SPIFFE ID, verified with the keys of its trust domain's
//! bundle (fetched from the bundle endpoint an administrator configured for
//! that trust domain), then matched against the client's trust rules for
//! `spiffe://<trust domain>`. Pure: time comes in as `now`.
//!
//! `jti` is not recorded. The draft's checks are `sub`, `aud`, `exp` and the
//! signature; JWT-SVID §6.1 says validators need not track `jti`, and SPIFFE
//! agents hand the same cached SVID to every fetch for an audience until it
//! nears expiry, so single use would refuse a workload's second token
//! request. What bounds a replay instead: `aud` is this server alone, and
//! `exp` at most `MAX_LIFETIME` ahead.

use serde_json::Value;

use super::assertion::{self, Audience, Jti, Refused, Verified, SKEW};
use crate::keys::ClientKeys;
use crate::store::TrustRuleRecord;

/// The `client_assertion_type` of a JWT-SVID (draft-ietf-oauth-spiffe-client-auth,
/// registered as an OAuth URI per RFC 6755).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
/// The scheme of SPIFFE IDs (SPIFFE-ID §2).
pub const SCHEME: &str = "spiffe://";
/// SPIFFE-ID §2.1: a trust domain name is at most 255 bytes; §2.3: an ID
/// at most 2048.
const MAX_TRUST_DOMAIN_BYTES: usize = 255;
const MAX_ID_BYTES: usize = 2048;

/// SPIFFE-ID §2.1: lowercase letters, digits, `.`, `-` and `_` only (no
/// port, no user info, no percent-encoding).
pub fn is_trust_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TRUST_DOMAIN_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b))
}

/// The trust domain of a SPIFFE ID, if it is one (SPIFFE-ID §2): the
/// scheme, a trust domain, and a path of non-empty segments of letters,
/// digits, `.`, `-`, `_`, none of them `.` or `..`; no query, no fragment,
/// no trailing slash.
pub fn trust_domain_of(id: &str) -> Option<&str> {
    if id.len() > MAX_ID_BYTES {
        return None;
    }
    let rest = id.strip_prefix(SCHEME)?;
    let (domain, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if !is_trust_domain(domain) {
        return None;
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
    };
    match path {
        None => Some(domain),
        Some(path) if path.split('/').all(segment_ok) => Some(domain),
        Some(_) => None,
    }
}

/// The trust rule issuer that stands for a trust domain: its trust domain
/// ID (SPIFFE-ID §2.1), `spiffe://example.org`.
pub fn rule_issuer(trust_domain: &str) -> String {
    format!("{SCHEME}{trust_domain}")
}

/// Is a trust rule one for SPIFFE JWT-SVIDs rather than an OpenID Connect issuer?
pub fn is_spiffe_rule(rule: &TrustRuleRecord) -> bool {
    rule.issuer.starts_with(SCHEME)
}

/// The trust domain of an SVID's `sub`, read without checking anything:
/// whose bundle to check it with.
pub fn unverified_trust_domain(svid: &str) -> Option<String> {
    assertion::unverified_subject(svid)
        .as_deref()
        .and_then(trust_domain_of)
        .map(str::to_owned)
}

/// JWT-SVID §2.3: `typ`, when present, is `JWT` or `JOSE`.
const SVID_TYPES: &[&str] = &["jwt", "jose"];

/// Checks a JWT-SVID with the keys of `trust_domain`'s bundle, then against
/// the client's rules for that trust domain: one must match.
pub fn verify(
    svid: &str,
    keys: &ClientKeys,
    trust_domain: &str,
    rules: &[TrustRuleRecord],
    audience: &Audience,
    now: i64,
) -> Result<Verified, Refused> {
    let claims = assertion::verify_signature(svid, keys, SVID_TYPES)?;
    // The keys were picked by the unverified `sub`; now that it is signed,
    // it must name the same trust domain: one trust domain's keys never
    // vouch for another's workloads.
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(Refused("the SVID has no 'sub'"))?;
    if trust_domain_of(sub) != Some(trust_domain) {
        return Err(Refused(
            "the SVID's 'sub' is not a SPIFFE ID of the trust domain whose keys verified it",
        ));
    }
    // `iss` is optional in a JWT-SVID; when present it names the SPIFFE
    // issuer's own URL, which the bundle, not `iss`, is trusted for.
    if claims.get("iss").is_some_and(|i| !i.is_string()) {
        return Err(Refused("'iss' is not a string"));
    }
    // draft-ietf-oauth-spiffe-client-auth, check 3: `aud` is this server's
    // issuer identifier as its sole value (draft-ietf-oauth-rfc7523bis).
    assertion::check_audience(claims.get("aud"), audience)?;
    let issuer = rule_issuer(trust_domain);
    let mut refused = Refused("no trust rule of the client names the SVID's trust domain");
    let matched =
        rules.iter().filter(|r| r.issuer == issuer).any(|rule| {
            match super::trust::matches(rule, &claims) {
                Ok(()) => true,
                Err(e) => {
                    refused = e;
                    false
                }
            }
        });
    if !matched {
        return Err(refused);
    }
    // Checks 1 and 2: `exp` present, not passed (and, here, bounded).
    let (exp, _) = assertion::check_times(&claims, now, Jti::Ignored)?;
    Ok(Verified {
        jti: None,
        replay_until: exp + SKEW,
        replay_scope: issuer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::b64url;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    const ISSUER: &str = "https://auth.example.com";
    const NOW: i64 = 1_800_000_000;

    /// A bundle key, the keys Writ would take from its bundle, and a signer.
    fn bundle_key() -> (EcdsaKeyPair, ClientKeys) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let bundle = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "b1", "use": "jwt-svid",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..])}], "spiffe_refresh_hint": 300});
        let (keys, _) = ClientKeys::parse_spiffe_bundle(&bundle.to_string()).unwrap();
        (pair, keys)
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }

    fn rule(issuer: &str, subject: &str) -> TrustRuleRecord {
        TrustRuleRecord {
            id: 1,
            client_id: "c".into(),
            issuer: issuer.into(),
            subject: Some(subject.into()),
            audience: None,
            claims: Default::default(),
            created_at: 0,
        }
    }

    #[test]
    fn draft_spiffe_client_auth_an_svid_is_checked_within_its_trust_domain() {
        let (pair, keys) = bundle_key();
        let audience = Audience {
            issuer: ISSUER.into(),
            token_endpoints: vec![],
        };
        let header = json!({"alg": "ES256", "kid": "b1", "typ": "JOSE"});
        let claims = json!({"sub": "spiffe://example.org/billing", "aud": ISSUER,
            "exp": NOW + 300, "jti": "reused"});
        let svid = sign(&pair, header.clone(), claims.clone());
        let rules = [rule("spiffe://example.org", "spiffe://example.org/billing")];
        let verified = verify(&svid, &keys, "example.org", &rules, &audience, NOW).unwrap();
        assert_eq!(verified.jti, None, "a JWT-SVID's jti is never recorded");
        assert_eq!(verified.replay_scope, "spiffe://example.org");
        // Keys held for another trust domain never vouch for this one's IDs,
        // even when a rule of that trust domain would match.
        let other = [rule("spiffe://other.org", "spiffe://example.org/billing")];
        let err = verify(&svid, &keys, "other.org", &other, &audience, NOW).unwrap_err();
        assert!(err.0.contains("trust domain"), "{err:?}");
        // A client assertion's type is not an SVID's.
        let typed = json!({"alg": "ES256", "kid": "b1", "typ": "client-authentication+jwt"});
        let svid = sign(&pair, typed, claims);
        assert!(verify(&svid, &keys, "example.org", &rules, &audience, NOW).is_err());
    }

    #[test]
    fn spiffe_id_2_trust_domains_and_paths() {
        for (id, domain) in [
            ("spiffe://example.org", Some("example.org")),
            (
                "spiffe://example.org/ns/prod/sa/billing",
                Some("example.org"),
            ),
            ("spiffe://a_b-c.9/x.y-z_1", Some("a_b-c.9")),
            ("spiffe://Example.org/x", None),
            ("spiffe://example.org:443/x", None),
            ("spiffe://user@example.org/x", None),
            ("spiffe://example.org/", None),
            ("spiffe://example.org//x", None),
            ("spiffe://example.org/x/../y", None),
            ("spiffe://example.org/./y", None),
            ("spiffe://example.org/x?y", None),
            ("spiffe://example.org/x#y", None),
            ("spiffe://example.org/%41", None),
            ("spiffe:///x", None),
            ("https://example.org/x", None),
            ("SPIFFE://example.org/x", None),
        ] {
            assert_eq!(trust_domain_of(id), domain, "{id}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(MAX_ID_BYTES));
        assert_eq!(trust_domain_of(&long), None);
    }
}
