//! The applier background worker: one per database listed in `ferry.database`, running applier
//! steps continuously with a short idle wait. Pausing is a flag in `ferry.worker_state`.
//!
//! A failed step is rolled back, its error recorded in `ferry.sync_rules.last_error` in a fresh
//! transaction (so `ferry.status()` shows it), and retried after a back-off.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::applier;
use crate::gucs;
use crate::pg_adapter::wal;

/// WAL written between two standby snapshots the worker logs, also while paused or busy with a
/// long step: decoding can only restart at such a record, so a backlog with one every megabyte
/// costs each applier step at most about a megabyte of decoding again, instead of everything
/// since Postgres' own last one (it logs one every 15 seconds).
const RESTART_MARK_BYTES: u64 = 1 << 20;

/// Registers one worker per database of `ferry.database`, when loaded by
/// `shared_preload_libraries`.
pub fn register_static_workers() {
    // SAFETY: reading a postmaster-startup flag.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    for database in gucs::worker_databases() {
        BackgroundWorkerBuilder::new(&format!("ferry applier {database}"))
            .set_type("ferry applier")
            .set_function("ferry_worker_main")
            .set_library("ferry")
            .set_extra(&database)
            .enable_spi_access()
            .set_restart_time(Some(Duration::from_secs(1)))
            .load();
    }
}

extern "C-unwind" {
    /// Postgres' `die()` signal handler itself: pgrx's binding of it is a Rust wrapper, and a
    /// signal handler must be the C function.
    #[link_name = "die"]
    fn postgres_die(signal: core::ffi::c_int);
}

/// The worker's main function.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn ferry_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    // SIGTERM is Postgres' own `die`: it makes the next interrupt check end the process, also
    // deep inside a step (a slot function waiting for WAL, a lock wait). pgrx's handler would
    // only set a flag, and a fast shutdown would then wait forever. Ending a step anywhere is
    // safe: steps are restartable, and the postmaster starts the worker again unless it is
    // shutting down.
    // SAFETY: installing Postgres' standard backend SIGTERM handler in a background worker.
    unsafe { pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(postgres_die)) };
    let database = BackgroundWorker::get_extra().to_owned();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("ferry applier worker started for database {database}");

    applier::stream::QUIET_DECODING.store(true, std::sync::atomic::Ordering::Relaxed);
    // The text the output plugin converts from must not depend on server or role settings.
    in_transaction(|| applier::pin_session_settings(false));

    let mut idle_since_lsn: Option<u64> = None;
    let mut last_restart_mark = 0u64;
    // wait_latch reports (and consumes) SIGTERM: every wait must end the loop when it says so.
    let idle = || BackgroundWorker::wait_latch(Some(Duration::from_millis(gucs::idle_wait_ms())));
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(0))) {
        pgrx::check_for_interrupts!();
        if BackgroundWorker::sighup_received() {
            // SAFETY: reloading the configuration file at a safe point of the main loop.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        // Nothing new in the WAL since an idle step: no need to look again.
        // SAFETY: reading the WAL insert position takes a spinlock; always safe in a backend.
        let insert_lsn = unsafe { pg_sys::GetXLogInsertRecPtr() };
        if insert_lsn.saturating_sub(last_restart_mark) >= RESTART_MARK_BYTES {
            last_restart_mark = wal::log_standby_snapshot();
        }
        if idle_since_lsn == Some(insert_lsn) {
            if !idle() {
                break;
            }
            continue;
        }
        let keep_running = match run_step() {
            Ok(true) => {
                idle_since_lsn = None;
                true
            }
            Ok(false) => {
                idle_since_lsn = Some(insert_lsn);
                idle()
            }
            Err(message) => {
                idle_since_lsn = None;
                warning!("ferry applier step failed: {message}");
                in_transaction(|| applier::record_error(&message));
                BackgroundWorker::wait_latch(Some(Duration::from_secs(1)))
            }
        };
        if !keep_running {
            break;
        }
    }
    log!("ferry applier worker for database {database} stopping");
    // Exit code 1 asks the postmaster to start the worker again (after its restart time) when it
    // was terminated on its own, e.g. by pg_terminate_backend; at server shutdown it is not
    // restarted anyway. Pausing is what ferry.pause() is for.
    // SAFETY: ending the worker process at the end of its main function.
    unsafe { pg_sys::proc_exit(1) };
}

/// Runs `f` in a transaction of its own, committing at the end.
fn in_transaction<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the worker's main loop is outside any transaction; this brackets one.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = f();
    // SAFETY: matches the push and start above.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::CommitTransactionCommand();
    }
    result
}

/// One applier step in its own transaction. An error rolls the transaction back and is returned
/// as text.
fn run_step() -> Result<bool, String> {
    // SAFETY: outside any transaction (main loop); paired with commit or abort below.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let outcome = PgTryBuilder::new(|| {
        if !applier::extension_installed() || applier::worker_paused() {
            return Ok(false);
        }
        Ok(applier::step())
    })
    .catch_others(|e| Err(caught_message(e)))
    .execute();
    match outcome {
        Ok(did_work) => {
            // SAFETY: the step succeeded; commit what it did.
            unsafe {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Ok(did_work)
        }
        Err(message) => {
            // SAFETY: the error was caught (and its state flushed) by PgTryBuilder; abort the
            // transaction to release everything the step held.
            unsafe { pg_sys::AbortCurrentTransaction() };
            Err(message)
        }
    }
}

fn caught_message(e: pg_sys::panic::CaughtError) -> String {
    match e {
        pg_sys::panic::CaughtError::PostgresError(r)
        | pg_sys::panic::CaughtError::ErrorReport(r)
        | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_owned(),
    }
}
