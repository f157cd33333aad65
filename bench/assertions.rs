//! Client assertions for the benchmark's `private_key_jwt` and federated
//! rows. Every token request needs a fresh assertion (its `jti` is single
//! use), so they are signed ahead of the run, one token request body a line,
//! and the load generator sends each once.
//!
//! Usage:
//!   assertions key ALG KID KEY_FILE JWKS_FILE
//!       a new ES256 or EdDSA key pair: the private half (PKCS#8, base64) to
//!       KEY_FILE, the public JWK Set to JWKS_FILE
//!   assertions sign KEY_FILE COUNT OUT ISS SUB AUD CLIENT_ID PARAMS
//!       COUNT request bodies to OUT: `PARAMS&client_id=…&client_assertion_type=…
//!       &client_assertion=…`, each assertion with its own `jti`, valid for
//!       five minutes

use std::io::Write;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn new_key(alg: &str, kid: &str, key_file: &str, jwks_file: &str) {
    let (pkcs8, mut jwk) = match alg {
        "ES256" => {
            let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let p = k.public_key().as_ref().to_vec();
            (
                k.to_pkcs8v1().unwrap().as_ref().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])}),
            )
        }
        "EdDSA" => {
            let k = Ed25519KeyPair::generate().unwrap();
            (
                k.to_pkcs8v1().unwrap().as_ref().to_vec(),
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
            )
        }
        other => panic!("no {other}: ES256 or EdDSA"),
    };
    jwk["kid"] = kid.into();
    jwk["alg"] = alg.into();
    jwk["use"] = "sig".into();
    std::fs::write(key_file, format!("{alg} {kid} {}", STANDARD.encode(pkcs8))).unwrap();
    std::fs::write(jwks_file, json!({"keys": [jwk]}).to_string()).unwrap();
}

fn load(key_file: &str) -> (String, String, Pair) {
    let text = std::fs::read_to_string(key_file).unwrap();
    let mut parts = text.split_whitespace();
    let (alg, kid, der) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
        STANDARD.decode(parts.next().unwrap()).unwrap(),
    );
    let pair = match alg.as_str() {
        "ES256" => {
            Pair::Es256(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap())
        }
        _ => Pair::EdDsa(Ed25519KeyPair::from_pkcs8(&der).unwrap()),
    };
    (alg, kid, pair)
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[allow(clippy::too_many_arguments)]
fn sign(
    key_file: &str,
    count: usize,
    out: &str,
    iss: &str,
    sub: &str,
    aud: &str,
    client_id: &str,
    params: &str,
) {
    let (alg, kid, pair) = load(key_file);
    let rng = SystemRandom::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = b64(json!({"alg": alg, "kid": kid, "typ": "JWT"})
        .to_string()
        .as_bytes());
    let prefix = format!(
        "{params}&client_id={}&client_assertion_type={}&client_assertion=",
        encode(client_id),
        encode(JWT_BEARER)
    );
    // Unique across runs too: replay records outlive a server restart.
    let mut run = [0u8; 12];
    aws_lc_rs::rand::SecureRandom::fill(&rng, &mut run).unwrap();
    let run = b64(&run);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for n in 0..count {
        let claims = json!({"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + 300,
                            "jti": format!("{run}-{n}")});
        let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let sig = match &pair {
            Pair::Es256(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Pair::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        writeln!(file, "{prefix}{input}.{}", b64(&sig)).unwrap();
    }
    file.flush().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["key", alg, kid, key_file, jwks_file] => new_key(alg, kid, key_file, jwks_file),
        ["sign", key_file, count, out, iss, sub, aud, client_id, params] => sign(
            key_file,
            count.parse().unwrap(),
            out,
            iss,
            sub,
            aud,
            client_id,
            params,
        ),
        _ => {
            eprintln!("usage: see the comment at the top of bench/assertions.rs");
            std::process::exit(2);
        }
    }
}
