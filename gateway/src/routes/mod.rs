//! The HTTP routes, one module per endpoint. Wiring them into a router is [`crate::app::app`].
//!
//! | route | module |
//! | --- | --- |
//! | `POST /sync/stream` | [`sync_stream`] |
//! | `GET /write-checkpoint2.json`, `POST /sync/checkpoint-request` | [`write_checkpoint`] |
//! | `GET /probes/liveness`, `/probes/readiness`, `/probes/startup` | [`probes`] |
//! | `GET /metrics` | [`metrics`] |
//! | `POST /api/crud` (when `write.enabled`) | [`write_endpoint`] |

pub mod metrics;
pub mod probes;
pub mod sync_stream;
pub mod write_checkpoint;
pub mod write_endpoint;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::GatewayError;

/// Parses a JSON request body; an empty body is `{}`. Errors are §3.8 envelopes: 413 for a body
/// over the route's size limit, 400 for anything else (unreadable, not JSON, wrong types).
pub(crate) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> Result<T, GatewayError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GatewayError::PayloadTooLarge(format!("the {what} is too large"))
        } else {
            GatewayError::BadRequest(format!(
                "the {what} could not be read: {}",
                rejection.body_text()
            ))
        }
    })?;
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::BadRequest(format!("the request body is not a valid {what}: {e}"))
    })
}
