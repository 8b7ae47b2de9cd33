//! `GET /probes/liveness` and `GET /probes/readiness` (also `/probes/startup`).
//!
//! Liveness: the process answers HTTP. Readiness: Postgres answers, the ferry extension is
//! installed (`ferry.latest_checkpoint()` runs) and the checkpoint listener is connected;
//! otherwise 503 with the reason, so a load balancer sends no clients to a gateway that cannot
//! serve them.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::app::AppState;

/// Time limit of the readiness check's query.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// 200 while the process runs.
pub async fn liveness() -> impl IntoResponse {
    Json(json!({"alive": true}))
}

/// 200 when Postgres, the extension and the listener are up; 503 with the reason otherwise.
pub async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.db.check_ready()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the database did not answer in time".to_owned()),
    };
    let watch = state.watch.borrow().clone();
    let ready = database.is_ok() && watch.connected;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "database": database.err().unwrap_or_else(|| "ok".to_owned()),
        "listener_connected": watch.connected,
        "active_version": watch.version,
        "latest_checkpoint": watch.latest.map(|(op_id, _)| op_id.to_string()),
    });
    (status, Json(body))
}
