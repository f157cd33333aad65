//! JWT client assertions, `private_key_jwt` (RFC 7523 §2.2 and §3, RFC 7521
//! §4.2, OpenID Connect Core §9, draft-ietf-oauth-rfc7523bis): a JWT the
//! client signed with one of its registered keys. Pure: time comes in as
//! `now`; the caller records the `jti` (single use) once this has passed.
//!
//! Order matters: the header picks a key, the signature is checked, and
//! only then are the claims read as the client's word.

use base64::Engine;
use serde_json::{Map, Value};

use crate::keys::{AssertionAlgorithm, ClientKeys};
use crate::store::TrustRuleRecord;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may still be valid for, counted from now: the
/// replay record of its `jti` is kept that long. (Client libraries sign for
/// a minute to an hour.)
pub const MAX_LIFETIME: i64 = 3600;
/// Clock skew allowed between the client and Writ, on `exp`, `nbf`, `iat`.
pub const SKEW: i64 = 60;
/// The longest `jti` kept.
pub const MAX_JTI_BYTES: usize = 256;
/// draft-ietf-oauth-rfc7523bis: the explicit type of a client assertion.
pub const ASSERTION_TYP: &str = "client-authentication+jwt";

/// Which `aud` values name this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// The issuer identifier (RFC 8414 §2): always accepted.
    pub issuer: String,
    /// Token endpoint URLs, accepted only when configured so (older client
    /// libraries send the token endpoint, as RFC 7523 §3 once suggested).
    pub token_endpoints: Vec<String>,
}

impl Audience {
    fn names_us(&self, aud: &str) -> bool {
        aud == self.issuer || self.token_endpoints.iter().any(|t| t == aud)
    }
}

/// An assertion that passed every check: its `jti` must now be recorded,
/// until `replay_until`, and refused if it was recorded already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Absent only from an external issuer's token without one.
    pub jti: Option<String>,
    pub replay_until: i64,
    /// Whose `jti`s it is unique among: the client's, or the external
    /// issuer's (a token it issued is used once, by whichever client).
    pub replay_scope: String,
}

/// What an assertion's `jti` is to its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jti {
    /// OpenID Connect Core §9: a client's own assertion has one.
    Required,
    /// RFC 7523 §3 item 7: optional, recorded when present.
    Optional,
    /// Not read (a SPIFFE JWT-SVID, see `spiffe`).
    Ignored,
}

/// Why an assertion was refused: logged, never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// The `sub` of an assertion, read without checking anything: which
/// client's keys to check it with, when the request has no `client_id`
/// (RFC 7523 §3: `sub` is the client id). `None` if it cannot be read.
pub fn unverified_subject(assertion: &str) -> Option<String> {
    let (_, payload, _) = split(assertion).ok()?;
    let claims = json_object(payload).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// The `kid` of an assertion's header, read without checking anything:
/// which key to fetch, when keys are fetched.
pub fn unverified_kid(assertion: &str) -> Option<String> {
    let (header, _, _) = split(assertion).ok()?;
    json_object(header)
        .ok()?
        .get("kid")?
        .as_str()
        .map(str::to_owned)
}

/// The `iss` of an assertion, read without checking anything: whose keys
/// to check it with (the client's own, or an issuer the client trusts).
pub fn unverified_issuer(assertion: &str) -> Option<String> {
    let (_, payload, _) = split(assertion).ok()?;
    json_object(payload)
        .ok()?
        .get("iss")?
        .as_str()
        .map(str::to_owned)
}

/// The three parts of a JWS in compact serialisation (RFC 7515 §7.1).
fn split(jwt: &str) -> Result<(&str, &str, &str), Refused> {
    let mut parts = jwt.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(Refused("the assertion is not a JWS in compact form")),
    }
}

fn b64(part: &str) -> Result<Vec<u8>, Refused> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refused("the assertion is not base64url"))
}

fn json_object(part: &str) -> Result<Map<String, Value>, Refused> {
    match serde_json::from_slice(&b64(part)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refused(
            "the assertion's header or claims are not a JSON object",
        )),
    }
}

/// A NumericDate (RFC 7519 §2), whole seconds.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refused> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f.floor() as i64)
        }) {
            Some(t) => Ok(Some(t)),
            None => Err(Refused("a time claim is not a number")),
        },
    }
}

/// Checks a client assertion for the client `client_id`, whose registered
/// keys are `keys`, at time `now`.
pub fn verify(
    assertion: &str,
    client_id: &str,
    keys: &ClientKeys,
    audience: &Audience,
    now: i64,
) -> Result<Verified, Refused> {
    let claims = verify_signature(assertion, keys, ASSERTION_TYPES)?;
    check_claims(&claims, client_id, audience, now)
}

/// Checks a token an external issuer signed (workload identity) with that
/// issuer's keys, then against the client's rules for that issuer: one must
/// match. `exp`, `nbf`, `iat` and the lifetime are checked as for a client's
/// own assertion; `jti` is recorded when present (RFC 7523 §3 item 7 makes
/// it optional; issuers such as GitHub Actions and Kubernetes send one).
pub fn verify_external(
    assertion: &str,
    keys: &ClientKeys,
    rules: &[TrustRuleRecord],
    issuer: &str,
    default_audience: &str,
    now: i64,
) -> Result<Verified, Refused> {
    let claims = verify_signature(assertion, keys, ASSERTION_TYPES)?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Refused("'iss' is not the trusted issuer"));
    }
    let mut refused = Refused("no trust rule of the client names the issuer");
    let rule_matched = rules.iter().filter(|r| r.issuer == issuer).any(|rule| {
        let audience = Audience {
            issuer: rule
                .audience
                .as_deref()
                .unwrap_or(default_audience)
                .to_owned(),
            token_endpoints: vec![],
        };
        let checked = check_audience(claims.get("aud"), &audience)
            .map_err(|_| Refused("'aud' is not the trust rule's audience"))
            .and_then(|()| super::trust::matches(rule, &claims));
        match checked {
            Ok(()) => true,
            Err(e) => {
                refused = e;
                false
            }
        }
    });
    if !rule_matched {
        return Err(refused);
    }
    let (exp, jti) = check_times(&claims, now, Jti::Optional)?;
    Ok(Verified {
        jti,
        replay_until: exp + SKEW,
        replay_scope: issuer.to_owned(),
    })
}

/// The `typ`s of a client assertion, lowercased, without `application/`:
/// draft-ietf-oauth-rfc7523bis's explicit type, or plain `JWT`.
const ASSERTION_TYPES: &[&str] = &["jwt", ASSERTION_TYP];

/// The header picks the key, the signature is checked; only then are the
/// claims read. `types`: the `typ` values accepted (lowercase).
pub(super) fn verify_signature(
    assertion: &str,
    keys: &ClientKeys,
    types: &[&str],
) -> Result<Map<String, Value>, Refused> {
    let (header_b64, payload_b64, signature_b64) = split(assertion)?;
    let header = json_object(header_b64)?;
    let algorithm = check_header(&header, types)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(Refused("'kid' is not a string")),
    };
    if let Some(kid) = kid {
        if !keys.has_kid(kid) {
            return Err(Refused("no registered key has the assertion's 'kid'"));
        }
    }
    let signature = b64(signature_b64)?;
    let signing_input = &assertion.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let mut candidates = keys.candidates(algorithm, kid).peekable();
    if candidates.peek().is_none() {
        return Err(Refused(
            "no registered key is for the assertion's algorithm",
        ));
    }
    if !candidates.any(|k| k.verifies(signing_input, &signature)) {
        return Err(Refused("the assertion's signature does not verify"));
    }
    json_object(payload_b64)
}

/// RFC 7515 §4.1: `alg` one the client's keys may have (never `none`, never
/// an HMAC); `typ` absent or one of `types` (for a client assertion `JWT`
/// or `client-authentication+jwt`, draft-ietf-oauth-rfc7523bis; another
/// type is another kind of token); no `crit` extension, since Writ
/// understands none (RFC 7515 §4.1.11).
fn check_header(
    header: &Map<String, Value>,
    types: &[&str],
) -> Result<AssertionAlgorithm, Refused> {
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Refused("the assertion's header has no 'alg'"))?
        .parse::<AssertionAlgorithm>()
        .map_err(|()| {
            Refused("the assertion's 'alg' is not an asymmetric signature Writ verifies")
        })?;
    if let Some(typ) = header.get("typ") {
        let typ = typ.as_str().ok_or(Refused("'typ' is not a string"))?;
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if !types.contains(&typ) {
            return Err(Refused(if types.contains(&ASSERTION_TYP) {
                "the assertion's 'typ' is neither JWT nor client-authentication+jwt"
            } else {
                "the SVID's 'typ' is neither JWT nor JOSE"
            }));
        }
    }
    if header.contains_key("crit") {
        return Err(Refused("the assertion names critical header extensions"));
    }
    Ok(algorithm)
}

fn check_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    audience: &Audience,
    now: i64,
) -> Result<Verified, Refused> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // RFC 7523 §3 items 1 and 2.B: both the client id.
    if text("iss") != Some(client_id) {
        return Err(Refused("'iss' is not the client id"));
    }
    if text("sub") != Some(client_id) {
        return Err(Refused("'sub' is not the client id"));
    }
    check_audience(claims.get("aud"), audience)?;
    let (exp, jti) = check_times(claims, now, Jti::Required)?;
    Ok(Verified {
        jti,
        replay_until: exp + SKEW,
        replay_scope: client_id.to_owned(),
    })
}

/// RFC 7523 §3 items 4 to 7: `exp` (required, bounded), `nbf`, `iat`, and
/// `jti` as `jti` says.
pub(super) fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    jti: Jti,
) -> Result<(i64, Option<String>), Refused> {
    // RFC 7523 §3 item 4: `exp` is required; bounded here, since its `jti`
    // is remembered until then.
    let exp = numeric_date(claims, "exp")?.ok_or(Refused("the assertion has no 'exp'"))?;
    if exp + SKEW <= now {
        return Err(Refused("the assertion has expired"));
    }
    if exp > now + MAX_LIFETIME + SKEW {
        return Err(Refused("the assertion's 'exp' is too far ahead"));
    }
    // Items 5 and 6: not before `nbf`, not issued in the future.
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now + SKEW) {
        return Err(Refused("the assertion is not valid yet ('nbf')"));
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > now + SKEW) {
        return Err(Refused("the assertion was issued in the future ('iat')"));
    }
    // Item 7 and OpenID Connect Core §9: `jti` is required, used once.
    let jti = match (claims.get("jti"), jti) {
        (_, Jti::Ignored) | (None, Jti::Optional) => return Ok((exp, None)),
        (jti, _) => jti
            .and_then(Value::as_str)
            .ok_or(Refused("the assertion has no 'jti'"))?,
    };
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(Refused("the assertion's 'jti' is empty or too long"));
    }
    Ok((exp, Some(jti.to_owned())))
}

/// RFC 7523 §3 item 3 as draft-ietf-oauth-rfc7523bis tightens it after the
/// audience-injection attacks (CVE-2025-27370, CVE-2025-27371): the
/// audience is this server's issuer identifier and nothing else, a string
/// or an array holding only it. An array with another value beside it
/// could be a token meant for someone else that also names us.
pub(super) fn check_audience(aud: Option<&Value>, audience: &Audience) -> Result<(), Refused> {
    let single = match aud {
        Some(Value::String(a)) => a,
        Some(Value::Array(values)) => match values.as_slice() {
            [Value::String(a)] => a,
            _ => return Err(Refused("'aud' must hold only the issuer identifier")),
        },
        _ => return Err(Refused("the assertion has no 'aud'")),
    };
    if audience.names_us(single) {
        Ok(())
    } else {
        Err(Refused("'aud' is not the issuer identifier"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::b64url;
    use aws_lc_rs::signature::{
        EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    };
    use serde_json::json;

    const ISSUER: &str = "https://auth.example.com";
    const CLIENT: &str = "client-1";
    const NOW: i64 = 1_800_000_000;

    struct Signer {
        pair: EcdsaKeyPair,
        keys: ClientKeys,
    }

    fn signer() -> Signer {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..])}]});
        let keys = ClientKeys::parse(&jwks.to_string()).unwrap();
        Signer { pair, keys }
    }

    impl Signer {
        fn sign(&self, header: Value, claims: Value) -> String {
            let input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let sig = self.pair.sign(&rng, input.as_bytes()).unwrap();
            format!("{input}.{}", b64url(sig.as_ref()))
        }
    }

    fn header() -> Value {
        json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})
    }

    fn claims() -> Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": NOW + 60,
               "iat": NOW, "jti": "j-1"})
    }

    fn audience() -> Audience {
        Audience {
            issuer: ISSUER.into(),
            token_endpoints: vec![],
        }
    }

    fn check(s: &Signer, header: Value, claims: Value) -> Result<Verified, Refused> {
        verify(&s.sign(header, claims), CLIENT, &s.keys, &audience(), NOW)
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value;
        }
        claims
    }

    #[test]
    fn rfc7523_3_a_well_formed_assertion_passes_and_names_its_jti() {
        let s = signer();
        assert_eq!(
            check(&s, header(), claims()).unwrap(),
            Verified {
                jti: Some("j-1".into()),
                replay_until: NOW + 60 + SKEW,
                replay_scope: CLIENT.into(),
            }
        );
        // Without `kid`, every key of the algorithm is tried; the explicit type.
        let h = json!({"alg": "ES256", "typ": "client-authentication+jwt"});
        assert!(check(&s, h, claims()).is_ok());
    }

    #[test]
    fn rfc7523_3_iss_and_sub_must_be_the_client_id() {
        let s = signer();
        for name in ["iss", "sub"] {
            for value in [json!("other"), json!(null), json!(1)] {
                let err = check(&s, header(), with(claims(), name, value.clone())).unwrap_err();
                assert!(err.0.contains(name), "{name}={value}: {err:?}");
            }
        }
    }

    #[test]
    fn rfc7523_3_aud_must_be_the_issuer_alone() {
        let s = signer();
        let ok = |aud: Value| check(&s, header(), with(claims(), "aud", aud));
        assert!(ok(json!(ISSUER)).is_ok());
        assert!(ok(json!([ISSUER])).is_ok());
        for bad in [
            json!("https://auth.example.com/"),
            json!("https://auth.example.com/oauth/token"),
            json!([ISSUER, "https://rp.example.com"]),
            json!(["https://rp.example.com", ISSUER]),
            json!([ISSUER, ISSUER]),
            json!([]),
            json!(null),
            json!(7),
        ] {
            assert!(ok(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc7523_3_the_token_endpoint_is_an_audience_only_when_configured() {
        let s = signer();
        let endpoint = format!("{ISSUER}/oauth/token");
        let jwt = s.sign(header(), with(claims(), "aud", json!(endpoint)));
        assert!(verify(&jwt, CLIENT, &s.keys, &audience(), NOW).is_err());
        let lenient = Audience {
            token_endpoints: vec![endpoint.clone()],
            ..audience()
        };
        assert!(verify(&jwt, CLIENT, &s.keys, &lenient, NOW).is_ok());
        // Still a single value: not the issuer and the endpoint together.
        let both = s.sign(header(), with(claims(), "aud", json!([ISSUER, endpoint])));
        assert!(verify(&both, CLIENT, &s.keys, &lenient, NOW).is_err());
    }

    #[test]
    fn rfc7523_3_exp_is_required_and_bounded() {
        let s = signer();
        let at = |exp: Value| check(&s, header(), with(claims(), "exp", exp));
        assert_eq!(at(json!(null)).unwrap_err().0, "the assertion has no 'exp'");
        assert_eq!(
            at(json!(NOW - SKEW)).unwrap_err().0,
            "the assertion has expired"
        );
        assert!(at(json!(NOW - SKEW + 1)).is_ok(), "within the skew");
        assert!(at(json!(NOW + MAX_LIFETIME + SKEW)).is_ok());
        assert_eq!(
            at(json!(NOW + MAX_LIFETIME + SKEW + 1)).unwrap_err().0,
            "the assertion's 'exp' is too far ahead"
        );
        assert!(at(json!("soon")).is_err());
        assert!(
            at(json!((NOW + 30) as f64 + 0.5)).is_ok(),
            "a NumericDate may have a fraction"
        );
    }

    #[test]
    fn rfc7523_3_nbf_and_iat_allow_a_small_skew() {
        let s = signer();
        for name in ["nbf", "iat"] {
            assert!(check(&s, header(), with(claims(), name, json!(NOW + SKEW))).is_ok());
            assert!(check(&s, header(), with(claims(), name, json!(NOW + SKEW + 1))).is_err());
        }
    }

    #[test]
    fn oidc_core_9_jti_is_required() {
        let s = signer();
        for jti in [
            json!(null),
            json!(""),
            json!(5),
            json!("x".repeat(MAX_JTI_BYTES + 1)),
        ] {
            assert!(
                check(&s, header(), with(claims(), "jti", jti.clone())).is_err(),
                "{jti}"
            );
        }
    }

    #[test]
    fn rfc7515_a_signature_by_another_key_is_refused() {
        let s = signer();
        let other = signer();
        let jwt = other.sign(header(), claims());
        let err = verify(&jwt, CLIENT, &s.keys, &audience(), NOW).unwrap_err();
        assert_eq!(err.0, "the assertion's signature does not verify");
        // A tampered payload, with the signature of the original.
        let good = s.sign(header(), claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = b64url(
            with(claims(), "sub", json!("victim"))
                .to_string()
                .as_bytes(),
        );
        parts[1] = &forged;
        assert!(verify(&parts.join("."), CLIENT, &s.keys, &audience(), NOW).is_err());
    }

    #[test]
    fn rfc7518_none_and_hmac_are_refused() {
        let s = signer();
        let body = |alg: &str| {
            format!(
                "{}.{}",
                b64url(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes()),
                b64url(claims().to_string().as_bytes())
            )
        };
        // `none`: an empty signature.
        let none = format!("{}.", body("none"));
        assert!(verify(&none, CLIENT, &s.keys, &audience(), NOW).is_err());
        // HS256 keyed with the public key's bytes (the JWK as registered).
        let public = s.pair.public_key().as_ref().to_vec();
        let input = body("HS256");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let hs = format!("{input}.{}", b64url(tag.as_ref()));
        let err = verify(&hs, CLIENT, &s.keys, &audience(), NOW).unwrap_err();
        assert!(err.0.contains("'alg'"), "{err:?}");
    }

    #[test]
    fn rfc7515_an_unknown_kid_or_another_algorithm_finds_no_key() {
        let s = signer();
        let err = check(&s, json!({"alg": "ES256", "kid": "k9"}), claims()).unwrap_err();
        assert_eq!(err.0, "no registered key has the assertion's 'kid'");
        // An Ed25519 signature under an ES256 key's id.
        let ed = Ed25519KeyPair::generate().unwrap();
        let input = format!(
            "{}.{}",
            b64url(json!({"alg": "EdDSA", "kid": "k1"}).to_string().as_bytes()),
            b64url(claims().to_string().as_bytes())
        );
        let jwt = format!("{input}.{}", b64url(ed.sign(input.as_bytes()).as_ref()));
        let err = verify(&jwt, CLIENT, &s.keys, &audience(), NOW).unwrap_err();
        assert_eq!(err.0, "no registered key is for the assertion's algorithm");
    }

    #[test]
    fn draft_rfc7523bis_typ_is_jwt_or_client_authentication() {
        let s = signer();
        for typ in [
            "JWT",
            "jwt",
            "client-authentication+jwt",
            "application/client-authentication+jwt",
        ] {
            let h = json!({"alg": "ES256", "kid": "k1", "typ": typ});
            assert!(check(&s, h, claims()).is_ok(), "{typ}");
        }
        for typ in ["at+jwt", "dpop+jwt", "secevent+jwt"] {
            let h = json!({"alg": "ES256", "kid": "k1", "typ": typ});
            assert!(check(&s, h, claims()).is_err(), "{typ}");
        }
        let crit = json!({"alg": "ES256", "kid": "k1", "crit": ["exp"], "exp": 1});
        assert!(check(&s, crit, claims()).is_err());
    }

    #[test]
    fn malformed_assertions_are_refused() {
        let s = signer();
        for jwt in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", "W10.e30.AA"] {
            assert!(
                verify(jwt, CLIENT, &s.keys, &audience(), NOW).is_err(),
                "{jwt}"
            );
        }
    }

    #[test]
    fn the_subject_is_read_to_find_the_client() {
        let s = signer();
        assert_eq!(
            unverified_subject(&s.sign(header(), claims())).as_deref(),
            Some(CLIENT)
        );
        assert_eq!(unverified_subject("a.b.c"), None);
    }
}
