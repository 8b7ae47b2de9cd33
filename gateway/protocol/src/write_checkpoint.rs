//! Bodies of the write-checkpoint endpoints (PROTOCOL.md §2.7, §3.7):
//! `GET /write-checkpoint2.json?client_id=` ([`WriteCheckpointQuery`] →
//! [`WriteCheckpointResponse`]) and `POST /sync/checkpoint-request` ([`CheckpointRequest`] →
//! [`CheckpointRequestResponse`]).
//!
//! Results are sent wrapped in [`crate::DataEnvelope`]. The numbers are 64-bit counters sent as
//! decimal strings; on input a JSON integer is accepted too. How a write checkpoint becomes visible
//! in a `checkpoint` line is in [`crate::checkpoint`].

use serde::{Deserialize, Serialize};

use crate::decimal;

/// The query string of `GET /write-checkpoint2.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCheckpointQuery {
    /// The client instance id; the write checkpoint is kept per user and client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The result of `GET /write-checkpoint2.json`: `{"data":{"write_checkpoint":"<n>"}}` once
/// wrapped in [`crate::DataEnvelope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCheckpointResponse {
    /// The new write checkpoint; a later `checkpoint` line carrying a value `>=` it means the
    /// client's uploads before the request have been replicated back.
    #[serde(
        serialize_with = "decimal::serialize",
        deserialize_with = "decimal::write_checkpoint"
    )]
    pub write_checkpoint: u64,
}

/// The body of `POST /sync/checkpoint-request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRequest {
    /// The client instance id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The id the client chose (positive); sent as a decimal string, accepted as a JSON integer.
    #[serde(
        serialize_with = "decimal::serialize",
        deserialize_with = "decimal::checkpoint_request_id"
    )]
    pub checkpoint_request_id: u64,
}

/// The result of `POST /sync/checkpoint-request`: `{"data":{"checkpoint_request_id":"<n>"}}` once
/// wrapped in [`crate::DataEnvelope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRequestResponse {
    /// The effective stored id: may be larger than requested if a newer request exists.
    #[serde(
        serialize_with = "decimal::serialize",
        deserialize_with = "decimal::checkpoint_request_id"
    )]
    pub checkpoint_request_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_envelope::DataEnvelope;

    #[test]
    fn write_checkpoint_response_has_decimal_string() {
        let body = DataEnvelope::new(WriteCheckpointResponse {
            write_checkpoint: 42,
        });
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"data":{"write_checkpoint":"42"}}"#);
        assert_eq!(
            serde_json::from_str::<DataEnvelope<WriteCheckpointResponse>>(&json).unwrap(),
            body
        );
        // An integer is accepted too.
        let body: DataEnvelope<WriteCheckpointResponse> =
            serde_json::from_str(r#"{"data":{"write_checkpoint":42}}"#).unwrap();
        assert_eq!(body.data.write_checkpoint, 42);
    }

    #[test]
    fn checkpoint_request_accepts_string_or_integer_id() {
        let a: CheckpointRequest = serde_json::from_str(
            r#"{"client_id":"c-1","checkpoint_request_id":"9007199254740993"}"#,
        )
        .unwrap();
        assert_eq!(a.checkpoint_request_id, 9_007_199_254_740_993);
        let b: CheckpointRequest =
            serde_json::from_str(r#"{"client_id":"c-1","checkpoint_request_id":7}"#).unwrap();
        assert_eq!(b.checkpoint_request_id, 7);
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"client_id":"c-1","checkpoint_request_id":"7"}"#
        );
        let err = serde_json::from_str::<CheckpointRequest>(r#"{"checkpoint_request_id":"-3"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid checkpoint_request_id \"-3\""),
            "{err}"
        );
    }

    #[test]
    fn checkpoint_request_response_round_trips() {
        let body = DataEnvelope::new(CheckpointRequestResponse {
            checkpoint_request_id: 12,
        });
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"data":{"checkpoint_request_id":"12"}}"#);
        assert_eq!(
            serde_json::from_str::<DataEnvelope<CheckpointRequestResponse>>(&json).unwrap(),
            body
        );
    }

    #[test]
    fn write_checkpoint_query_round_trips() {
        let query = WriteCheckpointQuery {
            client_id: Some("c-1".into()),
        };
        let json = serde_json::to_string(&query).unwrap();
        assert_eq!(
            serde_json::from_str::<WriteCheckpointQuery>(&json).unwrap(),
            query
        );
        assert_eq!(
            serde_json::from_str::<WriteCheckpointQuery>("{}").unwrap(),
            WriteCheckpointQuery::default()
        );
    }
}
