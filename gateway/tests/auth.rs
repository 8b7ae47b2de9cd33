//! JWT verification (PROTOCOL.md §3.6): good tokens of every supported algorithm, and bad tokens
//! each refused with the right `PSYNC_S21xx` code. Keys are committed fixtures.

mod common;

use common::*;
use ferry_gateway::auth::jwt::ClaimRules;
use ferry_gateway::auth::keys::KeySet;
use ferry_gateway::auth::{AuthError, Authenticator, Claims};
use ferry_gateway::config::AuthConfig;
use ferry_protocol::ErrorCode;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

fn rules() -> ClaimRules {
    ClaimRules {
        audiences: vec![AUDIENCE.to_owned(), "other-app".to_owned()],
        max_lifetime_secs: 86_400,
        leeway_secs: 60,
    }
}

fn authenticator_with(jwks: Value) -> Authenticator {
    let (keys, skipped) = KeySet::from_jwks(&jwks, true).unwrap();
    assert!(skipped.is_empty());
    Authenticator::with_keys(keys, rules())
}

fn authenticator() -> Authenticator {
    authenticator_with(jwks())
}

async fn verify(token: &str) -> Result<Claims, AuthError> {
    authenticator().verify(token).await
}

async fn refused(token: &str) -> AuthError {
    match verify(token).await {
        Ok(claims) => panic!("token accepted: {claims:?}"),
        Err(e) => {
            assert!(
                !e.description.contains(token),
                "description leaks the token"
            );
            e
        }
    }
}

async fn assert_refused(token: &str, code: ErrorCode, words: &str) {
    let e = refused(token).await;
    assert_eq!(e.code, code, "{e}");
    assert!(
        e.description.contains(words),
        "expected {words:?} in {:?}",
        e.description
    );
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

// ---- accepted ------------------------------------------------------------------------------

#[tokio::test]
async fn every_supported_algorithm_is_accepted() {
    for alg in [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let claims = verify(&sign(alg, &claims()))
            .await
            .unwrap_or_else(|e| panic!("{alg:?} refused: {e}"));
        assert_eq!(claims.sub, "u1", "{alg:?}");
        assert_eq!(claims.payload["aud"], AUDIENCE);
    }
}

#[tokio::test]
async fn both_authorization_schemes_are_accepted() {
    let token = sign(Algorithm::RS256, &claims());
    let auth = authenticator();
    for header in [format!("Token {token}"), format!("Bearer {token}")] {
        assert_eq!(auth.authenticate(Some(&header)).await.unwrap().sub, "u1");
    }
}

#[tokio::test]
async fn audience_list_containing_an_accepted_audience_is_accepted() {
    let claims = with(claims(), "aud", json!(["unrelated", "other-app"]));
    verify(&sign(Algorithm::ES256, &claims)).await.unwrap();
}

#[tokio::test]
async fn expiry_within_the_leeway_is_accepted() {
    let claims = json!({"sub": "u1", "iat": now() - 600, "exp": now() - 30, "aud": AUDIENCE});
    verify(&sign(Algorithm::HS256, &claims)).await.unwrap();
}

#[tokio::test]
async fn token_without_kid_uses_keys_without_kid() {
    let auth = authenticator_with(json!({"keys": [hmac_jwk(None)]}));
    let token = sign_with(
        Algorithm::HS256,
        None,
        &claims(),
        &encoding_key(Algorithm::HS256),
    );
    auth.verify(&token).await.unwrap();
}

#[tokio::test]
async fn parameters_claim_object_is_kept_for_the_rules() {
    let claims = with(claims(), "parameters", json!({"org": 7}));
    let verified = verify(&sign(Algorithm::EdDSA, &claims)).await.unwrap();
    assert_eq!(verified.payload["parameters"]["org"], 7);
}

// ---- refused: time and lifetime ------------------------------------------------------------

#[tokio::test]
async fn expired_token_is_refused_with_s2103() {
    let claims = json!({"sub": "u1", "iat": now() - 7200, "exp": now() - 120, "aud": AUDIENCE});
    assert_refused(
        &sign(Algorithm::RS256, &claims),
        ErrorCode::TokenExpired,
        "expired",
    )
    .await;
}

#[tokio::test]
async fn token_issued_in_the_future_is_refused() {
    let claims = json!({"sub": "u1", "iat": now() + 600, "exp": now() + 1200, "aud": AUDIENCE});
    assert_refused(
        &sign(Algorithm::RS256, &claims),
        ErrorCode::AuthError,
        "not yet valid",
    )
    .await;
}

#[tokio::test]
async fn token_not_valid_before_a_future_nbf_is_refused() {
    let claims = with(claims(), "nbf", json!(now() + 600));
    assert_refused(
        &sign(Algorithm::ES384, &claims),
        ErrorCode::AuthError,
        "`nbf`",
    )
    .await;
}

#[tokio::test]
async fn lifetime_longer_than_the_maximum_is_refused_with_s2104() {
    let claims = json!({"sub": "u1", "iat": now(), "exp": now() + 2 * 86_400, "aud": AUDIENCE});
    assert_refused(
        &sign(Algorithm::HS256, &claims),
        ErrorCode::TokenLifetimeTooLong,
        "exceeds the maximum of 86400 s",
    )
    .await;
}

// ---- refused: audience and claims ----------------------------------------------------------

#[tokio::test]
async fn wrong_audience_is_refused_with_s2105() {
    let claims = with(claims(), "aud", json!("someone-else"));
    assert_refused(
        &sign(Algorithm::RS256, &claims),
        ErrorCode::AudienceNotAllowed,
        "aud",
    )
    .await;
}

#[tokio::test]
async fn missing_audience_is_refused_with_s2105() {
    let claims = without(claims(), "aud");
    assert_refused(
        &sign(Algorithm::RS256, &claims),
        ErrorCode::AudienceNotAllowed,
        "no `aud`",
    )
    .await;
}

#[tokio::test]
async fn missing_sub_is_refused() {
    let claims = without(claims(), "sub");
    assert_refused(
        &sign(Algorithm::HS512, &claims),
        ErrorCode::AuthError,
        "no `sub`",
    )
    .await;
}

#[tokio::test]
async fn missing_iat_is_refused() {
    let claims = without(claims(), "iat");
    assert_refused(
        &sign(Algorithm::HS512, &claims),
        ErrorCode::AuthError,
        "no `iat`",
    )
    .await;
}

#[tokio::test]
async fn missing_exp_is_refused() {
    let claims = without(claims(), "exp");
    assert_refused(
        &sign(Algorithm::HS512, &claims),
        ErrorCode::AuthError,
        "no `exp`",
    )
    .await;
}

#[tokio::test]
async fn non_string_sub_is_refused() {
    let claims = with(claims(), "sub", json!(42));
    assert_refused(
        &sign(Algorithm::HS256, &claims),
        ErrorCode::AuthError,
        "`sub` must be",
    )
    .await;
}

#[tokio::test]
async fn parameters_claim_that_is_not_an_object_is_refused() {
    let claims = with(claims(), "parameters", json!([1, 2]));
    assert_refused(
        &sign(Algorithm::HS256, &claims),
        ErrorCode::AuthError,
        "`parameters`",
    )
    .await;
}

// ---- refused: keys and signatures ----------------------------------------------------------

#[tokio::test]
async fn unknown_kid_is_refused_and_flagged_for_a_jwks_refresh() {
    let token = sign_with(
        Algorithm::RS256,
        Some("rotated-away"),
        &claims(),
        &encoding_key(Algorithm::RS256),
    );
    let e = refused(&token).await;
    assert_eq!(e.code, ErrorCode::AuthError);
    assert!(e.unknown_kid);
    assert!(
        e.description.contains("could not find an appropriate key"),
        "{e}"
    );
}

#[tokio::test]
async fn token_signed_with_another_key_is_refused() {
    let other = EncodingKey::from_rsa_der(&der("rsa_other"));
    let token = sign_with(Algorithm::RS256, Some("rsa"), &claims(), &other);
    assert_refused(
        &token,
        ErrorCode::AuthError,
        "signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let token = sign(Algorithm::ES256, &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = with(claims(), "sub", json!("admin"));
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_refused(
        &tampered,
        ErrorCode::AuthError,
        "signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    for alg in ["none", "None", "NONE"] {
        let token = raw_token(&json!({"alg": alg, "typ": "JWT"}), &claims());
        let unsigned = format!("{}.", token.rsplit_once('.').unwrap().0);
        assert_refused(&unsigned, ErrorCode::AuthError, "alg \"none\"").await;
        assert_refused(&token, ErrorCode::AuthError, "alg \"none\"").await;
    }
}

#[tokio::test]
async fn hmac_token_signed_with_the_rsa_public_key_is_refused() {
    // Algorithm confusion: use the RSA key's public bytes as an HMAC secret and name its kid.
    use base64::Engine;
    let public = base64::engine::general_purpose::STANDARD
        .decode(fixtures()["rsa"]["public_pkcs1_der"].as_str().unwrap())
        .unwrap();
    let token = sign_with(
        Algorithm::HS256,
        Some("rsa"),
        &claims(),
        &EncodingKey::from_secret(&public),
    );
    assert_refused(
        &token,
        ErrorCode::AuthError,
        "does not accept algorithm HS256",
    )
    .await;
    // Without a kid, no RSA key is ever tried as an HMAC secret.
    let auth = authenticator_with(json!({"keys": [fixtures()["rsa"]["jwk"].clone()]}));
    let token = sign_with(
        Algorithm::HS256,
        None,
        &claims(),
        &EncodingKey::from_secret(&public),
    );
    let e = auth.verify(&token).await.unwrap_err();
    assert!(e.description.contains("no key accepts HS256"), "{e}");
}

#[tokio::test]
async fn key_restricted_by_its_alg_refuses_other_algorithms_of_the_family() {
    let mut jwk = hmac_jwk(Some("hs"));
    jwk["alg"] = json!("HS256");
    let auth = authenticator_with(json!({"keys": [jwk]}));
    auth.verify(&sign(Algorithm::HS256, &claims()))
        .await
        .unwrap();
    let e = auth
        .verify(&sign(Algorithm::HS512, &claims()))
        .await
        .unwrap_err();
    assert!(
        e.description.contains("does not accept algorithm HS512"),
        "{e}"
    );
}

#[tokio::test]
async fn es512_token_is_refused_clearly() {
    let token = raw_token(&json!({"alg": "ES512", "kid": "ec521"}), &claims());
    assert_refused(&token, ErrorCode::AuthError, "ES512 is not supported").await;
}

#[tokio::test]
async fn es512_key_in_the_config_is_refused_at_start() {
    let config = AuthConfig::with_inline_jwks(
        vec![AUDIENCE.into()],
        json!({"keys": [public_jwk("ec521", "ec521")]}),
    );
    let err = Authenticator::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("P-521 (ES512) is not supported"), "{err}");
}

#[tokio::test]
async fn unsupported_algorithm_is_refused() {
    let token = raw_token(&json!({"alg": "PS256", "kid": "rsa"}), &claims());
    assert_refused(&token, ErrorCode::AuthError, "\"PS256\" is not supported").await;
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let token = raw_token(
        &json!({"alg": "HS256", "kid": "hs", "crit": ["exp"]}),
        &claims(),
    );
    assert_refused(&token, ErrorCode::AuthError, "crit").await;
}

// ---- refused: malformed --------------------------------------------------------------------

#[tokio::test]
async fn malformed_header_is_refused() {
    assert_refused(
        "!!!.eyJzdWIiOiJ1MSJ9.c2ln",
        ErrorCode::AuthError,
        "not base64url",
    )
    .await;
    let not_json = raw_token(&json!("just a string"), &claims());
    assert_refused(&not_json, ErrorCode::AuthError, "not a JSON object").await;
    let no_alg = raw_token(&json!({"typ": "JWT"}), &claims());
    assert_refused(&no_alg, ErrorCode::AuthError, "no `alg`").await;
}

#[tokio::test]
async fn garbage_is_refused() {
    for garbage in ["abc", "a.b", "a.b.c.d", "..", "eyJhbGciOiJIUzI1NiJ9..sig"] {
        assert_refused(garbage, ErrorCode::AuthError, "malformed token").await;
    }
}

#[tokio::test]
async fn payload_that_is_not_json_is_refused() {
    use base64::Engine;
    let good = sign(Algorithm::HS256, &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let bad = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("not json"),
        parts[2]
    );
    let e = refused(&bad).await;
    assert_eq!(e.code, ErrorCode::AuthError);
}

#[tokio::test]
async fn missing_or_malformed_authorization_header_is_s2106() {
    let auth = authenticator();
    let token = sign(Algorithm::HS256, &claims());
    for header in [
        None,
        Some(format!("Basic {token}")),
        Some(format!("bearer {token}")),
        Some("Token".to_owned()),
        Some("Token ".to_owned()),
        Some(format!("Token {token} extra")),
        Some(token.clone()),
    ] {
        let e = auth.authenticate(header.as_deref()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingToken, "{header:?}: {e}");
    }
}
