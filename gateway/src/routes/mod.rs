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
use serde::de::DeserializeOwned;

use crate::error::GatewayError;

/// Parses a JSON request body; an empty body is `{}`. Errors are 400 envelopes.
pub(crate) fn json_body<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, GatewayError> {
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(bytes).map_err(|e| {
        GatewayError::BadRequest(format!("the request body is not a valid {what}: {e}"))
    })
}
