//! Where verification keys come from: an inline JWKS in the config, a JWKS file (both read once,
//! at start, and strict: a bad key is a config error) and a JWKS URL ([`RemoteJwks`]: fetched at
//! start, cached for `jwks_refresh_secs`, re-fetched when a token names an unknown `kid`, never
//! more often than once per `jwks_min_refresh_secs`; a failed fetch keeps the previous keys).
//!
//! Parsing a key is [`crate::auth::keys`]; using keys is [`crate::auth::jwt`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::auth::keys::{KeyError, KeySet};
use crate::config::AuthConfig;

/// Largest JWKS document accepted from a URL.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Time limit of one JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys that cannot be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    /// The inline JWKS or the file holds an unusable key.
    #[error("{source_name}: {error}")]
    BadKey {
        /// `auth.jwks` or the file name.
        source_name: String,
        /// The problem.
        error: KeyError,
    },
    /// The JWKS file cannot be read or is not JSON.
    #[error("JWKS file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The JWKS URL is not a valid URI.
    #[error("auth.jwks_url {url:?} is not a valid URL: {message}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
}

/// Loads the inline and file keys of `config` (not the URL's).
pub fn load_static_keys(config: &AuthConfig) -> Result<KeySet, KeySourceError> {
    let mut set = KeySet::default();
    if let Some(jwks) = &config.jwks {
        let (keys, _) =
            KeySet::from_jwks(&jwks.0, true).map_err(|error| KeySourceError::BadKey {
                source_name: "auth.jwks".into(),
                error,
            })?;
        set.extend(&keys);
    }
    if let Some(path) = &config.jwks_file {
        set.extend(&load_jwks_file(path)?);
    }
    Ok(set)
}

fn load_jwks_file(path: &Path) -> Result<KeySet, KeySourceError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| KeySourceError::File {
        path: name.clone(),
        message: e.to_string(),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| KeySourceError::File {
        path: name.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    let (keys, _) = KeySet::from_jwks(&value, true).map_err(|error| KeySourceError::BadKey {
        source_name: name,
        error,
    })?;
    Ok(keys)
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A JWKS URL with its cached keys.
pub struct RemoteJwks {
    url: hyper::Uri,
    client: HttpsClient,
    refresh: Duration,
    min_refresh: Duration,
    state: Mutex<RemoteState>,
    /// Serializes fetches so a burst of unknown-`kid` tokens makes one request.
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct RemoteState {
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    fetches: u64,
}

impl RemoteJwks {
    /// A source for `url` (not fetched yet).
    pub fn new(
        url: &str,
        refresh: Duration,
        min_refresh: Duration,
    ) -> Result<RemoteJwks, KeySourceError> {
        let uri: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| KeySourceError::Url {
                    url: url.to_owned(),
                    message: e.to_string(),
                })?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(RemoteJwks {
            url: uri,
            client,
            refresh,
            min_refresh,
            state: Mutex::new(RemoteState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The cached keys, re-fetched first when older than the refresh interval.
    pub async fn keys(&self) -> Arc<KeySet> {
        let stale = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.fetched_at.is_none_or(|t| t.elapsed() >= self.refresh)
        };
        if stale {
            self.refresh_if_allowed().await;
        }
        self.cached()
    }

    /// The cached keys as they are.
    pub fn cached(&self) -> Arc<KeySet> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .clone()
    }

    /// How many fetches were attempted (for tests and logs).
    pub fn fetch_count(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).fetches
    }

    /// Fetches the keys again unless a fetch was attempted within the minimum interval. Returns
    /// whether a fetch happened and succeeded.
    pub async fn refresh_if_allowed(&self) -> bool {
        let _guard = self.fetch_lock.lock().await;
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.min_refresh)
            {
                return false;
            }
            state.last_attempt = Some(Instant::now());
            state.fetches += 1;
        }
        match self.fetch().await {
            Ok((keys, skipped)) => {
                for e in &skipped {
                    tracing::warn!(url = %self.url, error = %e, "ignoring a key of the JWKS URL");
                }
                tracing::info!(url = %self.url, keys = keys.keys.len(), "fetched JWKS");
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
                true
            }
            Err(message) => {
                tracing::warn!(url = %self.url, error = %message, "JWKS fetch failed; keeping the previous keys");
                false
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Vec<KeyError>), String> {
        let request = hyper::Request::get(self.url.clone())
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP status {}", response.status()));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(response.into_body(), MAX_JWKS_BYTES).collect(),
        )
        .await
        .map_err(|_| "timed out reading the body".to_owned())?
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| format!("not valid JSON: {e}"))?;
        KeySet::from_jwks(&value, false).map_err(|e| e.to_string())
    }
}
