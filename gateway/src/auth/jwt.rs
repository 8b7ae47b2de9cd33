//! Checking a JWT (PROTOCOL.md §3.6): [`Authenticator`] reads the `Authorization` header, picks
//! the key, verifies the signature and the claims, and answers [`Claims`] or an [`AuthError`]
//! carrying the `PSYNC_S21xx` code.
//!
//! Order of checks: header syntax (`Token <jwt>` or `Bearer <jwt>`, else S2106) → token shape and
//! JOSE header (`alg` must be one ferry supports: never `none`, never ES512; unknown `crit`
//! extensions refused) → key: the one with the token's `kid` if any key has it, otherwise every
//! key without a `kid` that allows the algorithm; an unknown `kid` triggers a (rate-limited)
//! refresh of the JWKS URL and one retry → signature → claims: `sub` (non-empty string), `iat`,
//! `exp`, `aud` required; `exp` with leeway (S2103); `nbf`/`iat` not in the future beyond the
//! leeway; `exp - iat` at most the maximum lifetime (S2104); `aud` contains a configured
//! audience (S2105); `parameters`, if present, an object. Descriptions never contain the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ferry_protocol::ErrorCode;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::auth::jwks::{load_static_keys, KeySourceError, RemoteJwks};
use crate::auth::keys::{supported_algorithm, KeySet, VerificationKey};
use crate::auth::{AuthError, Claims};
use crate::config::AuthConfig;

/// Verifies tokens against the configured keys and claim rules.
#[derive(Debug)]
pub struct Authenticator {
    static_keys: KeySet,
    remote: Option<RemoteJwks>,
    rules: ClaimRules,
}

/// The claim checks' settings.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Maximum `exp - iat`, in seconds.
    pub max_lifetime_secs: u64,
    /// Clock tolerance, in seconds.
    pub leeway_secs: u64,
}

impl Authenticator {
    /// Loads the static keys and prepares the JWKS URL (fetched on first use; call
    /// [`Authenticator::prefetch`] to fetch it at start).
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator, KeySourceError> {
        let remote = match &config.jwks_url {
            Some(url) => Some(RemoteJwks::new(
                url,
                Duration::from_secs(config.jwks_refresh_secs),
                Duration::from_secs(config.jwks_min_refresh_secs),
            )?),
            None => None,
        };
        Ok(Authenticator {
            static_keys: load_static_keys(config)?,
            remote,
            rules: ClaimRules {
                audiences: config.audiences.clone(),
                max_lifetime_secs: config.max_lifetime_secs,
                leeway_secs: config.leeway_secs,
            },
        })
    }

    /// Fetches the JWKS URL now, if there is one (a failure is logged, not fatal: the next token
    /// tries again).
    pub async fn prefetch(&self) {
        if let Some(remote) = &self.remote {
            remote.refresh_if_allowed().await;
        }
    }

    /// The JWKS URL source, if configured.
    pub fn remote(&self) -> Option<&RemoteJwks> {
        self.remote.as_ref()
    }

    /// Checks an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Claims, AuthError> {
        let token = token_from_header(authorization)?;
        self.verify(token).await
    }

    /// Checks a bare token.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = unix_now();
        let parsed = ParsedToken::parse(token)?;
        let remote_keys = match &self.remote {
            Some(remote) => Some(remote.keys().await),
            None => None,
        };
        let result = self.verify_parsed(&parsed, token, remote_keys.as_deref(), now);
        match (&result, &self.remote) {
            (Err(e), Some(remote)) if e.unknown_kid => {
                if remote.refresh_if_allowed().await {
                    let keys = remote.cached();
                    return self.verify_parsed(&parsed, token, Some(&keys), now);
                }
                result
            }
            _ => result,
        }
    }

    fn verify_parsed(
        &self,
        parsed: &ParsedToken,
        token: &str,
        remote: Option<&KeySet>,
        now: u64,
    ) -> Result<Claims, AuthError> {
        let mut keys = self.static_keys.clone();
        if let Some(remote) = remote {
            keys.extend(remote);
        }
        verify_token(parsed, token, &keys, &self.rules, now)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Extracts the token from `Token <jwt>` or `Bearer <jwt>`.
pub fn token_from_header(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.ok_or_else(|| {
        AuthError::new(
            ErrorCode::MissingToken,
            "no Authorization header: send `Authorization: Token <jwt>`",
        )
    })?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        AuthError::new(
            ErrorCode::MissingToken,
            "malformed Authorization header: expected `Token <jwt>` or `Bearer <jwt>`",
        )
    })?;
    if scheme != "Token" && scheme != "Bearer" {
        return Err(AuthError::new(
            ErrorCode::MissingToken,
            "unsupported Authorization scheme: expected `Token <jwt>` or `Bearer <jwt>`",
        ));
    }
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(AuthError::new(
            ErrorCode::MissingToken,
            "malformed Authorization header: expected `Token <jwt>` or `Bearer <jwt>`",
        ));
    }
    Ok(token)
}

/// A token split into parts, with its JOSE header read.
#[derive(Debug)]
pub struct ParsedToken {
    alg: Algorithm,
    kid: Option<String>,
}

fn malformed(detail: &str) -> AuthError {
    AuthError::new(ErrorCode::AuthError, format!("malformed token: {detail}"))
}

impl ParsedToken {
    /// Reads the token's header; refuses unsupported algorithms before any key is looked at.
    pub fn parse(token: &str) -> Result<ParsedToken, AuthError> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 || parts[0].is_empty() || parts[1].is_empty() {
            return Err(malformed(
                "a JWT has three base64url parts separated by dots",
            ));
        }
        let header_bytes = URL_SAFE_NO_PAD
            .decode(parts[0])
            .map_err(|_| malformed("the header is not base64url"))?;
        let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
            .map_err(|_| malformed("the header is not a JSON object"))?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => supported_algorithm(name)
                .map_err(|message| AuthError::new(ErrorCode::AuthError, message))?,
            _ => return Err(malformed("the header has no `alg`")),
        };
        if header.contains_key("crit") {
            return Err(AuthError::new(
                ErrorCode::AuthError,
                "tokens with critical header extensions (`crit`) are not accepted",
            ));
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(malformed("`kid` is not a string")),
        };
        if parts[2].is_empty() {
            return Err(malformed("the signature is empty"));
        }
        Ok(ParsedToken { alg, kid })
    }
}

/// Verifies a parsed token with `keys` at time `now` (seconds since the epoch). Pure: the async
/// key refresh is the caller's.
pub fn verify_token(
    parsed: &ParsedToken,
    token: &str,
    keys: &KeySet,
    rules: &ClaimRules,
    now: u64,
) -> Result<Claims, AuthError> {
    let alg = parsed.alg;
    let kid_unknown = parsed
        .kid
        .as_deref()
        .is_some_and(|kid| keys.by_kid(kid).is_none());
    let candidates: Vec<&std::sync::Arc<VerificationKey>> =
        match parsed.kid.as_deref().and_then(|kid| keys.by_kid(kid)) {
            Some(key) => {
                if !key.allows(alg) {
                    return Err(AuthError::new(
                        ErrorCode::AuthError,
                        format!(
                            "the key with kid {:?} does not accept algorithm {alg:?}",
                            key.kid.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                vec![key]
            }
            None => keys.kidless_for(alg).collect(),
        };
    if candidates.is_empty() {
        let mut error = AuthError::new(
            ErrorCode::AuthError,
            match &parsed.kid {
                Some(kid) => format!(
                    "could not find an appropriate key: no key has kid {kid:?} and no key \
                     without a kid accepts {alg:?}"
                ),
                None => format!("could not find an appropriate key: no key accepts {alg:?}"),
            },
        );
        error.unknown_kid = kid_unknown;
        return Err(error);
    }

    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();

    let mut claims = None;
    for key in &candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidEddsaKey
                | ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidKeyFormat
                | ErrorKind::InvalidAlgorithm => continue,
                ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    return Err(malformed(
                        "the payload or signature is not valid base64url JSON",
                    ))
                }
                _ => continue,
            },
        }
    }
    let Some(claims) = claims else {
        let mut error = AuthError::new(
            ErrorCode::AuthError,
            "signature verification failed: the token was not signed by a configured key",
        );
        error.unknown_kid = kid_unknown;
        return Err(error);
    };
    check_claims(claims, rules, now)
}

fn numeric_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.floor() as i64))
            .map(Some)
            .ok_or_else(|| {
                AuthError::new(
                    ErrorCode::AuthError,
                    format!("claim `{name}` is not a number"),
                )
            }),
        Some(_) => Err(AuthError::new(
            ErrorCode::AuthError,
            format!("claim `{name}` must be a number (seconds since 1970)"),
        )),
    }
}

/// The claim checks, after the signature is verified.
pub fn check_claims(
    claims: Map<String, Value>,
    rules: &ClaimRules,
    now: u64,
) -> Result<Claims, AuthError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let leeway = i64::try_from(rules.leeway_secs).unwrap_or(i64::MAX);
    let missing = |name: &str| {
        AuthError::new(
            ErrorCode::AuthError,
            format!("the token has no `{name}` claim (required: sub, iat, exp, aud)"),
        )
    };
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => return Err(missing("sub")),
        Some(_) => {
            return Err(AuthError::new(
                ErrorCode::AuthError,
                "claim `sub` must be a non-empty string",
            ))
        }
    };
    let iat = numeric_claim(&claims, "iat")?.ok_or_else(|| missing("iat"))?;
    let exp = numeric_claim(&claims, "exp")?.ok_or_else(|| missing("exp"))?;
    let aud = match claims.get("aud") {
        None | Some(Value::Null) => {
            return Err(AuthError::new(
                ErrorCode::AudienceNotAllowed,
                "the token has no `aud` claim",
            ))
        }
        Some(aud) => aud,
    };
    if now > exp.saturating_add(leeway) {
        return Err(AuthError::new(
            ErrorCode::TokenExpired,
            "the token has expired",
        ));
    }
    if iat > now.saturating_add(leeway) {
        return Err(AuthError::new(
            ErrorCode::AuthError,
            "the token is not yet valid: `iat` is in the future",
        ));
    }
    if let Some(nbf) = numeric_claim(&claims, "nbf")? {
        if nbf > now.saturating_add(leeway) {
            return Err(AuthError::new(
                ErrorCode::AuthError,
                "the token is not yet valid: `nbf` is in the future",
            ));
        }
    }
    let max = i64::try_from(rules.max_lifetime_secs).unwrap_or(i64::MAX);
    if exp.saturating_sub(iat) > max {
        return Err(AuthError::new(
            ErrorCode::TokenLifetimeTooLong,
            format!(
                "the token's lifetime (exp - iat = {} s) exceeds the maximum of {max} s",
                exp.saturating_sub(iat)
            ),
        ));
    }
    let audience_ok = match aud {
        Value::String(a) => rules.audiences.iter().any(|x| x == a),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|a| rules.audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !audience_ok {
        return Err(AuthError::new(
            ErrorCode::AudienceNotAllowed,
            "the token's `aud` is not an audience this gateway accepts",
        ));
    }
    if let Some(parameters) = claims.get("parameters") {
        if !parameters.is_object() && !parameters.is_null() {
            return Err(AuthError::new(
                ErrorCode::AuthError,
                "claim `parameters` must be a JSON object",
            ));
        }
    }
    Ok(Claims {
        sub,
        iat,
        exp,
        payload: claims,
    })
}

/// Builds an [`Authenticator`] from keys directly (tests).
impl Authenticator {
    /// An authenticator over `keys` with `rules`, without a JWKS URL.
    pub fn with_keys(keys: KeySet, rules: ClaimRules) -> Authenticator {
        Authenticator {
            static_keys: keys,
            remote: None,
            rules,
        }
    }
}
