//! [`DataLine`]: the `data` line of a sync stream, a chunk of ops of one bucket (PROTOCOL.md §3.3).
//!
//! The ops themselves are [`crate::OplogEntry`] (in [`crate::op`]).

use serde::{Deserialize, Serialize};

use crate::op::OplogEntry;
use crate::op_id::OpId;

/// A chunk of ops of one bucket, in op id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLine {
    /// The bucket id.
    pub bucket: String,
    /// The ops follow this op id (the client's previous position in the bucket).
    pub after: OpId,
    /// The position after this chunk: the last op id it contains.
    pub next_after: OpId,
    /// More ops of this bucket follow in later chunks of the same checkpoint.
    #[serde(default)]
    pub has_more: bool,
    /// The ops.
    pub data: Vec<OplogEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::op::{OpKind, RowKey};

    #[test]
    fn protocol_data_line_example_parses() {
        // PROTOCOL.md §3.3, item 3, with the elided subkey made concrete.
        let json = r#"{"bucket":"by_user[\"u1\"]","after":"1200","next_after":"1240","has_more":false,"data":[{"op_id":"1235","op":"PUT","object_type":"todos","object_id":"t1","subkey":"3/t1","checksum":123,"data":"{\"id\":\"t1\",\"done\":0}"}]}"#;
        let line: DataLine = serde_json::from_str(json).unwrap();
        assert_eq!(line.after, OpId(1200));
        assert_eq!(line.next_after, OpId(1240));
        assert!(!line.has_more);
        assert_eq!(
            line.data[0].kind,
            OpKind::Put {
                row: RowKey {
                    object_type: "todos".into(),
                    object_id: "t1".into(),
                    subkey: Some("3/t1".into()),
                },
                data: r#"{"id":"t1","done":0}"#.into(),
            }
        );
        assert_eq!(line.data[0].checksum, Checksum(123));
        assert_eq!(serde_json::to_string(&line).unwrap(), json);
    }

    #[test]
    fn data_line_with_every_op_kind_round_trips() {
        let line = DataLine {
            bucket: "b[]".into(),
            after: OpId(0),
            next_after: OpId(4),
            has_more: true,
            data: vec![
                OplogEntry {
                    op_id: OpId(1),
                    checksum: Checksum(10),
                    kind: OpKind::Clear,
                },
                OplogEntry {
                    op_id: OpId(2),
                    checksum: Checksum(20),
                    kind: OpKind::Move,
                },
                OplogEntry {
                    op_id: OpId(3),
                    checksum: Checksum(30),
                    kind: OpKind::Put {
                        row: RowKey {
                            object_type: "t".into(),
                            object_id: "1".into(),
                            subkey: Some("k".into()),
                        },
                        data: "{}".into(),
                    },
                },
                OplogEntry {
                    op_id: OpId(4),
                    checksum: Checksum(u32::MAX),
                    kind: OpKind::Remove {
                        row: RowKey {
                            object_type: "t".into(),
                            object_id: "1".into(),
                            subkey: Some("k".into()),
                        },
                    },
                },
            ],
        };
        let json = serde_json::to_string(&line).unwrap();
        assert_eq!(serde_json::from_str::<DataLine>(&json).unwrap(), line);
    }
}
