//! Validating a checkpoint's checksums and publishing it (PROTOCOL.md §4.6), each in the caller's
//! transaction, so a checkpoint is published entirely or not at all.
//!
//! **Validation** compares each in-scope bucket's running checksum (`ferry_buckets.checksum`, see
//! [`super::oplog`]) with the checkpoint's. Failing buckets are deleted ([`delete_buckets`]) and
//! downloaded again.
//!
//! **Publication** merges the staged ops of the in-scope buckets into `ferry_oplog` in one pass
//! sorted by row, and writes each touched row's new value to its data table: the data of the op
//! with the **highest op id across all buckets** holding the row, or a delete when none does. A
//! CLEAR first drops the bucket's published ops (their rows are re-evaluated too). A full
//! publication also re-evaluates `ferry_updated_rows` (rows written locally, rows of deleted
//! buckets); a partial one does not, since lower-priority buckets are not at the checkpoint yet.
//! Rows whose value does not change are not written, so they wake no watcher.
//!
//! Whether publishing is allowed at all (local writes pending) is [`super::write_gate`]'s call.

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_protocol::{BucketChecksum, Checksum};
use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension, Transaction};

use super::oplog::{KIND_CLEAR, KIND_PUT};
use super::{PublishScope, PublishTargets, TargetCheckpoint};
use crate::error::{Error, Result};
use crate::storage::migrations::FULL_SYNC_PRIORITY;

/// A bucket whose checksum did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The bucket.
    pub bucket: String,
    /// The sum of the ops downloaded.
    pub local: Checksum,
    /// The checkpoint's checksum.
    pub server: Checksum,
}

impl Mismatch {
    /// `name (local X, server Y)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (local {}, server {})",
            self.bucket, self.local, self.server
        )
    }
}

/// Compares the in-scope buckets' checksums with the checkpoint's. A bucket with no local data
/// counts as checksum 0.
pub fn validate(
    tx: &Transaction<'_>,
    target: &TargetCheckpoint,
    scope: PublishScope,
) -> Result<Vec<Mismatch>> {
    let mut stmt = tx.prepare_cached("SELECT checksum FROM ferry_buckets WHERE name = ?1")?;
    let mut failed = Vec::new();
    for bucket in target.buckets_in(scope) {
        let local: Option<i64> = stmt.query_row([&bucket.bucket], |r| r.get(0)).optional()?;
        let local = Checksum(local.unwrap_or(0) as u32);
        if local != bucket.checksum {
            failed.push(Mismatch {
                bucket: bucket.bucket.clone(),
                local,
                server: bucket.checksum,
            });
        }
    }
    Ok(failed)
}

/// Deletes buckets entirely: their staged and published ops and their position, so that the
/// next request downloads them from the start. Rows they held are marked for re-evaluation at the
/// next full publication (until then the app keeps seeing them).
pub fn delete_buckets<'a>(
    tx: &Transaction<'_>,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    for name in names {
        let id: Option<i64> = tx
            .prepare_cached("SELECT id FROM ferry_buckets WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let Some(id) = id else { continue };
        tx.prepare_cached(
            "INSERT OR IGNORE INTO ferry_updated_rows(row_type, row_id) \
             SELECT row_type, row_id FROM ferry_oplog WHERE bucket = ?1",
        )?
        .execute([id])?;
        tx.prepare_cached("DELETE FROM ferry_oplog WHERE bucket = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM ferry_stage WHERE bucket = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM ferry_buckets WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(())
}

/// Records that the in-scope buckets are complete up to the checkpoint: the next request asks for
/// ops after it.
pub fn mark_validated(
    tx: &Transaction<'_>,
    target: &TargetCheckpoint,
    scope: PublishScope,
) -> Result<()> {
    let last_op = i64::try_from(target.last_op_id)?;
    let mut stmt = tx.prepare_cached(
        "UPDATE ferry_buckets SET last_op = max(last_op, ?1), priority = ?2 WHERE name = ?3",
    )?;
    for bucket in target.buckets_in(scope) {
        stmt.execute(params![last_op, bucket.priority.get(), bucket.bucket])?;
    }
    Ok(())
}

/// What a publication did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Rows whose published value was re-evaluated.
    pub rows: u64,
    /// Ops merged from the staging area.
    pub ops: u64,
}

/// Writes evaluated rows to their data tables.
struct RowWriter<'t, 'c> {
    tx: &'t Transaction<'c>,
    targets: &'t PublishTargets,
    winner: rusqlite::CachedStatement<'t>,
    rows: u64,
}

impl<'t, 'c> RowWriter<'t, 'c> {
    fn new(tx: &'t Transaction<'c>, targets: &'t PublishTargets) -> Result<RowWriter<'t, 'c>> {
        let winner = tx.prepare_cached(
            "SELECT data, max(op_id) FROM ferry_oplog WHERE row_type = ?1 AND row_id = ?2",
        )?;
        Ok(RowWriter {
            tx,
            targets,
            winner,
            rows: 0,
        })
    }

    /// Publishes the current value of one row: the data of its op with the highest op id in any
    /// bucket, or nothing.
    fn evaluate(&mut self, row_type: &str, row_id: &str) -> Result<()> {
        let mut rows = self.winner.query(params![row_type, row_id])?;
        let data = match rows.next()? {
            Some(row) => match row.get_ref(0)? {
                ValueRef::Text(t) => Some(std::str::from_utf8(t).map_err(|e| {
                    Error::ProtocolViolation(format!(
                        "row {row_type}/{row_id} has data that is not UTF-8: {e}"
                    ))
                })?),
                _ => None,
            },
            None => None,
        };
        Self::write(
            self.tx,
            self.targets,
            &mut self.rows,
            row_type,
            row_id,
            data,
        )
    }

    /// Publishes `data` (or a delete) as the value of one row.
    fn write(
        tx: &Transaction<'_>,
        targets: &PublishTargets,
        count: &mut u64,
        row_type: &str,
        row_id: &str,
        data: Option<&str>,
    ) -> Result<()> {
        *count += 1;
        let sql = targets.sql(row_type);
        match (data, sql.untyped) {
            (Some(data), false) => {
                tx.prepare_cached(&sql.put)?
                    .execute(params![row_id, data])?;
            }
            (Some(data), true) => {
                tx.prepare_cached(&sql.put)?
                    .execute(params![row_id, data, row_type])?;
            }
            (None, false) => {
                tx.prepare_cached(&sql.delete)?.execute([row_id])?;
            }
            (None, true) => {
                tx.prepare_cached(&sql.delete)?
                    .execute([row_id, row_type])?;
            }
        }
        Ok(())
    }
}

/// The latest staged op of one (row, bucket, subkey), kept while the sorted pass moves on.
#[derive(Default)]
struct PendingOp {
    bucket: i64,
    subkey: String,
    op_id: i64,
    kind: i64,
    data: String,
}

/// Publishes the in-scope buckets of a validated checkpoint (see the module docs).
pub fn publish(
    tx: &Transaction<'_>,
    targets: &PublishTargets,
    target: &TargetCheckpoint,
    scope: PublishScope,
) -> Result<Published> {
    // The in-scope buckets that have local state.
    let in_scope: Vec<(i64, &BucketChecksum)> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM ferry_buckets WHERE name = ?1")?;
        let mut found = Vec::new();
        for bucket in target.buckets_in(scope) {
            if let Some(id) = stmt
                .query_row([&bucket.bucket], |r| r.get::<_, i64>(0))
                .optional()?
            {
                found.push((id, bucket));
            }
        }
        found
    };
    let ids_json = serde_json::to_string(&in_scope.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned());
    let local_buckets: i64 =
        tx.query_row("SELECT count(*) FROM ferry_buckets", [], |r| r.get(0))?;
    let all_local_in_scope = local_buckets == in_scope.len() as i64;

    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS ferry_affected(row_type TEXT NOT NULL, \
         row_id TEXT NOT NULL, PRIMARY KEY (row_type, row_id)) WITHOUT ROWID;",
    )?;

    // CLEAR: the bucket's published ops go; their rows are re-evaluated below.
    let cleared: Vec<i64> = {
        let mut stmt = tx.prepare_cached(
            "SELECT DISTINCT bucket FROM ferry_stage WHERE kind = ?1 \
             AND bucket IN (SELECT value FROM json_each(?2))",
        )?;
        let rows = stmt.query_map(params![KIND_CLEAR, ids_json], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for bucket in &cleared {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO temp.ferry_affected(row_type, row_id) \
             SELECT row_type, row_id FROM ferry_oplog WHERE bucket = ?1",
        )?
        .execute([bucket])?;
        tx.prepare_cached("DELETE FROM ferry_oplog WHERE bucket = ?1")?
            .execute([bucket])?;
    }

    // The sorted pass over staged PUT / REMOVE ops: per (row, bucket, subkey) the last op wins
    // and replaces the published op; then the row is re-evaluated across buckets.
    // Initial sync: with no published ops at all, a row's winner is among its staged ops, so the
    // lookup across buckets can be skipped.
    let oplog_empty: bool =
        tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM ferry_oplog)", [], |r| {
            r.get(0)
        })?;
    let mut writer = RowWriter::new(tx, targets)?;
    let mut ops = 0u64;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT OR REPLACE INTO ferry_oplog(row_type, row_id, bucket, subkey, op_id, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut remove = tx.prepare_cached(
            "DELETE FROM ferry_oplog WHERE row_type = ?1 AND row_id = ?2 AND bucket = ?3 \
             AND subkey = ?4",
        )?;
        let mut staged = tx.prepare_cached(
            "SELECT row_type, row_id, bucket, subkey, op_id, kind, data FROM ferry_stage \
             WHERE kind != 2 AND bucket IN (SELECT value FROM json_each(?1)) \
             ORDER BY row_type, row_id, bucket, subkey, op_id",
        )?;
        let mut rows = staged.query([&ids_json])?;
        let mut row_type = String::new();
        let mut row_id = String::new();
        let mut have_row = false;
        let mut pending: Option<PendingOp> = None;
        let mut spare = PendingOp::default();
        // The row's best staged PUT so far (fast path): op id and data.
        let mut best: Option<i64> = None;
        let mut best_data = String::new();
        let mut apply = |row_type: &str,
                         row_id: &str,
                         op: &mut PendingOp,
                         best: &mut Option<i64>,
                         best_data: &mut String|
         -> Result<()> {
            if op.kind == KIND_PUT {
                upsert.execute(params![
                    row_type, row_id, op.bucket, op.subkey, op.op_id, op.data
                ])?;
                if best.is_none_or(|b| op.op_id > b) {
                    *best = Some(op.op_id);
                    std::mem::swap(best_data, &mut op.data);
                }
            } else {
                remove.execute(params![row_type, row_id, op.bucket, op.subkey])?;
            }
            Ok(())
        };
        let finish_row = |writer: &mut RowWriter<'_, '_>,
                          row_type: &str,
                          row_id: &str,
                          best: &mut Option<i64>,
                          best_data: &str|
         -> Result<()> {
            if oplog_empty {
                let data = best.is_some().then_some(best_data);
                RowWriter::write(tx, targets, &mut writer.rows, row_type, row_id, data)?;
            } else {
                writer.evaluate(row_type, row_id)?;
            }
            *best = None;
            Ok(())
        };
        while let Some(row) = rows.next()? {
            ops += 1;
            let r_type = text(row.get_ref(0)?);
            let r_id = text(row.get_ref(1)?);
            let bucket: i64 = row.get(2)?;
            let subkey = text(row.get_ref(3)?);
            let same_row = have_row && r_type == row_type && r_id == row_id;
            let same_key = same_row
                && pending
                    .as_ref()
                    .is_some_and(|p| p.bucket == bucket && p.subkey == subkey);
            if !same_key {
                if let Some(mut done) = pending.take() {
                    apply(&row_type, &row_id, &mut done, &mut best, &mut best_data)?;
                    spare = done;
                }
            }
            if !same_row {
                if have_row {
                    finish_row(&mut writer, &row_type, &row_id, &mut best, &best_data)?;
                }
                r_type.clone_into(&mut row_type);
                r_id.clone_into(&mut row_id);
                have_row = true;
            }
            // Ops of one key come in op id order: the last one wins.
            let mut op = pending.take().unwrap_or_else(|| std::mem::take(&mut spare));
            op.bucket = bucket;
            subkey.clone_into(&mut op.subkey);
            op.op_id = row.get(4)?;
            op.kind = row.get(5)?;
            op.data.clear();
            op.data.push_str(text(row.get_ref(6)?));
            pending = Some(op);
        }
        if let Some(mut done) = pending.take() {
            apply(&row_type, &row_id, &mut done, &mut best, &mut best_data)?;
            finish_row(&mut writer, &row_type, &row_id, &mut best, &best_data)?;
        }
    }

    // Rows of cleared buckets, and for a full publication the rows written locally or left by
    // deleted buckets.
    let mut revisit = vec!["SELECT row_type, row_id FROM temp.ferry_affected"];
    if scope == PublishScope::Full {
        revisit.push("SELECT row_type, row_id FROM ferry_updated_rows");
    }
    for sql in revisit {
        let mut stmt = tx.prepare(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            writer.evaluate(text(row.get_ref(0)?), text(row.get_ref(1)?))?;
        }
    }
    let rows = writer.rows;
    drop(writer);
    tx.execute_batch("DELETE FROM temp.ferry_affected")?;
    if scope == PublishScope::Full {
        tx.execute_batch("DELETE FROM ferry_updated_rows")?;
    }
    if all_local_in_scope {
        tx.execute_batch("DELETE FROM ferry_stage")?;
    } else {
        tx.prepare_cached(
            "DELETE FROM ferry_stage WHERE bucket IN (SELECT value FROM json_each(?1))",
        )?
        .execute([&ids_json])?;
    }

    let last_op = i64::try_from(target.last_op_id)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE ferry_buckets SET last_applied_op = ?2, count_at_last = ?3, \
             count_since_last = 0, priority = ?4 WHERE id = ?1",
        )?;
        for (id, bucket) in &in_scope {
            stmt.execute(params![
                id,
                last_op,
                i64::try_from(bucket.count).unwrap_or(i64::MAX),
                bucket.priority.get()
            ])?;
        }
    }
    record_sync(tx, scope)?;
    Ok(Published { rows, ops })
}

fn text(value: ValueRef<'_>) -> &str {
    match value {
        ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or(""),
        _ => "",
    }
}

/// Microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Records in `ferry_sync_state` that `scope` synced now. A full sync supersedes every partial
/// entry; a partial sync of priority P supersedes those of higher priority (lower number).
fn record_sync(tx: &Transaction<'_>, scope: PublishScope) -> Result<()> {
    let now = now_micros();
    match scope.priority() {
        None => {
            tx.execute("DELETE FROM ferry_sync_state", [])?;
            tx.execute(
                "INSERT INTO ferry_sync_state(priority, last_synced_at) VALUES (?1, ?2)",
                params![FULL_SYNC_PRIORITY, now],
            )?;
        }
        Some(p) => {
            tx.execute(
                "DELETE FROM ferry_sync_state WHERE priority < ?1",
                [i64::from(p.get())],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO ferry_sync_state(priority, last_synced_at) VALUES (?1, ?2)",
                params![i64::from(p.get()), now],
            )?;
        }
    }
    Ok(())
}
