//! The HTTP transport (PROTOCOL.md §3.1, §3.7): `POST {endpoint}/sync/stream` with
//! `Authorization: Token <jwt>` and `Accept: application/x-ndjson`, answered by a streaming NDJSON
//! body; `GET {endpoint}/write-checkpoint2.json?client_id=`; and plain JSON POSTs for
//! [`crate::GatewayConnector`] uploads.
//!
//! Built on hyper with rustls (ring provider, webpki roots); plain `http://` works too (tests, the
//! demo on 127.0.0.1). Error responses are turned into [`Error::Http`] carrying the service's
//! error envelope when it sent one. Decoding the stream's lines is the driver's job, with
//! [`ferry_protocol::SyncLineDecoder`].

use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::{DataEnvelope, ErrorEnvelope, StreamingSyncRequest, WriteCheckpointResponse};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::connector::Credentials;
use crate::error::{Error, Result};

/// How long connecting (TCP + TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a non-streaming request may take in total.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an error body that is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most of a JSON response body that is read.
const MAX_JSON_BODY: usize = 1024 * 1024;

const USER_AGENT_VALUE: &str = concat!("ferry-client/", env!("CARGO_PKG_VERSION"));

/// An HTTP(S) client for the sync service.
#[derive(Debug, Clone)]
pub(crate) struct HttpTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// `endpoint` joined with `path` (no leading slash), e.g. `http://h:1/base` + `sync/stream`.
pub(crate) fn join(endpoint: &str, path: &str) -> Result<Uri> {
    let base = endpoint.trim_end_matches('/');
    let invalid = |message: &str| Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        message: message.to_owned(),
    };
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(invalid("it must start with http:// or https://"));
    }
    if base.contains('?') || base.contains('#') {
        return Err(invalid("it must not have a query or fragment"));
    }
    format!("{base}/{path}")
        .parse::<Uri>()
        .map_err(|e| invalid(&e.to_string()))
}

/// Percent-encodes a query value (unreserved characters stay).
fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl HttpTransport {
    /// A client with ferry's timeouts. Fails only if TLS cannot be set up (rustls' ring provider
    /// supporting no protocol version), which does not happen in practice.
    pub(crate) fn new() -> Result<HttpTransport> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Connector(format!("TLS setup failed: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpTransport { client })
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<hyper::Response<Incoming>> {
        let url = request.uri().to_string();
        self.client
            .request(request)
            .await
            .map_err(|e| Error::Network {
                url,
                message: error_chain(&e),
            })
    }

    /// Opens the sync stream. Returns the streaming body of a 2xx response.
    pub(crate) async fn sync_stream(
        &self,
        credentials: &Credentials,
        request: &StreamingSyncRequest,
    ) -> Result<Incoming> {
        let uri = join(&credentials.endpoint, "sync/stream")?;
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::ProtocolViolation(format!("cannot encode the request: {e}")))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(AUTHORIZATION, format!("Token {}", credentials.token))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/x-ndjson")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| invalid_request(&credentials.endpoint, &e))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.send(req))
            .await
            .map_err(|_| timed_out(&uri))??;
        if response.status().is_success() {
            return Ok(response.into_body());
        }
        Err(http_error(&uri, response).await)
    }

    /// Asks for a new write checkpoint (`GET write-checkpoint2.json?client_id=`).
    pub(crate) async fn write_checkpoint(
        &self,
        credentials: &Credentials,
        client_id: &str,
    ) -> Result<u64> {
        let uri = join(
            &credentials.endpoint,
            &format!(
                "write-checkpoint2.json?client_id={}",
                encode_query(client_id)
            ),
        )?;
        let req = Request::builder()
            .method(Method::GET)
            .uri(uri.clone())
            .header(AUTHORIZATION, format!("Token {}", credentials.token))
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::new()))
            .map_err(|e| invalid_request(&credentials.endpoint, &e))?;
        let body = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.send(req).await?;
            if !response.status().is_success() {
                return Err(http_error(&uri, response).await);
            }
            read_limited(&uri, response.into_body(), MAX_JSON_BODY).await
        })
        .await
        .map_err(|_| timed_out(&uri))??;
        let parsed: DataEnvelope<WriteCheckpointResponse> =
            serde_json::from_slice(&body).map_err(|e| {
                Error::ProtocolViolation(format!(
                    "{uri} did not answer with {{\"data\":{{\"write_checkpoint\":\"<n>\"}}}}: {e}"
                ))
            })?;
        Ok(parsed.data.write_checkpoint)
    }

    /// POSTs a JSON body with a token; returns the status and (up to 1 MiB of) the body.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        token: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes)> {
        let uri = url.parse::<Uri>().map_err(|e| Error::InvalidEndpoint {
            endpoint: url.to_owned(),
            message: e.to_string(),
        })?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(AUTHORIZATION, format!("Token {token}"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| invalid_request(url, &e))?;
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.send(req).await?;
            let status = response.status().as_u16();
            let body = read_limited(&uri, response.into_body(), MAX_JSON_BODY).await?;
            Ok((status, body))
        })
        .await
        .map_err(|_| timed_out(&uri))?
    }
}

fn invalid_request(endpoint: &str, e: &hyper::http::Error) -> Error {
    Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        message: e.to_string(),
    }
}

fn timed_out(uri: &Uri) -> Error {
    Error::Network {
        url: uri.to_string(),
        message: format!("no response within {REQUEST_TIMEOUT:?}"),
    }
}

/// The error and its sources, joined: hyper's top-level messages alone say little.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

async fn read_limited(uri: &Uri, body: Incoming, limit: usize) -> Result<Bytes> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Error::Network {
            url: uri.to_string(),
            message: format!("reading the response failed: {e}"),
        })
}

/// Turns a non-2xx response into [`Error::Http`], with the service's error envelope if any.
async fn http_error(uri: &Uri, response: hyper::Response<Incoming>) -> Error {
    let status = response.status().as_u16();
    let body = read_limited(uri, response.into_body(), MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let envelope = serde_json::from_slice::<ErrorEnvelope>(&body).ok();
    let message = match &envelope {
        Some(e) => format!("{} ({})", e.error.description, e.error.code),
        None if body.is_empty() => "no error description".to_owned(),
        None => String::from_utf8_lossy(&body).chars().take(300).collect(),
    };
    Error::Http {
        status,
        url: uri.to_string(),
        message,
        envelope: envelope.map(Box::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_joined_with_one_slash() {
        assert_eq!(
            join("http://127.0.0.1:8080", "sync/stream")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:8080/sync/stream"
        );
        assert_eq!(
            join(
                "https://h.example/base/",
                "write-checkpoint2.json?client_id=a"
            )
            .unwrap()
            .to_string(),
            "https://h.example/base/write-checkpoint2.json?client_id=a"
        );
        let e = join("127.0.0.1:8080", "sync/stream")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must start with http:// or https://"), "{e}");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query("a b/c-1"), "a%20b%2Fc-1");
    }
}
