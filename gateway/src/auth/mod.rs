//! Client authentication by JWT (PROTOCOL.md §3.6): the verified [`Claims`], the [`AuthError`]
//! with its `PSYNC_S21xx` code, and the axum extractor [`Authenticated`] that routes use.
//!
//! | module | holds |
//! | --- | --- |
//! | [`jwt`] | [`Authenticator`]: header → key → signature → claims |
//! | [`keys`] | one JWK → a [`keys::VerificationKey`] with the algorithms it allows |
//! | [`jwks`] | key sources: inline JWKS, JWKS file, JWKS URL (cached, rate-limited refresh) |

pub mod jwks;
pub mod jwt;
pub mod keys;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ferry_protocol::ErrorCode;
use serde_json::{Map, Value};

pub use jwt::Authenticator;

use crate::app::AppState;
use crate::error::GatewayError;

/// The verified payload of a client's token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The user id (`sub`).
    pub sub: String,
    /// Issued at (seconds since 1970).
    pub iat: i64,
    /// Expires at (seconds since 1970).
    pub exp: i64,
    /// The whole payload, as the sync rules see it (`request.jwt()`).
    pub payload: Map<String, Value>,
}

impl Claims {
    /// Seconds until the token expires (negative once expired), at `now` seconds since 1970.
    pub fn expires_in(&self, now: i64) -> i64 {
        self.exp - now
    }
}

/// A refused token. `description` is safe to send to the client: it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct AuthError {
    /// `PSYNC_S2101`, `S2103`, `S2104`, `S2105` or `S2106`.
    pub code: ErrorCode,
    /// What was wrong.
    pub description: String,
    /// The token named a `kid` no key has (a JWKS refresh may help).
    pub unknown_kid: bool,
}

impl AuthError {
    /// An error with this code and description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> AuthError {
        AuthError {
            code,
            description: description.into(),
            unknown_kid: false,
        }
    }
}

/// Extractor: the request's verified claims. Rejects with the §3.8 envelope and status 401.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = match parts.headers.get(AUTHORIZATION) {
            Some(value) => Some(value.to_str().map_err(|_| {
                GatewayError::Auth(AuthError::new(
                    ErrorCode::MissingToken,
                    "the Authorization header is not valid text",
                ))
            })?),
            None => None,
        };
        match state.auth.authenticate(header).await {
            Ok(claims) => Ok(Authenticated(claims)),
            Err(e) => {
                tracing::info!(code = %e.code, reason = %e.description, "token refused");
                Err(GatewayError::Auth(e))
            }
        }
    }
}
