//! The applier: turns decoded changes into per-bucket ops, parameter-index entries, bucket
//! checksums and checkpoints, one bounded and restartable step at a time.
//!
//! A step runs inside the caller's transaction (`ferry.advance()`) or the worker's. It takes the
//! applier lock, creates missing slots (before anything is written: Postgres requires it), then,
//! with the session's writes tagged by ferry's replication origin, does one unit of work per
//! version: a snapshot page, or the changes decoded since the last committed step. The processed
//! position is stored with the ops it produced, so a crash anywhere loses and duplicates nothing.

pub mod batch;
pub mod checkpoint;
pub mod chores;
pub mod slot;
pub mod snapshot;
pub mod statistics;
pub mod stream;
pub mod version;

use pgrx::prelude::*;
use pgrx::Spi;

use crate::errors::{select_opt, select_void, FerryError, OrRaise};
use crate::pg_adapter::origin;
use version::{working_versions, Version};

/// The advisory lock key that keeps the worker and `ferry.advance()` off the same slots at once
/// ("ferry" in ASCII).
const APPLIER_LOCK: i64 = 0x66_65_72_72_79;

/// One applier step over every version being built or served. True when it did something.
pub fn step() -> bool {
    try_step().or_raise()
}

fn try_step() -> Result<bool, FerryError> {
    let locked: Option<bool> = select_opt(
        "SELECT pg_try_advisory_xact_lock($1)",
        &[APPLIER_LOCK.into()],
    )?;
    if locked != Some(true) {
        return Ok(false);
    }
    let lost = chores::handle_lost_slots()?;
    let versions = working_versions()?;
    if versions.is_empty() {
        return chores::run();
    }
    // Slots first: a slot can only be created before the transaction writes anything.
    let mut did_work = false;
    for v in &versions {
        if !v.slot_created {
            did_work |= slot::create(v)?;
        }
    }
    if origin::origin_id()?.is_none() {
        origin::ensure_exists()?;
        return Ok(true);
    }
    let versions = working_versions()?;
    origin::with_origin(|| {
        for state in versions {
            if !state.slot_created || lost.contains(&state.id) {
                continue;
            }
            let version = Version::load(state)?;
            let worked = if version.state.snapshot_done {
                stream::step(&version)?
            } else {
                snapshot::step(&version)?
            };
            if worked {
                statistics::analyze_grown(version.state.id)?;
            }
            did_work |= worked;
        }
        did_work |= chores::run()?;
        Ok(did_work || !lost.is_empty())
    })
}

/// Pins the settings the output plugin's text conversions depend on. `local`: for the current
/// transaction only (otherwise for the session, as the worker does).
pub fn pin_session_settings(local: bool) {
    select_void(
        "SELECT set_config('DateStyle', 'ISO, YMD', $1), set_config('TimeZone', 'UTC', $1), \
                set_config('extra_float_digits', '3', $1), set_config('bytea_output', 'hex', $1), \
                set_config('IntervalStyle', 'postgres', $1)",
        &[local.into()],
    )
    .or_raise();
}

/// Records a failed step's error on the versions being worked on (called in a fresh transaction).
pub fn record_error(message: &str) {
    let _ = Spi::run_with_args(
        "UPDATE ferry.sync_rules SET last_error = $1, last_error_at = now() \
         WHERE state IN ('processing', 'active')",
        &[message.into()],
    );
}

/// Whether the extension exists in the current database.
pub fn extension_installed() -> bool {
    select_opt::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'ferry')",
        &[],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Whether the worker is paused (`ferry.pause()`).
pub fn worker_paused() -> bool {
    select_opt::<bool>("SELECT paused FROM ferry.worker_state", &[])
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Compacts every bucket of the active version up to its latest checkpoint (PROTOCOL.md §2.4);
/// returns the number of ops rewritten or removed. Waits for the applier lock.
#[pg_extern]
fn compact() -> i64 {
    compact_all().or_raise()
}

fn compact_all() -> Result<i64, FerryError> {
    Spi::run_with_args("SELECT pg_advisory_xact_lock($1)", &[APPLIER_LOCK.into()])?;
    let mut buckets = Vec::new();
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT b.version, b.bucket::text, r.last_checkpoint FROM ferry.bucket_state b \
             JOIN ferry.sync_rules r ON r.id = b.version AND r.state = 'active' \
             WHERE r.last_checkpoint IS NOT NULL",
            None,
            &[],
        )?;
        for row in rows {
            buckets.push((
                row.get::<i64>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<i64>(3)?.unwrap_or_default(),
            ));
        }
        Ok::<_, FerryError>(())
    })?;
    let mut total = 0;
    for (version, bucket, upto) in buckets {
        total += chores::compact_bucket(version, &bucket, upto)?;
    }
    Ok(total)
}

/// One applier step; the public `ferry.advance()` wraps it with the pinned settings.
#[pg_extern(name = "_advance")]
fn advance_step() -> bool {
    step()
}
