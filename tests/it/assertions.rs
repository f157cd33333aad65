//! `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2, OpenID Connect Core §9)
//! over HTTP: a client registered with its public keys signs a JWT for each
//! token request. Every refusal is the same `invalid_client`; the reason is
//! only logged. The keys here are made with aws-lc-rs and the assertions
//! signed by hand, so each test controls every header and claim; the
//! interoperability test (`interop.rs`) signs with authlib instead.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256,
};
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{transcript, Process, Reply, Writ, NO_LIMITS};
use crate::pg::PgDb;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rsa(RsaKeyPair, bool),
    EdDsa(Ed25519KeyPair),
}

/// A client's key pair: the public JWK to register, the private half to sign.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    pair: Pair,
    pub jwk: Value,
    /// The private half as PKCS#8 DER, for client libraries that sign.
    pub pkcs8: Vec<u8>,
}

impl TestKey {
    pub fn new(alg: &'static str, kid: &str) -> Self {
        let (pair, jwk, pkcs8) = match alg {
            "ES256" => {
                let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
                let p = k.public_key().as_ref().to_vec();
                let pkcs8 = k.to_pkcs8v1().unwrap().as_ref().to_vec();
                let jwk =
                    json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
                (Pair::Es256(k), jwk, pkcs8)
            }
            "RS256" | "PS256" => {
                use aws_lc_rs::encoding::AsDer;
                let k = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let pkcs8 = k.as_der().unwrap().as_ref().to_vec();
                let public = k.public_key();
                let jwk = json!({"kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero())});
                (Pair::Rsa(k, alg == "PS256"), jwk, pkcs8)
            }
            "EdDSA" => {
                let k = Ed25519KeyPair::generate().unwrap();
                let pkcs8 = k.to_pkcs8v1().unwrap().as_ref().to_vec();
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())});
                (Pair::EdDsa(k), jwk, pkcs8)
            }
            other => panic!("no {other}"),
        };
        // The private half must never reach a log.
        transcript::secret(&b64(&pkcs8));
        let mut jwk = jwk;
        jwk["kid"] = kid.into();
        jwk["alg"] = alg.into();
        jwk["use"] = "sig".into();
        Self {
            kid: kid.into(),
            alg,
            pair,
            jwk,
            pkcs8,
        }
    }

    /// The raw bytes of the public key (the EC point, the Ed25519 key, the
    /// RSA modulus): what an HMAC confusion attack would key with.
    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Es256(k) => k.public_key().as_ref().to_vec(),
            Pair::EdDsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Rsa(k, _) => k
                .public_key()
                .modulus()
                .big_endian_without_leading_zero()
                .to_vec(),
        }
    }

    /// A JWS over `header` and `claims` (as given, `alg` included).
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Es256(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Pair::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Pair::Rsa(k, pss) => {
                let mut sig = vec![0; k.public_modulus_len()];
                let padding = if *pss {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                k.sign(padding, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
        };
        let jwt = format!("{input}.{}", b64(&sig));
        transcript::secret(&jwt);
        jwt
    }

    /// A JWS with this key's `alg` and `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(
            &json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

/// Claims a client library would send: `iss` = `sub` = the client, `aud`
/// the issuer, a minute's lifetime, a fresh `jti`.
pub fn claims(client_id: &str, audience: &str) -> Value {
    let now = now();
    json!({"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
           "exp": now + 60, "jti": b64(&writ::keys::random_bytes::<16>())})
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWK Set file holding `keys`.
fn jwks_file(w: &Writ, keys: &[&TestKey]) -> String {
    let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    let path = w.dir.path().join(format!("jwks-{}.json", keys[0].kid));
    std::fs::write(&path, set.to_string()).unwrap();
    path.display().to_string()
}

/// `client create --jwks` with these keys; the client's id.
fn register(w: &Writ, keys: &[&TestKey], extra: &[&str]) -> String {
    let file = jwks_file(w, keys);
    let mut args = vec![
        "client",
        "create",
        "--name",
        "signing-service",
        "--scope",
        "read",
        "--jwks",
        &file,
    ];
    args.extend_from_slice(extra);
    let created = w.cli(&args);
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["auth_methods"], json!(["private_key_jwt"]));
    created["client_id"].as_str().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A token request authenticated by `assertion` alone (no `client_id`).
async fn token(base: &str, assertion: &str) -> Reply {
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]);
    crate::harness::send(
        reqwest::Client::new()
            .post(format!("{base}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

/// Every authentication failure reads the same to the client.
#[track_caller]
fn assert_refused(r: &Reply, case: &str) {
    assert_eq!(r.status, 401, "{case}: {}", r.text);
    assert_eq!(
        r.json,
        json!({"error": "invalid_client", "error_description": "client authentication failed"}),
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_gets_a_token_with_es256_rs256_ps256_and_eddsa() {
    let mut w = Writ::new();
    let keys = [
        TestKey::new("ES256", "ec-1"),
        TestKey::new("RS256", "rsa-1"),
        TestKey::new("PS256", "pss-1"),
        TestKey::new("EdDSA", "ed-1"),
    ];
    let id = register(&w, &keys.iter().collect::<Vec<_>>(), &[]);
    w.start().await;
    let issuer = w.base.clone();
    for key in &keys {
        let r = token(&w.base, &key.sign(&claims(&id, &issuer))).await;
        let claims = crate::harness::claims(r.access_token());
        assert_eq!(claims["client_id"], id.as_str(), "{}", key.alg);
        assert_eq!(claims["scope"], "read");
    }
    // `client_id` beside the assertion; `aud` as an array of the issuer
    // alone; the explicit type of draft-ietf-oauth-rfc7523bis.
    let mut c = claims(&id, &issuer);
    c["aud"] = json!([issuer]);
    let typed = keys[0].sign_raw(
        &json!({"alg": "ES256", "kid": "ec-1", "typ": "client-authentication+jwt"}),
        &c,
    );
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &typed),
    ]);
    w.post_form("/oauth/token", &body).await.access_token();
    // The same authentication at the introspection endpoint.
    let t = token(&w.base, &keys[3].sign(&claims(&id, &issuer))).await;
    let body = form(&[
        ("token", t.access_token()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &keys[3].sign(&claims(&id, &issuer))),
    ]);
    let r = w.post_form("/oauth/introspect", &body).await;
    assert_eq!(r.json["active"], true, "{}", r.text);
}

/// Each check of RFC 7523 §3 (with draft-ietf-oauth-rfc7523bis's `aud`),
/// one request each: all are `invalid_client`, and the server's log names
/// the reason.
/// A Rust client as its users write one: the `oauth2` crate sends the
/// request and `jsonwebtoken` signs the assertion (ES256, then EdDSA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_oauth2_with_a_jsonwebtoken_assertion() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use oauth2::basic::BasicClient;
    use oauth2::{AuthType, ClientId, Scope, TokenResponse, TokenUrl};

    let mut w = Writ::new();
    let ec = TestKey::new("ES256", "ec-lib");
    let ed = TestKey::new("EdDSA", "ed-lib");
    let id = register(&w, &[&ec, &ed], &[]);
    w.start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(w.url("/oauth/token")).unwrap());
    for (key, alg, encoding) in [
        (&ec, Algorithm::ES256, EncodingKey::from_ec_der(&ec.pkcs8)),
        (&ed, Algorithm::EdDSA, EncodingKey::from_ed_der(&ed.pkcs8)),
    ] {
        let mut header = Header::new(alg);
        header.kid = Some(key.kid.clone());
        let assertion = encode(&header, &claims(&id, &w.base), &encoding).unwrap();
        transcript::secret(&assertion);
        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new("read".into()))
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", assertion)
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        transcript::secret(token.access_token().secret());
        assert_eq!(token.scopes().unwrap(), &vec![Scope::new("read".into())]);
        let cl = crate::harness::verify(
            token.access_token().secret(),
            &w.jwks().await,
            &w.base,
            &w.base,
        );
        assert_eq!(cl["client_id"], id.as_str(), "{alg:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_refuses_with_invalid_client_and_logs_why() {
    let w = Writ::new();
    let key = TestKey::new("ES256", "k1");
    let other = TestKey::new("ES256", "k1");
    let id = register(&w, &[&key], &[]);
    // A server without back-off, so that every case is judged on its own.
    let config = w.config_file("writ.toml", NO_LIMITS);
    let node = w.spawn(&["--config", config.to_str().unwrap()], &[]);
    let issuer = node.base.clone();
    let base = |c: &mut Value, name: &str, v: Value| {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(name);
        } else {
            c[name] = v;
        }
    };
    let claim = |name: &str, v: Value| {
        let mut c = claims(&id, &issuer);
        base(&mut c, name, v);
        c
    };
    let none = |c: &Value| {
        let h = b64(json!({"alg": "none", "kid": "k1"}).to_string().as_bytes());
        let jwt = format!("{h}.{}.", b64(c.to_string().as_bytes()));
        transcript::secret(&jwt);
        jwt
    };
    let hmac = |c: &Value, secret: &[u8]| {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "HS256", "kid": "k1"}).to_string().as_bytes()),
            b64(c.to_string().as_bytes())
        );
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            input.as_bytes(),
        );
        let jwt = format!("{input}.{}", b64(mac.as_ref()));
        transcript::secret(&jwt);
        jwt
    };
    let registered_jwk = json!({"keys": [key.jwk]}).to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "aud another server",
            key.sign(&claim("aud", json!("https://elsewhere.example"))),
            "'aud' is not the issuer identifier",
        ),
        (
            "aud the token endpoint",
            key.sign(&claim("aud", json!(format!("{issuer}/oauth/token")))),
            "'aud' is not the issuer identifier",
        ),
        (
            "aud an array with a second value",
            key.sign(&claim("aud", json!([issuer, "https://rp.example"]))),
            "'aud' must hold only the issuer identifier",
        ),
        (
            "no aud",
            key.sign(&claim("aud", Value::Null)),
            "the assertion has no 'aud'",
        ),
        (
            "expired",
            key.sign(&claim("exp", json!(now() - 120))),
            "the assertion has expired",
        ),
        (
            "exp too far ahead",
            key.sign(&claim("exp", json!(now() + 7200))),
            "'exp' is too far ahead",
        ),
        (
            "no exp",
            key.sign(&claim("exp", Value::Null)),
            "the assertion has no 'exp'",
        ),
        (
            "nbf in the future",
            key.sign(&claim("nbf", json!(now() + 600))),
            "not valid yet",
        ),
        (
            "iss another client",
            key.sign(&claim("iss", json!("someone-else"))),
            "'iss' is not the client id",
        ),
        (
            "no jti",
            key.sign(&claim("jti", Value::Null)),
            "the assertion has no 'jti'",
        ),
        (
            "signed by another key with the same kid",
            other.sign(&claims(&id, &issuer)),
            "signature does not verify",
        ),
        (
            "an unknown kid",
            key.sign_raw(&json!({"alg": "ES256", "kid": "k2"}), &claims(&id, &issuer)),
            "no registered key has the assertion's 'kid'",
        ),
        (
            "alg none",
            none(&claims(&id, &issuer)),
            "is not an asymmetric signature",
        ),
        (
            "HS256 keyed with the public key's bytes",
            hmac(&claims(&id, &issuer), &key.public_bytes()),
            "is not an asymmetric signature",
        ),
        (
            "HS256 keyed with the registered JWK Set",
            hmac(&claims(&id, &issuer), registered_jwk.as_bytes()),
            "is not an asymmetric signature",
        ),
        (
            "typ of an access token",
            key.sign_raw(
                &json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}),
                &claims(&id, &issuer),
            ),
            "'typ' is neither",
        ),
    ];
    for (case, assertion, _) in &cases {
        assert_refused(&token(&node.base, assertion).await, case);
    }
    // The control: the same key and claims, well formed, pass.
    token(&node.base, &key.sign(&claims(&id, &issuer)))
        .await
        .access_token();
    let log = wait_for_log(&node, cases.len()).await;
    for (case, _, reason) in &cases {
        assert!(
            log.contains(reason),
            "{case}: '{reason}' not logged:\n{log}"
        );
    }
}

/// The reasons are logged as the refusals are answered; give the reader
/// thread a moment.
async fn wait_for_log(node: &Process, refusals: usize) -> String {
    for _ in 0..100 {
        let log = node.output();
        if log.matches("client authentication failed").count() >= refusals {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    node.output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_assertion_is_refused() {
    let mut w = Writ::new();
    let key = TestKey::new("EdDSA", "ed");
    let id = register(&w, &[&key], &[]);
    w.start().await;
    let assertion = key.sign(&claims(&id, &w.base));
    token(&w.base, &assertion).await.access_token();
    assert_refused(&token(&w.base, &assertion).await, "replayed");
    // A fresh jti is fine.
    token(&w.base, &key.sign(&claims(&id, &w.base)))
        .await
        .access_token();
    // Sent many times at once, so the copies share a commit: one token.
    let assertion = key.sign(&claims(&id, &w.base));
    let copies = (0..24).map(|_| token(&w.base, &assertion));
    let replies = futures_util::future::join_all(copies).await;
    let granted = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(granted, 1, "one of 24 concurrent copies");
    // The rest are refused; once the failures mount, by the back-off.
    for r in replies.iter().filter(|r| r.status != 200) {
        if r.status == 429 {
            assert_eq!(r.json["error"], "slow_down", "{}", r.text);
        } else {
            assert_refused(r, "a concurrent copy");
        }
    }
}

/// Two nodes on one PostgreSQL database: an assertion spent on one is
/// refused by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_refused_on_another_node() {
    let db = PgDb::create().await;
    let w = Writ::on_postgres(&db.url);
    let key = TestKey::new("ES256", "node-key");
    let id = register(&w, &[&key], &[]);
    let issuer = "https://auth.example.test";
    let a = w.spawn(&["--issuer", issuer], &[]);
    let b = w.spawn(&["--issuer", issuer], &[]);
    let assertion = key.sign(&claims(&id, issuer));
    token(&a.base, &assertion).await.access_token();
    assert_refused(&token(&b.base, &assertion).await, "replayed on node b");
    assert_refused(&token(&a.base, &assertion).await, "replayed on node a");
    // Both nodes accept fresh ones.
    token(&b.base, &key.sign(&claims(&id, issuer)))
        .await
        .access_token();
    drop((a, b));
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_assertions_count_toward_the_back_off() {
    let mut w = Writ::new();
    let key = TestKey::new("ES256", "k");
    let id = register(&w, &[&key], &[]);
    w.start().await;
    for _ in 0..5 {
        let mut c = claims(&id, &w.base);
        c["aud"] = json!("https://elsewhere.example");
        assert_refused(&token(&w.base, &key.sign(&c)).await, "wrong aud");
    }
    // Now even a good assertion from this address waits.
    let r = token(&w.base, &key.sign(&claims(&id, &w.base))).await;
    assert_eq!(r.status, 429, "{}", r.text);
}

/// `[client_assertions] accept_token_endpoint_audience`, for client
/// libraries that send the token endpoint URL: accepted as a single value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_audience_is_accepted_only_when_configured() {
    let mut w = Writ::new();
    let key = TestKey::new("RS256", "r");
    let id = register(&w, &[&key], &[]);
    let config = w.config_with_file("[client_assertions]\naccept_token_endpoint_audience = true\n");
    w.start_configured(config).await;
    let endpoint = format!("{}/oauth/token", w.base);
    let mut c = claims(&id, &w.base);
    c["aud"] = json!(endpoint);
    token(&w.base, &key.sign(&c)).await.access_token();
    c["jti"] = "another".into();
    c["aud"] = json!([w.base, endpoint]);
    assert_refused(&token(&w.base, &key.sign(&c)).await, "two audiences");
}

/// RFC 6749 §2.3: one method per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_with_a_secret_is_invalid_request() {
    let mut w = Writ::new();
    let key = TestKey::new("ES256", "k");
    let id = register(&w, &[&key], &[]);
    w.start().await;
    let assertion = key.sign(&claims(&id, &w.base));
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", "writ_sk_not_a_real_secret_at_all"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion),
    ]);
    w.post_form("/oauth/token", &body)
        .await
        .assert_error(400, "invalid_request");
    let r = w
        .send(
            w.http
                .post(w.url("/oauth/token"))
                .header("authorization", crate::harness::basic(&id, "x"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ]),
        )
        .await;
    r.assert_error(400, "invalid_request");
}

/// The admin rules, through the CLI: keys, not secrets; public keys only;
/// a client limited to some methods is refused the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_register_public_keys_and_may_be_limited_to_methods() {
    let mut w = Writ::new();
    let key = TestKey::new("EdDSA", "ed");
    let id = register(&w, &[&key], &[]);
    let shown = w.cli(&["client", "show", &id]);
    assert_eq!(shown["auth_methods"], json!(["private_key_jwt"]));
    assert_eq!(shown["jwks"]["keys"][0]["kid"], "ed");
    assert_eq!(shown["secrets"], json!([]));
    let err = w.cli_err(&["client", "rotate-secret", &id]);
    assert!(err.contains("has no secret"), "{err}");

    // A private key is refused, and so is a set with nothing usable.
    let mut private = key.jwk.clone();
    private["d"] = b64(&[9; 32]).into();
    transcript::secret(private["d"].as_str().unwrap());
    let path = w.dir.path().join("private.json");
    std::fs::write(&path, json!({"keys": [private]}).to_string()).unwrap();
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--jwks",
        path.to_str().unwrap(),
    ]);
    assert!(err.contains("private member 'd'"), "{err}");
    assert!(!err.contains(private["d"].as_str().unwrap()), "{err}");
    std::fs::write(&path, r#"{"keys": []}"#).unwrap();
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--jwks",
        path.to_str().unwrap(),
    ]);
    assert!(err.contains("no public signing key"), "{err}");
    let err = w.cli_err(&[
        "client",
        "create",
        "--name",
        "x",
        "--auth-method",
        "private_key_jwt",
    ]);
    assert!(err.contains("cannot use private_key_jwt"), "{err}");

    // A secret client limited to Basic: the body is refused.
    let basic_only = w.client(&["--scope", "read", "--auth-method", "client_secret_basic"]);
    let shown = w.cli(&["client", "show", &basic_only.id]);
    assert_eq!(shown["auth_methods"], json!(["client_secret_basic"]));
    w.start().await;
    assert_refused(
        &w.token(&basic_only, "").await,
        "post by a basic-only client",
    );
    w.remote().request_token(&basic_only).await.access_token();
    // A client with keys has no secret to send, and no id-alone access.
    assert_refused(
        &w.post_form(
            "/oauth/token",
            &format!("grant_type=client_credentials&client_id={id}"),
        )
        .await,
        "a key client with its id alone",
    );
    // Its keys can be replaced: the old one stops working.
    let new = TestKey::new("ES256", "ec-new");
    let file = jwks_file(&w, &[&new]);
    w.cli(&["client", "update", &id, "--jwks", &file]);
    crate::harness::eventually(std::time::Duration::from_secs(5), || async {
        token(&w.base, &new.sign(&claims(&id, &w.base)))
            .await
            .status
            == 200
    })
    .await;
    assert_refused(
        &token(&w.base, &key.sign(&claims(&id, &w.base))).await,
        "the replaced key",
    );
}

/// The replay records expire with their assertions and are purged with
/// expired tokens; a `jti` may be used again once its record expired.
#[tokio::test]
async fn replay_records_expire_and_are_purged() {
    let db = PgDb::create().await;
    for w in [Writ::new(), Writ::on_postgres(&db.url)] {
        w.cli(&["init"]);
        let store = writ::store::Store::open(&writ::store::Location::parse(&w.database()).unwrap())
            .await
            .unwrap();
        assert!(store.record_assertion("c", "j", 200, 100).await.unwrap());
        assert!(!store.record_assertion("c", "j", 200, 150).await.unwrap());
        assert!(store
            .record_assertion("other", "j", 200, 150)
            .await
            .unwrap());
        // Expired: taken over by a new assertion with the same jti.
        assert!(store.record_assertion("c", "j", 400, 200).await.unwrap());
        assert!(!store.record_assertion("c", "j", 400, 300).await.unwrap());
        assert_eq!(
            store.purge_expired(300, 100).await.unwrap(),
            1,
            "'other' expired"
        );
        assert!(store
            .record_assertion("other", "j", 500, 300)
            .await
            .unwrap());
        // A batch (group commit) answers each use in order: a jti twice in
        // one batch is a replay the second time; recorded ones stay spent;
        // more than one statement's worth of rows.
        let use_of = |client: &str, jti: String| writ::store::Replay {
            client_id: client.into(),
            jti,
            expires_at: 900,
            now: 400,
        };
        let mut batch: Vec<_> = (0..250).map(|n| use_of("c", format!("b{n}"))).collect();
        batch.push(use_of("c", "b7".into()));
        batch.push(use_of("other", "j".into()));
        batch.push(use_of("other", "b7".into()));
        let answers = store.record_assertions(&batch).await.unwrap();
        assert!(answers[..250].iter().all(|&fresh| fresh));
        assert_eq!(answers[250..], [false, false, true]);
        assert_eq!(
            store.record_assertions(&batch[..3]).await.unwrap(),
            [false, false, false]
        );
        store.close().await;
    }
}
