//! A raw sync-stream reader for the gateway figures: [`SyncStreamReader::open`] sends one
//! `POST /sync/stream` (NDJSON, no compression, `Authorization: Bearer <test token>`, the body a
//! `ferry_protocol::StreamingSyncRequest` with no buckets) over a TCP connection of its own
//! (hyper's HTTP/1 client connection: no pool, nothing shared between streams), and hands out
//! the response body line by line ([`SyncStreamReader::next_line`], split by
//! `ferry_protocol::LineSplitter`).
//!
//! Lines are not parsed here: [`LineKind::of`] tells a line's type from its first key, and
//! [`count_ops`] counts the ops of a `data` line, both without a JSON parse (the gateway writes
//! compact JSON, one key per line object). Figures that need the content parse it themselves.

use std::collections::VecDeque;
use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use ferry_protocol::{LineSplitter, StreamingSyncRequest};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::gateway;

/// A line's type, from its first key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `{"checkpoint":…}`
    Checkpoint,
    /// `{"checkpoint_diff":…}`
    CheckpointDiff,
    /// `{"data":…}`
    Data,
    /// `{"checkpoint_complete":…}`
    CheckpointComplete,
    /// `{"partial_checkpoint_complete":…}`
    PartialCheckpointComplete,
    /// `{"token_expires_in":…}`
    TokenExpiresIn,
    /// Anything else.
    Other,
}

impl LineKind {
    /// The type of `line` (a compact JSON object whose first key names its type).
    pub fn of(line: &str) -> LineKind {
        const KINDS: [(&str, LineKind); 6] = [
            ("{\"checkpoint\":", LineKind::Checkpoint),
            ("{\"checkpoint_diff\":", LineKind::CheckpointDiff),
            ("{\"data\":", LineKind::Data),
            ("{\"checkpoint_complete\":", LineKind::CheckpointComplete),
            (
                "{\"partial_checkpoint_complete\":",
                LineKind::PartialCheckpointComplete,
            ),
            ("{\"token_expires_in\":", LineKind::TokenExpiresIn),
        ];
        KINDS
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix))
            .map_or(LineKind::Other, |(_, kind)| *kind)
    }
}

/// The number of ops in a `data` line: occurrences of `"op_id":"`. Inside a JSON string every
/// quote is escaped, so the pattern only matches the op objects' own key.
pub fn count_ops(data_line: &str) -> u64 {
    data_line.matches("\"op_id\":\"").count() as u64
}

/// What the first sync of a stream delivered, up to its first `checkpoint_complete`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstSync {
    /// Ops in its `data` lines.
    pub ops: u64,
    /// `data` lines.
    pub data_lines: u64,
    /// Bytes of the response body so far.
    pub bytes: u64,
}

/// One open sync stream on a connection of its own.
pub struct SyncStreamReader {
    body: Incoming,
    lines: LineSplitter,
    ready: VecDeque<String>,
    ended: bool,
    bytes: u64,
    /// Kept so the connection is not told that no more requests come.
    _sender: SendRequest<Full<Bytes>>,
    connection: JoinHandle<()>,
}

impl std::fmt::Debug for SyncStreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncStreamReader")
            .field("bytes", &self.bytes)
            .field("ended", &self.ended)
            .finish()
    }
}

impl SyncStreamReader {
    /// Opens a stream to the gateway at `addr` for user `user` (a test token,
    /// [`gateway::token`]) as client `client_id`, and checks that it was answered 200.
    pub async fn open(
        addr: SocketAddr,
        user: &str,
        client_id: &str,
    ) -> anyhow::Result<SyncStreamReader> {
        let socket = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the gateway at {addr}"))?;
        socket.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
            .await
            .context("HTTP handshake with the gateway")?;
        let connection = tokio::spawn(async move {
            // Ends when the stream ends or the reader is dropped.
            let _ = connection.await;
        });
        let body = StreamingSyncRequest {
            include_checksum: true,
            raw_data: true,
            client_id: Some(client_id.to_owned()),
            ..StreamingSyncRequest::default()
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri("/sync/stream")
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("accept", "application/x-ndjson")
            .header("authorization", format!("Bearer {}", gateway::token(user)))
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let response = sender
            .send_request(request)
            .await
            .context("sending the sync request")?;
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            let text = body
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            connection.abort();
            bail!("POST /sync/stream for {user} answered {status}: {text}");
        }
        Ok(SyncStreamReader {
            body,
            lines: LineSplitter::new(),
            ready: VecDeque::new(),
            ended: false,
            bytes: 0,
            _sender: sender,
            connection,
        })
    }

    /// The next line, `None` once the response has ended.
    pub async fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.frame().await {
                None => {
                    self.ended = true;
                    self.lines.finish().context("the stream ended mid-line")?;
                }
                Some(frame) => {
                    let frame = frame.context("reading the stream")?;
                    if let Ok(data) = frame.into_data() {
                        self.bytes += data.len() as u64;
                        self.lines.push(&data);
                        while let Some(line) = self.lines.next_line() {
                            let line = line.context("splitting the stream into lines")?;
                            self.ready.push_back(line.text.to_owned());
                        }
                    }
                }
            }
        }
    }

    /// Reads up to and including the first `checkpoint_complete`, counting the ops of the
    /// `data` lines with [`count_ops`]. Fails if the stream ends first.
    pub async fn read_first_sync(&mut self) -> anyhow::Result<FirstSync> {
        let mut first = FirstSync::default();
        while let Some(line) = self.next_line().await? {
            match LineKind::of(&line) {
                LineKind::Data => {
                    first.ops += count_ops(&line);
                    first.data_lines += 1;
                }
                LineKind::CheckpointComplete => {
                    first.bytes = self.bytes;
                    return Ok(first);
                }
                _ => {}
            }
        }
        bail!(
            "the stream ended before its first checkpoint_complete ({} ops received)",
            first.ops
        )
    }

    /// Bytes of the response body received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for SyncStreamReader {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_by_their_first_key() {
        assert_eq!(
            LineKind::of(r#"{"checkpoint":{"last_op_id":"1"}}"#),
            LineKind::Checkpoint
        );
        assert_eq!(
            LineKind::of(r#"{"checkpoint_diff":{}}"#),
            LineKind::CheckpointDiff
        );
        assert_eq!(
            LineKind::of(r#"{"checkpoint_complete":{"last_op_id":"1"}}"#),
            LineKind::CheckpointComplete
        );
        assert_eq!(
            LineKind::of(r#"{"partial_checkpoint_complete":{}}"#),
            LineKind::PartialCheckpointComplete
        );
        assert_eq!(LineKind::of(r#"{"data":{}}"#), LineKind::Data);
        assert_eq!(
            LineKind::of(r#"{"token_expires_in":20}"#),
            LineKind::TokenExpiresIn
        );
        assert_eq!(LineKind::of("{}"), LineKind::Other);
    }

    #[test]
    fn ops_are_counted_without_matching_inside_row_data() {
        let line = r#"{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"t","object_id":"a","subkey":null,"checksum":1,"data":"{\"op_id\":\"x\"}"},{"op_id":"2","op":"REMOVE","object_type":"t","object_id":"b","subkey":null,"checksum":2,"data":null}]}}"#;
        assert_eq!(count_ops(line), 2);
    }
}
