//! [`GatewayError`]: every way a non-streaming request can fail, rendered as the §3.8 envelope
//! `{"error": {"name", "code", "status", "description"}}` by its `IntoResponse`.
//!
//! Internal failures (Postgres errors, bugs) are logged with their details and answered with a
//! generic description; errors the client caused say what to fix. Failures after a stream has
//! started cannot change the status: the stream just ends (see [`crate::stream`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_protocol::{ErrorCode, ErrorEnvelope};

use crate::auth::AuthError;
use crate::metrics;

/// Code of a request ferry refuses as malformed (PROTOCOL.md leaves validation codes to the
/// implementation, as the reference service sends its framework's codes).
pub const BAD_REQUEST_CODE: &str = "FERRY_BAD_REQUEST";
/// Code of an upload the database refused for good (constraint, type, unknown table/column).
pub const WRITE_REJECTED_CODE: &str = "FERRY_WRITE_REJECTED";
/// Code of an upload refused by row-level security or privileges.
pub const WRITE_FORBIDDEN_CODE: &str = "FERRY_WRITE_FORBIDDEN";
/// Code of a request whose body is over the size limit.
pub const PAYLOAD_TOO_LARGE_CODE: &str = "FERRY_PAYLOAD_TOO_LARGE";
/// Code of a request with a method the route does not accept.
pub const METHOD_NOT_ALLOWED_CODE: &str = "FERRY_METHOD_NOT_ALLOWED";

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The token was missing or refused (401).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The process already serves its maximum of streams (429, `PSYNC_S2304`).
    #[error("too many open sync streams on this gateway (limit {limit}); retry later")]
    TooManyStreams {
        /// The configured limit.
        limit: usize,
    },
    /// The user would get too many buckets (`PSYNC_S2305`).
    #[error("too many buckets for this connection: {count} (limit {limit})")]
    TooManyBuckets {
        /// How many the rules gave.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Parameter queries returned too many rows (`PSYNC_S2305`, from the extension's SQLSTATE `54000`).
    #[error("too many parameter query results: {0}")]
    TooManyParameterResults(String),
    /// No sync rules version is active yet (500, `PSYNC_S2302`).
    #[error("no sync rules are active yet: deploy rules with ferry.deploy_rules() and wait until the first version is processed")]
    NoSyncRules,
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over the route's size limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The route exists, but not for this method (405).
    #[error("the path {0} does not accept this method")]
    MethodNotAllowed(String),
    /// The database refused an upload for good (422).
    #[error("{0}")]
    WriteRejected(String),
    /// Row-level security or privileges refused an upload (403).
    #[error("{0}")]
    WriteForbidden(String),
    /// Postgres (or the extension) cannot be reached (503, `PSYNC_S2003`).
    #[error("the database is unavailable; retry later")]
    Unavailable(String),
    /// No such route (404, `PSYNC_S2002`).
    #[error("the path {0} does not exist on this server")]
    NotFound(String),
    /// A bug or an unexpected database error (500, `PSYNC_S2001`); details are logged only.
    #[error("internal error")]
    Internal(String),
}

impl GatewayError {
    /// The envelope sent for this error.
    pub fn envelope(&self) -> ErrorEnvelope {
        match self {
            GatewayError::Auth(e) => ErrorEnvelope::new(e.code, e.description.clone()),
            GatewayError::TooManyStreams { .. } => {
                ErrorEnvelope::new(ErrorCode::TooManyConnections, self.to_string())
            }
            GatewayError::TooManyBuckets { .. } | GatewayError::TooManyParameterResults(_) => {
                ErrorEnvelope::new(ErrorCode::TooManyBuckets, self.to_string())
            }
            GatewayError::NoSyncRules => {
                ErrorEnvelope::new(ErrorCode::NoSyncRules, self.to_string())
            }
            GatewayError::BadRequest(_) => custom("ValidationError", BAD_REQUEST_CODE, 400, self),
            GatewayError::PayloadTooLarge(_) => {
                custom("ValidationError", PAYLOAD_TOO_LARGE_CODE, 413, self)
            }
            GatewayError::MethodNotAllowed(_) => {
                custom("ValidationError", METHOD_NOT_ALLOWED_CODE, 405, self)
            }
            GatewayError::WriteRejected(_) => custom("WriteError", WRITE_REJECTED_CODE, 422, self),
            GatewayError::WriteForbidden(_) => {
                custom("WriteError", WRITE_FORBIDDEN_CODE, 403, self)
            }
            GatewayError::Unavailable(_) => {
                ErrorEnvelope::new(ErrorCode::ServiceUnavailable, self.to_string())
            }
            GatewayError::NotFound(_) => {
                ErrorEnvelope::new(ErrorCode::RouteNotFound, self.to_string())
            }
            GatewayError::Internal(_) => ErrorEnvelope::new(
                ErrorCode::InternalError,
                "internal error; the gateway's log has the details",
            ),
        }
    }
}

impl From<crate::db::DbError> for GatewayError {
    fn from(e: crate::db::DbError) -> GatewayError {
        use crate::db::DbError;
        match e {
            DbError::Unavailable(m) => GatewayError::Unavailable(m),
            DbError::NoActiveVersion | DbError::VersionNotFound => GatewayError::NoSyncRules,
            DbError::TooManyParameterResults(m) => GatewayError::TooManyParameterResults(m),
            DbError::InvalidArgument(m) => GatewayError::BadRequest(m),
            DbError::WriteRejected(m) => GatewayError::WriteRejected(m),
            DbError::WriteForbidden(m) => GatewayError::WriteForbidden(m),
            DbError::Other(m) => GatewayError::Internal(m),
        }
    }
}

fn custom(name: &str, code: &str, status: u16, error: &GatewayError) -> ErrorEnvelope {
    let mut envelope = ErrorEnvelope::new(ErrorCode::InternalError, error.to_string());
    envelope.error.name = name.to_owned();
    envelope.error.code = code.to_owned();
    envelope.error.status = status;
    envelope
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        match &self {
            GatewayError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error")
            }
            GatewayError::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "database unavailable")
            }
            _ => {}
        }
        let envelope = self.envelope();
        metrics::global().error(&envelope.error.code);
        let status = StatusCode::from_u16(envelope.error.status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(envelope)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(error: GatewayError) -> (u16, serde_json::Value) {
        let envelope = error.envelope();
        (
            envelope.error.status,
            serde_json::to_value(&envelope).unwrap(),
        )
    }

    #[test]
    fn auth_errors_render_as_401_with_their_code() {
        let (status, body) = rendered(GatewayError::Auth(AuthError::new(
            ErrorCode::TokenExpired,
            "the token has expired",
        )));
        assert_eq!(status, 401);
        assert_eq!(
            body,
            serde_json::json!({"error": {"name": "AuthorizationError", "code": "PSYNC_S2103",
                "status": 401, "description": "the token has expired"}})
        );
    }

    #[test]
    fn internal_errors_hide_their_details() {
        let (status, body) = rendered(GatewayError::Internal(
            "password authentication failed for user secret_user".into(),
        ));
        assert_eq!(status, 500);
        assert_eq!(body["error"]["code"], "PSYNC_S2001");
        assert!(!body.to_string().contains("secret_user"), "{body}");
    }

    #[test]
    fn limits_render_their_codes() {
        let (status, body) = rendered(GatewayError::TooManyStreams { limit: 3 });
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("PSYNC_S2304"))
        );
        let (_, body) = rendered(GatewayError::TooManyBuckets {
            count: 1001,
            limit: 1000,
        });
        assert_eq!(body["error"]["code"], "PSYNC_S2305");
        assert!(body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("1001"));
        let (status, body) = rendered(GatewayError::NoSyncRules);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (500, Some("PSYNC_S2302"))
        );
    }

    #[test]
    fn client_mistakes_get_4xx_with_ferry_codes() {
        let (status, body) = rendered(GatewayError::BadRequest("body is not JSON".into()));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(BAD_REQUEST_CODE))
        );
        let (status, _) = rendered(GatewayError::WriteForbidden("rls".into()));
        assert_eq!(status, 403);
        let (status, _) = rendered(GatewayError::WriteRejected("bad".into()));
        assert_eq!(status, 422);
        let (status, body) = rendered(GatewayError::NotFound("/nope".into()));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("PSYNC_S2002"))
        );
    }

    #[tokio::test]
    async fn into_response_sets_status_and_json_body() {
        let response = GatewayError::Unavailable("connection refused".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"]["code"], "PSYNC_S2003");
        assert!(!value.to_string().contains("refused"));
    }
}
