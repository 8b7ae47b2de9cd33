//! Shared helpers of the gateway's tests: the committed test keys (`fixtures/keys.json`), a JWKS
//! of them, token signing, and claim sets relative to now.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const AUDIENCE: &str = "ferry-test";
pub const HMAC_SECRET: &[u8] = b"a-test-only-hmac-secret-of-32-bytes!";

pub fn fixtures() -> Value {
    serde_json::from_str(include_str!("../fixtures/keys.json")).unwrap()
}

pub fn der(name: &str) -> Vec<u8> {
    STANDARD
        .decode(fixtures()[name]["private_der"].as_str().unwrap())
        .unwrap()
}

pub fn public_jwk(name: &str, kid: &str) -> Value {
    let mut jwk = fixtures()[name]["jwk"].clone();
    jwk["kid"] = json!(kid);
    jwk
}

pub fn hmac_jwk(kid: Option<&str>) -> Value {
    let mut jwk = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(HMAC_SECRET)});
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

/// A JWKS with one key per supported family, each with a kid: hs, rsa, ec256, ec384, ed.
pub fn jwks() -> Value {
    json!({"keys": [
        hmac_jwk(Some("hs")),
        public_jwk("rsa", "rsa"),
        public_jwk("ec256", "ec256"),
        public_jwk("ec384", "ec384"),
        public_jwk("ed25519", "ed"),
    ]})
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims for user `u1`: issued now, expiring in an hour.
pub fn claims() -> Value {
    json!({"sub": "u1", "iat": now(), "exp": now() + 3600, "aud": AUDIENCE})
}

pub fn encoding_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(HMAC_SECRET)
        }
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            EncodingKey::from_rsa_der(&der("rsa"))
        }
        Algorithm::ES256 => EncodingKey::from_ec_der(&der("ec256")),
        Algorithm::ES384 => EncodingKey::from_ec_der(&der("ec384")),
        Algorithm::EdDSA => EncodingKey::from_ed_der(&der("ed25519")),
        other => panic!("no test key for {other:?}"),
    }
}

pub fn kid_for(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "hs",
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => "rsa",
        Algorithm::ES256 => "ec256",
        Algorithm::ES384 => "ec384",
        Algorithm::EdDSA => "ed",
        other => panic!("no test key for {other:?}"),
    }
}

/// Signs `claims` with the test key of `alg`, naming `kid`.
pub fn sign_with(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Signs `claims` with the test key of `alg` and its kid.
pub fn sign(alg: Algorithm, claims: &Value) -> String {
    sign_with(alg, Some(kid_for(alg)), claims, &encoding_key(alg))
}

/// A token with a hand-written header and payload and a fake signature.
pub fn raw_token(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(b"not-a-signature")
    )
}
