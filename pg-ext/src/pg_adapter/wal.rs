//! WAL positions an applier step needs: how far WAL is flushed (so it knows the exact end of what
//! a peek decoded) and a standby snapshot record, which gives a slot a point to restart decoding
//! from.
//!
//! Every peek and slot advance decodes from the slot's `restart_lsn`, which only moves past a
//! running-transactions record the slot has confirmed. Postgres logs one every 15 seconds at most,
//! so without help each step would decode up to 15 seconds of WAL again, however little is new.

use pgrx::pg_sys;

/// The position up to which WAL is flushed: everything before it can be decoded.
pub fn flush_position() -> u64 {
    // SAFETY: GetFlushRecPtr only reads shared memory under its own spinlock; a null timeline
    // pointer is allowed (the caller does not want it).
    unsafe { pg_sys::GetFlushRecPtr(std::ptr::null_mut()) }
}

/// Writes a running-transactions record now (what `pg_log_standby_snapshot()` does from
/// Postgres 16 on) and returns the position after it.
pub fn log_standby_snapshot() -> u64 {
    // SAFETY: called in a normal backend or the applier worker during a transaction, on a primary
    // (logical decoding requires wal_level = logical, so standby information is logged); the
    // function takes the locks it needs itself.
    unsafe { pg_sys::LogStandbySnapshot() }
}
