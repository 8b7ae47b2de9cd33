//! The gateway over real HTTP on 127.0.0.1:0, with a Postgres URL that refuses connections: what
//! must work without a database (probes, metrics, auth errors, 404s, readiness saying "no") and
//! the §3.8 envelope on every error. End-to-end sync against a real cluster lives in `tests/`.

mod common;

use bytes::Bytes;
use common::*;
use ferry_gateway::config::AuthConfig;
use ferry_gateway::{start, Config, RunningGateway};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

async fn gateway(configure: impl FnOnce(&mut Config)) -> RunningGateway {
    let mut config = Config::new(
        "postgres://nobody@127.0.0.1:1/none",
        AuthConfig::with_inline_jwks(vec![AUDIENCE.into()], jwks()),
    );
    config.postgres.connect_timeout_secs = 2;
    configure(&mut config);
    start(config).await.unwrap()
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(
    gw: &RunningGateway,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", gw.local_addr()))
        .header("content-type", "application/json");
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body,
    }
}

fn assert_envelope(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        answer.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        answer.content_type.starts_with("application/json"),
        "{}",
        answer.content_type
    );
    let body = answer.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    assert!(body["error"]["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn liveness_answers_without_a_database() {
    let gw = gateway(|_| {}).await;
    let answer = call(&gw, Method::GET, "/probes/liveness", None, "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["alive"], true);
    gw.shutdown().await;
}

#[tokio::test]
async fn readiness_is_503_while_postgres_is_unreachable() {
    let gw = gateway(|_| {}).await;
    let answer = call(&gw, Method::GET, "/probes/readiness", None, "").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = answer.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["listener_connected"], false);
    assert!(
        !body.to_string().contains("nobody@"),
        "no connection string in probes: {body}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let gw = gateway(|_| {}).await;
    // Cause one counted error first.
    call(&gw, Method::POST, "/sync/stream", None, "{}").await;
    let answer = call(&gw, Method::GET, "/metrics", None, "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("text/plain"));
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(
        text.contains("# TYPE ferry_gateway_streams_open gauge"),
        "{text}"
    );
    assert!(
        text.contains("ferry_gateway_errors_total{code=\"PSYNC_S2106\"}"),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn sync_stream_without_token_is_401_s2106() {
    let gw = gateway(|_| {}).await;
    let answer = call(&gw, Method::POST, "/sync/stream", None, "{}").await;
    assert_envelope(&answer, 401, "PSYNC_S2106");
    gw.shutdown().await;
}

#[tokio::test]
async fn sync_stream_with_expired_token_is_401_s2103() {
    let gw = gateway(|_| {}).await;
    let claims = json!({"sub": "u1", "iat": now() - 7200, "exp": now() - 3600, "aud": AUDIENCE});
    let token = sign(Algorithm::HS256, &claims);
    let answer = call(
        &gw,
        Method::POST,
        "/sync/stream",
        Some(&format!("Token {token}")),
        "{}",
    )
    .await;
    assert_envelope(&answer, 401, "PSYNC_S2103");
    assert!(!String::from_utf8_lossy(&answer.body).contains(&token));
    gw.shutdown().await;
}

#[tokio::test]
async fn sync_stream_with_malformed_body_is_400() {
    let gw = gateway(|_| {}).await;
    let token = sign(Algorithm::HS256, &claims());
    let answer = call(
        &gw,
        Method::POST,
        "/sync/stream",
        Some(&format!("Bearer {token}")),
        r#"{"buckets": "nope"}"#,
    )
    .await;
    assert_envelope(&answer, 400, "FERRY_BAD_REQUEST");
    gw.shutdown().await;
}

#[tokio::test]
async fn sync_stream_with_database_down_is_503_s2003() {
    let gw = gateway(|_| {}).await;
    let token = sign(Algorithm::RS256, &claims());
    let answer = call(
        &gw,
        Method::POST,
        "/sync/stream",
        Some(&format!("Token {token}")),
        "{}",
    )
    .await;
    assert_envelope(&answer, 503, "PSYNC_S2003");
    gw.shutdown().await;
}

#[tokio::test]
async fn stream_slot_is_returned_when_opening_fails() {
    let gw = gateway(|c| c.limits.max_streams = 1).await;
    let token = sign(Algorithm::RS256, &claims());
    // With one slot, two attempts in a row both reach the database (503), never 429.
    for _ in 0..2 {
        let answer = call(
            &gw,
            Method::POST,
            "/sync/stream",
            Some(&format!("Token {token}")),
            "{}",
        )
        .await;
        assert_envelope(&answer, 503, "PSYNC_S2003");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn write_checkpoint_requires_a_token() {
    let gw = gateway(|_| {}).await;
    let answer = call(
        &gw,
        Method::GET,
        "/write-checkpoint2.json?client_id=c1",
        None,
        "",
    )
    .await;
    assert_envelope(&answer, 401, "PSYNC_S2106");
    let token = sign(Algorithm::ES256, &claims());
    let answer = call(
        &gw,
        Method::POST,
        "/sync/checkpoint-request",
        Some(&format!("Token {token}")),
        r#"{"client_id":"c1","checkpoint_request_id":"0"}"#,
    )
    .await;
    assert_envelope(&answer, 400, "FERRY_BAD_REQUEST");
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_route_is_404_s2002() {
    let gw = gateway(|_| {}).await;
    let answer = call(&gw, Method::GET, "/no/such/path", None, "").await;
    assert_envelope(&answer, 404, "PSYNC_S2002");
    gw.shutdown().await;
}

#[tokio::test]
async fn write_endpoint_is_off_by_default_and_validates_when_on() {
    let gw = gateway(|_| {}).await;
    let token = sign(Algorithm::HS256, &claims());
    let auth = format!("Token {token}");
    let answer = call(&gw, Method::POST, "/api/crud", Some(&auth), "{}").await;
    assert_envelope(&answer, 404, "PSYNC_S2002");
    gw.shutdown().await;

    let gw = gateway(|c| {
        c.write.enabled = true;
        c.write.tables.insert("todos".into(), "public.todos".into());
    })
    .await;
    let answer = call(&gw, Method::POST, "/api/crud", None, "{}").await;
    assert_envelope(&answer, 401, "PSYNC_S2106");
    let answer = call(
        &gw,
        Method::POST,
        "/api/crud",
        Some(&auth),
        r#"{"client_id": 5}"#,
    )
    .await;
    assert_envelope(&answer, 400, "FERRY_BAD_REQUEST");
    let body = r#"{"client_id":"c1","transaction_id":1,"entries":[{"op":"PUT","id":"x","type":"secrets","data":{}}]}"#;
    let answer = call(&gw, Method::POST, "/api/crud", Some(&auth), body).await;
    assert_envelope(&answer, 422, "FERRY_WRITE_REJECTED");
    gw.shutdown().await;
}

#[tokio::test]
async fn zero_stream_slots_refuse_with_429_s2304() {
    let gw = gateway(|c| c.limits.max_streams = 0).await;
    let token = sign(Algorithm::RS256, &claims());
    let answer = call(
        &gw,
        Method::POST,
        "/sync/stream",
        Some(&format!("Token {token}")),
        "{}",
    )
    .await;
    assert_envelope(&answer, 429, "PSYNC_S2304");
    gw.shutdown().await;
}
