//! Driving and observing the extension's applier worker from a benchmark: deploy rules and wait
//! for activation, pause and resume, wait until the applier has processed a number of row
//! changes (and read the time of the checkpoint that covered them), and a process's memory
//! from `/proc` (the worker's, or the gateway process's).
//!
//! Everything goes through the extension's SQL (`ferry.status()`, `ferry.checkpoints`,
//! `ferry.pause()` / `ferry.resume()`); nothing here measures a figure by itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

use super::figure::Context;
use crate::database::TestDb;

/// Seconds since the Unix epoch of a client-side instant, comparable with the server's
/// `extract(epoch FROM <timestamptz>)` (same host, same clock).
pub fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Deploys `rules` and waits until the worker has made the version active, printing the
/// snapshot's progress every few seconds. Returns the version and the epoch of its first
/// checkpoint (the activation).
pub async fn deploy_and_wait_active(
    ctx: &Context,
    figure: &str,
    db: &TestDb,
    rules: &str,
    timeout: Duration,
) -> anyhow::Result<(i64, f64)> {
    let version: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&rules])
        .await?
        .get(0);
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let row = db
            .query_one(
                "SELECT r.state, r.last_error, \
                        (SELECT extract(epoch FROM min(c.created_at))::float8 \
                         FROM ferry.checkpoints c WHERE c.version = r.id), \
                        (SELECT COALESCE(sum(t.snapshot_rows), 0)::int8 \
                         FROM ferry.source_tables t WHERE t.version = r.id) \
                 FROM ferry.sync_rules r WHERE r.id = $1",
                &[&version],
            )
            .await?;
        let state: String = row.get(0);
        if let ("active", Some(at)) = (state.as_str(), row.get::<_, Option<f64>>(2)) {
            return Ok((version, at));
        }
        if started.elapsed() > timeout {
            let error: Option<String> = row.get(1);
            bail!("version {version} still {state} after {timeout:?} (last error: {error:?})");
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            let rows: i64 = row.get(3);
            ctx.progress(
                figure,
                format!("version {version} {state}, {rows} snapshot rows copied"),
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pauses the worker (`ferry.pause()`); a step in flight finishes, no new one starts.
pub async fn pause(db: &TestDb) -> anyhow::Result<()> {
    db.exec("SELECT ferry.pause()").await
}

/// Resumes the worker and returns the client time just before the call.
pub async fn resume(db: &TestDb) -> anyhow::Result<f64> {
    let at = epoch_now();
    db.exec("SELECT ferry.resume()").await?;
    Ok(at)
}

/// `rows_processed` of `version` in `ferry.status()`.
pub async fn rows_processed(db: &TestDb, version: i64) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "SELECT rows_processed FROM ferry.status() WHERE version = $1",
            &[&version],
        )
        .await?
        .get(0))
}

/// Waits until `version` has processed at least `target` row changes (its `rows_processed`) and
/// returns the epoch of the checkpoint of the step that got there (`last_checkpoint_at`: a step
/// updates both in one transaction, and with no later writes no later checkpoint exists).
/// Prints progress every few seconds.
pub async fn wait_processed(
    ctx: &Context,
    figure: &str,
    db: &TestDb,
    version: i64,
    target: i64,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let row = db
            .query_one(
                "SELECT rows_processed, extract(epoch FROM last_checkpoint_at)::float8, last_error \
                 FROM ferry.status() WHERE version = $1",
                &[&version],
            )
            .await?;
        let processed: i64 = row.get(0);
        if processed >= target {
            return row
                .get::<_, Option<f64>>(1)
                .context("rows processed but no checkpoint recorded");
        }
        if started.elapsed() > timeout {
            let error: Option<String> = row.get(2);
            bail!(
                "the applier processed {processed} of {target} row changes in {timeout:?} (last error: {error:?})"
            );
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            ctx.progress(
                figure,
                format!("applier at {processed} of {target} row changes"),
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The checkpoints of a version from some op id on, in op id order: when the op of a write
/// became part of a checkpoint ([`Checkpoints::covering`]).
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// `(op_id, creation epoch)` of each checkpoint, ascending op id.
    pub list: Vec<(i64, f64)>,
}

impl Checkpoints {
    /// Reads the checkpoints of `version` whose op id is at least `from_op`.
    pub async fn read(db: &TestDb, version: i64, from_op: i64) -> anyhow::Result<Checkpoints> {
        let list = db
            .query(
                "SELECT op_id, extract(epoch FROM created_at)::float8 FROM ferry.checkpoints \
                 WHERE version = $1 AND op_id >= $2 ORDER BY op_id, lsn",
                &[&version, &from_op],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(Checkpoints { list })
    }

    /// The first checkpoint whose op id reaches `op`: its index in [`Checkpoints::list`] and its
    /// creation epoch.
    pub fn covering(&self, op: i64) -> Option<(usize, f64)> {
        let index = self.list.partition_point(|c| c.0 < op);
        self.list.get(index).map(|c| (index, c.1))
    }
}

/// Bytes of WAL between the version's slot's `restart_lsn` and the current position: what every
/// peek and slot advance of an applier step decodes again, whatever it has already applied.
pub async fn slot_decode_window(db: &TestDb, version: i64) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "SELECT COALESCE((pg_current_wal_lsn() - s.restart_lsn)::int8, 0) \
             FROM ferry.sync_rules r LEFT JOIN pg_replication_slots s ON s.slot_name = r.slot_name \
             WHERE r.id = $1",
            &[&version],
        )
        .await?
        .get(0))
}

/// The process id of the applier worker of `db`'s database.
pub async fn worker_pid(db: &TestDb, timeout: Duration) -> anyhow::Result<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let row = db
            .query(
                "SELECT pid FROM pg_stat_activity \
                 WHERE backend_type = 'ferry applier' AND datname = current_database()",
                &[],
            )
            .await?;
        if let Some(r) = row.first() {
            return Ok(r.get(0));
        }
        if Instant::now() >= deadline {
            bail!("no ferry applier backend for database {}", db.name());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The memory lines of `/proc/<pid>/status` a report uses, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessMemory {
    /// Peak resident set size since the process started (`VmHWM`): private memory plus the
    /// shared buffers and files it touched.
    pub peak_rss_kib: u64,
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Resident private memory now (`RssAnon`).
    pub anon_kib: u64,
    /// Resident shared memory now (`RssShmem`: shared buffers it touched).
    pub shmem_kib: u64,
}

/// Reads `/proc/<pid>/status`.
pub fn process_memory(pid: i32) -> anyhow::Result<ProcessMemory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcessMemory {
        peak_rss_kib: field("VmHWM:"),
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
        shmem_kib: field("RssShmem:"),
    })
}

/// Samples a process's memory every 50 ms until stopped: the peak of its private memory
/// (`RssAnon`; `VmHWM` keeps the peak of the whole resident set, shared buffers included) and
/// its last `VmHWM` (still known if the process ends).
#[derive(Debug)]
pub struct MemorySampler {
    anon_peak_kib: Arc<AtomicU64>,
    peak_rss_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// What a [`MemorySampler`] saw, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampledMemory {
    /// Peak `RssAnon`.
    pub anon_peak_kib: u64,
    /// Last `VmHWM`.
    pub peak_rss_kib: u64,
}

impl MemorySampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: i32) -> MemorySampler {
        let anon_peak_kib = Arc::new(AtomicU64::new(0));
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (anon, rss, stop) = (anon_peak_kib.clone(), peak_rss_kib.clone(), stop.clone());
            async move {
                loop {
                    if let Ok(m) = process_memory(pid) {
                        anon.fetch_max(m.anon_kib, Ordering::Relaxed);
                        rss.fetch_max(m.peak_rss_kib, Ordering::Relaxed);
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        MemorySampler {
            anon_peak_kib,
            peak_rss_kib,
            stop,
            task,
        }
    }

    /// Stops sampling (after one last sample).
    pub async fn stop(self) -> SampledMemory {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        SampledMemory {
            anon_peak_kib: self.anon_peak_kib.load(Ordering::Relaxed),
            peak_rss_kib: self.peak_rss_kib.load(Ordering::Relaxed),
        }
    }
}
