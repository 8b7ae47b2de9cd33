//! `POST /sync/stream` (PROTOCOL.md §3.1–§3.4): authenticates, parses the
//! `StreamingSyncRequest`, takes one of the process's stream slots (else 429 `PSYNC_S2304`),
//! resolves the first checkpoint (errors are still proper HTTP errors), then answers 200 with an
//! `application/x-ndjson` body fed by a [`crate::stream::Session`] task through a small bounded
//! channel, so a slow client slows its session down instead of filling memory.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_protocol::StreamingSyncRequest;
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::GatewayError;
use crate::metrics;
use crate::routes::json_body;
use crate::stream::{Session, SessionContext, StreamEnd};

/// Lines buffered between a session and the socket.
const CHANNEL_LINES: usize = 4;

/// The NDJSON content type (clients also accept it when they prefer BSON).
pub const NDJSON: &str = "application/x-ndjson";

/// `POST /sync/stream`.
pub async fn sync_stream(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    let request: StreamingSyncRequest = json_body(body, "sync request")?;
    let permit = state
        .stream_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| GatewayError::TooManyStreams {
            limit: state.config.limits.max_streams,
        })?;
    let ctx = SessionContext {
        db: state.db.clone(),
        watch: state.watch.clone(),
        shutdown: state.shutdown.clone(),
        limits: state.config.limits.clone(),
    };
    let user = claims.sub.clone();
    let session = Session::open(ctx, claims, request).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_LINES);
    let guard = metrics::global().stream_opened();
    tokio::spawn(async move {
        let _permit = permit;
        let _guard = guard;
        let end = session.run(tx).await;
        match &end {
            StreamEnd::Error(code, message) => {
                metrics::global().error(code);
                tracing::warn!(user = %user, code, error = %message, "sync stream ended by an error");
            }
            other => tracing::debug!(user = %user, reason = ?other, "sync stream ended"),
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|item| item.map(Ok::<Bytes, Infallible>))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, NDJSON)
        .header(CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .map_err(|e| GatewayError::Internal(e.to_string()))
}
