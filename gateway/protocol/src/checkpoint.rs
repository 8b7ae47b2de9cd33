//! The checkpoint lines of a sync stream (PROTOCOL.md §3.3): [`Checkpoint`], [`CheckpointDiff`],
//! [`CheckpointComplete`] and [`PartialCheckpointComplete`], with their parts (bucket checksums,
//! why a bucket is included, stream descriptions and stream errors).
//!
//! The data between a checkpoint and its completion is in [`crate::data_line`]; the enum over all
//! line types is in [`crate::line`].

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::checksum::Checksum;
use crate::decimal;
use crate::op_id::OpId;
use crate::priority::BucketPriority;

/// `checkpoint`: the full set of buckets the client must have, with their checksums. Always the
/// first checkpoint line of a connection; the server may send a new one at any time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint: every listed bucket's checksum covers exactly its ops up to this op id.
    pub last_op_id: OpId,
    /// The client's newest write checkpoint visible at this checkpoint (PROTOCOL.md §2.7); omitted
    /// when none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "decimal::serialize_option",
        deserialize_with = "decimal::optional_write_checkpoint"
    )]
    pub write_checkpoint: Option<u64>,
    /// Every bucket of the client; local buckets not listed are deleted.
    pub buckets: Vec<BucketChecksum>,
    /// Every sync stream the client is subscribed to (by default or explicitly).
    #[serde(default)]
    pub streams: Vec<StreamDescription>,
}

/// `checkpoint_diff`: changes relative to the previous checkpoint (or diff) of this connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDiff {
    /// The new checkpoint.
    pub last_op_id: OpId,
    /// As in [`Checkpoint::write_checkpoint`]; omitted when none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "decimal::serialize_option",
        deserialize_with = "decimal::optional_write_checkpoint"
    )]
    pub write_checkpoint: Option<u64>,
    /// Buckets added or changed (checksum or count differ).
    pub updated_buckets: Vec<BucketChecksum>,
    /// Ids of buckets the client no longer has.
    pub removed_buckets: Vec<String>,
}

/// `checkpoint_complete`: all data of the most recent checkpoint line has been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointComplete {
    /// Equals that checkpoint line's `last_op_id`.
    pub last_op_id: OpId,
}

/// `partial_checkpoint_complete`: all buckets with a priority number `<= priority` of the most
/// recent checkpoint are complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialCheckpointComplete {
    /// Equals that checkpoint line's `last_op_id`.
    pub last_op_id: OpId,
    /// The priority up to which buckets are complete.
    pub priority: BucketPriority,
}

/// One bucket of a checkpoint: its checksum and op count at the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketChecksum {
    /// The bucket id.
    pub bucket: String,
    /// Wrapping sum of the checksums of its ops up to the checkpoint.
    pub checksum: Checksum,
    /// Number of those ops (for progress); 0 when the server does not say.
    #[serde(default)]
    pub count: u64,
    /// Its priority; 3 when the server does not say.
    #[serde(default)]
    pub priority: BucketPriority,
    /// Why the client has this bucket.
    #[serde(default)]
    pub subscriptions: Vec<BucketSubscriptionReason>,
}

/// Why a bucket is part of a checkpoint: `{"default": i}` or `{"sub": i}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BucketSubscriptionReason {
    /// Included by default stream `i` (an index into the checkpoint's `streams`).
    #[serde(rename = "default")]
    Default(usize),
    /// Included by explicit subscription `i` (an index into the request's
    /// `streams.subscriptions`).
    #[serde(rename = "sub")]
    Subscription(usize),
}

/// One sync stream the client is subscribed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDescription {
    /// The stream's (or classic bucket definition's) name.
    pub name: String,
    /// Whether the client gets it because it is auto-subscribed.
    pub is_default: bool,
    /// Problems with the client's subscriptions to it (e.g. invalid parameters).
    #[serde(default)]
    pub errors: Vec<StreamSubscriptionError>,
}

/// A problem with one subscription to a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSubscriptionError {
    /// Which subscription it is about.
    pub subscription: SubscriptionRef,
    /// What is wrong.
    pub message: String,
}

/// Names a subscription in a [`StreamSubscriptionError`]: `"default"` (the default subscription)
/// or an integer index into the request's `streams.subscriptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionRef {
    /// The stream's default subscription; `"default"` on the wire.
    Default,
    /// Explicit subscription `i`; the integer `i` on the wire.
    Index(usize),
}

impl Serialize for SubscriptionRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SubscriptionRef::Default => serializer.serialize_str("default"),
            SubscriptionRef::Index(i) => serializer.serialize_u64(*i as u64),
        }
    }
}

impl<'de> Deserialize<'de> for SubscriptionRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SubscriptionRefVisitor;

        impl Visitor<'_> for SubscriptionRefVisitor {
            type Value = SubscriptionRef;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""default" or a non-negative subscription index"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<SubscriptionRef, E> {
                if v == "default" {
                    Ok(SubscriptionRef::Default)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SubscriptionRef, E> {
                usize::try_from(v)
                    .map(SubscriptionRef::Index)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SubscriptionRef, E> {
                usize::try_from(v)
                    .map(SubscriptionRef::Index)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }

        deserializer.deserialize_any(SubscriptionRefVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketChecksum {
        BucketChecksum {
            bucket: "by_user[\"u1\"]".into(),
            checksum: Checksum(2_914_882_035),
            count: 12,
            priority: BucketPriority::LOWEST,
            subscriptions: vec![BucketSubscriptionReason::Default(0)],
        }
    }

    #[test]
    fn protocol_checkpoint_example_parses_and_reserializes_identically() {
        // PROTOCOL.md §3.3, item 1.
        let json = r#"{"last_op_id":"1240","write_checkpoint":"7","buckets":[{"bucket":"by_user[\"u1\"]","checksum":2914882035,"count":12,"priority":3,"subscriptions":[{"default":0}]}],"streams":[{"name":"by_user","is_default":true,"errors":[]}]}"#;
        let checkpoint: Checkpoint = serde_json::from_str(json).unwrap();
        assert_eq!(
            checkpoint,
            Checkpoint {
                last_op_id: OpId(1240),
                write_checkpoint: Some(7),
                buckets: vec![bucket()],
                streams: vec![StreamDescription {
                    name: "by_user".into(),
                    is_default: true,
                    errors: vec![],
                }],
            }
        );
        assert_eq!(serde_json::to_string(&checkpoint).unwrap(), json);
    }

    #[test]
    fn checkpoint_omits_write_checkpoint_when_none() {
        let checkpoint = Checkpoint {
            last_op_id: OpId(1),
            write_checkpoint: None,
            buckets: vec![],
            streams: vec![],
        };
        let json = serde_json::to_string(&checkpoint).unwrap();
        assert_eq!(json, r#"{"last_op_id":"1","buckets":[],"streams":[]}"#);
        assert_eq!(
            serde_json::from_str::<Checkpoint>(&json).unwrap(),
            checkpoint
        );
    }

    #[test]
    fn checkpoint_accepts_null_or_integer_write_checkpoint() {
        let c: Checkpoint =
            serde_json::from_str(r#"{"last_op_id":"1","write_checkpoint":null,"buckets":[]}"#)
                .unwrap();
        assert_eq!(c.write_checkpoint, None);
        let c: Checkpoint =
            serde_json::from_str(r#"{"last_op_id":1,"write_checkpoint":8,"buckets":[]}"#).unwrap();
        assert_eq!(c.write_checkpoint, Some(8));
        assert_eq!(c.last_op_id, OpId(1));
        let err = serde_json::from_str::<Checkpoint>(
            r#"{"last_op_id":"1","write_checkpoint":"x","buckets":[]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid write_checkpoint \"x\""), "{err}");
    }

    #[test]
    fn bucket_checksum_defaults_missing_count_priority_and_subscriptions() {
        let b: BucketChecksum = serde_json::from_str(r#"{"bucket":"a[]","checksum":-5}"#).unwrap();
        assert_eq!(b.count, 0);
        assert_eq!(b.priority, BucketPriority::LOWEST);
        assert!(b.subscriptions.is_empty());
        assert_eq!(b.checksum, Checksum::from(-5i32));
    }

    #[test]
    fn checkpoint_diff_round_trips() {
        let diff = CheckpointDiff {
            last_op_id: OpId(1250),
            write_checkpoint: Some(8),
            updated_buckets: vec![bucket()],
            removed_buckets: vec!["x[]".into()],
        };
        let json = serde_json::to_string(&diff).unwrap();
        assert!(json.contains(r#""write_checkpoint":"8""#), "{json}");
        assert_eq!(serde_json::from_str::<CheckpointDiff>(&json).unwrap(), diff);
    }

    #[test]
    fn completion_lines_round_trip() {
        let complete = CheckpointComplete {
            last_op_id: OpId(1250),
        };
        let json = serde_json::to_string(&complete).unwrap();
        assert_eq!(json, r#"{"last_op_id":"1250"}"#);
        assert_eq!(
            serde_json::from_str::<CheckpointComplete>(&json).unwrap(),
            complete
        );

        let partial = PartialCheckpointComplete {
            last_op_id: OpId(1250),
            priority: BucketPriority::new(1).unwrap(),
        };
        let json = serde_json::to_string(&partial).unwrap();
        assert_eq!(json, r#"{"last_op_id":"1250","priority":1}"#);
        assert_eq!(
            serde_json::from_str::<PartialCheckpointComplete>(&json).unwrap(),
            partial
        );
    }

    #[test]
    fn subscription_reasons_use_default_and_sub_keys() {
        let reasons = vec![
            BucketSubscriptionReason::Default(2),
            BucketSubscriptionReason::Subscription(0),
        ];
        let json = serde_json::to_string(&reasons).unwrap();
        assert_eq!(json, r#"[{"default":2},{"sub":0}]"#);
        assert_eq!(
            serde_json::from_str::<Vec<BucketSubscriptionReason>>(&json).unwrap(),
            reasons
        );
    }

    #[test]
    fn stream_errors_name_default_or_indexed_subscription() {
        let json = r#"{"name":"todos","is_default":false,"errors":[{"subscription":"default","message":"bad"},{"subscription":1,"message":"missing list_id"}]}"#;
        let stream: StreamDescription = serde_json::from_str(json).unwrap();
        assert_eq!(stream.errors[0].subscription, SubscriptionRef::Default);
        assert_eq!(stream.errors[1].subscription, SubscriptionRef::Index(1));
        assert_eq!(serde_json::to_string(&stream).unwrap(), json);
        assert!(serde_json::from_str::<SubscriptionRef>(r#""other""#).is_err());
        assert!(serde_json::from_str::<SubscriptionRef>("-1").is_err());
    }
}
