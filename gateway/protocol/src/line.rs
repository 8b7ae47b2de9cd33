//! [`SyncLine`]: one line of a sync stream response, whichever its type (PROTOCOL.md §3.3).
//!
//! A line is a JSON object with one key naming its type. Known types decode into their structs
//! (defined in [`crate::checkpoint`], [`crate::data_line`] and [`crate::keepalive`]); any other
//! type decodes to [`SyncLine::Unknown`] with the line kept as JSON, so a newer server never breaks
//! an older client. Splitting a byte stream into lines is [`crate::ndjson`]'s job.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::checkpoint::{
    Checkpoint, CheckpointComplete, CheckpointDiff, PartialCheckpointComplete,
};
use crate::data_line::DataLine;
use crate::keepalive::TokenExpiresIn;

/// One response line of `POST /sync/stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncLine {
    /// `{"checkpoint": ...}`: the full bucket set.
    Checkpoint(Checkpoint),
    /// `{"checkpoint_diff": ...}`: changes since the previous checkpoint.
    CheckpointDiff(CheckpointDiff),
    /// `{"data": ...}`: a chunk of ops of one bucket.
    Data(DataLine),
    /// `{"checkpoint_complete": ...}`: the checkpoint's data is complete.
    CheckpointComplete(CheckpointComplete),
    /// `{"partial_checkpoint_complete": ...}`: buckets up to a priority are complete.
    PartialCheckpointComplete(PartialCheckpointComplete),
    /// `{"token_expires_in": n}`: keepalive with the token's remaining lifetime.
    TokenExpiresIn(TokenExpiresIn),
    /// A line of a type this crate does not know, kept as the whole JSON object (also an empty
    /// object `{}`). Clients ignore it.
    Unknown(Value),
}

impl SyncLine {
    /// The line's type: its key on the wire (`"checkpoint"`, `"data"`, ...). For an unknown line,
    /// its first key (`""` if it has none).
    pub fn type_name(&self) -> &str {
        match self {
            SyncLine::Checkpoint(_) => CHECKPOINT,
            SyncLine::CheckpointDiff(_) => CHECKPOINT_DIFF,
            SyncLine::Data(_) => DATA,
            SyncLine::CheckpointComplete(_) => CHECKPOINT_COMPLETE,
            SyncLine::PartialCheckpointComplete(_) => PARTIAL_CHECKPOINT_COMPLETE,
            SyncLine::TokenExpiresIn(_) => TOKEN_EXPIRES_IN,
            SyncLine::Unknown(value) => value
                .as_object()
                .and_then(|object| object.keys().next())
                .map_or("", String::as_str),
        }
    }
}

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_DIFF: &str = "checkpoint_diff";
const DATA: &str = "data";
const CHECKPOINT_COMPLETE: &str = "checkpoint_complete";
const PARTIAL_CHECKPOINT_COMPLETE: &str = "partial_checkpoint_complete";
const TOKEN_EXPIRES_IN: &str = "token_expires_in";

impl Serialize for SyncLine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn one_entry<S: Serializer, T: Serialize>(
            serializer: S,
            key: &str,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(key, value)?;
            map.end()
        }

        match self {
            SyncLine::Checkpoint(v) => one_entry(serializer, CHECKPOINT, v),
            SyncLine::CheckpointDiff(v) => one_entry(serializer, CHECKPOINT_DIFF, v),
            SyncLine::Data(v) => one_entry(serializer, DATA, v),
            SyncLine::CheckpointComplete(v) => one_entry(serializer, CHECKPOINT_COMPLETE, v),
            SyncLine::PartialCheckpointComplete(v) => {
                one_entry(serializer, PARTIAL_CHECKPOINT_COMPLETE, v)
            }
            SyncLine::TokenExpiresIn(v) => one_entry(serializer, TOKEN_EXPIRES_IN, v),
            SyncLine::Unknown(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for SyncLine {
    /// The first key decides the type. A known type must be the only key; a line whose first key
    /// is unknown becomes [`SyncLine::Unknown`] with all its keys. Anything but an object is an
    /// error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SyncLineVisitor;

        impl<'de> Visitor<'de> for SyncLineVisitor {
            type Value = SyncLine;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sync line: a JSON object with one key naming the line type")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SyncLine, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Ok(SyncLine::Unknown(Value::Object(Map::new())));
                };
                let line = match key.as_str() {
                    CHECKPOINT => SyncLine::Checkpoint(map.next_value()?),
                    CHECKPOINT_DIFF => SyncLine::CheckpointDiff(map.next_value()?),
                    DATA => SyncLine::Data(map.next_value()?),
                    CHECKPOINT_COMPLETE => SyncLine::CheckpointComplete(map.next_value()?),
                    PARTIAL_CHECKPOINT_COMPLETE => {
                        SyncLine::PartialCheckpointComplete(map.next_value()?)
                    }
                    TOKEN_EXPIRES_IN => SyncLine::TokenExpiresIn(map.next_value()?),
                    _ => {
                        let mut object = Map::new();
                        let value = map.next_value::<Value>()?;
                        object.insert(key, value);
                        while let Some((k, v)) = map.next_entry::<String, Value>()? {
                            object.insert(k, v);
                        }
                        return Ok(SyncLine::Unknown(Value::Object(object)));
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format_args!(
                        "a `{key}` line must have exactly one key, but it also has `{extra}`"
                    )));
                }
                Ok(line)
            }
        }

        deserializer.deserialize_map(SyncLineVisitor)
    }
}

impl From<Checkpoint> for SyncLine {
    fn from(v: Checkpoint) -> Self {
        SyncLine::Checkpoint(v)
    }
}

impl From<CheckpointDiff> for SyncLine {
    fn from(v: CheckpointDiff) -> Self {
        SyncLine::CheckpointDiff(v)
    }
}

impl From<DataLine> for SyncLine {
    fn from(v: DataLine) -> Self {
        SyncLine::Data(v)
    }
}

impl From<CheckpointComplete> for SyncLine {
    fn from(v: CheckpointComplete) -> Self {
        SyncLine::CheckpointComplete(v)
    }
}

impl From<PartialCheckpointComplete> for SyncLine {
    fn from(v: PartialCheckpointComplete) -> Self {
        SyncLine::PartialCheckpointComplete(v)
    }
}

impl From<TokenExpiresIn> for SyncLine {
    fn from(v: TokenExpiresIn) -> Self {
        SyncLine::TokenExpiresIn(v)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkpoint::{BucketChecksum, BucketSubscriptionReason, StreamDescription};
    use crate::checksum::Checksum;
    use crate::op::{OpKind, OplogEntry, RowKey};
    use crate::op_id::OpId;
    use crate::priority::BucketPriority;
    use crate::request::StreamingSyncRequest;

    fn parse(line: &str) -> SyncLine {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn round_trip(line: &SyncLine) {
        let json = serde_json::to_string(line).unwrap();
        assert_eq!(&parse(&json), line, "{json}");
    }

    /// PROTOCOL.md §3.4.1, with placeholders made concrete: every subkey `"..."` is
    /// `"<source table id>/<row id>"`, the elided global_config op is a PUT with checksum 1111,
    /// c13 = 4294966000, so the diff's checksum is (2222 + c13) mod 2^32 = 926.
    const EXAMPLE_SESSION: &[&str] = &[
        r#"{"checkpoint":{"last_op_id":"12","buckets":[
              {"bucket":"global_config[]","checksum":1111,"count":1,"priority":3,"subscriptions":[{"default":0}]},
              {"bucket":"user_lists[\"u1\"]","checksum":2222,"count":2,"priority":1,"subscriptions":[{"default":1}]},
              {"bucket":"org_projects[null]","checksum":0,"count":0,"priority":3,"subscriptions":[{"default":2}]}],
            "streams":[{"name":"global_config","is_default":true,"errors":[]},{"name":"user_lists","is_default":true,"errors":[]},
                       {"name":"org_projects","is_default":true,"errors":[]}]}}"#,
        r#"{"data":{"bucket":"user_lists[\"u1\"]","after":"0","next_after":"11","has_more":false,"data":[
              {"op_id":"10","op":"PUT","object_type":"lists","object_id":"L1","subkey":"1/L1","checksum":1000,"data":"{\"id\":\"L1\",\"owner_id\":\"u1\"}"},
              {"op_id":"11","op":"PUT","object_type":"todos","object_id":"T1","subkey":"2/T1","checksum":1222,"data":"{\"id\":\"T1\",\"list_id\":\"L1\",\"completed\":0}"}]}}"#,
        r#"{"partial_checkpoint_complete":{"last_op_id":"12","priority":1}}"#,
        r#"{"data":{"bucket":"global_config[]","after":"0","next_after":"12","has_more":false,"data":[{"op_id":"12","op":"PUT","object_type":"config","object_id":"C1","subkey":"3/C1","checksum":1111,"data":"{\"id\":\"C1\",\"theme\":\"dark\"}"}]}}"#,
        r#"{"checkpoint_complete":{"last_op_id":"12"}}"#,
        r#"{"token_expires_in":3580}"#,
        r#"{"checkpoint_diff":{"last_op_id":"13","updated_buckets":[{"bucket":"user_lists[\"u1\"]","checksum":926,"count":3,"priority":1,"subscriptions":[{"default":1}]}],"removed_buckets":[]}}"#,
        r#"{"data":{"bucket":"user_lists[\"u1\"]","after":"11","next_after":"13","has_more":false,"data":[{"op_id":"13","op":"REMOVE","object_type":"todos","object_id":"T1","subkey":"2/T1","checksum":4294966000,"data":null}]}}"#,
        r#"{"checkpoint_complete":{"last_op_id":"13"}}"#,
    ];

    #[test]
    fn protocol_example_session_parses_line_by_line() {
        let request = r#"{"buckets":[],"raw_data":true,"client_id":"c-1","parameters":{},"streams":{"include_defaults":true,"subscriptions":[]}}"#;
        let request: StreamingSyncRequest = serde_json::from_str(request).unwrap();
        assert_eq!(request.client_id.as_deref(), Some("c-1"));

        let lines: Vec<SyncLine> = EXAMPLE_SESSION.iter().map(|l| parse(l)).collect();
        let types: Vec<&str> = lines.iter().map(SyncLine::type_name).collect();
        assert_eq!(
            types,
            [
                "checkpoint",
                "data",
                "partial_checkpoint_complete",
                "data",
                "checkpoint_complete",
                "token_expires_in",
                "checkpoint_diff",
                "data",
                "checkpoint_complete"
            ]
        );

        let SyncLine::Checkpoint(checkpoint) = &lines[0] else {
            panic!("first line is not a checkpoint")
        };
        assert_eq!(checkpoint.last_op_id, OpId(12));
        assert_eq!(checkpoint.buckets.len(), 3);
        assert_eq!(
            checkpoint.buckets[1].priority,
            BucketPriority::new(1).unwrap()
        );
        assert_eq!(checkpoint.streams[2].name, "org_projects");

        // The data of user_lists sums to the checkpoint's checksum; after the REMOVE the sum
        // wraps to the diff's checksum.
        let SyncLine::Data(first) = &lines[1] else {
            panic!("expected data")
        };
        let sum: Checksum = first.data.iter().map(|op| op.checksum).sum();
        assert_eq!(sum, checkpoint.buckets[1].checksum);
        let SyncLine::Data(removal) = &lines[7] else {
            panic!("expected data")
        };
        let SyncLine::CheckpointDiff(diff) = &lines[6] else {
            panic!("expected diff")
        };
        assert_eq!(
            sum + removal.data[0].checksum,
            diff.updated_buckets[0].checksum
        );
        assert!(matches!(removal.data[0].kind, OpKind::Remove { .. }));

        assert_eq!(lines[5], SyncLine::TokenExpiresIn(TokenExpiresIn(3580)));
        for line in &lines {
            round_trip(line);
        }
    }

    #[test]
    fn protocol_section_3_3_examples_parse() {
        // PROTOCOL.md §3.3 items 1-6, `<bucket entries>` and `...` made concrete.
        let lines = [
            r#"{"checkpoint":{"last_op_id":"1240","write_checkpoint":"7",
                "buckets":[{"bucket":"by_user[\"u1\"]","checksum":2914882035,"count":12,"priority":3,
                            "subscriptions":[{"default":0}]}],
                "streams":[{"name":"by_user","is_default":true,"errors":[]}]}}"#,
            r#"{"checkpoint_diff":{"last_op_id":"1250","write_checkpoint":"8","updated_buckets":[{"bucket":"by_user[\"u1\"]","checksum":2914882100,"count":13,"priority":3,"subscriptions":[{"default":0}]}],"removed_buckets":["x[]"]}}"#,
            r#"{"data":{"bucket":"by_user[\"u1\"]","after":"1200","next_after":"1240","has_more":false,"data":[{"op_id":"1235","op":"PUT","object_type":"todos","object_id":"t1","subkey":"5/t1","checksum":123,"data":"{\"id\":\"t1\",\"done\":0}"}]}}"#,
            r#"{"checkpoint_complete":{"last_op_id":"1250"}}"#,
            r#"{"partial_checkpoint_complete":{"last_op_id":"1250","priority":1}}"#,
            r#"{"token_expires_in":3580}"#,
        ];
        let parsed: Vec<SyncLine> = lines.iter().map(|l| parse(l)).collect();
        let SyncLine::CheckpointDiff(diff) = &parsed[1] else {
            panic!("expected checkpoint_diff")
        };
        assert_eq!(diff.write_checkpoint, Some(8));
        assert_eq!(diff.removed_buckets, ["x[]"]);
        assert_eq!(
            parsed[4],
            SyncLine::PartialCheckpointComplete(PartialCheckpointComplete {
                last_op_id: OpId(1250),
                priority: BucketPriority::new(1).unwrap(),
            })
        );
        for line in &parsed {
            round_trip(line);
        }
    }

    #[test]
    fn unknown_line_type_is_kept_not_rejected() {
        let line = parse(r#"{"stream_status":{"x":[1,2]}}"#);
        assert_eq!(
            line,
            SyncLine::Unknown(json!({"stream_status": {"x": [1, 2]}}))
        );
        assert_eq!(line.type_name(), "stream_status");
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"stream_status":{"x":[1,2]}}"#
        );
        assert_eq!(
            parse(r#"{"future":1,"other":"x"}"#),
            SyncLine::Unknown(json!({"future": 1, "other": "x"}))
        );
        assert_eq!(parse("{}"), SyncLine::Unknown(json!({})));
    }

    #[test]
    fn known_line_with_a_second_key_is_rejected() {
        let err = serde_json::from_str::<SyncLine>(
            r#"{"checkpoint_complete":{"last_op_id":"1"},"extra":1}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a `checkpoint_complete` line must have exactly one key"),
            "{err}"
        );
    }

    #[test]
    fn non_object_line_is_rejected() {
        let err = serde_json::from_str::<SyncLine>("[1]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a JSON object with one key"), "{err}");
    }

    #[test]
    fn known_line_with_invalid_content_reports_the_problem() {
        let err =
            serde_json::from_str::<SyncLine>(r#"{"checkpoint_complete":{"last_op_id":"-1"}}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("invalid op id \"-1\""), "{err}");
        let err = serde_json::from_str::<SyncLine>(
            r#"{"data":{"bucket":"b","next_after":"1","data":[]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing field `after`"), "{err}");
    }

    #[test]
    fn every_line_type_round_trips() {
        let bucket = BucketChecksum {
            bucket: "1#b[]".into(),
            checksum: Checksum(5),
            count: 1,
            priority: BucketPriority::HIGHEST,
            subscriptions: vec![BucketSubscriptionReason::Subscription(0)],
        };
        let lines = [
            SyncLine::from(Checkpoint {
                last_op_id: OpId(3),
                write_checkpoint: Some(2),
                buckets: vec![bucket.clone()],
                streams: vec![StreamDescription {
                    name: "b".into(),
                    is_default: false,
                    errors: vec![],
                }],
            }),
            SyncLine::from(CheckpointDiff {
                last_op_id: OpId(4),
                write_checkpoint: None,
                updated_buckets: vec![bucket],
                removed_buckets: vec!["1#gone[]".into()],
            }),
            SyncLine::from(DataLine {
                bucket: "1#b[]".into(),
                after: OpId(3),
                next_after: OpId(4),
                has_more: false,
                data: vec![OplogEntry {
                    op_id: OpId(4),
                    checksum: Checksum(5),
                    kind: OpKind::Put {
                        row: RowKey {
                            object_type: "t".into(),
                            object_id: "x".into(),
                            subkey: None,
                        },
                        data: r#"{"id":"x","n":1.0}"#.into(),
                    },
                }],
            }),
            SyncLine::from(CheckpointComplete {
                last_op_id: OpId(4),
            }),
            SyncLine::from(PartialCheckpointComplete {
                last_op_id: OpId(4),
                priority: BucketPriority::HIGHEST,
            }),
            SyncLine::from(TokenExpiresIn(0)),
            SyncLine::Unknown(json!({"something_new": {"a": null}})),
        ];
        for line in &lines {
            round_trip(line);
        }
    }

    #[test]
    fn checkpoint_line_with_negative_checksums_from_a_powersync_service_parses() {
        // PROTOCOL.md §7: a real service sends version-prefixed names and signed checksums.
        let line = parse(
            r#"{"checkpoint":{"last_op_id":"77","buckets":[{"bucket":"1#global[]","checksum":-1380085261,"count":4,"priority":3,"subscriptions":[{"default":0}]}],"streams":[{"name":"global","is_default":true,"errors":[]}]}}"#,
        );
        let SyncLine::Checkpoint(checkpoint) = line else {
            panic!("expected checkpoint")
        };
        assert_eq!(checkpoint.buckets[0].checksum, Checksum(2_914_882_035));
    }
}
