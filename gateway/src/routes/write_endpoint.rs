//! The built-in write endpoint, `POST /api/crud` (only when `write.enabled`): applies one client
//! transaction — a [`CrudTransaction`] — in one Postgres transaction through
//! `ferry.apply_upload` (sql/write_endpoint.sql), as the configured role (`ferry_writer`, which
//! does not bypass row-level security) with the JWT claims set for the policies.
//!
//! Answers `{"data":{"applied":true}}`, or `{"data":{"applied":false}}` when the same
//! `(client_id, transaction_id)` was applied before (uploads are at-least-once). A batch is
//! refused whole, nothing half-applied: 400 `FERRY_BAD_REQUEST` for a malformed body, 422
//! `FERRY_WRITE_REJECTED` for a table that is not writable, an unknown column or a value or
//! constraint the database refuses, 403 `FERRY_WRITE_FORBIDDEN` when RLS or privileges refuse
//! it; 401 for tokens, 503 when the database is unreachable (retry).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use ferry_protocol::{CrudEntry, CrudOp, CrudTransaction, DataEnvelope, UploadResult};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::db::UploadCall;
use crate::error::GatewayError;
use crate::routes::json_body;

/// The endpoint's path.
pub const PATH: &str = "/api/crud";

/// Checks a transaction before it goes to the database; the SQL function checks again.
pub fn validate(
    tx: &CrudTransaction,
    writable: &std::collections::BTreeMap<String, String>,
) -> Result<(), GatewayError> {
    if tx.client_id.is_empty() {
        return Err(GatewayError::BadRequest(
            "client_id must not be empty".into(),
        ));
    }
    if tx.transaction_id < 0 {
        return Err(GatewayError::BadRequest(format!(
            "transaction_id must not be negative, got {}",
            tx.transaction_id
        )));
    }
    for (index, entry) in tx.entries.iter().enumerate() {
        validate_entry(index, entry, writable)?;
    }
    Ok(())
}

fn validate_entry(
    index: usize,
    entry: &CrudEntry,
    writable: &std::collections::BTreeMap<String, String>,
) -> Result<(), GatewayError> {
    let at = |message: String| {
        GatewayError::WriteRejected(format!(
            "entry {index} ({:?} {}/{}): {message}",
            entry.op, entry.table, entry.id
        ))
    };
    if entry.id.is_empty() {
        return Err(at("the row id is empty".into()));
    }
    if !writable.contains_key(&entry.table) {
        return Err(at(format!(
            "table {:?} is not writable through the gateway (write.tables)",
            entry.table
        )));
    }
    match entry.op {
        CrudOp::Put | CrudOp::Patch => {
            if let Some(data) = &entry.data {
                if let Some(id) = data.get("id") {
                    if id.as_str() != Some(entry.id.as_str()) {
                        return Err(at("`data.id` differs from the entry's id".into()));
                    }
                }
            } else if entry.op == CrudOp::Patch {
                return Err(at("a PATCH needs `data`".into()));
            }
        }
        CrudOp::Delete => {}
    }
    Ok(())
}

/// `POST /api/crud`.
pub async fn apply_crud(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DataEnvelope<UploadResult>>, GatewayError> {
    let tx: CrudTransaction = json_body(body, "upload (CrudTransaction)")?;
    validate(&tx, &state.config.write.tables)?;
    let entries = serde_json::to_value(&tx.entries)
        .map_err(|e| GatewayError::Internal(format!("cannot encode entries: {e}")))?;
    let claims_json = serde_json::Value::Object(claims.payload.clone());
    let applied = state
        .db
        .apply_upload(&UploadCall {
            role: &state.config.write.role,
            claims: &claims_json,
            user_id: &claims.sub,
            client_id: &tx.client_id,
            transaction_id: tx.transaction_id,
            entries: &entries,
            tables: &state.write_tables,
        })
        .await?;
    tracing::info!(
        user = %claims.sub,
        client_id = %tx.client_id,
        transaction_id = tx.transaction_id,
        entries = tx.entries.len(),
        applied,
        "upload"
    );
    Ok(Json(DataEnvelope::new(UploadResult { applied })))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn writable() -> BTreeMap<String, String> {
        BTreeMap::from([("todos".to_string(), "public.todos".to_string())])
    }

    fn tx(entries: &str) -> CrudTransaction {
        serde_json::from_str(&format!(
            r#"{{"client_id":"c1","transaction_id":3,"entries":{entries}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn valid_batch_passes() {
        let t = tx(
            r#"[{"op":"PUT","id":"t1","type":"todos","data":{"title":"x"}},
                       {"op":"PATCH","id":"t1","type":"todos","data":{"done":1}},
                       {"op":"DELETE","id":"t1","type":"todos"}]"#,
        );
        validate(&t, &writable()).unwrap();
    }

    #[test]
    fn unknown_table_refuses_the_whole_batch_naming_the_entry() {
        let t = tx(r#"[{"op":"PUT","id":"t1","type":"todos","data":{}},
                       {"op":"PUT","id":"u1","type":"users","data":{}}]"#);
        let err = validate(&t, &writable()).unwrap_err();
        let envelope = err.envelope();
        assert_eq!(envelope.error.status, 422);
        assert!(
            envelope.error.description.contains("entry 1"),
            "{}",
            envelope.error.description
        );
        assert!(envelope
            .error
            .description
            .contains("\"users\" is not writable"));
    }

    #[test]
    fn mismatched_ids_and_patch_without_data_are_refused() {
        let t = tx(r#"[{"op":"PUT","id":"t1","type":"todos","data":{"id":"t2"}}]"#);
        assert!(validate(&t, &writable()).is_err());
        let t = tx(r#"[{"op":"PATCH","id":"t1","type":"todos"}]"#);
        assert!(validate(&t, &writable()).is_err());
        let mut t = tx("[]");
        t.client_id.clear();
        assert_eq!(
            validate(&t, &writable())
                .unwrap_err()
                .envelope()
                .error
                .status,
            400
        );
    }
}
