//! The app's side of syncing: the [`Connector`] trait (credentials for the sync service, and
//! uploading local writes to the app's backend), and [`GatewayConnector`], a ready-made connector
//! for a fixed endpoint and token that uploads to an HTTP write endpoint (ferry's gateway has one).
//!
//! How and when the connector is called (backoff, retries, write checkpoints) is
//! [`crate::upload`] and [`crate::driver`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use ferry_protocol::{CrudTransaction, ErrorEnvelope};

use crate::transport::http::HttpTransport;

/// The path of the gateway's built-in write endpoint, relative to its base URL.
pub const GATEWAY_WRITE_PATH: &str = "api/crud";

/// Any error an app's connector reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where and as whom to sync.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The sync service's base URL, e.g. `http://127.0.0.1:8080` (`sync/stream` and
    /// `write-checkpoint2.json` are joined to it).
    pub endpoint: String,
    /// A JWT the service accepts (sent as `Authorization: Token <jwt>`).
    pub token: String,
}

impl fmt::Debug for Credentials {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("endpoint", &self.endpoint)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why an upload did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Temporary (network down, backend unavailable): the same transaction is uploaded again
    /// later, with backoff. Nothing is lost.
    #[error("upload failed, will retry: {0}")]
    Retry(String),
    /// The backend refused the transaction for good (validation, permissions): it is dropped from
    /// the queue, and the server's state replaces the local writes at the next sync.
    #[error("upload rejected: {0}")]
    Rejected(String),
}

/// Connects a database to the app's sync service and backend.
///
/// Implement it with `async fn`s:
///
/// ```
/// use ferry_client::{BoxError, Connector, Credentials, CrudTransaction, UploadError};
///
/// struct MyConnector;
///
/// impl Connector for MyConnector {
///     async fn fetch_credentials(&self) -> Result<Credentials, BoxError> {
///         Ok(Credentials { endpoint: "http://127.0.0.1:8080".into(), token: "...".into() })
///     }
///     async fn upload(&self, transaction: &CrudTransaction) -> Result<(), UploadError> {
///         // Send `transaction` to the backend; return only once it has committed.
///         Ok(())
///     }
/// }
/// ```
pub trait Connector: Send + Sync + 'static {
    /// The endpoint and a token. Called before connecting, after the service refused the token
    /// (HTTP 401) or could not be reached at the endpoint (so a connector can move the client to
    /// another endpoint: the next attempt uses what it returns), and shortly before the token
    /// expires.
    fn fetch_credentials(&self) -> impl Future<Output = Result<Credentials, BoxError>> + Send;

    /// Applies one local transaction at the app's backend. Must return `Ok` only after the
    /// backend has committed it; uploads are at-least-once, so the backend should apply each
    /// `(client_id, transaction_id)` once.
    fn upload(
        &self,
        transaction: &CrudTransaction,
    ) -> impl Future<Output = Result<(), UploadError>> + Send;
}

/// A connector with a fixed endpoint and token that uploads each transaction as JSON
/// (`POST <upload_url>`, body [`CrudTransaction`], `Authorization: Token <jwt>`), as ferry's
/// gateway write endpoint expects.
///
/// Response handling: 2xx is success; 400, 403, 409, 413 and 422 are definitive rejections (the
/// transaction is dropped, the server's description is kept in the status); anything else (401,
/// 404 for a wrong or disabled endpoint, 429, 5xx, network errors) is retried, so a configuration
/// mistake never drops queued writes.
#[derive(Clone)]
pub struct GatewayConnector {
    credentials: Credentials,
    upload_url: Option<String>,
    http: Arc<Result<HttpTransport, String>>,
}

impl fmt::Debug for GatewayConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConnector")
            .field("credentials", &self.credentials)
            .field("upload_url", &self.upload_url)
            .finish()
    }
}

impl GatewayConnector {
    /// Syncs from `endpoint` with `token`; uploads are refused (retried) until
    /// [`GatewayConnector::with_upload_url`] sets where they go.
    pub fn new(endpoint: impl Into<String>, token: impl Into<String>) -> GatewayConnector {
        GatewayConnector {
            credentials: Credentials {
                endpoint: endpoint.into(),
                token: token.into(),
            },
            upload_url: None,
            http: Arc::new(HttpTransport::new().map_err(|e| e.to_string())),
        }
    }

    /// Uploads to this URL.
    #[must_use]
    pub fn with_upload_url(mut self, url: impl Into<String>) -> GatewayConnector {
        self.upload_url = Some(url.into());
        self
    }

    /// Uploads to the gateway's built-in write endpoint, `{endpoint}/api/crud` (enabled with
    /// `write.enabled` in the gateway's configuration).
    #[must_use]
    pub fn with_gateway_write_endpoint(self) -> GatewayConnector {
        let url = format!(
            "{}/{GATEWAY_WRITE_PATH}",
            self.credentials.endpoint.trim_end_matches('/')
        );
        self.with_upload_url(url)
    }
}

impl Connector for GatewayConnector {
    async fn fetch_credentials(&self) -> Result<Credentials, BoxError> {
        Ok(self.credentials.clone())
    }

    async fn upload(&self, transaction: &CrudTransaction) -> Result<(), UploadError> {
        let Some(url) = &self.upload_url else {
            return Err(UploadError::Retry(
                "GatewayConnector has no upload URL: set one with with_upload_url".into(),
            ));
        };
        let body = serde_json::to_vec(transaction)
            .map_err(|e| UploadError::Retry(format!("cannot encode the transaction: {e}")))?;
        let http = self
            .http
            .as_ref()
            .as_ref()
            .map_err(|e| UploadError::Retry(e.clone()))?;
        let (status, response) = http
            .post_json(url, &self.credentials.token, body)
            .await
            .map_err(|e| UploadError::Retry(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let description = serde_json::from_slice::<ErrorEnvelope>(&response)
            .map(|e| format!("{} ({})", e.error.description, e.error.code))
            .unwrap_or_else(|_| {
                String::from_utf8_lossy(&response)
                    .chars()
                    .take(500)
                    .collect()
            });
        let message = format!("HTTP {status} from {url}: {description}");
        if matches!(status, 400 | 403 | 409 | 413 | 422) {
            Err(UploadError::Rejected(message))
        } else {
            Err(UploadError::Retry(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_write_endpoint_is_joined_to_the_endpoint() {
        let c = GatewayConnector::new("http://127.0.0.1:8080/", "t").with_gateway_write_endpoint();
        assert_eq!(
            c.upload_url.as_deref(),
            Some("http://127.0.0.1:8080/api/crud")
        );
    }

    #[test]
    fn credentials_debug_hides_the_token() {
        let c = Credentials {
            endpoint: "http://x".into(),
            token: "secret".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("http://x"));
    }
}
