//! Turning pending buckets and op rows into `data` lines, as pure functions: grouping buckets by
//! priority, converting `ferry.bucket_data` rows into protocol ops, cutting them into chunks of
//! one bucket each (bounded in bytes), setting `has_more`, advancing bucket positions, and
//! noticing compacted ops that invalidate the checkpoint being served (`target_op` beyond it).
//!
//! The queries and the sending are in [`crate::stream::session`].

use std::collections::{BTreeMap, HashMap};

use ferry_protocol::{BucketPriority, Checksum, DataLine, OpId, OpKind, OplogEntry, RowKey};

use crate::db::OpRow;

/// Groups bucket ids by priority, highest priority (lowest number) first; ids keep their
/// order within a group.
pub fn group_by_priority<'a>(
    buckets: impl IntoIterator<Item = (&'a str, BucketPriority)>,
) -> Vec<(BucketPriority, Vec<String>)> {
    let mut groups: BTreeMap<BucketPriority, Vec<String>> = BTreeMap::new();
    for (name, priority) in buckets {
        groups.entry(priority).or_default().push(name.to_owned());
    }
    groups.into_iter().collect()
}

/// Converts one row of `ferry.bucket_data` into a protocol op.
pub fn op_from_row(row: &OpRow) -> Result<OplogEntry, String> {
    let op_id = OpId::try_from(row.op_id).map_err(|e| e.to_string())?;
    let checksum = Checksum::from_wire(row.checksum).map_err(|e| e.to_string())?;
    let row_key = || -> Result<RowKey, String> {
        Ok(RowKey {
            object_type: row
                .object_type
                .clone()
                .ok_or_else(|| format!("{} op {} has no object_type", row.op, row.op_id))?,
            object_id: row
                .object_id
                .clone()
                .ok_or_else(|| format!("{} op {} has no object_id", row.op, row.op_id))?,
            subkey: row.subkey.clone(),
        })
    };
    let kind = match row.op.as_str() {
        "PUT" => OpKind::Put {
            row: row_key()?,
            data: row
                .data
                .clone()
                .ok_or_else(|| format!("PUT op {} has no data", row.op_id))?,
        },
        "REMOVE" => OpKind::Remove { row: row_key()? },
        "MOVE" => OpKind::Move,
        "CLEAR" => OpKind::Clear,
        other => return Err(format!("op {} has unknown type {other:?}", row.op_id)),
    };
    Ok(OplogEntry {
        op_id,
        checksum,
        kind,
    })
}

/// The lines made from one batch of rows.
#[derive(Debug, Default)]
pub struct Chunked {
    /// `data` lines, in order.
    pub lines: Vec<DataLine>,
    /// Ops in them.
    pub ops: usize,
    /// A row had `target_op` beyond the checkpoint: the checkpoint must not be completed.
    pub invalidated: bool,
}

/// Cuts `rows` (ordered by bucket, then op id) into `data` lines of one bucket each, at most
/// about `chunk_bytes` per line, and advances `positions` (bucket → last op id sent).
///
/// `more_after_last`: the batch's last bucket has more ops after it (see
/// [`last_bucket_has_more`]); its last line gets `has_more: true`. Lines before a bucket's last
/// line always have it.
pub fn chunk_rows(
    rows: Vec<OpRow>,
    positions: &mut HashMap<String, i64>,
    checkpoint: i64,
    chunk_bytes: usize,
    more_after_last: bool,
) -> Result<Chunked, String> {
    let mut out = Chunked::default();
    let last_bucket = rows.last().map(|r| r.bucket.clone());
    let mut current: Option<(DataLine, usize)> = None;
    for row in rows {
        if row.target_op.is_some_and(|t| t > checkpoint) {
            out.invalidated = true;
        }
        let op = op_from_row(&row)?;
        let size = row.approx_bytes();
        let continues = current
            .as_ref()
            .is_some_and(|(line, bytes)| line.bucket == row.bucket && bytes + size <= chunk_bytes);
        if !continues {
            if let Some((mut line, _)) = current.take() {
                // A full chunk of the same bucket is followed by more of it.
                line.has_more = line.bucket == row.bucket;
                out.lines.push(line);
            }
            let after = positions.get(&row.bucket).copied().unwrap_or(0);
            current = Some((
                DataLine {
                    bucket: row.bucket.clone(),
                    after: OpId::try_from(after).map_err(|e| e.to_string())?,
                    next_after: op.op_id,
                    has_more: false,
                    data: Vec::new(),
                },
                0,
            ));
        }
        let (line, bytes) = current.as_mut().expect("a line is open");
        line.next_after = op.op_id;
        line.data.push(op);
        *bytes += size;
        out.ops += 1;
        positions.insert(row.bucket, row.op_id);
    }
    if let Some((mut line, _)) = current {
        line.has_more = more_after_last && Some(&line.bucket) == last_bucket.as_ref();
        out.lines.push(line);
    }
    Ok(out)
}

/// A batch is read with one row more than it uses: `extra` is that row's bucket when the query
/// returned it (the batch was full). Then the buckets still to query start at `extra` — buckets
/// between the batch's last one and it have no ops up to the checkpoint. `None` when the batch
/// was not full.
pub fn remaining_after_batch(requested: &[String], extra: Option<&str>) -> Option<Vec<String>> {
    let extra = extra?;
    let index = requested.iter().position(|b| b == extra)?;
    Some(requested[index..].to_vec())
}

/// Whether the last bucket of a full batch has more ops: the extra row is of the same bucket.
pub fn last_bucket_has_more(rows: &[OpRow], extra: Option<&OpRow>) -> bool {
    match (rows.last(), extra) {
        (Some(last), Some(extra)) => last.bucket == extra.bucket,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(bucket: &str, op_id: i64, data: &str) -> OpRow {
        OpRow {
            bucket: bucket.into(),
            op_id,
            op: "PUT".into(),
            object_type: Some("todos".into()),
            object_id: Some(format!("t{op_id}")),
            subkey: Some(format!("1/t{op_id}")),
            data: Some(data.into()),
            checksum: 100 + op_id,
            target_op: None,
        }
    }

    fn p(n: u8) -> BucketPriority {
        BucketPriority::new(n).unwrap()
    }

    #[test]
    fn buckets_are_grouped_by_ascending_priority_number() {
        let groups = group_by_priority([("a", p(3)), ("b", p(1)), ("c", p(3)), ("d", p(0))]);
        let summary: Vec<(u8, Vec<String>)> =
            groups.into_iter().map(|(p, b)| (p.get(), b)).collect();
        assert_eq!(
            summary,
            [
                (0, vec!["d".to_string()]),
                (1, vec!["b".to_string()]),
                (3, vec!["a".to_string(), "c".to_string()])
            ]
        );
    }

    #[test]
    fn rows_become_one_line_per_bucket_with_positions() {
        let mut positions = HashMap::from([("a".to_string(), 5)]);
        let rows = vec![put("a", 6, "{}"), put("a", 9, "{}"), put("b", 7, "{}")];
        let chunked = chunk_rows(rows, &mut positions, 10, 1 << 20, false).unwrap();
        assert_eq!(chunked.lines.len(), 2);
        assert_eq!(chunked.ops, 3);
        let a = &chunked.lines[0];
        assert_eq!(
            (a.after, a.next_after, a.has_more),
            (OpId(5), OpId(9), false)
        );
        let b = &chunked.lines[1];
        assert_eq!((b.after, b.next_after), (OpId(0), OpId(7)));
        assert_eq!(positions["a"], 9);
        assert_eq!(positions["b"], 7);
        assert!(!chunked.invalidated);
    }

    #[test]
    fn big_buckets_are_cut_into_chunks_with_has_more() {
        let mut positions = HashMap::new();
        let big = "x".repeat(400);
        let rows = (1..=5).map(|i| put("a", i, &big)).collect();
        let chunked = chunk_rows(rows, &mut positions, 10, 1000, false).unwrap();
        assert!(chunked.lines.len() >= 2, "{:?}", chunked.lines.len());
        let (last, rest) = chunked.lines.split_last().unwrap();
        assert!(rest.iter().all(|l| l.has_more));
        assert!(!last.has_more);
        // Chunks chain: each starts after the previous one's last op.
        for pair in chunked.lines.windows(2) {
            assert_eq!(pair[1].after, pair[0].next_after);
        }
    }

    #[test]
    fn full_batch_marks_the_last_bucket_as_having_more() {
        let mut positions = HashMap::new();
        let rows = vec![put("a", 1, "{}"), put("b", 2, "{}")];
        let chunked = chunk_rows(rows, &mut positions, 10, 1 << 20, true).unwrap();
        assert!(!chunked.lines[0].has_more);
        assert!(chunked.lines[1].has_more);
        let requested = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            remaining_after_batch(&requested, Some("b")),
            Some(vec!["b".to_string(), "c".to_string()])
        );
        assert_eq!(remaining_after_batch(&requested, None), None);
    }

    #[test]
    fn a_full_batch_says_has_more_only_when_its_last_bucket_continues() {
        let rows = vec![put("a", 1, "{}"), put("b", 2, "{}")];
        assert!(last_bucket_has_more(&rows, Some(&put("b", 3, "{}"))));
        assert!(!last_bucket_has_more(&rows, Some(&put("c", 4, "{}"))));
        assert!(!last_bucket_has_more(&rows, None));
        let requested = vec![
            "a".to_string(),
            "b".to_string(),
            "c".to_string(),
            "d".to_string(),
        ];
        // b ended with the batch; the next query starts at c, where the extra row was.
        assert_eq!(
            remaining_after_batch(&requested, Some("c")),
            Some(vec!["c".to_string(), "d".to_string()])
        );
    }

    #[test]
    fn compacted_op_beyond_the_checkpoint_invalidates_it() {
        let mut positions = HashMap::new();
        let mut moved = put("a", 3, "{}");
        moved.op = "MOVE".into();
        moved.data = None;
        moved.target_op = Some(12);
        let chunked = chunk_rows(vec![moved.clone()], &mut positions, 10, 1 << 20, false).unwrap();
        assert!(chunked.invalidated);
        assert_eq!(chunked.lines[0].data[0].kind, OpKind::Move);
        let chunked = chunk_rows(vec![moved], &mut positions, 12, 1 << 20, false).unwrap();
        assert!(!chunked.invalidated, "target within the checkpoint is fine");
    }

    #[test]
    fn rows_convert_to_every_op_kind() {
        let mut remove = put("a", 4, "{}");
        remove.op = "REMOVE".into();
        remove.data = None;
        let op = op_from_row(&remove).unwrap();
        assert!(matches!(op.kind, OpKind::Remove { .. }));
        let mut clear = put("a", 5, "{}");
        clear.op = "CLEAR".into();
        clear.checksum = -1;
        let op = op_from_row(&clear).unwrap();
        assert_eq!((op.kind, op.checksum), (OpKind::Clear, Checksum(u32::MAX)));
        let mut bad = put("a", 6, "{}");
        bad.data = None;
        assert!(op_from_row(&bad)
            .unwrap_err()
            .contains("PUT op 6 has no data"));
    }
}
