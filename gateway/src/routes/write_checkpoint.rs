//! Write checkpoints (PROTOCOL.md §2.7, §3.7): `GET /write-checkpoint2.json?client_id=` creates
//! the next write checkpoint of the user (and client) with `ferry.create_write_checkpoint`;
//! `POST /sync/checkpoint-request` stores a client-chosen id with `ferry.request_checkpoint`.
//! Both answer `{"data": {...}}` with decimal strings. How streams announce them is in
//! [`crate::stream`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::Json;
use ferry_protocol::{
    CheckpointRequest, CheckpointRequestResponse, DataEnvelope, WriteCheckpointQuery,
    WriteCheckpointResponse,
};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::error::GatewayError;
use crate::routes::json_body;

fn non_empty(client_id: Option<String>) -> Option<String> {
    client_id.filter(|c| !c.is_empty())
}

/// `GET /write-checkpoint2.json`.
pub async fn write_checkpoint2(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    query: Result<Query<WriteCheckpointQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DataEnvelope<WriteCheckpointResponse>>, GatewayError> {
    let Query(query) =
        query.map_err(|e| GatewayError::BadRequest(format!("invalid query string: {e}")))?;
    let client_id = non_empty(query.client_id);
    let value = state
        .db
        .create_write_checkpoint(&claims.sub, client_id.as_deref())
        .await?;
    let write_checkpoint = u64::try_from(value)
        .map_err(|_| GatewayError::Internal(format!("negative write checkpoint {value}")))?;
    Ok(Json(DataEnvelope::new(WriteCheckpointResponse {
        write_checkpoint,
    })))
}

/// `POST /sync/checkpoint-request`.
pub async fn checkpoint_request(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DataEnvelope<CheckpointRequestResponse>>, GatewayError> {
    let request: CheckpointRequest = json_body(body, "checkpoint request")?;
    let id = i64::try_from(request.checkpoint_request_id)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            GatewayError::BadRequest(format!(
                "checkpoint_request_id must be a positive 64-bit integer, got {}",
                request.checkpoint_request_id
            ))
        })?;
    let client_id = non_empty(request.client_id);
    let stored = state
        .db
        .request_checkpoint(&claims.sub, client_id.as_deref(), id)
        .await?;
    let checkpoint_request_id = u64::try_from(stored)
        .map_err(|_| GatewayError::Internal(format!("negative checkpoint request id {stored}")))?;
    Ok(Json(DataEnvelope::new(CheckpointRequestResponse {
        checkpoint_request_id,
    })))
}
