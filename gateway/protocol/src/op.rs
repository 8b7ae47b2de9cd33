//! [`OplogEntry`]: one operation of a bucket's op log as sent in a `data` line (PROTOCOL.md §2.1,
//! §2.4, §3.3).
//!
//! PUT and REMOVE carry `op_id`, `op`, `object_type`, `object_id`, `subkey`, `checksum` and `data`
//! (a JSON string for PUT, `null` for REMOVE); MOVE and CLEAR carry only `op_id`, `op` and
//! `checksum`. The Rust type makes other combinations unrepresentable, and serialization emits
//! exactly those fields. On input the legacy form (`raw_data: false`), where `data` is a nested
//! JSON object, is accepted and turned into its JSON string. The `data` line around ops is in
//! [`crate::data_line`].

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::checksum::Checksum;
use crate::error::ProtocolError;
use crate::op_id::OpId;

/// One op of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawOplogEntry")]
pub struct OplogEntry {
    /// Its position in the op log.
    pub op_id: OpId,
    /// Its checksum; a bucket's checksum is the wrapping sum of its ops' checksums.
    pub checksum: Checksum,
    /// What it does, with the fields only some ops carry.
    pub kind: OpKind,
}

/// What an op does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// The row now has this content (in this bucket).
    Put {
        /// Which row.
        row: RowKey,
        /// The row as a JSON object, encoded as a string (exactly the text the checksum hashed).
        data: String,
    },
    /// The row left the bucket (or was deleted).
    Remove {
        /// Which row.
        row: RowKey,
    },
    /// A compacted PUT/REMOVE that was superseded later; only its checksum still counts.
    Move,
    /// Replaces every earlier op of the bucket; its checksum is theirs summed.
    Clear,
}

/// Identifies a row within a bucket: `(object_type, object_id, subkey)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    /// The output table name.
    pub object_type: String,
    /// The row id.
    pub object_id: String,
    /// Opaque source-row discriminator (PROTOCOL.md §2.1); `null` on the wire when absent.
    pub subkey: Option<String>,
}

/// The `op` tag of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpType {
    /// `"PUT"`.
    #[serde(rename = "PUT")]
    Put,
    /// `"REMOVE"`.
    #[serde(rename = "REMOVE")]
    Remove,
    /// `"MOVE"`.
    #[serde(rename = "MOVE")]
    Move,
    /// `"CLEAR"`.
    #[serde(rename = "CLEAR")]
    Clear,
}

impl OpType {
    /// The wire name (`"PUT"`, `"REMOVE"`, `"MOVE"`, `"CLEAR"`), as also stored in Postgres.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Put => "PUT",
            OpType::Remove => "REMOVE",
            OpType::Move => "MOVE",
            OpType::Clear => "CLEAR",
        }
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OplogEntry {
    /// The op's `op` tag.
    pub fn op_type(&self) -> OpType {
        match self.kind {
            OpKind::Put { .. } => OpType::Put,
            OpKind::Remove { .. } => OpType::Remove,
            OpKind::Move => OpType::Move,
            OpKind::Clear => OpType::Clear,
        }
    }

    /// The row a PUT or REMOVE is about; `None` for MOVE and CLEAR.
    pub fn row(&self) -> Option<&RowKey> {
        match &self.kind {
            OpKind::Put { row, .. } | OpKind::Remove { row } => Some(row),
            OpKind::Move | OpKind::Clear => None,
        }
    }
}

impl Serialize for OplogEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (row, data) = match &self.kind {
            OpKind::Put { row, data } => (Some(row), Some(data.as_str())),
            OpKind::Remove { row } => (Some(row), None),
            OpKind::Move | OpKind::Clear => (None, None),
        };
        let mut s = serializer.serialize_struct("OplogEntry", if row.is_some() { 7 } else { 3 })?;
        s.serialize_field("op_id", &self.op_id)?;
        s.serialize_field("op", &self.op_type())?;
        match row {
            Some(row) => {
                s.serialize_field("object_type", &row.object_type)?;
                s.serialize_field("object_id", &row.object_id)?;
                s.serialize_field("subkey", &row.subkey)?;
                s.serialize_field("checksum", &self.checksum)?;
                s.serialize_field("data", &data)?;
            }
            None => s.serialize_field("checksum", &self.checksum)?,
        }
        s.end()
    }
}

/// The flat shape every op has on the wire; validated into an [`OplogEntry`].
#[derive(Deserialize)]
struct RawOplogEntry {
    op_id: OpId,
    op: OpType,
    checksum: Checksum,
    #[serde(default)]
    object_type: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    subkey: Option<String>,
    #[serde(default, deserialize_with = "row_data")]
    data: Option<String>,
}

impl TryFrom<RawOplogEntry> for OplogEntry {
    type Error = ProtocolError;

    fn try_from(raw: RawOplogEntry) -> Result<Self, Self::Error> {
        let missing = |field| ProtocolError::MissingOpField {
            op: raw.op,
            op_id: raw.op_id,
            field,
        };
        let kind = match raw.op {
            OpType::Put | OpType::Remove => {
                let row = RowKey {
                    object_type: raw.object_type.ok_or_else(|| missing("object_type"))?,
                    object_id: raw.object_id.ok_or_else(|| missing("object_id"))?,
                    subkey: raw.subkey,
                };
                if raw.op == OpType::Put {
                    let data = raw.data.ok_or_else(|| missing("data"))?;
                    OpKind::Put { row, data }
                } else {
                    OpKind::Remove { row }
                }
            }
            // Older servers put `{"target": ...}` into MOVE data; it is not needed.
            OpType::Move => OpKind::Move,
            OpType::Clear => OpKind::Clear,
        };
        Ok(OplogEntry {
            op_id: raw.op_id,
            checksum: raw.checksum,
            kind,
        })
    }
}

/// Reads an op's `data`: a JSON string as is, a nested object (legacy `raw_data: false`) as its
/// JSON text, `null` as `None`.
fn row_data<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct RowDataVisitor;

    impl<'de> Visitor<'de> for RowDataVisitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("op data as a JSON string, a JSON object or null")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let object = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
            serde_json::to_string(&object)
                .map(Some)
                .map_err(de::Error::custom)
        }
    }

    deserializer.deserialize_any(RowDataVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put() -> OplogEntry {
        OplogEntry {
            op_id: OpId(1235),
            checksum: Checksum(123),
            kind: OpKind::Put {
                row: RowKey {
                    object_type: "todos".into(),
                    object_id: "t1".into(),
                    subkey: Some("7/t1".into()),
                },
                data: r#"{"id":"t1","done":0}"#.into(),
            },
        }
    }

    #[test]
    fn put_serializes_with_all_fields_and_data_as_string() {
        assert_eq!(
            serde_json::to_string(&put()).unwrap(),
            r#"{"op_id":"1235","op":"PUT","object_type":"todos","object_id":"t1","subkey":"7/t1","checksum":123,"data":"{\"id\":\"t1\",\"done\":0}"}"#
        );
    }

    #[test]
    fn remove_serializes_with_null_data() {
        let remove = OplogEntry {
            op_id: OpId(13),
            checksum: Checksum(4_294_966_000),
            kind: OpKind::Remove {
                row: RowKey {
                    object_type: "todos".into(),
                    object_id: "T1".into(),
                    subkey: None,
                },
            },
        };
        let json = serde_json::to_string(&remove).unwrap();
        assert_eq!(
            json,
            r#"{"op_id":"13","op":"REMOVE","object_type":"todos","object_id":"T1","subkey":null,"checksum":4294966000,"data":null}"#
        );
        assert_eq!(serde_json::from_str::<OplogEntry>(&json).unwrap(), remove);
    }

    #[test]
    fn move_and_clear_serialize_only_op_id_op_and_checksum() {
        for (kind, name) in [(OpKind::Move, "MOVE"), (OpKind::Clear, "CLEAR")] {
            let op = OplogEntry {
                op_id: OpId(7),
                checksum: Checksum(99),
                kind,
            };
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(
                json,
                format!(r#"{{"op_id":"7","op":"{name}","checksum":99}}"#)
            );
            assert_eq!(serde_json::from_str::<OplogEntry>(&json).unwrap(), op);
        }
    }

    #[test]
    fn every_op_kind_round_trips() {
        let op = put();
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<OplogEntry>(&json).unwrap(), op);
        assert_eq!(op.op_type(), OpType::Put);
        assert_eq!(op.row().unwrap().object_id, "t1");
    }

    #[test]
    fn legacy_nested_object_data_becomes_its_json_string() {
        let json = r#"{"op_id":"1","op":"PUT","object_type":"lists","object_id":"L1","subkey":"s","checksum":5,
            "data":{"id":"L1","name":"Groceries","count":3,"tags":["a","b"]}}"#;
        let op: OplogEntry = serde_json::from_str(json).unwrap();
        let OpKind::Put { data, .. } = op.kind else {
            panic!("expected PUT")
        };
        assert_eq!(
            data,
            r#"{"id":"L1","name":"Groceries","count":3,"tags":["a","b"]}"#
        );
    }

    #[test]
    fn op_accepts_integer_op_id_and_negative_checksum() {
        let json = r#"{"op_id":42,"op":"CLEAR","checksum":-1}"#;
        let op: OplogEntry = serde_json::from_str(json).unwrap();
        assert_eq!(op.op_id, OpId(42));
        assert_eq!(op.checksum, Checksum(u32::MAX));
    }

    #[test]
    fn legacy_move_target_data_is_ignored() {
        let json = r#"{"op_id":"9","op":"MOVE","checksum":3,"data":{"target":"12"}}"#;
        let op: OplogEntry = serde_json::from_str(json).unwrap();
        assert_eq!(op.kind, OpKind::Move);
    }

    #[test]
    fn put_without_data_or_object_id_is_rejected_with_op_id() {
        let err = serde_json::from_str::<OplogEntry>(
            r#"{"op_id":"5","op":"PUT","object_type":"t","object_id":"1","checksum":1,"data":null}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PUT op 5 has no `data`"), "{err}");
        let err = serde_json::from_str::<OplogEntry>(
            r#"{"op_id":"6","op":"REMOVE","object_type":"t","checksum":1}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("REMOVE op 6 has no `object_id`"), "{err}");
    }

    #[test]
    fn unknown_op_type_is_rejected() {
        let err = serde_json::from_str::<OplogEntry>(r#"{"op_id":"1","op":"PATCH","checksum":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `PATCH`"), "{err}");
    }
}
