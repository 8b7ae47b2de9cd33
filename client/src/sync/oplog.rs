//! Storing the ops of a `data` line (PROTOCOL.md §4.5), before their checkpoint is validated.
//!
//! PUT and REMOVE ops are appended to `ferry_stage` as they arrive (a cheap append, no index on
//! the row); the bucket's running checksum (the wrapping sum of every op received since the last
//! CLEAR, MOVEs included) and its position are updated in `ferry_buckets` in the same
//! transaction, so a resumed stream continues exactly where the stored data ends. A CLEAR drops
//! the bucket's staged ops, resets the checksum to its own, and leaves a marker so that
//! publication also drops the bucket's published ops. Nothing here changes what the app sees:
//! that is [`super::checkpoint`]'s job.
//!
//! Which staged op wins for a row, and superseding earlier ops of the same row, is resolved when
//! the checkpoint is published (one sorted pass), not here.

use ferry_protocol::{Checksum, DataLine, OpKind};
use rusqlite::{params, Transaction};

use crate::error::Result;

/// `ferry_stage.kind` of a PUT.
pub(crate) const KIND_PUT: i64 = 0;
/// `ferry_stage.kind` of a REMOVE.
pub(crate) const KIND_REMOVE: i64 = 1;
/// `ferry_stage.kind` of a CLEAR marker.
pub(crate) const KIND_CLEAR: i64 = 2;

/// What storing a data line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLine {
    /// Number of ops in the line.
    pub ops: u64,
    /// The bucket's running checksum afterwards.
    pub checksum: Checksum,
}

/// Stores the ops of `line` in `tx`.
pub fn store_data_line(tx: &Transaction<'_>, line: &DataLine) -> Result<StoredLine> {
    let (bucket, stored): (i64, i64) = tx
        .prepare_cached(
            "INSERT INTO ferry_buckets(name) VALUES (?1) \
             ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id, checksum",
        )?
        .query_row([&line.bucket], |r| Ok((r.get(0)?, r.get(1)?)))?;
    // Stored as a non-negative INTEGER; the low 32 bits are the checksum.
    let mut checksum = Checksum(stored as u32);
    let mut insert = tx.prepare_cached(
        "INSERT INTO ferry_stage(bucket, op_id, kind, row_type, row_id, subkey, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut last_op: Option<i64> = None;
    for op in &line.data {
        let op_id = i64::try_from(op.op_id)?;
        match &op.kind {
            OpKind::Put { row, data } => {
                insert.execute(params![
                    bucket,
                    op_id,
                    KIND_PUT,
                    row.object_type,
                    row.object_id,
                    row.subkey.as_deref().unwrap_or(""),
                    data
                ])?;
                checksum += op.checksum;
            }
            OpKind::Remove { row } => {
                insert.execute(params![
                    bucket,
                    op_id,
                    KIND_REMOVE,
                    row.object_type,
                    row.object_id,
                    row.subkey.as_deref().unwrap_or(""),
                    None::<&str>
                ])?;
                checksum += op.checksum;
            }
            OpKind::Move => checksum += op.checksum,
            OpKind::Clear => {
                tx.prepare_cached("DELETE FROM ferry_stage WHERE bucket = ?1")?
                    .execute([bucket])?;
                insert.execute(params![
                    bucket,
                    op_id,
                    KIND_CLEAR,
                    None::<&str>,
                    None::<&str>,
                    None::<&str>,
                    None::<&str>
                ])?;
                checksum = op.checksum;
            }
        }
        last_op = Some(last_op.map_or(op_id, |l| l.max(op_id)));
    }
    let ops = line.data.len() as u64;
    tx.prepare_cached(
        "UPDATE ferry_buckets SET last_op = max(last_op, coalesce(?2, last_op)), checksum = ?3, \
         count_since_last = count_since_last + ?4 WHERE id = ?1",
    )?
    .execute(params![
        bucket,
        last_op,
        i64::from(checksum.value()),
        ops as i64
    ])?;
    Ok(StoredLine { ops, checksum })
}

#[cfg(test)]
mod tests {
    use ferry_protocol::{OpId, OplogEntry, RowKey};
    use rusqlite::Connection;

    use super::*;
    use crate::storage::migrations::migrate;

    fn put(op_id: u64, id: &str, checksum: u32) -> OplogEntry {
        OplogEntry {
            op_id: OpId(op_id),
            checksum: Checksum(checksum),
            kind: OpKind::Put {
                row: RowKey {
                    object_type: "todos".into(),
                    object_id: id.into(),
                    subkey: None,
                },
                data: format!("{{\"n\":{op_id}}}"),
            },
        }
    }

    fn line(ops: Vec<OplogEntry>) -> DataLine {
        DataLine {
            bucket: "b[]".into(),
            after: OpId(0),
            next_after: ops.last().map_or(OpId(0), |o| o.op_id),
            has_more: false,
            data: ops,
        }
    }

    #[test]
    fn checksums_wrap_and_clear_resets_them() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        let stored = store_data_line(&tx, &line(vec![put(1, "a", u32::MAX), put(2, "b", 3)]))?;
        assert_eq!(stored.checksum, Checksum(2));
        let clear = OplogEntry {
            op_id: OpId(3),
            checksum: Checksum(100),
            kind: OpKind::Clear,
        };
        let stored = store_data_line(&tx, &line(vec![clear, put(4, "c", 1)]))?;
        assert_eq!(stored.checksum, Checksum(101));
        let staged: Vec<(i64, i64)> = {
            let mut s = tx.prepare("SELECT op_id, kind FROM ferry_stage ORDER BY op_id")?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        assert_eq!(staged, vec![(3, KIND_CLEAR), (4, KIND_PUT)]);
        let (last_op, count): (i64, i64) = tx.query_row(
            "SELECT last_op, count_since_last FROM ferry_buckets",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        assert_eq!((last_op, count), (4, 4));
        Ok(())
    }

    #[test]
    fn op_ids_beyond_i64_are_a_protocol_error_not_a_panic() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        let e = store_data_line(&tx, &line(vec![put(u64::MAX, "a", 1)])).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        Ok(())
    }
}
