//! Local writes on their way to the server: [`CrudEntry`] (one queued write, PROTOCOL.md §4.3),
//! [`CrudTransaction`] (ferry's upload request) and [`UploadResult`] (its response).
//!
//! The entry is the upload-queue format PowerSync clients use. The upload request and response
//! are ferry's own (PowerSync leaves uploads to the app's backend): the shape `ferry-client`
//! sends to a backend and the gateway's built-in write endpoint accepts. Applying an upload is not
//! done here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a queued local write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrudOp {
    /// `"PUT"`: insert or replace the whole row with `data`.
    #[serde(rename = "PUT")]
    Put,
    /// `"PATCH"`: update the columns in `data`.
    #[serde(rename = "PATCH")]
    Patch,
    /// `"DELETE"`: delete the row.
    #[serde(rename = "DELETE")]
    Delete,
}

/// One local write, as recorded in the upload queue:
/// `{"op":"PUT","id":"<row id>","type":"<table>","data":{...}?,"old":{...}?,"metadata":"..."?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrudEntry {
    /// What the write does.
    pub op: CrudOp,
    /// The row id.
    pub id: String,
    /// The table name (`type` on the wire).
    #[serde(rename = "type")]
    pub table: String,
    /// The new values: the whole row for PUT, the changed columns for PATCH; absent for DELETE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Previous values, for tables configured to track them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Map<String, Value>>,
    /// Metadata the app attached to the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// ferry's upload request: the writes of one local transaction, in order.
///
/// `{"client_id":"...","transaction_id":17,"entries":[<CrudEntry>...]}`. Uploads are
/// at-least-once; `(client_id, transaction_id)` identifies the transaction so the receiver can
/// apply it exactly once. The gateway's write endpoint answers with
/// `DataEnvelope<UploadResult>` on success and an [`crate::ErrorEnvelope`] on failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrudTransaction {
    /// The client instance id.
    pub client_id: String,
    /// The local transaction id, increasing per client.
    pub transaction_id: i64,
    /// The transaction's writes, in the order they were made.
    pub entries: Vec<CrudEntry>,
}

/// The result of an upload: `{"data":{"applied":true}}` once wrapped in
/// [`crate::DataEnvelope`]. Both values mean success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResult {
    /// `true`: this request applied the transaction. `false`: the same `(client_id,
    /// transaction_id)` had already been applied earlier, so nothing changed (a retried upload).
    pub applied: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::data_envelope::DataEnvelope;

    #[test]
    fn crud_entries_as_recorded_by_triggers_parse() {
        let put: CrudEntry = serde_json::from_str(
            r#"{"op":"PUT","id":"T1","type":"todos","data":{"list_id":"L1","completed":0}}"#,
        )
        .unwrap();
        assert_eq!(put.op, CrudOp::Put);
        assert_eq!(put.table, "todos");
        assert_eq!(put.data.as_ref().unwrap()["completed"], 0);

        let patch: CrudEntry = serde_json::from_str(
            r#"{"op":"PATCH","id":"T1","type":"todos","data":{"completed":1},"old":{"completed":0},"metadata":"from-ui"}"#,
        )
        .unwrap();
        assert_eq!(patch.old.as_ref().unwrap()["completed"], 0);
        assert_eq!(patch.metadata.as_deref(), Some("from-ui"));

        let delete: CrudEntry =
            serde_json::from_str(r#"{"op":"DELETE","id":"T1","type":"todos"}"#).unwrap();
        assert_eq!(delete.op, CrudOp::Delete);
        assert_eq!(delete.data, None);
        assert_eq!(
            serde_json::to_string(&delete).unwrap(),
            r#"{"op":"DELETE","id":"T1","type":"todos"}"#
        );
    }

    #[test]
    fn crud_transaction_round_trips() {
        let Value::Object(data) = json!({"name": "Groceries", "n": 1.5}) else {
            unreachable!()
        };
        let tx = CrudTransaction {
            client_id: "c-1".into(),
            transaction_id: 17,
            entries: vec![
                CrudEntry {
                    op: CrudOp::Put,
                    id: "L1".into(),
                    table: "lists".into(),
                    data: Some(data),
                    old: None,
                    metadata: None,
                },
                CrudEntry {
                    op: CrudOp::Delete,
                    id: "T9".into(),
                    table: "todos".into(),
                    data: None,
                    old: None,
                    metadata: Some("m".into()),
                },
            ],
        };
        let json = serde_json::to_string(&tx).unwrap();
        assert!(json.starts_with(r#"{"client_id":"c-1","transaction_id":17,"entries":[{"op":"PUT","id":"L1","type":"lists","data":{"name":"Groceries","n":1.5}}"#), "{json}");
        assert_eq!(serde_json::from_str::<CrudTransaction>(&json).unwrap(), tx);
    }

    #[test]
    fn crud_entry_rejects_unknown_op() {
        let err = serde_json::from_str::<CrudEntry>(r#"{"op":"UPSERT","id":"1","type":"t"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `UPSERT`"), "{err}");
    }

    #[test]
    fn upload_result_round_trips_in_data_envelope() {
        for applied in [true, false] {
            let body = DataEnvelope::new(UploadResult { applied });
            let json = serde_json::to_string(&body).unwrap();
            assert_eq!(json, format!(r#"{{"data":{{"applied":{applied}}}}}"#));
            assert_eq!(
                serde_json::from_str::<DataEnvelope<UploadResult>>(&json).unwrap(),
                body
            );
        }
    }
}
