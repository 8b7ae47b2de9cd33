//! Verification keys: one JWK (JSON Web Key) → a [`VerificationKey`] that knows which JWT
//! algorithms it may verify, and [`KeySet`], the keys of one source.
//!
//! Supported: `kty: oct` (HS256/384/512), `RSA` (RS256/384/512), `EC` with `crv` P-256 (ES256)
//! or P-384 (ES384), `OKP` with `crv` Ed25519 (EdDSA). A key's algorithms come from its type and
//! curve, narrowed to its `alg` when it has one, so a token can never pick an algorithm from a
//! different family than its key (no HS/RS confusion). Keys whose `use` is not `sig` are
//! ignored. ES512 / P-521 keys are refused with a clear error: the crypto backend lacks ES512.
//! Where keys come from is [`crate::auth::jwks`]; checking a token is [`crate::auth::jwt`].

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{json, Value};

/// A key that may verify tokens of the algorithms in `algorithms`.
#[derive(Clone)]
pub struct VerificationKey {
    /// The key id (`kid`), if it has one.
    pub kid: Option<String>,
    /// The algorithms it verifies (one family only).
    pub algorithms: Vec<Algorithm>,
    /// The key material.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

/// A JWK that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JWK {}: {message}", kid.as_deref().map(|k| format!("with kid {k:?}")).unwrap_or_else(|| format!("#{index}")))]
pub struct KeyError {
    /// Its position in the key set.
    pub index: usize,
    /// Its `kid`.
    pub kid: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The algorithm names ferry accepts in tokens and JWKs, with their `jsonwebtoken` value.
pub(crate) fn supported_algorithm(name: &str) -> Result<Algorithm, String> {
    Ok(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "ES512" => {
            return Err(
                "algorithm ES512 is not supported by ferry (its crypto backend has no \
                        P-521); sign with ES256, ES384, EdDSA or RS256"
                    .into(),
            )
        }
        n if n.eq_ignore_ascii_case("none") => {
            return Err("unsigned tokens (alg \"none\") are never accepted".into())
        }
        other => {
            return Err(format!(
                "algorithm {other:?} is not supported; use one of HS256, HS384, HS512, RS256, \
                 RS384, RS512, ES256, ES384, EdDSA"
            ))
        }
    })
}

fn str_field<'a>(jwk: &'a Value, name: &str) -> Result<&'a str, String> {
    jwk.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("missing string field `{name}`"))
}

/// The length of a base64url value once decoded, if it decodes.
fn decoded_len(value: &str) -> Option<usize> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .ok()
        .map(|bytes| bytes.len())
}

/// Parses one JWK. `Ok(None)`: a valid key not meant for signatures (`use` other than `sig`).
pub fn parse_jwk(jwk: &Value, index: usize) -> Result<Option<VerificationKey>, KeyError> {
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
    let fail = |message: String| KeyError {
        index,
        kid: kid.clone(),
        message,
    };
    if !jwk.is_object() {
        return Err(fail("is not a JSON object".into()));
    }
    if let Some(usage) = jwk.get("use") {
        if usage.as_str() != Some("sig") {
            return Ok(None);
        }
    }
    let kty = str_field(jwk, "kty").map_err(&fail)?;
    // The key's family and curve decide its algorithms, and the material we pass on.
    let (family_algorithms, material): (Vec<Algorithm>, Value) = match kty {
        "oct" => (
            vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            json!({"kty": "oct", "k": str_field(jwk, "k").map_err(&fail)?}),
        ),
        "RSA" => (
            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
            json!({"kty": "RSA", "n": str_field(jwk, "n").map_err(&fail)?,
                   "e": str_field(jwk, "e").map_err(&fail)?}),
        ),
        "EC" => {
            let crv = str_field(jwk, "crv").map_err(&fail)?;
            let alg = match crv {
                "P-256" => Algorithm::ES256,
                "P-384" => Algorithm::ES384,
                "P-521" => {
                    return Err(fail(
                        "curve P-521 (ES512) is not supported by ferry; use P-256 (ES256), \
                         P-384 (ES384) or Ed25519 (EdDSA)"
                            .into(),
                    ))
                }
                other => return Err(fail(format!("unsupported EC curve {other:?}"))),
            };
            let size = if alg == Algorithm::ES256 { 32 } else { 48 };
            let x = str_field(jwk, "x").map_err(&fail)?;
            let y = str_field(jwk, "y").map_err(&fail)?;
            for (name, value) in [("x", x), ("y", y)] {
                if decoded_len(value) != Some(size) {
                    return Err(fail(format!(
                        "`{name}` must be {size} bytes (base64url) for curve {crv}"
                    )));
                }
            }
            (vec![alg], json!({"kty": "EC", "crv": crv, "x": x, "y": y}))
        }
        "OKP" => {
            let crv = str_field(jwk, "crv").map_err(&fail)?;
            if crv != "Ed25519" {
                return Err(fail(format!(
                    "unsupported OKP curve {crv:?}; only Ed25519 is supported"
                )));
            }
            let x = str_field(jwk, "x").map_err(&fail)?;
            // The verifier slices the first 32 bytes: a shorter key must not get that far.
            if decoded_len(x) != Some(32) {
                return Err(fail("`x` must be 32 bytes (base64url) for Ed25519".into()));
            }
            (
                vec![Algorithm::EdDSA],
                json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            )
        }
        other => return Err(fail(format!("unsupported key type (kty) {other:?}"))),
    };
    let algorithms = match jwk.get("alg") {
        None | Some(Value::Null) => family_algorithms,
        Some(Value::String(name)) => {
            let alg = supported_algorithm(name).map_err(&fail)?;
            if !family_algorithms.contains(&alg) {
                return Err(fail(format!(
                    "`alg` {name:?} does not fit a key of type {kty:?}"
                )));
            }
            vec![alg]
        }
        Some(_) => return Err(fail("`alg` must be a string".into())),
    };
    let parsed: Jwk =
        serde_json::from_value(material).map_err(|e| fail(format!("invalid key material: {e}")))?;
    let decoding =
        DecodingKey::from_jwk(&parsed).map_err(|e| fail(format!("invalid key material: {e}")))?;
    Ok(Some(VerificationKey {
        kid,
        algorithms,
        decoding,
    }))
}

/// The keys of one source, in order.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// The keys.
    pub keys: Vec<Arc<VerificationKey>>,
}

impl KeySet {
    /// Parses a JWKS document `{"keys": [...]}`. With `strict`, any unusable key is an error
    /// (config the operator wrote); otherwise unusable keys are skipped and returned as warnings
    /// (a remote JWKS may list keys for other consumers).
    pub fn from_jwks(jwks: &Value, strict: bool) -> Result<(KeySet, Vec<KeyError>), KeyError> {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| KeyError {
                index: 0,
                kid: None,
                message: "the JWKS must be an object with a `keys` array".into(),
            })?;
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for (index, jwk) in keys.iter().enumerate() {
            match parse_jwk(jwk, index) {
                Ok(Some(key)) => set.keys.push(Arc::new(key)),
                Ok(None) => {}
                Err(e) if strict => return Err(e),
                Err(e) => skipped.push(e),
            }
        }
        Ok((set, skipped))
    }

    /// The key with this `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&Arc<VerificationKey>> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// Keys without a `kid` that may verify `alg`.
    pub fn kidless_for(&self, alg: Algorithm) -> impl Iterator<Item = &Arc<VerificationKey>> {
        self.keys
            .iter()
            .filter(move |k| k.kid.is_none() && k.allows(alg))
    }

    /// Appends another set's keys.
    pub fn extend(&mut self, other: &KeySet) {
        self.keys.extend(other.keys.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_algorithms_follow_type_and_curve() {
        let oct = parse_jwk(&json!({"kty": "oct", "k": "c2VjcmV0"}), 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            oct.algorithms,
            [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
        );
        let narrowed = parse_jwk(&json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS384"}), 0)
            .unwrap()
            .unwrap();
        assert_eq!(narrowed.algorithms, [Algorithm::HS384]);
    }

    #[test]
    fn mismatched_alg_and_kty_is_refused() {
        let err =
            parse_jwk(&json!({"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"}), 2).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        assert!(err.to_string().starts_with("JWK #2"), "{err}");
    }

    #[test]
    fn es512_keys_are_refused_clearly() {
        let err = parse_jwk(
            &json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "k5"}),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("P-521 (ES512) is not supported"), "{err}");
        assert!(err.contains("\"k5\""), "{err}");
    }

    #[test]
    fn short_curve_points_are_refused_before_they_reach_the_verifier() {
        let err = parse_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("32 bytes"), "{err}");
        let err = parse_jwk(
            &json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("32 bytes"), "{err}");
    }

    #[test]
    fn encryption_keys_are_ignored() {
        assert!(
            parse_jwk(&json!({"kty": "oct", "k": "c2VjcmV0", "use": "enc"}), 0)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn lenient_sets_skip_bad_keys_strict_sets_refuse_them() {
        let jwks = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "a"}, {"kty": "XYZ"}]});
        let (set, skipped) = KeySet::from_jwks(&jwks, false).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(skipped.len(), 1);
        assert!(KeySet::from_jwks(&jwks, true).is_err());
        assert!(KeySet::from_jwks(&json!({"nokeys": []}), true).is_err());
    }
}
