//! The error body of non-streaming responses (PROTOCOL.md §3.8), [`ErrorEnvelope`], and the
//! `PSYNC_*` error codes with their HTTP statuses, [`ErrorCode`].
//!
//! This is what the gateway sends and the client reads on a failed request; it is not this crate's
//! own error type (that is [`crate::ProtocolError`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;

/// `{"error": {...}}`: the body of every non-streaming error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The fields of an error response. Unknown extra fields are ignored on input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A class-like name (`"AuthorizationError"`, ...).
    pub name: String,
    /// `PSYNC_Sxxxx` (see [`ErrorCode`]), or another code (e.g. a validation library's).
    pub code: String,
    /// The HTTP status of the response.
    pub status: u16,
    /// What went wrong, for humans.
    pub description: String,
    /// More detail, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// `"info"`, `"warning"` or `"error"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// A request id to find the error in the server's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Which component raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl ErrorEnvelope {
    /// An error with `code`'s name and HTTP status and the given description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                name: code.name().to_owned(),
                code: code.as_str().to_owned(),
                status: code.http_status(),
                description: description.into(),
                details: None,
                severity: None,
                trace_id: None,
                origin: None,
            },
        }
    }

    /// Adds `details`.
    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> ErrorEnvelope {
        self.error.details = Some(details.into());
        self
    }

    /// The code as an [`ErrorCode`], if it is one this crate knows.
    pub fn known_code(&self) -> Option<ErrorCode> {
        self.error.code.parse().ok()
    }
}

/// The `PSYNC_*` codes of PROTOCOL.md §3.8.
///
/// [`ErrorCode::http_status`] gives the table's status where it has one; for codes the table leaves
/// blank (they are mostly raised mid-stream or outside HTTP), the status is ferry's choice and says
/// so on the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `PSYNC_S2001`, 500: generic internal error.
    InternalError,
    /// `PSYNC_S2002`, 404: route not found.
    RouteNotFound,
    /// `PSYNC_S2003`, 503: service restarting or unavailable; retry.
    ServiceUnavailable,
    /// `PSYNC_S2004`, 415: unsupported media type.
    UnsupportedMediaType,
    /// `PSYNC_S2101`, 401: generic auth error (bad key, algorithm, claims or parameters).
    AuthError,
    /// `PSYNC_S2102`, 401: signature verification failed.
    SignatureVerificationFailed,
    /// `PSYNC_S2103`, 401: token expired.
    TokenExpired,
    /// `PSYNC_S2104`, 401: token lifetime (`exp - iat`) too long.
    TokenLifetimeTooLong,
    /// `PSYNC_S2105`, 401: `aud` missing or not allowed.
    AudienceNotAllowed,
    /// `PSYNC_S2106`, 401: no token or a malformed `Authorization` header.
    MissingToken,
    /// `PSYNC_S2201`, 500 (ferry's choice): generic auth configuration error.
    AuthConfigError,
    /// `PSYNC_S2202`, 500 (ferry's choice): IPv6 not supported for the JWKS URI.
    JwksIpv6NotSupported,
    /// `PSYNC_S2203`, 500 (ferry's choice): the JWKS URI's IP range is blocked.
    JwksIpBlocked,
    /// `PSYNC_S2204`, 500 (ferry's choice): JWKS request failed.
    JwksRequestFailed,
    /// `PSYNC_S2302`, 500: no sync rules deployed, or not yet processed.
    NoSyncRules,
    /// `PSYNC_S2304`, 429 (ferry's choice): too many concurrent connections.
    TooManyConnections,
    /// `PSYNC_S2305`, 400 (ferry's choice): too many buckets or parameter query results.
    TooManyBuckets,
    /// `PSYNC_S1002`, 500 (ferry's choice): a row too large to replicate (> 15 MB).
    RowTooLarge,
    /// `PSYNC_S1141`, 500 (ferry's choice): publication missing.
    PublicationMissing,
    /// `PSYNC_S1142`, 500 (ferry's choice): publication does not publish all operations.
    PublicationIncomplete,
    /// `PSYNC_S1143`, 500 (ferry's choice): publication uses `publish_via_partition_root`.
    PublicationViaPartitionRoot,
    /// `PSYNC_S1144`, 500 (ferry's choice): same server for source and storage on PG < 14.
    SameServerUnsupported,
    /// `PSYNC_S1145`, 500 (ferry's choice): RLS on a replicated table without BYPASSRLS.
    RlsWithoutBypass,
    /// `PSYNC_S1146`, 500 (ferry's choice): replication slot invalidated or lost.
    SlotInvalidated,
    /// `PSYNC_R0001`, 400 (ferry's choice): sync rules parse error.
    SyncRulesParseError,
    /// `PSYNC_R2201`, 400 (ferry's choice): unsupported table/schema wildcard in sync rules.
    SyncRulesWildcardUnsupported,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InternalError,
        ErrorCode::RouteNotFound,
        ErrorCode::ServiceUnavailable,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::AuthError,
        ErrorCode::SignatureVerificationFailed,
        ErrorCode::TokenExpired,
        ErrorCode::TokenLifetimeTooLong,
        ErrorCode::AudienceNotAllowed,
        ErrorCode::MissingToken,
        ErrorCode::AuthConfigError,
        ErrorCode::JwksIpv6NotSupported,
        ErrorCode::JwksIpBlocked,
        ErrorCode::JwksRequestFailed,
        ErrorCode::NoSyncRules,
        ErrorCode::TooManyConnections,
        ErrorCode::TooManyBuckets,
        ErrorCode::RowTooLarge,
        ErrorCode::PublicationMissing,
        ErrorCode::PublicationIncomplete,
        ErrorCode::PublicationViaPartitionRoot,
        ErrorCode::SameServerUnsupported,
        ErrorCode::RlsWithoutBypass,
        ErrorCode::SlotInvalidated,
        ErrorCode::SyncRulesParseError,
        ErrorCode::SyncRulesWildcardUnsupported,
    ];

    /// The wire code, e.g. `"PSYNC_S2103"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InternalError => "PSYNC_S2001",
            ErrorCode::RouteNotFound => "PSYNC_S2002",
            ErrorCode::ServiceUnavailable => "PSYNC_S2003",
            ErrorCode::UnsupportedMediaType => "PSYNC_S2004",
            ErrorCode::AuthError => "PSYNC_S2101",
            ErrorCode::SignatureVerificationFailed => "PSYNC_S2102",
            ErrorCode::TokenExpired => "PSYNC_S2103",
            ErrorCode::TokenLifetimeTooLong => "PSYNC_S2104",
            ErrorCode::AudienceNotAllowed => "PSYNC_S2105",
            ErrorCode::MissingToken => "PSYNC_S2106",
            ErrorCode::AuthConfigError => "PSYNC_S2201",
            ErrorCode::JwksIpv6NotSupported => "PSYNC_S2202",
            ErrorCode::JwksIpBlocked => "PSYNC_S2203",
            ErrorCode::JwksRequestFailed => "PSYNC_S2204",
            ErrorCode::NoSyncRules => "PSYNC_S2302",
            ErrorCode::TooManyConnections => "PSYNC_S2304",
            ErrorCode::TooManyBuckets => "PSYNC_S2305",
            ErrorCode::RowTooLarge => "PSYNC_S1002",
            ErrorCode::PublicationMissing => "PSYNC_S1141",
            ErrorCode::PublicationIncomplete => "PSYNC_S1142",
            ErrorCode::PublicationViaPartitionRoot => "PSYNC_S1143",
            ErrorCode::SameServerUnsupported => "PSYNC_S1144",
            ErrorCode::RlsWithoutBypass => "PSYNC_S1145",
            ErrorCode::SlotInvalidated => "PSYNC_S1146",
            ErrorCode::SyncRulesParseError => "PSYNC_R0001",
            ErrorCode::SyncRulesWildcardUnsupported => "PSYNC_R2201",
        }
    }

    /// The HTTP status of a response carrying this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InternalError => 500,
            ErrorCode::RouteNotFound => 404,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::AuthError
            | ErrorCode::SignatureVerificationFailed
            | ErrorCode::TokenExpired
            | ErrorCode::TokenLifetimeTooLong
            | ErrorCode::AudienceNotAllowed
            | ErrorCode::MissingToken => 401,
            ErrorCode::TooManyConnections => 429,
            ErrorCode::TooManyBuckets
            | ErrorCode::SyncRulesParseError
            | ErrorCode::SyncRulesWildcardUnsupported => 400,
            ErrorCode::AuthConfigError
            | ErrorCode::JwksIpv6NotSupported
            | ErrorCode::JwksIpBlocked
            | ErrorCode::JwksRequestFailed
            | ErrorCode::NoSyncRules
            | ErrorCode::RowTooLarge
            | ErrorCode::PublicationMissing
            | ErrorCode::PublicationIncomplete
            | ErrorCode::PublicationViaPartitionRoot
            | ErrorCode::SameServerUnsupported
            | ErrorCode::RlsWithoutBypass
            | ErrorCode::SlotInvalidated => 500,
        }
    }

    /// The `name` field ferry sends with this code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InternalError => "InternalServerError",
            ErrorCode::RouteNotFound => "RouteNotFound",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::UnsupportedMediaType => "UnsupportedMediaType",
            ErrorCode::AuthError
            | ErrorCode::SignatureVerificationFailed
            | ErrorCode::TokenExpired
            | ErrorCode::TokenLifetimeTooLong
            | ErrorCode::AudienceNotAllowed
            | ErrorCode::MissingToken => "AuthorizationError",
            ErrorCode::AuthConfigError
            | ErrorCode::JwksIpv6NotSupported
            | ErrorCode::JwksIpBlocked
            | ErrorCode::JwksRequestFailed => "AuthConfigurationError",
            ErrorCode::NoSyncRules | ErrorCode::TooManyConnections | ErrorCode::TooManyBuckets => {
                "SyncError"
            }
            ErrorCode::RowTooLarge
            | ErrorCode::PublicationMissing
            | ErrorCode::PublicationIncomplete
            | ErrorCode::PublicationViaPartitionRoot
            | ErrorCode::SameServerUnsupported
            | ErrorCode::RlsWithoutBypass
            | ErrorCode::SlotInvalidated => "ReplicationError",
            ErrorCode::SyncRulesParseError | ErrorCode::SyncRulesWildcardUnsupported => {
                "SyncRulesError"
            }
        }
    }

    /// Clients treat 401 as "credentials invalid: fetch a new token"; anything else is retried.
    pub fn is_credentials_error(self) -> bool {
        self.http_status() == 401
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = ProtocolError;

    /// Parses a wire code such as `"PSYNC_S2103"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| ProtocolError::UnknownErrorCode { code: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_serializes_protocol_shape() {
        let envelope = ErrorEnvelope::new(ErrorCode::TokenExpired, "JWT has expired")
            .with_details("exp 1700000000 is before now");
        assert_eq!(
            serde_json::to_string(&envelope).unwrap(),
            r#"{"error":{"name":"AuthorizationError","code":"PSYNC_S2103","status":401,"description":"JWT has expired","details":"exp 1700000000 is before now"}}"#
        );
    }

    #[test]
    fn error_envelope_from_powersync_with_extra_fields_parses() {
        let json = r#"{"error":{"name":"RouteNotFound","code":"PSYNC_S2002","status":404,
            "description":"The path does not exist on this server","details":"The path \"/x\" does not exist on this server",
            "severity":"info","trace_id":"abc","origin":"gateway","stack":"ignored"}}"#;
        let envelope: ErrorEnvelope = serde_json::from_str(json).unwrap();
        assert_eq!(envelope.known_code(), Some(ErrorCode::RouteNotFound));
        assert_eq!(envelope.error.severity.as_deref(), Some("info"));
        let again = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            serde_json::from_str::<ErrorEnvelope>(&again).unwrap(),
            envelope
        );
    }

    #[test]
    fn error_envelope_keeps_foreign_codes() {
        let json = r#"{"error":{"name":"ValidationError","code":"FST_ERR_VALIDATION","status":400,"description":"body must be object"}}"#;
        let envelope: ErrorEnvelope = serde_json::from_str(json).unwrap();
        assert_eq!(envelope.error.code, "FST_ERR_VALIDATION");
        assert_eq!(envelope.known_code(), None);
    }

    #[test]
    fn error_codes_have_table_statuses_and_parse_back() {
        assert_eq!(ErrorCode::InternalError.http_status(), 500);
        assert_eq!(ErrorCode::RouteNotFound.http_status(), 404);
        assert_eq!(ErrorCode::ServiceUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::UnsupportedMediaType.http_status(), 415);
        assert_eq!(ErrorCode::NoSyncRules.http_status(), 500);
        for code in [
            ErrorCode::AuthError,
            ErrorCode::SignatureVerificationFailed,
            ErrorCode::TokenExpired,
            ErrorCode::TokenLifetimeTooLong,
            ErrorCode::AudienceNotAllowed,
            ErrorCode::MissingToken,
        ] {
            assert_eq!(code.http_status(), 401, "{code}");
            assert!(code.is_credentials_error());
        }
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), *code);
        }
        assert_eq!(
            "PSYNC_S9999".parse::<ErrorCode>().unwrap_err().to_string(),
            r#"unknown error code "PSYNC_S9999": not one of the PSYNC codes of PROTOCOL.md §3.8"#
        );
    }
}
