//! A scripted stand-in for the gateway, on a real port: each `POST /sync/stream` takes the next
//! scripted response (an HTTP error, or a body whose bytes the test sends while it runs);
//! `GET /write-checkpoint2.json` hands out increasing write checkpoints; `POST /crud` records
//! uploads. Plus a test connector and polling helpers.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferry_client::{
    BoxError, Connector, Credentials, CrudTransaction, FerryDatabase, Schema, SyncOptions, Table,
    UploadError,
};
use ferry_protocol::StreamingSyncRequest;
use tokio::sync::mpsc;

/// What the next `/sync/stream` request gets.
pub enum Scripted {
    /// An HTTP error with this status and body.
    Error(u16, String),
    /// A 200 whose body is whatever is sent on the channel, ending when the sender drops.
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

#[derive(Default)]
pub struct FakeState {
    pub scripted: Mutex<VecDeque<Scripted>>,
    pub requests: Mutex<Vec<StreamingSyncRequest>>,
    pub tokens: Mutex<Vec<String>>,
    pub write_checkpoint: AtomicU64,
    pub write_checkpoint_clients: Mutex<Vec<String>>,
    pub uploads: Mutex<Vec<CrudTransaction>>,
    pub upload_responses: Mutex<VecDeque<(u16, String)>>,
}

pub struct FakeGateway {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
}

/// A live response stream: send lines, then drop it to end the response.
pub struct LiveStream {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl LiveStream {
    /// Sends lines (each followed by a newline).
    pub fn lines(&self, ndjson: &str) {
        for line in ndjson.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.raw(format!("{line}\n").as_bytes());
        }
    }

    /// Sends raw bytes.
    pub fn raw(&self, bytes: &[u8]) {
        let _ = self.tx.send(Bytes::copy_from_slice(bytes));
    }
}

fn token_of(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "))
        .unwrap_or("")
        .to_owned()
}

async fn sync_stream(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.tokens.lock().unwrap().push(token_of(&headers));
    if let Ok(request) = serde_json::from_slice::<StreamingSyncRequest>(&body) {
        state.requests.lock().unwrap().push(request);
    }
    let next = state.scripted.lock().unwrap().pop_front();
    match next {
        Some(Scripted::Error(status, body)) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Some(Scripted::Stream(rx)) => {
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
            });
            Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        // Nothing scripted: a stream that stays open and silent.
        None => {
            let stream = futures::stream::pending::<Result<Bytes, Infallible>>();
            Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}

#[derive(serde::Deserialize)]
struct ClientIdQuery {
    client_id: Option<String>,
}

async fn write_checkpoint(
    State(state): State<Arc<FakeState>>,
    Query(q): Query<ClientIdQuery>,
) -> Response {
    state
        .write_checkpoint_clients
        .lock()
        .unwrap()
        .push(q.client_id.unwrap_or_default());
    let n = state.write_checkpoint.fetch_add(1, Ordering::SeqCst) + 1;
    (
        [("content-type", "application/json")],
        format!(r#"{{"data":{{"write_checkpoint":"{n}"}}}}"#),
    )
        .into_response()
}

async fn crud(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    let (status, response) = state
        .upload_responses
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, r#"{"data":{"applied":true}}"#.to_owned()));
    if status == 200 {
        let tx: CrudTransaction = serde_json::from_slice(&body).unwrap();
        state.uploads.lock().unwrap().push(tx);
    }
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        response,
    )
        .into_response()
}

impl FakeGateway {
    pub async fn start() -> FakeGateway {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/sync/stream", post(sync_stream))
            .route("/write-checkpoint2.json", get(write_checkpoint))
            .route("/crud", post(crud))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGateway { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts the next stream and returns its sender.
    pub fn stream(&self) -> LiveStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state
            .scripted
            .lock()
            .unwrap()
            .push_back(Scripted::Stream(rx));
        LiveStream { tx }
    }

    /// Scripts an HTTP error for the next stream request.
    pub fn error(&self, status: u16, body: &str) {
        self.state
            .scripted
            .lock()
            .unwrap()
            .push_back(Scripted::Error(status, body.to_owned()));
    }

    pub fn requests(&self) -> Vec<StreamingSyncRequest> {
        self.state.requests.lock().unwrap().clone()
    }
}

/// A connector handing out `token-1`, `token-2`, ... and recording uploads; its upload outcome
/// can be scripted.
#[derive(Clone)]
pub struct TestConnector {
    pub endpoint: String,
    pub fetches: Arc<AtomicUsize>,
    pub uploads: Arc<Mutex<Vec<CrudTransaction>>>,
    pub upload_results: Arc<Mutex<VecDeque<Result<(), UploadError>>>>,
}

impl TestConnector {
    pub fn new(endpoint: String) -> TestConnector {
        TestConnector {
            endpoint,
            fetches: Arc::default(),
            uploads: Arc::default(),
            upload_results: Arc::default(),
        }
    }
}

impl Connector for TestConnector {
    async fn fetch_credentials(&self) -> Result<Credentials, BoxError> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Credentials {
            endpoint: self.endpoint.clone(),
            token: format!("token-{n}"),
        })
    }

    async fn upload(&self, transaction: &CrudTransaction) -> Result<(), UploadError> {
        let result = self
            .upload_results
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(()));
        if result.is_ok() {
            self.uploads.lock().unwrap().push(transaction.clone());
        }
        result
    }
}

pub fn schema() -> Schema {
    Schema::new(vec![
        Table::new("lists").text("name"),
        Table::new("todos")
            .text("description")
            .integer("completed")
            .text("list_id"),
    ])
}

/// Short delays so that retries happen within a test.
pub fn fast_options() -> SyncOptions {
    SyncOptions {
        retry_delay: Duration::from_millis(20),
        max_retry_delay: Duration::from_millis(200),
        stream_idle_timeout: Duration::from_secs(10),
        ..SyncOptions::default()
    }
}

pub fn open_db(dir: &tempfile::TempDir) -> FerryDatabase {
    FerryDatabase::open(dir.path().join("client.db"), schema()).unwrap()
}

/// Polls `check` until it returns `Some`, failing after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `id|description|completed` of every todo, by id.
pub async fn todos(db: &FerryDatabase) -> Vec<String> {
    db.query(
        "SELECT id, description, completed FROM todos ORDER BY id",
        (),
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        format!(
            "{}|{}|{}",
            r.get::<String>(0).unwrap(),
            r.get::<Option<String>>(1).unwrap().unwrap_or_default(),
            r.get::<Option<i64>>(2)
                .unwrap()
                .map_or("NULL".to_owned(), |v| v.to_string())
        )
    })
    .collect()
}

/// A PUT op of a todo, as a JSON object text.
pub fn put_todo(op_id: u64, id: &str, description: &str, checksum: u32) -> String {
    let data =
        serde_json::json!({"id": id, "description": description, "completed": 0}).to_string();
    format!(
        r#"{{"op_id":"{op_id}","op":"PUT","object_type":"todos","object_id":"{id}","subkey":null,"checksum":{checksum},"data":{}}}"#,
        serde_json::Value::String(data)
    )
}
