//! The benchmark's ceiling: the least an HTTP token endpoint can do here.
//! It answers `POST /oauth/token` with a fixed token-shaped JSON body of
//! 228 bytes, reading (and ignoring) the request body.
//!
//! With `--sign ES256|EdDSA` each answer carries a freshly signed token
//! instead, of the size of one of Writ's (RFC 9068 claims), signed with
//! Writ's library (aws-lc-rs): the floor of a signed token, measured rather
//! than added up. It holds what no signing server avoids: hashing the
//! token's signing input, encoding the signature, and what a slower answer
//! costs the kernel (waking a load generator that went idle meanwhile).
//!
//! Usage: ceiling ADDR [--sign ES256|EdDSA]

use std::borrow::Cow;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

const BODY: &str = concat!(
    r#"{"access_token":"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJjZWlsaW5nIn0."#,
    r#"c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0","token_type":"Bearer","#,
    r#""expires_in":3600,"scope":"read","created_at":1800000000,"expires":1800003600}"#
);
/// A token's claims, as many bytes as those Writ signs.
const CLAIMS: &str = concat!(
    r#"{"iss":"http://127.0.0.1:18990","sub":"81151e893550081b9090951bdfc87685","#,
    r#""client_id":"81151e893550081b9090951bdfc87685","aud":"https://es.bench/","#,
    r#""iat":1800000000,"exp":1800003600,"jti":"Vq1m3m0bS8yBfW2x7m2kzA","scope":"read"}"#
);

enum Signer {
    None,
    Es256(EcdsaKeyPair, SystemRandom),
    EdDsa(Ed25519KeyPair),
}

impl Signer {
    /// The answer: BODY, or a token signed now over `input`.
    fn answer(&self, input: &str) -> Cow<'static, str> {
        let signature = match self {
            Signer::None => return Cow::Borrowed(BODY),
            Signer::Es256(k, rng) => k
                .sign(rng, input.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec(),
            Signer::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Cow::Owned(format!(
            r#"{{"access_token":"{input}.{}","token_type":"Bearer","expires_in":3600,"scope":"read","created_at":1800000000,"expires":1800003600}}"#,
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let signer = match (
        args.get(2).map(String::as_str),
        args.get(3).map(String::as_str),
    ) {
        (None, _) => Signer::None,
        (Some("--sign"), Some("ES256")) => Signer::Es256(
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key"),
            SystemRandom::new(),
        ),
        (Some("--sign"), Some("EdDSA")) => Signer::EdDsa(Ed25519KeyPair::generate().expect("key")),
        _ => panic!("usage: ceiling ADDR [--sign ES256|EdDSA]"),
    };
    // Writ's `kid` is a key's RFC 7638 thumbprint, a SHA-256 in base64url:
    // a shorter one would leave bytes out of the floor that every signed
    // token hashes, encodes and sends.
    let kid = URL_SAFE_NO_PAD.encode([0u8; 32]);
    let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}"}}"#);
    let input: Arc<str> = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(CLAIMS)
    )
    .into();
    let signer = Arc::new(signer);
    let app = Router::new().route(
        "/oauth/token",
        post(move |_body: Bytes| {
            let (signer, input) = (signer.clone(), input.clone());
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-store"),
                    ],
                    signer.answer(&input),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("listening on {addr}");
    axum::serve(listener, app).await.unwrap();
}
