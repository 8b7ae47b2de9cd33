//! The body of `POST /sync/stream`: [`StreamingSyncRequest`] (PROTOCOL.md §3.2) and its parts.
//!
//! Every field is optional on input, so the minimal body `{}` parses; a `null` where a list, a
//! flag or the `streams` object is expected counts as absent; unknown fields are ignored. The
//! response lines live in [`crate::line`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::op_id::OpId;
use crate::priority::BucketPriority;

/// What a client sends to open a sync stream.
///
/// Serialization emits the fields the official SDKs send (§7), so a ferry client's request looks
/// like theirs. `Default` is the minimal request: no buckets, default streams included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamingSyncRequest {
    /// Buckets the client already has, with the op id it has them up to.
    #[serde(default, deserialize_with = "null_as_default")]
    pub buckets: Vec<BucketRequest>,
    /// Legacy; ignored by servers (clients send `true`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_checksum: bool,
    /// `true`: op `data` is a JSON string. `false` (legacy): a nested object.
    #[serde(default, deserialize_with = "null_as_default")]
    pub raw_data: bool,
    /// Legacy BSON hint; the server decides by the `Accept` header.
    #[serde(default, deserialize_with = "null_as_default")]
    pub binary_data: bool,
    /// The client instance id; used for write checkpoints and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client parameters (`request.parameters()` in sync rules); `null` and absent are `None`.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// Sync Streams subscriptions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub streams: StreamSubscriptionRequest,
    /// Free-form metadata for logs (the Node SDK sends `{}`); emitted only when non-empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub app_metadata: Map<String, Value>,
    /// Legacy bucket filter, ignored by servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
}

/// A bucket the client already holds: send only ops with `op_id > after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRequest {
    /// The bucket id.
    pub name: String,
    /// The last op id the client has of this bucket.
    pub after: OpId,
}

/// The `streams` object of a sync request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSubscriptionRequest {
    /// Whether streams marked as auto-subscribed are included (default `true`).
    #[serde(default = "default_true", deserialize_with = "null_as_true")]
    pub include_defaults: bool,
    /// Explicit subscriptions; a checkpoint's `{"sub": i}` refers to index `i` of this list.
    #[serde(default, deserialize_with = "null_as_default")]
    pub subscriptions: Vec<RequestedStreamSubscription>,
}

impl Default for StreamSubscriptionRequest {
    /// Default streams included, no explicit subscriptions.
    fn default() -> Self {
        StreamSubscriptionRequest {
            include_defaults: true,
            subscriptions: Vec::new(),
        }
    }
}

/// One explicit subscription to a sync stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedStreamSubscription {
    /// The stream's name.
    pub stream: String,
    /// Parameters made available to the stream's queries; `null` when none.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// A priority replacing the stream's own; `null` when none.
    #[serde(default)]
    pub override_priority: Option<BucketPriority>,
}

fn default_true() -> bool {
    true
}

/// Deserializes `T`, mapping an explicit `null` to `T::default()`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Deserializes a flag whose default is `true`, mapping an explicit `null` to `true`.
fn null_as_true<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_empty_body_parses_with_defaults() {
        let request: StreamingSyncRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(request, StreamingSyncRequest::default());
        assert!(request.buckets.is_empty());
        assert!(request.streams.include_defaults);
        assert!(request.parameters.is_none());
        assert!(request.client_id.is_none());
    }

    #[test]
    fn protocol_section_3_2_example_parses() {
        // PROTOCOL.md §3.2, with the elided client id completed.
        let body = r#"{"buckets":[{"name":"by_user[\"u1\"]","after":"1200"}],"include_checksum":true,"raw_data":true,"binary_data":true,"client_id":"0b8f5a1e-4c1d-4b7e-9a55-2f7c3d1e6a90","parameters":null,"streams":{"include_defaults":true,"subscriptions":[]}}"#;
        let request: StreamingSyncRequest = serde_json::from_str(body).unwrap();
        assert_eq!(
            request.buckets,
            vec![BucketRequest {
                name: "by_user[\"u1\"]".into(),
                after: OpId(1200),
            }]
        );
        assert!(request.include_checksum && request.raw_data && request.binary_data);
        assert_eq!(
            request.client_id.as_deref(),
            Some("0b8f5a1e-4c1d-4b7e-9a55-2f7c3d1e6a90")
        );
        assert_eq!(request.parameters, None);
        assert_eq!(request.streams, StreamSubscriptionRequest::default());
        // Serializing it again gives the same bytes: field order and shapes match what SDKs send.
        assert_eq!(serde_json::to_string(&request).unwrap(), body);
    }

    #[test]
    fn body_sent_by_real_sdks_parses() {
        // PROTOCOL.md §7: the Rust SDK's body, and the Node SDK's with `app_metadata`.
        let rust_sdk = r#"{"buckets":[],"include_checksum":true,"raw_data":true,"binary_data":true,
            "client_id":"6c1f7d0e-2b1a-4f57-8f0e-7a3b9d2c4e11","parameters":{},"streams":{"include_defaults":true,"subscriptions":[]}}"#;
        let request: StreamingSyncRequest = serde_json::from_str(rust_sdk).unwrap();
        assert_eq!(request.parameters, Some(Map::new()));
        assert!(request.app_metadata.is_empty());

        let node_sdk = r#"{"buckets":[],"include_checksum":true,"raw_data":true,"binary_data":true,
            "client_id":"6c1f7d0e-2b1a-4f57-8f0e-7a3b9d2c4e11","parameters":{},"streams":{"include_defaults":true,"subscriptions":[]},
            "app_metadata":{}}"#;
        let node: StreamingSyncRequest = serde_json::from_str(node_sdk).unwrap();
        assert_eq!(node, request);
    }

    #[test]
    fn unknown_fields_and_nulls_are_tolerated() {
        let body = r#"{"buckets":null,"streams":null,"raw_data":null,"future_field":{"x":1},
            "only":["a[]"],"app_metadata":{"app":"todo"}}"#;
        let request: StreamingSyncRequest = serde_json::from_str(body).unwrap();
        assert!(request.buckets.is_empty());
        assert!(!request.raw_data);
        assert!(request.streams.include_defaults);
        assert_eq!(request.only, Some(vec!["a[]".to_string()]));
        assert_eq!(request.app_metadata["app"], "todo");
    }

    #[test]
    fn bucket_after_accepts_integer_op_ids() {
        let body = r#"{"buckets":[{"name":"b[]","after":17}]}"#;
        let request: StreamingSyncRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.buckets[0].after, OpId(17));
    }

    #[test]
    fn stream_subscriptions_round_trip() {
        let body = r#"{"streams":{"subscriptions":[
            {"stream":"lists","parameters":{"list_id":"L1"},"override_priority":1},
            {"stream":"todos"}]}}"#;
        let request: StreamingSyncRequest = serde_json::from_str(body).unwrap();
        assert!(
            request.streams.include_defaults,
            "include_defaults defaults to true"
        );
        let subs = &request.streams.subscriptions;
        assert_eq!(
            subs[0].override_priority,
            Some(BucketPriority::new(1).unwrap())
        );
        assert_eq!(subs[0].parameters.as_ref().unwrap()["list_id"], "L1");
        assert_eq!(subs[1].parameters, None);
        assert_eq!(subs[1].override_priority, None);

        let json = serde_json::to_string(&request).unwrap();
        let again: StreamingSyncRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(again, request);
    }

    #[test]
    fn stream_subscription_rejects_invalid_override_priority() {
        let body = r#"{"streams":{"subscriptions":[{"stream":"s","override_priority":7}]}}"#;
        let err = serde_json::from_str::<StreamingSyncRequest>(body)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bucket priority 7 is out of range"), "{err}");
    }

    #[test]
    fn full_request_round_trips() {
        let mut parameters = Map::new();
        parameters.insert("org".into(), Value::from("o1"));
        let request = StreamingSyncRequest {
            buckets: vec![BucketRequest {
                name: "1#by_user[\"u1\"]".into(),
                after: OpId(99),
            }],
            include_checksum: true,
            raw_data: true,
            binary_data: false,
            client_id: Some("c-1".into()),
            parameters: Some(parameters),
            streams: StreamSubscriptionRequest {
                include_defaults: false,
                subscriptions: vec![RequestedStreamSubscription {
                    stream: "todos".into(),
                    parameters: None,
                    override_priority: Some(BucketPriority::HIGHEST),
                }],
            },
            app_metadata: Map::new(),
            only: Some(vec![]),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<StreamingSyncRequest>(&json).unwrap(),
            request
        );
    }
}
