//! The applier's replication origin: its writes are tagged so the output plugin drops them.
//!
//! One origin per database, `ferry_<database oid>` (origins are cluster-wide; on PG15 one session at
//! a time may hold an origin, and the applier lock makes sure only one step runs per database). The
//! origin is set up at the start of every step and reset at its end, so a caller's own later writes
//! in the same session are never tagged; if the step fails, the transaction-abort callback resets it.

use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::prelude::*;
use pgrx::{pg_sys, Spi};

use crate::errors::{select_opt, select_void, FerryError};

/// Whether this session currently has ferry's origin set up.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The origin name of the current database.
pub fn origin_name() -> String {
    // SAFETY: MyDatabaseId is set once the backend is connected to a database.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    format!("ferry_{dboid}")
}

/// Creates the origin if it does not exist yet (a catalog write: do it outside slot-creating steps).
pub fn ensure_exists() -> Result<(), FerryError> {
    let name = origin_name();
    Spi::run_with_args(
        "SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL",
        &[name.as_str().into()],
    )?;
    Ok(())
}

/// The origin's id, if it exists.
pub fn origin_id() -> Result<Option<u16>, FerryError> {
    let name = origin_name();
    let id: Option<pg_sys::Oid> = select_opt(
        "SELECT pg_replication_origin_oid($1)",
        &[name.as_str().into()],
    )?;
    Ok(id.map(|oid| oid.to_u32() as u16))
}

/// Runs `f` with the session's writes tagged by ferry's origin.
pub fn with_origin<T>(f: impl FnOnce() -> Result<T, FerryError>) -> Result<T, FerryError> {
    let name = origin_name();
    select_void(
        "SELECT pg_replication_origin_session_setup($1)",
        &[name.as_str().into()],
    )?;
    ACTIVE.store(true, Ordering::Relaxed);
    let result = f();
    reset()?;
    result
}

/// Resets the session's origin (normal path).
fn reset() -> Result<(), FerryError> {
    if ACTIVE.swap(false, Ordering::Relaxed) {
        select_void("SELECT pg_replication_origin_session_reset()", &[])?;
    }
    Ok(())
}

/// Resets the session's origin from a transaction-abort callback, where SPI is not available.
pub fn reset_after_abort() {
    if ACTIVE.swap(false, Ordering::Relaxed) {
        // SAFETY: ACTIVE was set only after pg_replication_origin_session_setup succeeded, so a
        // session origin is set up; these are exactly the steps of
        // pg_replication_origin_session_reset, which may run outside a transaction.
        unsafe {
            pg_sys::replorigin_session_reset();
            pg_sys::replorigin_session_origin = pg_sys::InvalidRepOriginId as pg_sys::RepOriginId;
            pg_sys::replorigin_session_origin_lsn = 0;
            pg_sys::replorigin_session_origin_timestamp = 0;
        }
    }
}

/// Emits a logical message *without* the origin, so decoding sees it (used to mark the end of a
/// snapshot from inside a step). `transactional` messages arrive at their transaction's commit.
pub fn emit_untagged_message(content: &str) -> Result<(), FerryError> {
    let was_active = ACTIVE.load(Ordering::Relaxed);
    if was_active {
        reset()?;
    }
    Spi::run_with_args(
        "SELECT pg_logical_emit_message(true, 'ferry', $1)",
        &[content.into()],
    )?;
    if was_active {
        let name = origin_name();
        select_void(
            "SELECT pg_replication_origin_session_setup($1)",
            &[name.as_str().into()],
        )?;
        ACTIVE.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Whether an origin with this name exists (for tests and status).
#[pg_extern(name = "origin_name")]
fn origin_name_sql() -> String {
    origin_name()
}
