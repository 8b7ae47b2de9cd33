//! Streaming: the changes decoded from a version's slot since the last committed step, applied as
//! one step.
//!
//! The step first moves the slot to the position the previous step recorded (advancing is not
//! transactional, peeking is repeatable: together they make steps restartable), then peeks at most
//! `ferry.step_changes` changes — whole source transactions, never split — and reads them through a
//! cursor, so one huge transaction is applied in bounded chunks.

use crate::applier::batch::{Batch, Change};
use crate::applier::checkpoint::{self, Position};
use crate::applier::version::{format_lsn, parse_lsn, Version};
use crate::change_record::{decode, ChangeRecord};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::errors::{select_opt, select_void, FerryError};
use crate::gucs;
use crate::pg_adapter::{origin, volatile_spi, wal};

/// Rows fetched from the peek cursor at a time.
const FETCH: i64 = 1_000;

/// When the slot's restart position is further behind the flushed WAL than this, the step logs a
/// standby snapshot, so a later step can move the restart position up to it.
const RESTART_WINDOW: u64 = 256 * 1024;

/// Set by the background worker: Postgres logs two LOG lines every time a decoding session
/// starts, which for a worker stepping continuously would flood the server log.
pub static QUIET_DECODING: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the LOG lines of decoding sessions suppressed when [`QUIET_DECODING`] is set.
fn quietly<T>(f: impl FnOnce() -> Result<T, FerryError>) -> Result<T, FerryError> {
    if !QUIET_DECODING.load(Ordering::Relaxed) {
        return f();
    }
    select_void("SELECT set_config('log_min_messages', 'fatal', false)", &[])?;
    let result = f();
    select_void(
        "SELECT set_config('log_min_messages', 'warning', false)",
        &[],
    )?;
    result
}

/// Moves `slot` forward to `lsn` (never back). Not transactional: only ever to a position whose
/// changes are applied, or hold nothing for ferry.
fn advance_slot(slot: &str, lsn: u64) -> Result<(), FerryError> {
    volatile_spi::exec(
        "SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) FROM pg_replication_slots \
         WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn",
        &[slot, &format_lsn(lsn)],
    )
}

/// Applies what the slot has decoded since the last step. True when it did something.
pub fn step(version: &Version) -> Result<bool, FerryError> {
    quietly(|| step_inner(version))
}

fn step_inner(version: &Version) -> Result<bool, FerryError> {
    let slot = version.state.slot_name.as_str();
    if let Some(processed) = version.state.processed_lsn {
        advance_slot(slot, processed)?;
    }
    let restart: Option<String> = select_opt(
        "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
        &[slot.into()],
    )?;
    let restart = restart.as_deref().and_then(parse_lsn).unwrap_or(0);
    if wal::flush_position().saturating_sub(restart) > RESTART_WINDOW {
        wal::log_standby_snapshot();
    }
    // Decode up to a known position: when the step is not cut short by `ferry.step_changes`,
    // everything committed before it has been seen, so the slot may move there even when nothing
    // in it concerned ferry.
    let upto = wal::flush_position();
    let relations = {
        let mut oids: Vec<u32> = version.tables.keys().copied().collect();
        oids.sort_unstable();
        oids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let value_options = serde_json::to_string(&version.value_options())
        .map_err(|e| FerryError::Internal(format!("value options: {e}")))?;
    let origin = origin::origin_id()?.unwrap_or(0).to_string();

    let mut batch = Batch::new(version, false);
    let mut last_commit: Option<u64> = None;
    let mut messages = 0usize;
    let mut pending_write_checkpoints = serde_json::Map::new();
    let mut write_checkpoints = serde_json::Map::new();
    let mut records = 0usize;

    let limit = gucs::step_changes();
    let step_changes = limit.to_string();
    volatile_spi::for_each_bytea_batch(
        "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3::int, \
           'relations', $4, 'value_options', $5, 'origin', $6)",
        &[
            slot,
            &format_lsn(upto),
            &step_changes,
            &relations,
            &value_options,
            &origin,
        ],
        FETCH,
        |chunk| {
            for bytes in chunk {
                records += 1;
                let record = decode(&bytes)
                    .map_err(|e| FerryError::Internal(format!("slot {slot}: {e}")))?;
                match record {
                    ChangeRecord::Relation(rel) => batch.relation(rel.relid, rel.columns)?,
                    ChangeRecord::Insert {
                        relid,
                        new,
                        toasted,
                    } => {
                        batch.push(Change::Upsert {
                            relid,
                            new,
                            old: None,
                            toasted,
                        })?;
                    }
                    ChangeRecord::Update {
                        relid,
                        old,
                        new,
                        toasted,
                    } => {
                        batch.push(Change::Upsert {
                            relid,
                            new,
                            old,
                            toasted,
                        })?;
                    }
                    ChangeRecord::Delete { relid, old } => {
                        batch.push(Change::Delete { relid, old })?;
                    }
                    ChangeRecord::Truncate { relids } => batch.truncate(&relids)?,
                    ChangeRecord::Message { content, .. } => {
                        messages += 1;
                        if let Ok(serde_json::Value::Object(m)) =
                            serde_json::from_slice::<serde_json::Value>(&content)
                        {
                            if let (Some(serde_json::Value::String(key)), Some(n)) =
                                (m.get("write_checkpoint_key"), m.get("checkpoint"))
                            {
                                pending_write_checkpoints.insert(key.clone(), n.clone());
                            }
                        }
                    }
                    ChangeRecord::Commit { end_lsn, .. } => {
                        last_commit = Some(end_lsn);
                        write_checkpoints.append(&mut pending_write_checkpoints);
                    }
                }
            }
            Ok(())
        },
    )?;
    batch.flush()?;
    // Postgres stops a peek after the transaction that reaches the change limit, or after the
    // record that reaches `upto`.
    let reached_upto = records < usize::try_from(limit).unwrap_or(usize::MAX);
    if records == 0 {
        // Nothing before `upto` concerns ferry: move the slot past it (slot positions are not
        // transactional; a later crash at worst makes the next step look at it again).
        advance_slot(slot, upto)?;
        return Ok(false);
    }
    let processed = if reached_upto {
        last_commit.map_or(upto, |c| c.max(upto))
    } else {
        last_commit.unwrap_or(upto)
    };
    let changed = batch.ops_written > 0 || batch.lookups_changed || messages > 0;
    let consistent = match (last_commit, version.state.no_checkpoint_before) {
        (Some(commit), Some(barrier)) => commit >= barrier,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let make_checkpoint = consistent && (changed || version.state.state == "processing");
    checkpoint::finish_step(
        version,
        &batch,
        Position {
            processed: Some(processed),
            checkpoint: last_commit.filter(|_| make_checkpoint),
        },
        write_checkpoints,
    )?;
    Ok(true)
}
