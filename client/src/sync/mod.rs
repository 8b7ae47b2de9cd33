//! Downloading and publishing synced data (PROTOCOL.md §3–§4), without any I/O:
//!
//! | module | holds |
//! | --- | --- |
//! | [`state_machine`] | [`SyncStateMachine`]: protocol lines and connection events in, [`SyncAction`]s out |
//! | [`oplog`] | storing the ops of a `data` line (PROTOCOL.md §4.5) |
//! | [`checkpoint`] | validating checksums and publishing a checkpoint in one transaction (§4.6) |
//! | [`write_gate`] | when downloaded data may be published over local writes (§4.7) |
//!
//! The network side (HTTP, timers, reconnects) is [`crate::driver`]; everything here operates on
//! a rusqlite [`rusqlite::Transaction`] handed in by the caller.

pub mod checkpoint;
pub mod oplog;
pub mod state_machine;
pub mod write_gate;

#[cfg(test)]
mod golden_traces;

use std::collections::{BTreeMap, HashMap};

use ferry_protocol::{BucketChecksum, BucketPriority, Checkpoint, CheckpointDiff, OpId};

use crate::schema::Schema;

pub use state_machine::{SyncAction, SyncEvent, SyncStateMachine};

/// The checkpoint the server is currently sending: the last `checkpoint` line with the
/// `checkpoint_diff` lines after it applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCheckpoint {
    /// The checkpoint's op id.
    pub last_op_id: OpId,
    /// The write checkpoint visible at it, if the server sent one.
    pub write_checkpoint: Option<u64>,
    /// Every bucket of the checkpoint, by name.
    pub buckets: BTreeMap<String, BucketChecksum>,
}

impl TargetCheckpoint {
    /// From a full `checkpoint` line.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> TargetCheckpoint {
        TargetCheckpoint {
            last_op_id: checkpoint.last_op_id,
            write_checkpoint: checkpoint.write_checkpoint,
            buckets: checkpoint
                .buckets
                .into_iter()
                .map(|b| (b.bucket.clone(), b))
                .collect(),
        }
    }

    /// Applies a `checkpoint_diff` line. A diff without a write checkpoint keeps the previous one
    /// (write checkpoints only grow).
    pub fn apply_diff(&mut self, diff: CheckpointDiff) {
        self.last_op_id = diff.last_op_id;
        if diff.write_checkpoint.is_some() {
            self.write_checkpoint = diff.write_checkpoint;
        }
        for name in &diff.removed_buckets {
            self.buckets.remove(name);
        }
        for bucket in diff.updated_buckets {
            self.buckets.insert(bucket.bucket.clone(), bucket);
        }
    }

    /// The buckets in `scope`.
    pub fn buckets_in(&self, scope: PublishScope) -> impl Iterator<Item = &BucketChecksum> {
        self.buckets
            .values()
            .filter(move |b| scope.includes(b.priority))
    }
}

/// Which buckets of a checkpoint a validation or publication covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishScope {
    /// All buckets (`checkpoint_complete`).
    Full,
    /// Buckets with a priority number `<=` this one (`partial_checkpoint_complete`).
    UpTo(BucketPriority),
}

impl PublishScope {
    /// Whether a bucket of priority `p` is in scope.
    pub fn includes(self, p: BucketPriority) -> bool {
        match self {
            PublishScope::Full => true,
            PublishScope::UpTo(max) => p <= max,
        }
    }

    /// The priority it is recorded under in `ferry_sync_state`, `None` for a full sync.
    pub fn priority(self) -> Option<BucketPriority> {
        match self {
            PublishScope::Full => None,
            PublishScope::UpTo(p) => Some(p),
        }
    }
}

/// Where the rows of each `object_type` are published: the statements writing a row of a type
/// that has a synced table, and those for `ferry_untyped` otherwise.
#[derive(Debug, Clone, Default)]
pub struct PublishTargets {
    tables: HashMap<String, TargetSql>,
    untyped: TargetSql,
}

/// The SQL writing rows of one type.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetSql {
    /// Upsert: `?1` id, `?2` data (and `?3` type when `untyped`); writes only when the data
    /// differs, so unchanged rows wake no watcher.
    pub(crate) put: String,
    /// Delete: `?1` id (and `?2` type when `untyped`).
    pub(crate) delete: String,
    /// The statements write `ferry_untyped` and take the type as a parameter.
    pub(crate) untyped: bool,
}

impl PublishTargets {
    /// The targets of a schema: every table that is not local-only receives synced rows.
    pub fn new(schema: &Schema) -> PublishTargets {
        let tables = schema
            .tables
            .iter()
            .filter(|t| !t.local_only)
            .map(|t| {
                let data = t.data_table();
                (
                    t.name.clone(),
                    TargetSql {
                        put: format!(
                            "INSERT INTO \"{data}\"(id, data) VALUES (?1, ?2) \
                             ON CONFLICT(id) DO UPDATE SET data = excluded.data \
                             WHERE data IS NOT excluded.data"
                        ),
                        delete: format!("DELETE FROM \"{data}\" WHERE id = ?1"),
                        untyped: false,
                    },
                )
            })
            .collect();
        PublishTargets {
            tables,
            untyped: TargetSql {
                put: "INSERT INTO ferry_untyped(type, id, data) VALUES (?3, ?1, ?2) \
                      ON CONFLICT(type, id) DO UPDATE SET data = excluded.data \
                      WHERE data IS NOT excluded.data"
                    .to_owned(),
                delete: "DELETE FROM ferry_untyped WHERE id = ?1 AND type = ?2".to_owned(),
                untyped: true,
            },
        }
    }

    /// The SQL for rows of `row_type`.
    pub(crate) fn sql(&self, row_type: &str) -> &TargetSql {
        self.tables.get(row_type).unwrap_or(&self.untyped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::Checksum;

    fn bucket(name: &str, checksum: u32, priority: u8) -> BucketChecksum {
        BucketChecksum {
            bucket: name.into(),
            checksum: Checksum(checksum),
            count: 1,
            priority: BucketPriority::new(priority).unwrap(),
            subscriptions: vec![],
        }
    }

    #[test]
    fn diff_updates_removes_and_keeps_write_checkpoint() {
        let mut target = TargetCheckpoint::from_checkpoint(Checkpoint {
            last_op_id: OpId(10),
            write_checkpoint: Some(3),
            buckets: vec![bucket("a", 1, 1), bucket("b", 2, 3)],
            streams: vec![],
        });
        target.apply_diff(CheckpointDiff {
            last_op_id: OpId(12),
            write_checkpoint: None,
            updated_buckets: vec![bucket("a", 5, 1), bucket("c", 7, 3)],
            removed_buckets: vec!["b".into()],
        });
        assert_eq!(target.last_op_id, OpId(12));
        assert_eq!(target.write_checkpoint, Some(3));
        let names: Vec<&str> = target.buckets.keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(target.buckets["a"].checksum, Checksum(5));
        let p1: Vec<&str> = target
            .buckets_in(PublishScope::UpTo(BucketPriority::new(1).unwrap()))
            .map(|b| b.bucket.as_str())
            .collect();
        assert_eq!(p1, ["a"]);
    }
}
