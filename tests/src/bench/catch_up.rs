//! The catch-up measurement shared by the backlog figures: with the worker paused, commit a
//! workload; time raw decode of exactly that WAL (a `test_decoding` slot created before the
//! writes, up to the LSN after them); then resume the worker and time until the checkpoint that
//! covers the whole workload, watching the worker's memory.
//!
//! What the workload is (big transactions, many small ones) is the figure's business.

use std::future::Future;
use std::time::{Duration, Instant};

use super::applier::{self, MemorySampler, SampledMemory};
use super::figure::Context;
use super::raw::RawDecodeSlot;
use crate::database::TestDb;

/// What one catch-up measured.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// How long committing the workload took (not a figure: context).
    pub write: Duration,
    /// WAL bytes the workload produced.
    pub wal_bytes: i64,
    /// Raw decode of the same WAL.
    pub raw_decode: Duration,
    /// From `ferry.resume()` to the checkpoint covering the workload, in seconds (client clock
    /// before the resume, server clock of the checkpoint; same host).
    pub ferry_seconds: f64,
    /// The worker process's memory: its `VmHWM` covers its whole life, which in a benchmark
    /// cluster is little more than this workload; its private memory is sampled while it
    /// caught up.
    pub memory: SampledMemory,
    /// Resident shared memory (shared buffers touched) of the worker at the end, in KiB.
    pub shmem_kib: u64,
    /// Whether the worker process was the same one from start to end (it was not restarted).
    pub same_worker: bool,
    /// Seconds between the resume and each checkpoint of the catch-up, in order.
    pub checkpoint_times: Vec<f64>,
    /// How often `ferry.current_rows` of the version had been analyzed by the end, by the applier
    /// as it grew or by autovacuum (the applier's row lookups are planned from those statistics).
    pub current_rows_analyzed: i64,
}

impl CatchUp {
    /// The details of a catch-up measurement, for the report.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![
            format!(
                "committing took {:.1} s ({:.0} MiB of WAL); raw decode {:.2} s; ferry {:.2} s from resume to covering checkpoint",
                self.write.as_secs_f64(),
                self.wal_bytes as f64 / 1_048_576.0,
                self.raw_decode.as_secs_f64(),
                self.ferry_seconds,
            ),
            format!(
                "worker memory: peak RSS (VmHWM) {:.0} MiB, of which shared memory (shared buffers it touched) {:.0} MiB at the end; peak private (RssAnon, sampled every 50 ms) {:.0} MiB",
                self.memory.peak_rss_kib as f64 / 1024.0,
                self.shmem_kib as f64 / 1024.0,
                self.memory.anon_peak_kib as f64 / 1024.0,
            ),
        ];
        let steps: Vec<f64> = std::iter::once(0.0)
            .chain(self.checkpoint_times.iter().copied())
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        if steps.len() <= 20 {
            let list: Vec<String> = steps.iter().map(|s| format!("{s:.1}")).collect();
            notes.push(format!(
                "seconds from the resume (then from the previous checkpoint) to each of the {} checkpoints: {}",
                steps.len(),
                list.join(", ")
            ));
        } else {
            notes.push(format!(
                "{} checkpoints, one every {:.1} ms on average",
                steps.len(),
                1000.0 * self.ferry_seconds / steps.len() as f64
            ));
        }
        notes.push(format!(
            "ferry.current_rows of the version had been analyzed {} times by the end (by the applier as it grew, or autovacuum)",
            self.current_rows_analyzed
        ));
        if !self.same_worker {
            notes.push(
                "the worker process changed while catching up (restarted?): its memory figures are of the first process"
                    .to_owned(),
            );
        }
        notes
    }
}

/// Runs `write` (which must commit exactly `changes` row changes of the rules' tables) with the
/// worker of `version` paused, then measures raw decode and ferry's catch-up.
pub async fn measure<F, Fut>(
    ctx: &Context,
    figure: &str,
    db: &TestDb,
    version: i64,
    changes: i64,
    write: F,
) -> anyhow::Result<CatchUp>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let pid = applier::worker_pid(db, Duration::from_secs(30)).await?;
    applier::pause(db).await?;
    let slot = RawDecodeSlot::create(db, "bench_raw_decode").await?;
    let start_lsn: String = db
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);

    ctx.progress(
        figure,
        format!("committing {changes} row changes (worker paused)"),
    );
    let started = Instant::now();
    write().await?;
    let write_time = started.elapsed();
    let row = db
        .query_one(
            "SELECT pg_current_wal_lsn()::text, (pg_current_wal_lsn() - $1::text::pg_lsn)::int8",
            &[&start_lsn],
        )
        .await?;
    let endpos: String = row.get(0);
    let wal_bytes: i64 = row.get(1);
    ctx.progress(
        figure,
        format!(
            "committed in {:.1} s, {:.0} MiB of WAL; raw decode up to {endpos}",
            write_time.as_secs_f64(),
            wal_bytes as f64 / 1_048_576.0
        ),
    );

    let raw_decode = slot.decode_to(db, &endpos).await?;
    slot.drop_slot(db).await?;
    ctx.progress(
        figure,
        format!(
            "raw decode took {:.2} s; resuming the worker",
            raw_decode.as_secs_f64()
        ),
    );

    let before = applier::rows_processed(db, version).await?;
    let sampler = MemorySampler::start(pid);
    let resumed_at = applier::resume(db).await?;
    let covered_at = applier::wait_processed(
        ctx,
        figure,
        db,
        version,
        before + changes,
        Duration::from_secs(3600),
    )
    .await;
    let memory = sampler.stop().await;
    let covered_at = covered_at?;
    let shmem_kib = applier::process_memory(pid).map_or(0, |m| m.shmem_kib);
    let same_worker = applier::worker_pid(db, Duration::from_secs(5)).await.ok() == Some(pid);
    let ferry_seconds = covered_at - resumed_at;
    let checkpoint_times: Vec<f64> = db
        .query(
            "SELECT extract(epoch FROM created_at)::float8 - $2 FROM ferry.checkpoints \
             WHERE version = $1 AND created_at >= to_timestamp($2) ORDER BY created_at",
            &[&version, &resumed_at],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let current_rows_analyzed: i64 = db
        .query_one(
            "SELECT COALESCE(sum(autoanalyze_count + analyze_count), 0)::int8 \
             FROM pg_stat_user_tables WHERE schemaname = 'ferry' AND relname = 'current_rows_v' || $1::int8",
            &[&version],
        )
        .await?
        .get(0);
    ctx.progress(figure, format!("ferry caught up in {ferry_seconds:.2} s"));
    Ok(CatchUp {
        write: write_time,
        wal_bytes,
        raw_decode,
        ferry_seconds,
        memory,
        shmem_kib,
        same_worker,
        checkpoint_times,
        current_rows_analyzed,
    })
}
