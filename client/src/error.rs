//! The client's one error type, [`Error`], with a coarse [`ErrorCategory`] and
//! [`Error::can_retry`] that the sync driver and the uploader use to decide between "back off and
//! try again" and "give up and tell the app".
//!
//! Errors raised by the app's connector are wrapped here too ([`Error::Connector`]); the
//! connector's own upload outcome type is [`crate::UploadError`].

use std::time::Duration;

use ferry_protocol::{ErrorEnvelope, ProtocolError};

/// What kind of problem an [`Error`] is, for logs, metrics and status displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The local SQLite database failed (disk full, corrupt file, locked...).
    Storage,
    /// The schema given to [`crate::FerryDatabase::open`] is invalid.
    Schema,
    /// The SQL given by the app is invalid or failed.
    Query,
    /// The server sent something that does not follow the sync protocol (a garbage or truncated
    /// line, an oversize line, a line out of order, a checksum mismatch).
    Protocol,
    /// The network or the server failed (connection refused, HTTP 5xx, timeout).
    Network,
    /// The credentials were refused (HTTP 401) or could not be fetched.
    Credentials,
    /// The app's connector failed.
    Connector,
    /// The database was closed, or a background task ended.
    Closed,
}

/// Everything that can go wrong in `ferry-client`.
///
/// Messages say what went wrong and, where it helps, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed on an internal statement.
    #[error("local database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An SQL statement of the app failed.
    #[error("query failed: {message} (SQL: {sql})")]
    Query {
        /// The statement, as given.
        sql: String,
        /// SQLite's explanation.
        message: String,
    },
    /// The schema is invalid: names what is wrong and where.
    #[error("invalid schema: {0}")]
    Schema(String),
    /// A sync line could not be framed or decoded (see [`ProtocolError`]).
    #[error("bad sync stream: {0}")]
    Protocol(#[from] ProtocolError),
    /// A well-formed sync line arrived where the protocol does not allow it.
    #[error("sync protocol violation: {0}")]
    ProtocolViolation(String),
    /// Downloaded data did not add up to the checksums of a checkpoint. The buckets named are
    /// deleted locally and downloaded again.
    #[error(
        "checksum mismatch at checkpoint {checkpoint} in {}: the buckets are downloaded again",
        .buckets.join(", ")
    )]
    ChecksumMismatch {
        /// The checkpoint's op id.
        checkpoint: u64,
        /// Each failed bucket as `name (local X, server Y)`.
        buckets: Vec<String>,
    },
    /// The server answered a request with an HTTP error.
    #[error("HTTP {status} from {url}: {message}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The URL requested.
        url: String,
        /// The server's error description (from its error body when there is one).
        message: String,
        /// The parsed error body, when the server sent the PowerSync error envelope.
        envelope: Option<Box<ErrorEnvelope>>,
    },
    /// The request did not get an answer (connection refused, reset, DNS, TLS...).
    #[error("network error talking to {url}: {message}")]
    Network {
        /// The URL requested.
        url: String,
        /// What failed.
        message: String,
    },
    /// No data arrived on the sync stream for too long.
    #[error("the sync stream was idle for {0:?} (the server sends a keepalive about every 20 s)")]
    StreamIdle(Duration),
    /// An endpoint URL is not usable.
    #[error("invalid endpoint {endpoint:?}: {message}")]
    InvalidEndpoint {
        /// The endpoint as given by the connector.
        endpoint: String,
        /// What is wrong with it.
        message: String,
    },
    /// The connector could not supply credentials, or failed otherwise.
    #[error("connector error: {0}")]
    Connector(String),
    /// The database is closed (or its background thread ended).
    #[error("the database is closed")]
    Closed,
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    /// The error's category.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Sqlite(_) => ErrorCategory::Storage,
            Error::Query { .. } => ErrorCategory::Query,
            Error::Schema(_) => ErrorCategory::Schema,
            Error::Protocol(_) | Error::ProtocolViolation(_) | Error::ChecksumMismatch { .. } => {
                ErrorCategory::Protocol
            }
            Error::Http { status: 401, .. } => ErrorCategory::Credentials,
            Error::Http { .. } | Error::Network { .. } | Error::StreamIdle(_) => {
                ErrorCategory::Network
            }
            Error::InvalidEndpoint { .. } | Error::Connector(_) => ErrorCategory::Connector,
            Error::Closed | Error::Task(_) => ErrorCategory::Closed,
        }
    }

    /// Whether trying the same thing again later can succeed. Sync and upload loops retry these
    /// with backoff; the others need the app (or a developer) to change something, though the sync
    /// driver keeps retrying network-facing ones anyway, since a server may be fixed meanwhile.
    pub fn can_retry(&self) -> bool {
        match self {
            Error::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Error::Query { .. } | Error::Schema(_) | Error::Closed | Error::Task(_) => false,
            Error::InvalidEndpoint { .. } => false,
            Error::Http { status, .. } => *status == 401 || *status == 429 || *status >= 500,
            Error::Protocol(_)
            | Error::ProtocolViolation(_)
            | Error::ChecksumMismatch { .. }
            | Error::Network { .. }
            | Error::StreamIdle(_)
            | Error::Connector(_) => true,
        }
    }

    /// Whether the server refused the credentials: fetch new ones before retrying.
    pub fn is_credentials_error(&self) -> bool {
        match self {
            Error::Http {
                status, envelope, ..
            } => {
                *status == 401
                    || envelope
                        .as_ref()
                        .and_then(|e| e.known_code())
                        .is_some_and(|c| c.is_credentials_error())
            }
            _ => false,
        }
    }

    /// Whether the next attempt should ask the connector for credentials again: the service
    /// refused them, or could not be reached at the endpoint they name (the app may have moved
    /// the service; a connector can only tell the client so when asked).
    pub fn needs_new_credentials(&self) -> bool {
        self.is_credentials_error()
            || matches!(self, Error::Network { .. } | Error::InvalidEndpoint { .. })
    }

    /// Wraps an error of an app statement, keeping the statement for the message.
    pub(crate) fn query(sql: &str, e: rusqlite::Error) -> Error {
        Error::Query {
            sql: sql.to_owned(),
            message: e.to_string(),
        }
    }
}

/// `Result<T, ferry_client::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_401_is_a_retryable_credentials_error() {
        let e = Error::Http {
            status: 401,
            url: "http://x/sync/stream".into(),
            message: "token expired".into(),
            envelope: None,
        };
        assert!(e.is_credentials_error());
        assert!(e.can_retry());
        assert_eq!(e.category(), ErrorCategory::Credentials);
        assert_eq!(
            e.to_string(),
            "HTTP 401 from http://x/sync/stream: token expired"
        );
    }

    #[test]
    fn unreachable_endpoints_and_refused_tokens_ask_for_new_credentials() {
        let network = Error::Network {
            url: "http://x/sync/stream".into(),
            message: "connection refused".into(),
        };
        assert!(network.needs_new_credentials());
        let http = |status| Error::Http {
            status,
            url: String::new(),
            message: String::new(),
            envelope: None,
        };
        assert!(http(401).needs_new_credentials());
        assert!(!http(503).needs_new_credentials());
        assert!(!Error::StreamIdle(Duration::from_secs(1)).needs_new_credentials());
    }

    #[test]
    fn client_errors_are_not_retried_but_server_errors_are() {
        let http = |status| Error::Http {
            status,
            url: String::new(),
            message: String::new(),
            envelope: None,
        };
        assert!(!http(400).can_retry());
        assert!(!http(404).can_retry());
        assert!(http(503).can_retry());
        assert!(http(429).can_retry());
        assert!(!Error::Schema("x".into()).can_retry());
    }

    #[test]
    fn checksum_mismatch_names_the_buckets() {
        let e = Error::ChecksumMismatch {
            checkpoint: 12,
            buckets: vec!["a[] (local 1, server 2)".into()],
        };
        assert_eq!(
            e.to_string(),
            "checksum mismatch at checkpoint 12 in a[] (local 1, server 2): the buckets are downloaded again"
        );
        assert_eq!(e.category(), ErrorCategory::Protocol);
    }
}
