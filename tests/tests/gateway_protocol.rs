//! The gateway against the real extension, over raw HTTP on a real port: every line type and
//! field of PROTOCOL.md §3 as a client sees it, checked against ferry's storage.
//!
//! Each test has its own database (rules deployed, applier driven with `ferry.advance()`) and
//! its own gateway ([`TestGateway`]). Streams are read with a plain hyper client and
//! `ferry_protocol::SyncLineDecoder`; every line is also checked field by field as raw JSON
//! ([`check_line_shape`]) and fed to a small client model ([`Model`]) that enforces the
//! protocol's rules (positions chain, op ids stay within the checkpoint, checksums and counts add
//! up at every completion) and holds the rows a client would have, which the tests compare with
//! what the op log says.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use bytes::Bytes;
use ferry_gateway::Config;
use ferry_protocol::{
    BucketChecksum, BucketSubscriptionReason, Checkpoint, CheckpointDiff, Checksum, CrudEntry,
    CrudOp, CrudTransaction, DataLine, LineSplitter, OpKind, SyncLine, SyncLineDecoder,
};
use ferry_tests::ferry_sql::{advance_until_idle, assert_checksums_consistent, reduced_state};
use ferry_tests::gateway::{self, TestGateway};
use ferry_tests::runner::{run, test};
use ferry_tests::{shared_cluster, wait_until, TestDb};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};

const SCHEMA: &str = "
CREATE TABLE settings (id text PRIMARY KEY, value text);
CREATE TABLE lists (id text PRIMARY KEY, owner_id text, name text);
CREATE TABLE todos (id text PRIMARY KEY, list_id text, owner_id text, description text,
                    done boolean DEFAULT false);
CREATE TABLE list_members (id text PRIMARY KEY, list_id text, user_id text);
CREATE TABLE notes (id text PRIMARY KEY, list_id text, body text);
";

const SEED: &str = "
INSERT INTO settings VALUES ('theme', 'dark'), ('lang', 'en');
INSERT INTO lists VALUES ('L1', 'u1', 'Groceries'), ('L2', 'u2', 'Work');
INSERT INTO todos (id, list_id, owner_id, description) VALUES
    ('T1', 'L1', 'u1', 'milk'), ('T2', 'L1', 'u1', 'eggs'), ('T3', 'L2', 'u2', 'report');
INSERT INTO list_members VALUES ('M1', 'S1', 'u1');
INSERT INTO notes VALUES ('N1', 'S1', 'shared note'), ('N2', 'S9', 'note of another list');
";

/// Three priorities, static and dynamic buckets. User u1 gets `global[]` (priority 3, 2 ops),
/// `by_owner["u1"]` (priority 1, 3 ops) and `shared_lists["S1"]` (priority 2, 1 op).
const RULES: &str = "
bucket_definitions:
  global:
    data:
      - SELECT * FROM settings
  by_owner:
    priority: 1
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT * FROM todos WHERE owner_id = bucket.owner_id
  shared_lists:
    priority: 2
    parameters: SELECT list_id FROM list_members WHERE user_id = request.user_id()
    data:
      - SELECT * FROM notes WHERE list_id = bucket.list_id
";

/// Each definition's priority in [`RULES`].
fn priority_of(definition: &str) -> Option<u8> {
    match definition {
        "global" => Some(3),
        "by_owner" => Some(1),
        "shared_lists" => Some(2),
        _ => None,
    }
}

/// How long a line may take to arrive.
const LINE_TIMEOUT: Duration = Duration::from_secs(15);

fn main() {
    run(vec![
        test(
            "first_sync_sends_checkpoint_data_and_completions_as_specified",
            first_sync_sends_checkpoint_data_and_completions_as_specified,
        ),
        test(
            "live_changes_arrive_as_diffs_with_only_the_users_buckets",
            live_changes_arrive_as_diffs_with_only_the_users_buckets,
        ),
        test(
            "write_checkpoint_alone_sends_a_diff_to_its_client_only",
            write_checkpoint_alone_sends_a_diff_to_its_client_only,
        ),
        test(
            "checkpoint_request_is_stored_and_announced",
            checkpoint_request_is_stored_and_announced,
        ),
        test(
            "resumed_stream_sends_only_ops_after_the_given_positions",
            resumed_stream_sends_only_ops_after_the_given_positions,
        ),
        test(
            "gaining_and_losing_a_dynamic_bucket_sends_diffs",
            gaining_and_losing_a_dynamic_bucket_sends_diffs,
        ),
        test(
            "expiring_token_ends_the_stream_after_token_expires_in_zero",
            expiring_token_ends_the_stream_after_token_expires_in_zero,
        ),
        test(
            "activating_new_rules_ends_the_stream",
            activating_new_rules_ends_the_stream,
        ),
        test(
            "malformed_requests_get_error_envelopes_while_a_stream_keeps_flowing",
            malformed_requests_get_error_envelopes_while_a_stream_keeps_flowing,
        ),
        test(
            "write_endpoint_applies_an_upload_once_and_refuses_bad_batches_whole",
            write_endpoint_applies_an_upload_once_and_refuses_bad_batches_whole,
        ),
        test(
            "large_sync_interrupted_by_new_checkpoints_stays_consistent",
            large_sync_interrupted_by_new_checkpoints_stays_consistent,
        ),
        test(
            "compacted_buckets_sync_with_move_and_clear",
            compacted_buckets_sync_with_move_and_clear,
        ),
        test(
            "stream_before_any_rules_are_active_is_refused_with_psync_s2302",
            stream_before_any_rules_are_active_is_refused_with_psync_s2302,
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// Fixture: a database with the rules active, a gateway, an HTTP client.

struct Fixture {
    db: TestDb,
    gateway: TestGateway,
    http: Http,
    version: i64,
}

async fn fixture(prefix: &str) -> anyhow::Result<Fixture> {
    fixture_with(prefix, "", |_| {}).await
}

/// A database with [`SCHEMA`], [`SEED`] and `extra_sql`, [`RULES`] active, and a gateway
/// configured by `adjust`.
async fn fixture_with(
    prefix: &str,
    extra_sql: &str,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<Fixture> {
    let db = TestDb::create(shared_cluster()?, prefix).await?;
    db.exec(SCHEMA).await?;
    db.exec(SEED).await?;
    if !extra_sql.is_empty() {
        db.exec(extra_sql).await?;
    }
    let version: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&RULES])
        .await?
        .get(0);
    advance_until_idle(&db).await?;
    let gateway = TestGateway::start_with(&db, adjust).await?;
    let http = Http::new(&gateway);
    Ok(Fixture {
        db,
        gateway,
        http,
        version,
    })
}

impl Fixture {
    /// `<version>#<name>`, e.g. `bucket("by_owner[\"u1\"]")`.
    fn bucket(&self, name: &str) -> String {
        format!("{}#{name}", self.version)
    }

    /// Runs SQL, then the applier until idle; returns the latest checkpoint's op id.
    async fn change(&self, sql: &str) -> anyhow::Result<u64> {
        self.db.exec(sql).await?;
        advance_until_idle(&self.db).await?;
        latest_op_id(&self.db).await
    }

    /// Opens a stream for `user` as client `client_id` with no buckets yet.
    async fn open(&self, user: &str, client_id: &str) -> anyhow::Result<SyncStream> {
        self.http
            .stream(
                &gateway::token(user),
                &sync_request(client_id, &BTreeMap::new()),
            )
            .await
    }
}

async fn latest_op_id(db: &TestDb) -> anyhow::Result<u64> {
    let op_id: i64 = db
        .query_one("SELECT op_id FROM ferry.latest_checkpoint()", &[])
        .await?
        .get(0);
    Ok(u64::try_from(op_id)?)
}

/// A bucket's checksum and count in `ferry.bucket_state` ((0, 0) when it has no ops).
async fn bucket_state(db: &TestDb, bucket: &str) -> anyhow::Result<(u32, u64)> {
    let rows = db
        .query(
            "SELECT checksum, count FROM ferry.bucket_state WHERE bucket = $1",
            &[&bucket],
        )
        .await?;
    match rows.first() {
        None => Ok((0, 0)),
        Some(row) => Ok((
            u32::try_from(row.get::<_, i64>(0))?,
            u64::try_from(row.get::<_, i64>(1))?,
        )),
    }
}

/// The request body official clients send (PROTOCOL.md §7), with the buckets the client has.
fn sync_request(client_id: &str, positions: &BTreeMap<String, u64>) -> Value {
    let buckets: Vec<Value> = positions
        .iter()
        .map(|(name, after)| json!({"name": name, "after": after.to_string()}))
        .collect();
    json!({
        "buckets": buckets,
        "include_checksum": true,
        "raw_data": true,
        "binary_data": true,
        "client_id": client_id,
        "parameters": {},
        "streams": {"include_defaults": true, "subscriptions": []},
    })
}

// ---------------------------------------------------------------------------------------------
// A plain HTTP client.

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// A complete non-streaming response.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "response body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Http {
    fn new(gateway: &TestGateway) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: gateway.url(""),
        }
    }

    /// A client whose sockets have a fixed, small receive buffer (no autotuning), so a stream
    /// that is not read soon stops the server's writes instead of landing in the kernel.
    fn with_small_receive_buffer(gateway: &TestGateway) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_recv_buffer_size(Some(64 * 1024));
        Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: gateway.url(""),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header(
                "accept",
                "application/vnd.powersync.bson-stream;q=0.9,application/x-ndjson;q=0.8",
            );
        if let Some(token) = token {
            request = request.header("authorization", format!("Token {token}"));
        }
        let request = request.body(Full::new(body.into()))?;
        Ok(self.client.request(request).await?)
    }

    /// Sends a request and reads the whole response.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        let response = self.send(method, path, token, body).await?;
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let body = tokio::time::timeout(LINE_TIMEOUT, response.into_body().collect())
            .await
            .context("the response body did not end")??
            .to_bytes();
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    async fn post_json(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call(Method::POST, path, Some(token), body.to_string())
            .await
    }

    /// `POST /sync/stream`; fails unless it answers 200 with `application/x-ndjson`.
    async fn stream(&self, token: &str, request: &Value) -> anyhow::Result<SyncStream> {
        let response = self
            .send(
                Method::POST,
                "/sync/stream",
                Some(token),
                request.to_string(),
            )
            .await?;
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        if status != 200 {
            let body = response.into_body().collect().await?.to_bytes();
            bail!(
                "POST /sync/stream answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        ensure!(
            content_type == "application/x-ndjson",
            "a sync stream must be application/x-ndjson, got {content_type:?}"
        );
        Ok(SyncStream {
            body: response.into_body(),
            decoder: SyncLineDecoder::new(),
            raw: LineSplitter::new(),
            ready: VecDeque::new(),
            ended: false,
        })
    }
}

/// `POST` over a bare socket, writing the body while reading the answer: a server may answer
/// (413) and close without reading a body it refuses, which a client that first writes the whole
/// body sees as a broken pipe.
async fn post_unread(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> anyhow::Result<Reply> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(addr).await?;
    let (mut read, mut write) = socket.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Token {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        // The server may stop reading: a failed write is expected.
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
    });
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + LINE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, read.read(&mut chunk)).await {
            Err(_) => bail!("no complete response"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => response.extend_from_slice(&chunk[..n]),
        }
        if let Some(reply) = parse_response(&response) {
            writer.abort();
            return Ok(reply);
        }
    }
    writer.abort();
    parse_response(&response).with_context(|| {
        format!(
            "incomplete response: {:?}",
            String::from_utf8_lossy(&response)
        )
    })
}

/// A complete HTTP/1.1 response with a `content-length` body, or `None` if more is needed.
fn parse_response(bytes: &[u8]) -> Option<Reply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut content_type = String::new();
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.trim().to_owned(),
            "content-length" => length = value.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let body = &bytes[end + 4..];
    let length = length?;
    (body.len() >= length).then(|| Reply {
        status,
        content_type,
        body: Bytes::copy_from_slice(&body[..length]),
    })
}

fn content_type(response: &Response<Incoming>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Reading a sync stream.

/// One line: decoded, and as raw JSON (for checks of exact fields).
#[derive(Debug, Clone)]
struct Line {
    line: SyncLine,
    raw: Value,
}

struct SyncStream {
    body: Incoming,
    decoder: SyncLineDecoder,
    raw: LineSplitter,
    ready: VecDeque<Line>,
    ended: bool,
}

impl SyncStream {
    /// The next line of any type, `None` once the response has ended. Fails when nothing comes
    /// within `timeout`.
    async fn next_within(&mut self, timeout: Duration) -> anyhow::Result<Option<Line>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            if self.ended {
                return Ok(None);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .map_err(|_| anyhow!("no line within {timeout:?}"))?;
            match frame {
                None => {
                    self.ended = true;
                    self.decoder.finish().context("the stream ended mid-line")?;
                }
                Some(frame) => {
                    let frame = frame.context("reading the stream")?;
                    if let Ok(data) = frame.into_data() {
                        self.push(&data)?;
                    }
                }
            }
        }
    }

    fn push(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.decoder.push(chunk);
        self.raw.push(chunk);
        while let Some(decoded) = self.decoder.next_line() {
            let line = decoded.context("a line that is not a valid sync line")?;
            let text = self
                .raw
                .next_line()
                .context("the splitter and the decoder disagree")?
                .context("raw line")?
                .text
                .to_owned();
            let raw: Value = serde_json::from_str(&text)?;
            check_line_shape(&raw).with_context(|| format!("line {text}"))?;
            self.ready.push_back(Line { line, raw });
        }
        Ok(())
    }

    /// The next line that is not a `token_expires_in` keepalive; fails if the stream ends.
    async fn next(&mut self) -> anyhow::Result<Line> {
        loop {
            match self.next_within(LINE_TIMEOUT).await? {
                None => bail!("the stream ended"),
                Some(Line {
                    line: SyncLine::TokenExpiresIn(_),
                    ..
                }) => continue,
                Some(line) => return Ok(line),
            }
        }
    }

    /// Reads lines into `model` up to and including a `checkpoint_complete`; returns them all.
    async fn until_complete(&mut self, model: &mut Model) -> anyhow::Result<Vec<Line>> {
        let mut lines = Vec::new();
        loop {
            let line = self.next().await?;
            model.apply(&line.line)?;
            let done = matches!(line.line, SyncLine::CheckpointComplete(_));
            lines.push(line);
            if done {
                return Ok(lines);
            }
        }
    }
}

fn is_decimal_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok()
    })
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// The fields of a `checkpoint` or `checkpoint_diff` line: `last_op_id` (a decimal string), the
/// line kind's own `required` fields, and an optional `write_checkpoint` (a decimal string); no
/// other field.
fn check_checkpoint_fields(body: &Value, kind: &str, required: &[&str]) -> anyhow::Result<()> {
    let k = keys(body);
    let mut allowed = set(&["last_op_id", "write_checkpoint"]);
    allowed.extend(required.iter().copied());
    ensure!(
        k.is_subset(&allowed) && k.contains("last_op_id") && required.iter().all(|f| k.contains(f)),
        "{kind} fields: {k:?}"
    );
    ensure!(is_decimal_string(&body["last_op_id"]), "last_op_id");
    if let Some(w) = body.get("write_checkpoint") {
        ensure!(
            is_decimal_string(w),
            "write_checkpoint must be a decimal string: {w}"
        );
    }
    Ok(())
}

/// PROTOCOL.md §3.3, field by field, on the raw JSON of a line: one key naming the type, op ids
/// as decimal strings, checksums as unsigned 32-bit integers, exactly the fields each op kind
/// carries, `write_checkpoint` a decimal string when present.
fn check_line_shape(raw: &Value) -> anyhow::Result<()> {
    let object = raw.as_object().context("a line must be a JSON object")?;
    ensure!(object.len() == 1, "a line has exactly one key");
    let (kind, body) = object.iter().next().expect("one key");
    match kind.as_str() {
        "checkpoint" => {
            check_checkpoint_fields(body, kind, &["buckets", "streams"])?;
            for bucket in body["buckets"].as_array().context("buckets")? {
                check_bucket_shape(bucket)?;
            }
            for stream in body["streams"].as_array().context("streams")? {
                ensure!(
                    keys(stream) == set(&["name", "is_default", "errors"]),
                    "stream fields: {stream}"
                );
                ensure!(stream["name"].is_string() && stream["is_default"].is_boolean());
                ensure!(stream["errors"].as_array().is_some_and(Vec::is_empty));
            }
        }
        "checkpoint_diff" => {
            check_checkpoint_fields(body, kind, &["updated_buckets", "removed_buckets"])?;
            for bucket in body["updated_buckets"]
                .as_array()
                .context("updated_buckets")?
            {
                check_bucket_shape(bucket)?;
            }
            for removed in body["removed_buckets"]
                .as_array()
                .context("removed_buckets")?
            {
                ensure!(removed.is_string(), "removed bucket ids are strings");
            }
        }
        "data" => {
            ensure!(
                keys(body) == set(&["bucket", "after", "next_after", "has_more", "data"]),
                "data fields: {:?}",
                keys(body)
            );
            ensure!(body["bucket"].is_string() && body["has_more"].is_boolean());
            ensure!(is_decimal_string(&body["after"]) && is_decimal_string(&body["next_after"]));
            let ops = body["data"].as_array().context("data")?;
            ensure!(!ops.is_empty(), "a data line carries ops");
            for op in ops {
                check_op_shape(op)?;
            }
        }
        "checkpoint_complete" => {
            ensure!(
                keys(body) == set(&["last_op_id"]),
                "checkpoint_complete fields"
            );
            ensure!(is_decimal_string(&body["last_op_id"]));
        }
        "partial_checkpoint_complete" => {
            ensure!(
                keys(body) == set(&["last_op_id", "priority"]),
                "partial_checkpoint_complete fields"
            );
            ensure!(is_decimal_string(&body["last_op_id"]));
            ensure!(body["priority"].as_u64().is_some_and(|p| p <= 3));
        }
        "token_expires_in" => {
            ensure!(
                body.as_i64().is_some_and(|s| s >= 0),
                "token_expires_in: {body}"
            );
        }
        other => bail!("unknown line type {other:?}"),
    }
    Ok(())
}

fn check_bucket_shape(bucket: &Value) -> anyhow::Result<()> {
    ensure!(
        keys(bucket) == set(&["bucket", "checksum", "count", "priority", "subscriptions"]),
        "bucket fields: {bucket}"
    );
    ensure!(bucket["bucket"].is_string());
    ensure!(
        bucket["checksum"]
            .as_u64()
            .is_some_and(|c| c <= u64::from(u32::MAX)),
        "checksum must be an unsigned 32-bit integer: {bucket}"
    );
    ensure!(bucket["count"].is_u64() && bucket["priority"].as_u64().is_some_and(|p| p <= 3));
    for reason in bucket["subscriptions"]
        .as_array()
        .context("subscriptions")?
    {
        let k = keys(reason);
        ensure!(
            k == set(&["default"]) || k == set(&["sub"]),
            "subscription: {reason}"
        );
    }
    Ok(())
}

fn check_op_shape(op: &Value) -> anyhow::Result<()> {
    ensure!(is_decimal_string(&op["op_id"]), "op_id: {op}");
    ensure!(
        op["checksum"]
            .as_u64()
            .is_some_and(|c| c <= u64::from(u32::MAX)),
        "op checksum: {op}"
    );
    match op["op"].as_str() {
        Some("PUT") | Some("REMOVE") => {
            ensure!(
                keys(op)
                    == set(&[
                        "op_id",
                        "op",
                        "object_type",
                        "object_id",
                        "subkey",
                        "checksum",
                        "data"
                    ]),
                "PUT/REMOVE fields: {op}"
            );
            ensure!(op["object_type"].is_string() && op["object_id"].is_string());
            ensure!(op["subkey"].is_string() || op["subkey"].is_null());
            if op["op"] == "PUT" {
                let data = op["data"].as_str().context("PUT data is a JSON string")?;
                let row: Value = serde_json::from_str(data).context("PUT data is JSON")?;
                ensure!(row.is_object(), "PUT data is a JSON object");
            } else {
                ensure!(op["data"].is_null(), "REMOVE data is null");
            }
        }
        Some("MOVE") | Some("CLEAR") => {
            ensure!(
                keys(op) == set(&["op_id", "op", "checksum"]),
                "MOVE/CLEAR fields: {op}"
            );
        }
        other => bail!("unknown op {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A client model that enforces the protocol's rules.

#[derive(Debug, Default, Clone)]
struct Model {
    /// The current checkpoint: op id, buckets, write checkpoint.
    checkpoint: Option<(u64, BTreeMap<String, BucketChecksum>, Option<u64>)>,
    /// The last op id received per bucket.
    positions: BTreeMap<String, u64>,
    /// Wrapping sum and number of the ops received per bucket.
    sums: BTreeMap<String, (Checksum, u64)>,
    /// The rows per (bucket, object_type, object_id): the latest PUT's data.
    rows: BTreeMap<(String, String, String), String>,
    /// Op counts are not compared: the client holds ops that compaction has since merged
    /// (counts are informational, §2.3; checksums still must add up).
    counts_unknown: bool,
}

impl Model {
    fn last_op_id(&self) -> anyhow::Result<u64> {
        Ok(self.checkpoint.as_ref().context("no checkpoint yet")?.0)
    }

    fn buckets(&self) -> BTreeMap<String, BucketChecksum> {
        self.checkpoint
            .as_ref()
            .map(|c| c.1.clone())
            .unwrap_or_default()
    }

    fn write_checkpoint(&self) -> Option<u64> {
        self.checkpoint.as_ref().and_then(|c| c.2)
    }

    fn forget(&mut self, bucket: &str) {
        self.positions.remove(bucket);
        self.sums.remove(bucket);
        self.rows.retain(|(b, _, _), _| b != bucket);
    }

    fn apply(&mut self, line: &SyncLine) -> anyhow::Result<()> {
        match line {
            SyncLine::Checkpoint(c) => {
                let buckets: BTreeMap<String, BucketChecksum> = c
                    .buckets
                    .iter()
                    .map(|b| (b.bucket.clone(), b.clone()))
                    .collect();
                ensure!(buckets.len() == c.buckets.len(), "duplicate bucket ids");
                let gone: Vec<String> = self
                    .positions
                    .keys()
                    .chain(self.sums.keys())
                    .filter(|b| !buckets.contains_key(*b))
                    .cloned()
                    .collect();
                for b in gone {
                    self.forget(&b);
                }
                for b in c.buckets.iter() {
                    check_subscriptions(b, c)?;
                }
                self.checkpoint = Some((c.last_op_id.get(), buckets, c.write_checkpoint));
            }
            SyncLine::CheckpointDiff(d) => {
                let (op_id, buckets, write) = self
                    .checkpoint
                    .as_mut()
                    .context("checkpoint_diff before any checkpoint")?;
                ensure!(d.last_op_id.get() >= *op_id, "a diff never goes back");
                *op_id = d.last_op_id.get();
                for b in &d.updated_buckets {
                    buckets.insert(b.bucket.clone(), b.clone());
                }
                for b in &d.removed_buckets {
                    ensure!(
                        buckets.remove(b).is_some(),
                        "removed bucket {b} was not there"
                    );
                }
                if d.write_checkpoint.is_some() {
                    *write = d.write_checkpoint;
                }
                for b in d.removed_buckets.clone() {
                    self.forget(&b);
                }
            }
            SyncLine::Data(data) => self.apply_data(data)?,
            SyncLine::PartialCheckpointComplete(p) => {
                ensure!(
                    p.last_op_id.get() == self.last_op_id()?,
                    "partial completion of another checkpoint"
                );
                self.validate(Some(p.priority.get()))?;
            }
            SyncLine::CheckpointComplete(c) => {
                ensure!(
                    c.last_op_id.get() == self.last_op_id()?,
                    "completion of another checkpoint"
                );
                self.validate(None)?;
            }
            SyncLine::TokenExpiresIn(_) => {}
            SyncLine::Unknown(v) => bail!("unexpected line {v}"),
        }
        Ok(())
    }

    fn apply_data(&mut self, data: &DataLine) -> anyhow::Result<()> {
        let checkpoint = self.last_op_id()?;
        ensure!(
            self.buckets().contains_key(&data.bucket),
            "data for {} which is not in the checkpoint",
            data.bucket
        );
        let position = self.positions.get(&data.bucket).copied().unwrap_or(0);
        ensure!(
            data.after.get() == position,
            "data for {} after {} but the client is at {position}",
            data.bucket,
            data.after
        );
        let mut previous = position;
        for op in &data.data {
            let id = op.op_id.get();
            ensure!(
                id > previous,
                "op ids increase and follow `after` ({id} after {previous})"
            );
            ensure!(
                id <= checkpoint,
                "op {id} beyond the checkpoint {checkpoint}"
            );
            previous = id;
            let sum = self
                .sums
                .entry(data.bucket.clone())
                .or_insert((Checksum(0), 0));
            match &op.kind {
                OpKind::Put { row, data: json } => {
                    let parsed: Value = serde_json::from_str(json)?;
                    let id_in_data = match &parsed["id"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    ensure!(id_in_data == row.object_id, "PUT object_id is the row's id");
                    self.rows.insert(
                        (
                            data.bucket.clone(),
                            row.object_type.clone(),
                            row.object_id.clone(),
                        ),
                        json.clone(),
                    );
                }
                OpKind::Remove { row } => {
                    self.rows.remove(&(
                        data.bucket.clone(),
                        row.object_type.clone(),
                        row.object_id.clone(),
                    ));
                }
                OpKind::Move => {}
                OpKind::Clear => {
                    *sum = (Checksum(0), 0);
                    let bucket = data.bucket.clone();
                    self.rows.retain(|(b, _, _), _| *b != bucket);
                }
            }
            let sum = self.sums.get_mut(&data.bucket).expect("inserted above");
            *sum = (sum.0.wrapping_add(op.checksum), sum.1 + 1);
        }
        ensure!(
            data.next_after.get() == previous,
            "next_after {} is the last op id {previous}",
            data.next_after
        );
        self.positions.insert(data.bucket.clone(), previous);
        Ok(())
    }

    /// Checksums and counts of the buckets up to `priority` (all when `None`) add up.
    fn validate(&self, priority: Option<u8>) -> anyhow::Result<()> {
        for (name, b) in self.buckets() {
            if priority.is_some_and(|p| b.priority.get() > p) {
                continue;
            }
            let (sum, count) = self.sums.get(&name).copied().unwrap_or((Checksum(0), 0));
            ensure!(
                sum == b.checksum && (self.counts_unknown || count == b.count),
                "bucket {name}: received ops sum to {sum:?} ({count} ops), the checkpoint says {:?} ({} ops)",
                b.checksum,
                b.count
            );
        }
        Ok(())
    }
}

/// A bucket's subscriptions point at its definition in the checkpoint's `streams`.
fn check_subscriptions(b: &BucketChecksum, c: &Checkpoint) -> anyhow::Result<()> {
    let definition = definition_of(&b.bucket)?;
    ensure!(
        b.subscriptions.len() == 1,
        "one reason per bucket: {:?}",
        b.subscriptions
    );
    let BucketSubscriptionReason::Default(i) = b.subscriptions[0] else {
        bail!("bucket definitions are default streams");
    };
    let stream = c
        .streams
        .get(i)
        .context("subscription index out of range")?;
    ensure!(stream.name == definition && stream.is_default);
    Ok(())
}

/// `by_owner` from `3#by_owner["u1"]`.
fn definition_of(bucket: &str) -> anyhow::Result<&str> {
    let (_, rest) = bucket
        .split_once('#')
        .context("bucket id without version prefix")?;
    Ok(rest
        .split_once('[')
        .context("bucket id without parameters")?
        .0)
}

/// The first line is a full checkpoint that matches ferry's storage: the latest checkpoint, the
/// expected bucket ids with `<version>#` prefixes, `ferry.bucket_state` checksums and counts, the
/// definitions' priorities, and every definition listed once in `streams`.
async fn check_checkpoint_against_storage(
    f: &Fixture,
    c: &Checkpoint,
    expected: &[&str],
) -> anyhow::Result<()> {
    ensure!(
        c.last_op_id.get() == latest_op_id(&f.db).await?,
        "the checkpoint is the latest"
    );
    let mut ids: Vec<&str> = c.buckets.iter().map(|b| b.bucket.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<String> = expected.iter().map(|b| f.bucket(b)).collect();
    want.sort();
    ensure!(ids == want, "buckets {ids:?}, expected {want:?}");
    for b in &c.buckets {
        let (checksum, count) = bucket_state(&f.db, &b.bucket).await?;
        ensure!(
            b.checksum == Checksum(checksum) && b.count == count,
            "{}: checksum {:?} count {} but ferry.bucket_state has {checksum} and {count}",
            b.bucket,
            b.checksum,
            b.count
        );
        let definition = definition_of(&b.bucket)?;
        ensure!(
            Some(b.priority.get()) == priority_of(definition),
            "priority of {}",
            b.bucket
        );
    }
    let names: BTreeSet<&str> = c.streams.iter().map(|s| s.name.as_str()).collect();
    ensure!(names.len() == c.streams.len(), "streams listed once each");
    Ok(())
}

/// The rows the model holds equal the op log reduced over the model's buckets.
async fn check_rows_against_storage(db: &TestDb, model: &Model) -> anyhow::Result<()> {
    let buckets = model.buckets();
    let expected: BTreeMap<(String, String, String), String> = reduced_state(db)
        .await?
        .into_iter()
        .filter(|((b, _, _), _)| buckets.contains_key(b))
        .collect();
    ensure!(
        model.rows == expected,
        "client rows:\n{:#?}\nop log:\n{expected:#?}",
        model.rows
    );
    Ok(())
}

fn expect_checkpoint(line: &Line) -> anyhow::Result<&Checkpoint> {
    match &line.line {
        SyncLine::Checkpoint(c) => Ok(c),
        other => bail!("expected a checkpoint, got {other:?}"),
    }
}

fn expect_diff(line: &Line) -> anyhow::Result<&CheckpointDiff> {
    match &line.line {
        SyncLine::CheckpointDiff(d) => Ok(d),
        other => bail!("expected a checkpoint_diff, got {other:?}"),
    }
}

fn type_names(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match &l.line {
            SyncLine::Data(d) => format!("data {}", d.bucket),
            SyncLine::PartialCheckpointComplete(p) => {
                format!("partial_checkpoint_complete {}", p.priority.get())
            }
            other => other.type_name().to_owned(),
        })
        .collect()
}

fn data_lines(lines: &[Line]) -> Vec<&DataLine> {
    lines
        .iter()
        .filter_map(|l| match &l.line {
            SyncLine::Data(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// Reads a stream's first checkpoint to completion.
async fn first_sync(stream: &mut SyncStream, model: &mut Model) -> anyhow::Result<Vec<Line>> {
    let lines = stream.until_complete(model).await?;
    expect_checkpoint(&lines[0])?;
    Ok(lines)
}

/// The §3.8 envelope: `{"error": {name, code, status, description, ...}}` as JSON with the
/// response's status.
fn check_envelope(reply: &Reply, status: u16, code: &str) -> anyhow::Result<()> {
    let body = reply.json()?;
    ensure!(
        reply.status == status,
        "expected {status}, got {} with {body}",
        reply.status
    );
    ensure!(
        reply.content_type.starts_with("application/json"),
        "error content type {:?}",
        reply.content_type
    );
    ensure!(keys(&body) == set(&["error"]), "envelope: {body}");
    let error = &body["error"];
    ensure!(
        keys(error).is_subset(&set(&[
            "name",
            "code",
            "status",
            "description",
            "details",
            "severity",
            "trace_id",
            "origin"
        ])) && ["name", "code", "status", "description"]
            .iter()
            .all(|k| error.get(*k).is_some()),
        "envelope fields: {body}"
    );
    ensure!(
        error["name"].as_str().is_some_and(|s| !s.is_empty()),
        "name: {body}"
    );
    ensure!(error["code"] == code, "expected code {code}: {body}");
    ensure!(error["status"] == status, "status field: {body}");
    ensure!(
        error["description"].as_str().is_some_and(|s| !s.is_empty()),
        "description: {body}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tests.

async fn first_sync_sends_checkpoint_data_and_completions_as_specified() -> anyhow::Result<()> {
    // Two ops per query: by_owner["u1"] (3 ops) needs two batches, so a chunk says has_more.
    let f = fixture_with("gw_first", "", |c| c.limits.batch_ops = 2).await?;
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    let lines = first_sync(&mut stream, &mut model).await?;

    let first = expect_checkpoint(&lines[0])?;
    check_checkpoint_against_storage(
        &f,
        first,
        &["global[]", "by_owner[\"u1\"]", "shared_lists[\"S1\"]"],
    )
    .await?;
    ensure!(
        lines[0].raw["checkpoint"].get("write_checkpoint").is_none(),
        "write_checkpoint is omitted when there is none"
    );
    let names: Vec<&str> = first.streams.iter().map(|s| s.name.as_str()).collect();
    ensure!(
        names.iter().copied().collect::<BTreeSet<_>>()
            == set(&["global", "by_owner", "shared_lists"]),
        "streams {names:?}"
    );

    // Priority groups in ascending number, each closed by partial_checkpoint_complete, the last
    // by checkpoint_complete.
    let by_owner = f.bucket("by_owner[\"u1\"]");
    let shared = f.bucket("shared_lists[\"S1\"]");
    let global = f.bucket("global[]");
    let order: Vec<String> = type_names(&lines)
        .into_iter()
        .fold(Vec::new(), |mut acc, t| {
            if acc.last() != Some(&t) {
                acc.push(t);
            }
            acc
        });
    let expected = vec![
        "checkpoint".to_owned(),
        format!("data {by_owner}"),
        "partial_checkpoint_complete 1".to_owned(),
        format!("data {shared}"),
        "partial_checkpoint_complete 2".to_owned(),
        format!("data {global}"),
        "checkpoint_complete".to_owned(),
    ];
    ensure!(
        order == expected,
        "line order {order:?}, expected {expected:?}"
    );

    // Chunks of one bucket chain and say has_more until the last.
    let owner_lines: Vec<&DataLine> = data_lines(&lines)
        .into_iter()
        .filter(|d| d.bucket == by_owner)
        .collect();
    ensure!(
        owner_lines.len() == 2,
        "{} chunks of by_owner",
        owner_lines.len()
    );
    ensure!(
        owner_lines[0].has_more && !owner_lines[1].has_more,
        "has_more flags"
    );
    ensure!(
        owner_lines[0].after.get() == 0,
        "a new bucket starts after 0"
    );
    for d in data_lines(&lines) {
        if d.bucket != by_owner {
            ensure!(!d.has_more, "{} has no more", d.bucket);
        }
    }

    // Every op as stored: op id, kind, object, checksum, data.
    let stored = f
        .db
        .query(
            "SELECT bucket::text, op_id, op, object_type, object_id, subkey, data, checksum FROM ferry.ops \
             WHERE bucket = ANY($1) ORDER BY bucket, op_id",
            &[&vec![by_owner.clone(), shared.clone(), global.clone()]],
        )
        .await?;
    let mut sent = Vec::new();
    for d in data_lines(&lines) {
        for op in &d.data {
            sent.push((d.bucket.clone(), op.clone()));
        }
    }
    sent.sort_by(|a, b| (a.0.as_str(), a.1.op_id).cmp(&(b.0.as_str(), b.1.op_id)));
    ensure!(
        sent.len() == stored.len(),
        "{} ops sent, {} stored",
        sent.len(),
        stored.len()
    );
    for ((bucket, op), row) in sent.iter().zip(&stored) {
        let (s_bucket, s_id, s_op): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
        ensure!(*bucket == s_bucket && op.op_id.get() == u64::try_from(s_id)?);
        ensure!(op.op_type().as_str() == s_op);
        ensure!(u64::from(op.checksum.value()) == u64::try_from(row.get::<_, i64>(7))?);
        if let OpKind::Put { row: key, data } = &op.kind {
            ensure!(key.object_type == row.get::<_, String>(3));
            ensure!(key.object_id == row.get::<_, String>(4));
            ensure!(key.subkey == row.get::<_, Option<String>>(5));
            ensure!(
                *data == row.get::<_, String>(6),
                "data is the stored JSON text"
            );
        }
    }
    check_rows_against_storage(&f.db, &model).await?;
    assert_checksums_consistent(&f.db).await?;
    f.gateway.shutdown().await;
    Ok(())
}

async fn live_changes_arrive_as_diffs_with_only_the_users_buckets() -> anyhow::Result<()> {
    let f = fixture("gw_live").await?;
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    first_sync(&mut stream, &mut model).await?;
    let by_owner = f.bucket("by_owner[\"u1\"]");
    let before = model.positions[&by_owner];

    // Another user's change first: no line for u1 (the next diff covers the later checkpoint
    // and only u1's bucket).
    f.change("INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T9', 'L2', 'u2', 'not yours')")
        .await?;
    let checkpoint = f
        .change("UPDATE todos SET description = 'oat milk' WHERE id = 'T1'; DELETE FROM todos WHERE id = 'T2'")
        .await?;
    let lines = stream.until_complete(&mut model).await?;
    ensure!(
        type_names(&lines)
            == vec![
                "checkpoint_diff".to_owned(),
                format!("data {by_owner}"),
                "checkpoint_complete".to_owned()
            ],
        "lines {:?}",
        type_names(&lines)
    );
    let diff = expect_diff(&lines[0])?;
    ensure!(
        diff.last_op_id.get() == checkpoint,
        "the diff is the latest checkpoint"
    );
    ensure!(diff.removed_buckets.is_empty());
    ensure!(diff.updated_buckets.len() == 1 && diff.updated_buckets[0].bucket == by_owner);
    let (checksum, count) = bucket_state(&f.db, &by_owner).await?;
    ensure!(diff.updated_buckets[0].checksum == Checksum(checksum));
    ensure!(diff.updated_buckets[0].count == count);
    ensure!(diff.updated_buckets[0].priority.get() == 1);
    ensure!(lines[0].raw["checkpoint_diff"]
        .get("write_checkpoint")
        .is_none());

    let data = data_lines(&lines)[0];
    ensure!(
        data.after.get() == before,
        "data continues from the previous position"
    );
    let kinds: Vec<(String, String)> = data
        .data
        .iter()
        .map(|op| {
            (
                op.op_type().as_str().to_owned(),
                op.row().map(|r| r.object_id.clone()).unwrap_or_default(),
            )
        })
        .collect();
    ensure!(
        kinds
            == [
                ("PUT".to_owned(), "T1".to_owned()),
                ("REMOVE".to_owned(), "T2".to_owned())
            ],
        "ops {kinds:?}"
    );
    let remove = &data_lines(&lines)[0].data[1];
    ensure!(remove
        .row()
        .is_some_and(|r| r.object_type == "todos" && r.subkey.is_some()));
    check_rows_against_storage(&f.db, &model).await?;

    // A change of the global bucket reaches u1 as well.
    let checkpoint = f
        .change("UPDATE settings SET value = 'light' WHERE id = 'theme'")
        .await?;
    let lines = stream.until_complete(&mut model).await?;
    let diff = expect_diff(&lines[0])?;
    ensure!(diff.last_op_id.get() == checkpoint);
    let updated: Vec<&str> = diff
        .updated_buckets
        .iter()
        .map(|b| b.bucket.as_str())
        .collect();
    ensure!(updated == [f.bucket("global[]")], "updated {updated:?}");
    check_rows_against_storage(&f.db, &model).await?;
    f.gateway.shutdown().await;
    Ok(())
}

async fn write_checkpoint_alone_sends_a_diff_to_its_client_only() -> anyhow::Result<()> {
    let f = fixture("gw_wcp").await?;
    let token = gateway::token("u1");
    let mut c1 = f.open("u1", "c1").await?;
    let mut m1 = Model::default();
    first_sync(&mut c1, &mut m1).await?;
    let mut c2 = f.open("u1", "c2").await?;
    let mut m2 = Model::default();
    first_sync(&mut c2, &mut m2).await?;
    let op_id_before = latest_op_id(&f.db).await?;

    let reply = f
        .http
        .call(
            Method::GET,
            "/write-checkpoint2.json?client_id=c1",
            Some(&token),
            "",
        )
        .await?;
    ensure!(reply.status == 200, "{reply:?}");
    ensure!(reply.content_type.starts_with("application/json"));
    ensure!(
        reply.json()? == json!({"data": {"write_checkpoint": "1"}}),
        "{}",
        reply.json()?
    );
    advance_until_idle(&f.db).await?;
    let lines = c1.until_complete(&mut m1).await?;
    ensure!(
        type_names(&lines) == ["checkpoint_diff", "checkpoint_complete"],
        "{:?}",
        type_names(&lines)
    );
    let diff = expect_diff(&lines[0])?;
    ensure!(diff.write_checkpoint == Some(1));
    ensure!(diff.updated_buckets.is_empty() && diff.removed_buckets.is_empty());
    ensure!(
        diff.last_op_id.get() == op_id_before,
        "no ops were written: the op id stays"
    );

    // Client c2 has its own key: its stream sees only its own write checkpoint.
    let reply = f
        .http
        .call(
            Method::GET,
            "/write-checkpoint2.json?client_id=c2",
            Some(&token),
            "",
        )
        .await?;
    ensure!(reply.json()? == json!({"data": {"write_checkpoint": "1"}}));
    advance_until_idle(&f.db).await?;
    let lines = c2.until_complete(&mut m2).await?;
    ensure!(expect_diff(&lines[0])?.write_checkpoint == Some(1));
    // c1's next line is about its own next write checkpoint, not c2's.
    let reply = f
        .http
        .call(
            Method::GET,
            "/write-checkpoint2.json?client_id=c1",
            Some(&token),
            "",
        )
        .await?;
    ensure!(reply.json()? == json!({"data": {"write_checkpoint": "2"}}));
    advance_until_idle(&f.db).await?;
    let lines = c1.until_complete(&mut m1).await?;
    ensure!(type_names(&lines) == ["checkpoint_diff", "checkpoint_complete"]);
    ensure!(expect_diff(&lines[0])?.write_checkpoint == Some(2));

    // A new stream of c1 starts with it in the checkpoint.
    let mut again = f.open("u1", "c1").await?;
    let mut m3 = Model::default();
    let lines = first_sync(&mut again, &mut m3).await?;
    ensure!(
        lines[0].raw["checkpoint"]["write_checkpoint"] == "2",
        "{}",
        lines[0].raw
    );
    ensure!(m3.write_checkpoint() == Some(2));
    f.gateway.shutdown().await;
    Ok(())
}

async fn checkpoint_request_is_stored_and_announced() -> anyhow::Result<()> {
    let f = fixture("gw_cpr").await?;
    let token = gateway::token("u1");
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    first_sync(&mut stream, &mut model).await?;

    let request = |id: Value| json!({"client_id": "c1", "checkpoint_request_id": id});
    let reply = f
        .http
        .post_json("/sync/checkpoint-request", &token, &request(json!("5")))
        .await?;
    ensure!(reply.status == 200, "{reply:?}");
    ensure!(reply.json()? == json!({"data": {"checkpoint_request_id": "5"}}));
    // A smaller id keeps the stored one.
    let reply = f
        .http
        .post_json("/sync/checkpoint-request", &token, &request(json!("3")))
        .await?;
    ensure!(reply.json()? == json!({"data": {"checkpoint_request_id": "5"}}));
    advance_until_idle(&f.db).await?;
    let lines = stream.until_complete(&mut model).await?;
    ensure!(type_names(&lines) == ["checkpoint_diff", "checkpoint_complete"]);
    ensure!(expect_diff(&lines[0])?.write_checkpoint == Some(5));
    ensure!(lines[0].raw["checkpoint_diff"]["write_checkpoint"] == "5");

    // Non-positive or non-numeric ids are refused.
    for bad in [json!("0"), json!("-4"), json!("five"), json!(null)] {
        let reply = f
            .http
            .post_json("/sync/checkpoint-request", &token, &request(bad.clone()))
            .await?;
        check_envelope(&reply, 400, "FERRY_BAD_REQUEST").with_context(|| format!("id {bad}"))?;
    }
    f.gateway.shutdown().await;
    Ok(())
}

async fn resumed_stream_sends_only_ops_after_the_given_positions() -> anyhow::Result<()> {
    let f = fixture("gw_resume").await?;
    let mut model = Model::default();
    {
        let mut stream = f.open("u1", "c1").await?;
        first_sync(&mut stream, &mut model).await?;
    }
    let by_owner = f.bucket("by_owner[\"u1\"]");
    let position = model.positions[&by_owner];
    let checkpoint = f
        .change("INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T4', 'L1', 'u1', 'bread')")
        .await?;

    // The client asks with its positions (and one bucket it should not have, which is ignored).
    let mut positions = model.positions.clone();
    positions.insert(f.bucket("by_owner[\"u2\"]"), 1);
    let mut stream = f
        .http
        .stream(&gateway::token("u1"), &sync_request("c1", &positions))
        .await?;
    let lines = stream.until_complete(&mut model).await?;
    let first = expect_checkpoint(&lines[0])?;
    ensure!(first.last_op_id.get() == checkpoint);
    ensure!(first.buckets.len() == 3, "all of u1's buckets are listed");
    // Only the changed bucket has data; the other priority groups complete without any
    // (as PowerSync's service does, a group is completed even when it had nothing new).
    let data = data_lines(&lines);
    ensure!(
        data.len() == 1 && data[0].bucket == by_owner,
        "only the changed bucket has data: {:?}",
        type_names(&lines)
    );
    let data = data[0];
    ensure!(
        data.after.get() == position,
        "data starts at the client's position"
    );
    ensure!(data.data.len() == 1, "only the new op: {:?}", data.data);
    ensure!(data.data[0].row().is_some_and(|r| r.object_id == "T4"));
    check_rows_against_storage(&f.db, &model).await?;
    f.gateway.shutdown().await;
    Ok(())
}

async fn gaining_and_losing_a_dynamic_bucket_sends_diffs() -> anyhow::Result<()> {
    let f = fixture("gw_dynamic").await?;
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    first_sync(&mut stream, &mut model).await?;
    let s9 = f.bucket("shared_lists[\"S9\"]");

    // Gained: the membership row puts S9 into u1's buckets.
    let checkpoint = f
        .change("INSERT INTO list_members VALUES ('M2', 'S9', 'u1')")
        .await?;
    let lines = stream.until_complete(&mut model).await?;
    let diff = expect_diff(&lines[0])?;
    ensure!(diff.last_op_id.get() == checkpoint);
    ensure!(diff.removed_buckets.is_empty());
    let updated: Vec<&str> = diff
        .updated_buckets
        .iter()
        .map(|b| b.bucket.as_str())
        .collect();
    ensure!(updated == [s9.as_str()], "updated {updated:?}");
    let (checksum, count) = bucket_state(&f.db, &s9).await?;
    let entry = &diff.updated_buckets[0];
    ensure!(entry.checksum == Checksum(checksum) && entry.count == count && count == 1);
    ensure!(entry.priority.get() == 2);
    ensure!(
        type_names(&lines)
            == vec![
                "checkpoint_diff".to_owned(),
                format!("data {s9}"),
                "checkpoint_complete".to_owned()
            ],
        "{:?}",
        type_names(&lines)
    );
    ensure!(
        data_lines(&lines)[0].after.get() == 0,
        "a new bucket starts after 0"
    );
    check_rows_against_storage(&f.db, &model).await?;

    // Lost: deleting the membership removes the bucket.
    let checkpoint = f.change("DELETE FROM list_members WHERE id = 'M2'").await?;
    let lines = stream.until_complete(&mut model).await?;
    ensure!(type_names(&lines) == ["checkpoint_diff", "checkpoint_complete"]);
    let diff = expect_diff(&lines[0])?;
    ensure!(diff.last_op_id.get() == checkpoint);
    ensure!(
        diff.removed_buckets == [s9.clone()],
        "removed {:?}",
        diff.removed_buckets
    );
    ensure!(
        diff.updated_buckets.is_empty(),
        "{:?}",
        diff.updated_buckets
    );
    ensure!(!model.buckets().contains_key(&s9));
    check_rows_against_storage(&f.db, &model).await?;

    // A user gaining the first bucket of a definition they had none of gets it too (a full
    // checkpoint or a diff, both valid: §3.3).
    let mut u3 = f.open("u3", "c3").await?;
    let mut m3 = Model::default();
    let lines = first_sync(&mut u3, &mut m3).await?;
    ensure!(
        expect_checkpoint(&lines[0])?.buckets.len() == 2,
        "global and by_owner"
    );
    f.change("INSERT INTO list_members VALUES ('M3', 'S1', 'u3')")
        .await?;
    let lines = u3.until_complete(&mut m3).await?;
    ensure!(
        m3.buckets().contains_key(&f.bucket("shared_lists[\"S1\"]")),
        "{:?}",
        type_names(&lines)
    );
    check_rows_against_storage(&f.db, &m3).await?;
    f.gateway.shutdown().await;
    Ok(())
}

async fn expiring_token_ends_the_stream_after_token_expires_in_zero() -> anyhow::Result<()> {
    let f = fixture("gw_expiry").await?;
    let token = gateway::token_expiring_in("u1", 3);
    let mut stream = f
        .http
        .stream(&token, &sync_request("c1", &BTreeMap::new()))
        .await?;
    let mut model = Model::default();
    let mut values = Vec::new();
    let mut after_keepalive = Vec::new();
    loop {
        let Some(line) = stream.next_within(Duration::from_secs(20)).await? else {
            break;
        };
        if !values.is_empty() {
            after_keepalive.push(line.raw.clone());
        }
        if let SyncLine::TokenExpiresIn(t) = line.line {
            ensure!(
                model.checkpoint.is_some(),
                "no keepalive before the first checkpoint"
            );
            values.push(t.0);
            after_keepalive.clear();
        } else {
            model.apply(&line.line)?;
        }
    }
    ensure!(!values.is_empty(), "token_expires_in lines were sent");
    ensure!(
        values.last() == Some(&0),
        "the last keepalive is 0: {values:?}"
    );
    ensure!(
        values.windows(2).all(|w| w[0] >= w[1]) && values[0] <= 3,
        "remaining seconds count down: {values:?}"
    );
    ensure!(
        after_keepalive.is_empty(),
        "nothing follows token_expires_in 0: {after_keepalive:?}"
    );
    f.gateway.shutdown().await;
    Ok(())
}

async fn activating_new_rules_ends_the_stream() -> anyhow::Result<()> {
    let f = fixture("gw_redeploy").await?;
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    first_sync(&mut stream, &mut model).await?;

    let rules =
        format!("{RULES}  done_todos:\n    data:\n      - SELECT * FROM todos WHERE done\n");
    let version: i64 =
        f.db.query_one("SELECT ferry.deploy_rules($1)", &[&rules])
            .await?
            .get(0);
    advance_until_idle(&f.db).await?;
    let active: i64 =
        f.db.query_one("SELECT version FROM ferry.latest_checkpoint()", &[])
            .await?
            .get(0);
    ensure!(
        active == version && version != f.version,
        "the new version is active"
    );
    loop {
        match stream.next_within(LINE_TIMEOUT).await? {
            None => break,
            Some(Line {
                line: SyncLine::TokenExpiresIn(_),
                ..
            }) => {}
            Some(line) => bail!("the old version's stream sent {:?}", line.raw),
        }
    }

    // A new stream gets the new version's buckets.
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    let lines = first_sync(&mut stream, &mut model).await?;
    let first = expect_checkpoint(&lines[0])?;
    ensure!(
        first
            .buckets
            .iter()
            .all(|b| b.bucket.starts_with(&format!("{version}#"))),
        "{:?}",
        first.buckets
    );
    ensure!(first
        .buckets
        .iter()
        .any(|b| b.bucket == format!("{version}#done_todos[]")));
    f.gateway.shutdown().await;
    Ok(())
}

async fn malformed_requests_get_error_envelopes_while_a_stream_keeps_flowing() -> anyhow::Result<()>
{
    let f = fixture("gw_malformed").await?;
    let token = gateway::token("u1");
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    first_sync(&mut stream, &mut model).await?;

    let http = &f.http;
    let t = token.as_str();
    let post = |body: &'static str| http.call(Method::POST, "/sync/stream", Some(t), body);
    check_envelope(&post("{\"buckets\":").await?, 400, "FERRY_BAD_REQUEST")
        .context("truncated JSON")?;
    check_envelope(&post("not json").await?, 400, "FERRY_BAD_REQUEST").context("not JSON")?;
    check_envelope(&post("[1, 2]").await?, 400, "FERRY_BAD_REQUEST").context("an array")?;
    check_envelope(&post("{\"buckets\": 5}").await?, 400, "FERRY_BAD_REQUEST")
        .context("buckets: 5")?;
    check_envelope(
        &post("{\"buckets\": [{\"name\": \"x\", \"after\": \"-1\"}]}").await?,
        400,
        "FERRY_BAD_REQUEST",
    )
    .context("negative after")?;
    check_envelope(
        &post("{\"parameters\": \"text\"}").await?,
        400,
        "FERRY_BAD_REQUEST",
    )
    .context("parameters: text")?;
    check_envelope(&post("{\"client_id\": 7}").await?, 400, "FERRY_BAD_REQUEST")
        .context("client_id: 7")?;
    let huge = format!("{{\"parameters\": {{\"x\": \"{}\"}}}}", "x".repeat(3 << 20));
    let reply = post_unread(f.gateway.addr(), "/sync/stream", &token, huge.into_bytes()).await?;
    check_envelope(&reply, 413, "FERRY_PAYLOAD_TOO_LARGE").context("a 3 MiB body")?;

    // Tokens.
    let no_token = http.call(Method::POST, "/sync/stream", None, "{}").await?;
    check_envelope(&no_token, 401, "PSYNC_S2106").context("no token")?;
    let garbage = http
        .call(Method::POST, "/sync/stream", Some("not.a.jwt"), "{}")
        .await?;
    check_envelope(&garbage, 401, "PSYNC_S2101").context("garbage token")?;
    let now = gateway::unix_now();
    let expired = gateway::sign(
        &json!({"sub": "u1", "iat": now - 7200, "exp": now - 3600, "aud": gateway::AUDIENCE}),
    );
    let reply = http
        .call(Method::POST, "/sync/stream", Some(&expired), "{}")
        .await?;
    check_envelope(&reply, 401, "PSYNC_S2103").context("expired token")?;
    let other_audience =
        gateway::sign(&json!({"sub": "u1", "iat": now, "exp": now + 60, "aud": "someone-else"}));
    let reply = http
        .call(Method::POST, "/sync/stream", Some(&other_audience), "{}")
        .await?;
    check_envelope(&reply, 401, "PSYNC_S2105").context("wrong audience")?;

    // Routes and methods.
    let reply = http
        .call(Method::GET, "/no/such/route", Some(&token), "")
        .await?;
    check_envelope(&reply, 404, "PSYNC_S2002").context("unknown route")?;
    let reply = http
        .call(Method::GET, "/sync/stream", Some(&token), "")
        .await?;
    check_envelope(&reply, 405, "FERRY_METHOD_NOT_ALLOWED").context("GET /sync/stream")?;
    let reply = http
        .call(
            Method::GET,
            "/write-checkpoint2.json?client_id=c1",
            None,
            "",
        )
        .await?;
    check_envelope(&reply, 401, "PSYNC_S2106").context("write checkpoint without token")?;
    let reply = http
        .call(
            Method::POST,
            "/sync/checkpoint-request",
            Some(&token),
            "{\"client_id\": \"c1\"}",
        )
        .await?;
    check_envelope(&reply, 400, "FERRY_BAD_REQUEST").context("checkpoint request without id")?;
    let reply = http
        .call(Method::POST, "/api/crud", Some(&token), "[]")
        .await?;
    check_envelope(&reply, 400, "FERRY_BAD_REQUEST").context("upload that is not a transaction")?;

    // The stream opened before all this still flows.
    let checkpoint = f
        .change("UPDATE todos SET done = true WHERE id = 'T1'")
        .await?;
    let lines = stream.until_complete(&mut model).await?;
    ensure!(expect_diff(&lines[0])?.last_op_id.get() == checkpoint);
    check_rows_against_storage(&f.db, &model).await?;
    f.gateway.shutdown().await;
    Ok(())
}

/// Writes are allowed on `lists` and `todos` for their owner only (RLS on the claims).
const WRITE_SETUP: &str = "
GRANT SELECT, INSERT, UPDATE, DELETE ON lists, todos TO ferry_writer;
ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_lists ON lists
    USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
CREATE POLICY own_todos ON todos
    USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claims', true)::jsonb ->> 'sub');
";

fn entry(op: CrudOp, table: &str, id: &str, data: Option<Value>) -> CrudEntry {
    CrudEntry {
        op,
        id: id.to_owned(),
        table: table.to_owned(),
        data: data.map(|d| match d {
            Value::Object(map) => map,
            _ => Map::new(),
        }),
        old: None,
        metadata: None,
    }
}

fn upload(client_id: &str, transaction_id: i64, entries: Vec<CrudEntry>) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(CrudTransaction {
        client_id: client_id.to_owned(),
        transaction_id,
        entries,
    })?)
}

async fn todo(db: &TestDb, id: &str) -> anyhow::Result<Option<(String, bool)>> {
    Ok(db
        .query("SELECT description, done FROM todos WHERE id = $1", &[&id])
        .await?
        .first()
        .map(|r| (r.get(0), r.get(1))))
}

async fn write_endpoint_applies_an_upload_once_and_refuses_bad_batches_whole() -> anyhow::Result<()>
{
    let f = fixture_with("gw_write", WRITE_SETUP, |c| {
        c.write.tables = [("lists", "public.lists"), ("todos", "todos")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    })
    .await?;
    let token = gateway::token("u1");
    let mut stream = f.open("u1", "c1").await?;
    let mut model = Model::default();
    first_sync(&mut stream, &mut model).await?;

    let tx1 = upload(
        "c1",
        1,
        vec![
            entry(
                CrudOp::Put,
                "lists",
                "L7",
                Some(json!({"owner_id": "u1", "name": "New"})),
            ),
            entry(
                CrudOp::Put,
                "todos",
                "T7",
                Some(json!({"list_id": "L7", "owner_id": "u1", "description": "from upload"})),
            ),
            entry(CrudOp::Patch, "todos", "T1", Some(json!({"done": true}))),
            entry(CrudOp::Delete, "todos", "T2", None),
        ],
    )?;
    let reply = f.http.post_json("/api/crud", &token, &tx1).await?;
    ensure!(reply.status == 200, "{reply:?}");
    ensure!(reply.json()? == json!({"data": {"applied": true}}));
    ensure!(todo(&f.db, "T7").await? == Some(("from upload".into(), false)));
    ensure!(todo(&f.db, "T1").await? == Some(("milk".into(), true)));
    ensure!(todo(&f.db, "T2").await?.is_none());
    let lists: i64 =
        f.db.query_one(
            "SELECT count(*) FROM lists WHERE id = 'L7' AND owner_id = 'u1'",
            &[],
        )
        .await?
        .get(0);
    ensure!(lists == 1);

    // A retry (same client and transaction id) is acknowledged but not applied again.
    f.db.exec("UPDATE todos SET description = 'changed since' WHERE id = 'T7'")
        .await?;
    let reply = f.http.post_json("/api/crud", &token, &tx1).await?;
    ensure!(reply.status == 200, "{reply:?}");
    ensure!(reply.json()? == json!({"data": {"applied": false}}));
    ensure!(todo(&f.db, "T7").await? == Some(("changed since".into(), false)));

    // A batch with one bad entry is refused whole, naming the entry; nothing of it is written
    // and its transaction id stays free.
    let good = entry(
        CrudOp::Put,
        "todos",
        "T8",
        Some(json!({"list_id": "L1", "owner_id": "u1", "description": "ok"})),
    );
    let bad = upload(
        "c1",
        2,
        vec![
            good.clone(),
            entry(
                CrudOp::Put,
                "todos",
                "T9",
                Some(json!({"owner_id": "u1", "colour": "red"})),
            ),
        ],
    )?;
    let reply = f.http.post_json("/api/crud", &token, &bad).await?;
    check_envelope(&reply, 422, "FERRY_WRITE_REJECTED")?;
    let description = reply.json()?["error"]["description"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    ensure!(
        description.contains("entry 1") && description.contains("colour"),
        "{description}"
    );
    ensure!(
        todo(&f.db, "T8").await?.is_none(),
        "nothing of a refused batch is written"
    );
    let bad_value = upload(
        "c1",
        2,
        vec![
            good.clone(),
            entry(
                CrudOp::Patch,
                "todos",
                "T1",
                Some(json!({"done": "perhaps"})),
            ),
        ],
    )?;
    let reply = f.http.post_json("/api/crud", &token, &bad_value).await?;
    check_envelope(&reply, 422, "FERRY_WRITE_REJECTED").context("a value the column refuses")?;
    ensure!(todo(&f.db, "T8").await?.is_none());
    let not_writable = upload(
        "c1",
        2,
        vec![
            good.clone(),
            entry(CrudOp::Put, "settings", "x", Some(json!({"value": "1"}))),
        ],
    )?;
    let reply = f.http.post_json("/api/crud", &token, &not_writable).await?;
    check_envelope(&reply, 422, "FERRY_WRITE_REJECTED").context("a table not in write.tables")?;
    // Row-level security: u1 may not write u2's rows.
    let foreign = upload(
        "c1",
        2,
        vec![
            good.clone(),
            entry(
                CrudOp::Put,
                "todos",
                "T10",
                Some(json!({"owner_id": "u2", "description": "x"})),
            ),
        ],
    )?;
    let reply = f.http.post_json("/api/crud", &token, &foreign).await?;
    check_envelope(&reply, 403, "FERRY_WRITE_FORBIDDEN").context("RLS")?;
    ensure!(todo(&f.db, "T10").await?.is_none() && todo(&f.db, "T8").await?.is_none());
    // The corrected batch with the same transaction id applies.
    let fixed = upload("c1", 2, vec![good])?;
    let reply = f.http.post_json("/api/crud", &token, &fixed).await?;
    ensure!(
        reply.json()? == json!({"data": {"applied": true}}),
        "{reply:?}"
    );
    ensure!(todo(&f.db, "T8").await? == Some(("ok".into(), false)));
    // Another user cannot reuse c1's transaction ids.
    let reply = f
        .http
        .post_json("/api/crud", &gateway::token("u2"), &fixed)
        .await?;
    check_envelope(&reply, 400, "FERRY_BAD_REQUEST").context("client id of another user")?;

    // The uploads come back to u1 through the sync stream.
    let checkpoint = latest_op_id(&f.db).await?;
    advance_until_idle(&f.db).await?;
    ensure!(latest_op_id(&f.db).await? > checkpoint);
    let lines = stream.until_complete(&mut model).await?;
    expect_diff(&lines[0])?;
    check_rows_against_storage(&f.db, &model).await?;
    let by_owner = f.bucket("by_owner[\"u1\"]");
    for id in ["L7", "T7", "T8", "T1"] {
        ensure!(
            model.rows.keys().any(|(b, _, i)| *b == by_owner && i == id),
            "{id} synced back"
        );
    }
    ensure!(!model.rows.keys().any(|(_, _, i)| i == "T2"), "T2 removed");
    f.gateway.shutdown().await;
    Ok(())
}

async fn stream_before_any_rules_are_active_is_refused_with_psync_s2302() -> anyhow::Result<()> {
    let db = TestDb::create(shared_cluster()?, "gw_norules").await?;
    let gateway = TestGateway::start(&db).await?;
    let http = Http::new(&gateway);
    let body = sync_request("c1", &BTreeMap::new()).to_string();
    let reply = http
        .call(
            Method::POST,
            "/sync/stream",
            Some(&gateway::token("u1")),
            body,
        )
        .await?;
    check_envelope(&reply, 500, "PSYNC_S2302")?;
    gateway.shutdown().await;
    Ok(())
}

async fn large_sync_interrupted_by_new_checkpoints_stays_consistent() -> anyhow::Result<()> {
    // 10,000 rows of ~1 KB for u1 (~10 MB of lines: more than the kernel buffers between the
    // gateway and a client that stops reading), read 500 ops per query in chunks of ~16 KiB.
    // After 1,000 ops a newer checkpoint interrupts the data of the first one (§3.4 step 5).
    let rows = 10_000;
    let f = fixture_with(
        "gw_large",
        &format!(
            "INSERT INTO todos (id, list_id, owner_id, description) \
             SELECT 'big' || i, 'L1', 'u1', repeat('x', 900) || i FROM generate_series(1, {rows}) i"
        ),
        |c| {
            c.limits.batch_ops = 500;
            c.limits.chunk_bytes = 16 * 1024;
        },
    )
    .await?;
    let started = std::time::Instant::now();
    let http = Http::with_small_receive_buffer(&f.gateway);
    let mut stream = http
        .stream(&gateway::token("u1"), &sync_request("c1", &BTreeMap::new()))
        .await?;
    let mut model = Model::default();
    let first = stream.next().await?;
    model.apply(&first.line)?;
    let first_checkpoint = expect_checkpoint(&first)?.last_op_id.get();
    // Read a little, then change u1's data twice while the rest is still to be sent.
    for _ in 0..3 {
        let line = stream.next().await?;
        model.apply(&line.line)?;
    }
    f.change("UPDATE todos SET description = 'changed while syncing' WHERE id = 'big1'")
        .await?;
    let latest = f
        .change("DELETE FROM todos WHERE id = 'big2'; UPDATE settings SET value = 'x' WHERE id = 'lang'")
        .await?;
    // The gateway's checkpoint watcher knows the newest checkpoint before the stream reads on,
    // so the data loop sees it after its next batch.
    let probe = &f.http;
    let want = Value::String(latest.to_string());
    let want = &want;
    wait_until(
        "the gateway to see the newest checkpoint",
        LINE_TIMEOUT,
        || async move {
            let reply = probe
                .call(Method::GET, "/probes/readiness", None, "")
                .await?;
            Ok((reply.json()?["latest_checkpoint"] == *want).then_some(()))
        },
    )
    .await?;
    let mut lines = 0usize;
    let mut completed = Vec::new();
    while model.last_op_id()? < latest || completed.last() != Some(&latest) {
        let line = stream.next().await?;
        model.apply(&line.line)?;
        lines += 1;
        if let SyncLine::CheckpointComplete(c) = &line.line {
            completed.push(c.last_op_id.get());
        }
    }
    let elapsed = started.elapsed();
    ensure!(
        completed.last() == Some(&latest),
        "completions {completed:?}"
    );
    ensure!(
        completed.first() != Some(&first_checkpoint),
        "the first checkpoint's data was interrupted by the newer one: completions {completed:?}"
    );
    check_rows_against_storage(&f.db, &model).await?;
    let ops: u64 = model.sums.values().map(|(_, n)| n).sum();
    eprintln!(
        "large sync: {ops} ops in {lines} lines, {:.0} ops/s through the gateway (debug build)",
        ops as f64 / elapsed.as_secs_f64()
    );
    f.gateway.shutdown().await;
    Ok(())
}

async fn compacted_buckets_sync_with_move_and_clear() -> anyhow::Result<()> {
    let f = fixture("gw_compact").await?;
    // A client synced before the changes and the compaction.
    let mut before = Model::default();
    {
        let mut stream = f.open("u1", "c1").await?;
        first_sync(&mut stream, &mut before).await?;
    }
    // Superseded ops at the start of by_owner["u1"] (its list and todos) become a CLEAR; T5's
    // superseded versions come after a live PUT and stay MOVEs.
    for sql in [
        "UPDATE todos SET description = 'v2' WHERE id = 'T1'",
        "UPDATE todos SET description = 'v3' WHERE id = 'T1'",
        "DELETE FROM todos WHERE id = 'T2'",
        "DELETE FROM lists WHERE id = 'L1'",
        "INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T5', 'L1', 'u1', 'a')",
        "UPDATE todos SET description = 'b' WHERE id = 'T5'",
        "UPDATE todos SET description = 'c' WHERE id = 'T5'",
    ] {
        f.change(sql).await?;
    }
    let rewritten: i64 = f.db.query_one("SELECT ferry.compact()", &[]).await?.get(0);
    ensure!(rewritten > 0, "compaction rewrote nothing");
    assert_checksums_consistent(&f.db).await?;
    let by_owner = f.bucket("by_owner[\"u1\"]");

    // A new client gets the compacted log: CLEAR and MOVE ops with only op_id, op and checksum
    // (checked on every line), and checksums, counts and rows that still add up.
    let mut fresh = Model::default();
    let mut stream = f.open("u1", "c2").await?;
    let lines = first_sync(&mut stream, &mut fresh).await?;
    let kinds: Vec<&str> = data_lines(&lines)
        .iter()
        .filter(|d| d.bucket == by_owner)
        .flat_map(|d| d.data.iter().map(|op| op.op_type().as_str()))
        .collect();
    ensure!(
        kinds.first() == Some(&"CLEAR") && kinds.contains(&"MOVE"),
        "ops of the compacted bucket: {kinds:?}"
    );
    let first = expect_checkpoint(&lines[0])?;
    let entry = first
        .buckets
        .iter()
        .find(|b| b.bucket == by_owner)
        .context("by_owner listed")?;
    ensure!(
        entry.count == kinds.len() as u64,
        "the count is the compacted log's length"
    );
    check_rows_against_storage(&f.db, &fresh).await?;

    // The client that synced before resumes from its positions: its checksums still add up.
    before.counts_unknown = true;
    let mut stream = f
        .http
        .stream(
            &gateway::token("u1"),
            &sync_request("c1", &before.positions.clone()),
        )
        .await?;
    stream.until_complete(&mut before).await?;
    check_rows_against_storage(&f.db, &before).await?;
    f.gateway.shutdown().await;
    Ok(())
}
