//! ferry's settings (GUCs), all under the `ferry.` prefix, read through accessor functions.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static MAX_PARAMETER_RESULTS: GucSetting<i32> = GucSetting::<i32>::new(1000);
static STEP_CHANGES: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static SNAPSHOT_PAGE_ROWS: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static IDLE_WAIT_MS: GucSetting<i32> = GucSetting::<i32>::new(2);
static RETENTION: GucSetting<i32> = GucSetting::<i32>::new(3600);
static WAL_BUDGET_MB: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Registers the settings. Called from `_PG_init`.
pub fn init() {
    GucRegistry::define_string_guc(
        c"ferry.database",
        c"Databases whose ferry applier worker starts with the server.",
        c"Comma-separated database names. Needs shared_preload_libraries = 'ferry'; read at server start.",
        &DATABASE,
        // Sighup rather than Postmaster: the library may also be loaded on demand (without
        // shared_preload_libraries), when a postmaster-level setting can no longer be defined.
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ferry.max_parameter_results",
        c"Most parameter query results one sync connection may resolve.",
        c"More raises SQLSTATE 54000, which the gateway reports as PSYNC_S2305.",
        &MAX_PARAMETER_RESULTS,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ferry.step_changes",
        c"Changes one applier step reads (a source transaction is never split).",
        c"",
        &STEP_CHANGES,
        1,
        10_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ferry.snapshot_page_rows",
        c"Rows one snapshot page step copies.",
        c"",
        &SNAPSHOT_PAGE_ROWS,
        1,
        10_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ferry.retention",
        c"How long old checkpoints, change records and checkpoint requests are kept.",
        c"Each version's latest checkpoint and the legacy write-checkpoint counters are always kept.",
        &RETENTION,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"ferry.wal_budget_mb",
        c"ferry.status() warns when a slot retains more WAL than this (0: only max_slot_wal_keep_size).",
        c"",
        &WAL_BUDGET_MB,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_int_guc(
        c"ferry.idle_wait_ms",
        c"How long the applier worker waits when it has nothing to do.",
        c"",
        &IDLE_WAIT_MS,
        1,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
}

/// `ferry.database`: the databases whose worker starts with the server.
pub fn worker_databases() -> Vec<String> {
    DATABASE
        .get()
        .map(|s| {
            s.to_string_lossy()
                .split(',')
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `ferry.max_parameter_results`.
pub fn max_parameter_results() -> usize {
    MAX_PARAMETER_RESULTS.get().max(1) as usize
}

/// `ferry.step_changes`.
pub fn step_changes() -> i32 {
    STEP_CHANGES.get().max(1)
}

/// `ferry.snapshot_page_rows`.
pub fn snapshot_page_rows() -> i64 {
    i64::from(SNAPSHOT_PAGE_ROWS.get().max(1))
}

/// `ferry.idle_wait_ms`.
pub fn idle_wait_ms() -> u64 {
    IDLE_WAIT_MS.get().max(1) as u64
}

/// `ferry.retention`, in seconds.
pub fn retention_secs() -> i64 {
    i64::from(RETENTION.get().max(1))
}
