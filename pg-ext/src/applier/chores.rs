//! The applier's housekeeping, run by its steps: versions whose slot was lost are rebuilt, stopped
//! versions are terminated (slot dropped, storage deleted), orphaned `ferry_*` slots of this
//! database are dropped, old checkpoints and write-checkpoint requests are pruned, and buckets
//! that grew mostly superseded ops are compacted (PROTOCOL.md §2.4).

use std::cell::Cell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use pgrx::prelude::*;
use pgrx::Spi;

use crate::deploy;
use crate::errors::{select_opt, FerryError};
use crate::gucs;
use crate::pg_adapter::volatile_spi;

/// How often the periodic chores (pruning, automatic compaction) run per backend.
const PERIODIC: Duration = Duration::from_secs(10);

thread_local! {
    static LAST_PERIODIC: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Finds versions whose slot is gone (dropped by hand, or invalidated: `wal_status = 'lost'`),
/// reports them, and starts a fresh version from the same rules while the old one keeps serving.
/// Returns the ids of the versions that must not be streamed.
pub fn handle_lost_slots() -> Result<HashSet<i64>, FerryError> {
    let mut lost = Vec::new();
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT r.id, r.state, r.content, s.wal_status::text \
             FROM ferry.sync_rules r LEFT JOIN pg_replication_slots s ON s.slot_name = r.slot_name \
             WHERE r.state IN ('processing', 'active') AND r.slot_created \
               AND (s.slot_name IS NULL OR s.wal_status = 'lost')",
            None,
            &[],
        )?;
        for row in rows {
            lost.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?,
            ));
        }
        Ok::<_, FerryError>(())
    })?;
    let mut skip = HashSet::new();
    for (id, state, content, wal_status) in lost {
        skip.insert(id);
        let building: Option<i64> = select_opt(
            "SELECT id FROM ferry.sync_rules WHERE state = 'processing' AND id > $1 ORDER BY id DESC LIMIT 1",
            &[id.into()],
        )?;
        if building.is_some() && state == "active" {
            // Already being replaced; it keeps serving until then. Nothing to write.
            continue;
        }
        let why = if wal_status.is_some() {
            "was invalidated (wal_status = 'lost': it fell behind max_slot_wal_keep_size)"
        } else {
            "no longer exists"
        };
        if state == "processing" {
            Spi::run_with_args(
                "UPDATE ferry.sync_rules SET state = 'stopped', stopped_at = now() WHERE id = $1",
                &[id.into()],
            )?;
        }
        let message = match building {
            Some(newer) => format!(
                "the replication slot of version {id} {why}; version {newer}, being built, replaces it"
            ),
            None => {
                let plan = ferry_rules::compile(&content)
                    .map_err(|e| FerryError::InvalidRules(e.to_string()))?
                    .plan;
                let newer = deploy::create_version(&content, &plan)?;
                format!(
                    "the replication slot of version {id} {why}; rebuilding the same rules as version {newer}{}",
                    if state == "active" { " while it keeps serving" } else { "" }
                )
            }
        };
        warning!("ferry: {message}");
        Spi::run_with_args(
            "UPDATE ferry.sync_rules SET last_error = $2, last_error_at = now() WHERE id = $1",
            &[id.into(), message.as_str().into()],
        )?;
    }
    Ok(skip)
}

/// Everything after the versions' steps. True when it changed something.
pub fn run() -> Result<bool, FerryError> {
    let mut did = terminate_stopped()?;
    did |= sweep_orphan_slots()?;
    let due = LAST_PERIODIC.with(|last| match last.get() {
        Some(t) if t.elapsed() < PERIODIC => false,
        _ => {
            last.set(Some(Instant::now()));
            true
        }
    });
    if due {
        prune()?;
        auto_compact()?;
    }
    Ok(did)
}

/// Drops the slot and storage of stopped versions and marks them terminated.
fn terminate_stopped() -> Result<bool, FerryError> {
    let mut stopped = Vec::new();
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT id, slot_name FROM ferry.sync_rules WHERE state = 'stopped' ORDER BY id",
            None,
            &[],
        )?;
        for row in rows {
            stopped.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
            ));
        }
        Ok::<_, FerryError>(())
    })?;
    for (id, slot) in &stopped {
        volatile_spi::exec(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1 AND NOT active",
            &[slot],
        )?;
        Spi::run(&format!(
            "DROP TABLE IF EXISTS ferry.ops_v{id}, ferry.current_rows_v{id}, \
             ferry.parameter_index_v{id}, ferry.bucket_state_v{id}"
        ))?;
        Spi::run_with_args(
            "DELETE FROM ferry.checkpoints WHERE version = $1",
            &[(*id).into()],
        )?;
        Spi::run_with_args(
            "DELETE FROM ferry.source_tables WHERE version = $1",
            &[(*id).into()],
        )?;
        Spi::run_with_args(
            "UPDATE ferry.sync_rules SET state = 'terminated', plan = '' WHERE id = $1",
            &[(*id).into()],
        )?;
    }
    Ok(!stopped.is_empty())
}

/// Drops `ferry_<this database>_*` slots that no working version owns (e.g. created by a step
/// whose deploy was rolled back): a leaked slot retains WAL forever.
fn sweep_orphan_slots() -> Result<bool, FerryError> {
    // SAFETY: MyDatabaseId is set in a connected backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let prefix = format!("ferry_{dboid}_");
    let orphans: Option<Vec<String>> = select_opt(
        "SELECT array_agg(s.slot_name::text) FROM pg_replication_slots s \
         WHERE starts_with(s.slot_name::text, $1) AND NOT s.active \
           AND NOT EXISTS (SELECT 1 FROM ferry.sync_rules r \
                           WHERE r.slot_name = s.slot_name AND r.state IN ('processing', 'active'))",
        &[prefix.as_str().into()],
    )?;
    let orphans = orphans.unwrap_or_default();
    for slot in &orphans {
        warning!("ferry: dropping replication slot {slot}: no sync rules version owns it");
        volatile_spi::exec("SELECT pg_drop_replication_slot($1)", &[slot])?;
    }
    Ok(!orphans.is_empty())
}

/// Prunes checkpoints (but each version's latest) and checkpoint requests older than
/// `ferry.retention`. The legacy per-user write-checkpoint counters are kept: an offline client
/// may still be waiting on one.
fn prune() -> Result<(), FerryError> {
    let retention = format!("{} seconds", gucs::retention_secs());
    Spi::run_with_args(
        "DELETE FROM ferry.checkpoints c WHERE c.created_at < now() - $1::interval \
           AND c.lsn < (SELECT max(l.lsn) FROM ferry.checkpoints l WHERE l.version = c.version)",
        &[retention.as_str().into()],
    )?;
    Spi::run_with_args(
        "DELETE FROM ferry.write_checkpoints WHERE NOT legacy AND updated_at < now() - $1::interval",
        &[retention.as_str().into()],
    )?;
    Ok(())
}

/// Compacts the buckets of the active version where at least a thousand ops, and a quarter of all
/// its ops, were superseded since the bucket was last compacted.
fn auto_compact() -> Result<(), FerryError> {
    let mut due = Vec::new();
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT b.version, b.bucket::text, r.last_checkpoint FROM ferry.bucket_state b \
             JOIN ferry.sync_rules r ON r.id = b.version AND r.state = 'active' \
             WHERE b.superseded >= 1000 AND 4 * b.superseded >= b.count \
             LIMIT 100",
            None,
            &[],
        )?;
        for row in rows {
            due.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<i64>(3)?.unwrap_or_default(),
            ));
        }
        Ok::<_, FerryError>(())
    })?;
    for (version, bucket, upto) in due {
        compact_bucket(version, &bucket, upto)?;
    }
    Ok(())
}

/// Compacts one bucket up to checkpoint op id `upto` (PROTOCOL.md §2.4): every PUT or REMOVE
/// superseded by a later op of the same row becomes a MOVE (same op id and checksum, `target_op`
/// = the superseding op), then the longest prefix of REMOVE/MOVE/CLEAR ops becomes one CLEAR
/// carrying their checksum sum. The bucket's checksum is unchanged; its op count shrinks. Returns
/// the number of ops rewritten or removed.
pub fn compact_bucket(version: i64, bucket: &str, upto: i64) -> Result<i64, FerryError> {
    let moved = Spi::connect_mut(|client| {
        let moved = client.update(
            "WITH s AS ( \
                SELECT op_id, lead(op_id) OVER (PARTITION BY object_type, object_id, subkey ORDER BY op_id) AS next_op \
                FROM ferry.ops WHERE version = $1 AND bucket = $2 AND op IN ('PUT', 'REMOVE') AND op_id <= $3) \
             UPDATE ferry.ops o SET op = 'MOVE', object_type = NULL, object_id = NULL, subkey = NULL, \
                    data = NULL, target_op = s.next_op \
             FROM s WHERE o.version = $1 AND o.bucket = $2 AND o.op_id = s.op_id AND s.next_op IS NOT NULL \
             RETURNING o.op_id",
            None,
            &[version.into(), bucket.into(), upto.into()],
        )?;
        Ok::<_, FerryError>(moved.len() as i64)
    })?;
    // The prefix before the first live PUT (or everything up to `upto`).
    let cleared = Spi::connect_mut(|client| {
        let table = client.update(
            "WITH first_put AS ( \
                SELECT COALESCE(min(op_id), $3 + 1) AS op_id FROM ferry.ops \
                WHERE version = $1 AND bucket = $2 AND op = 'PUT'), \
             prefix AS ( \
                DELETE FROM ferry.ops o USING first_put f \
                WHERE o.version = $1 AND o.bucket = $2 AND o.op_id < f.op_id AND o.op_id <= $3 \
                  AND (SELECT count(*) FROM ferry.ops p, first_put f2 \
                       WHERE p.version = $1 AND p.bucket = $2 AND p.op_id < f2.op_id AND p.op_id <= $3) > 1 \
                RETURNING o.op_id, o.checksum, o.target_op), \
             cleared AS ( \
                INSERT INTO ferry.ops (version, bucket, op_id, op, checksum, target_op) \
                SELECT $1, $2, max(op_id), 'CLEAR', sum(checksum) % 4294967296, max(target_op) \
                FROM prefix HAVING count(*) > 0 \
                RETURNING op_id) \
             SELECT (SELECT count(*) FROM prefix) - 1 FROM cleared",
            None,
            &[version.into(), bucket.into(), upto.into()],
        )?;
        if table.is_empty() {
            return Ok::<_, FerryError>(0i64);
        }
        Ok(table.first().get_one::<i64>()?.unwrap_or(0))
    })?;
    let cleared = cleared.max(0);
    Spi::run_with_args(
        "UPDATE ferry.bucket_state SET count = count - $3, \
                superseded = 0 \
         WHERE version = $1 AND bucket = $2",
        &[version.into(), bucket.into(), cleared.into()],
    )?;
    Ok(moved + cleared)
}
