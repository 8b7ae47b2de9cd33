//! Figure "snapshot": a table of 1M rows exists; deploy the rules and time until the worker has
//! made the version active (snapshot copied, first checkpoint). Rows per second, next to COPY out
//! of the same table; and the worker's peak memory.

use std::time::Duration;

use anyhow::ensure;
use futures::future::BoxFuture;

use crate::bench::applier::{self, epoch_now, MemorySampler};
use crate::bench::figure::{Context, Figure};
use crate::bench::raw;
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity};
use crate::bench::workload;

const NAME: &str = "snapshot";

/// Snapshot: rows/s from deploy to active, vs COPY out.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot;

impl Figure for Snapshot {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "rows/s from deploy_rules to the version active over an existing table, vs COPY out; worker memory"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let n = ctx.sizes.snapshot_rows;
    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_snapshot").await?;
    workload::create_schema(db.client()).await?;
    ctx.progress(NAME, format!("filling the table with {n} rows"));
    workload::fill(db.client(), 1, n).await?;
    db.exec("VACUUM ANALYZE todos").await?;
    let table_bytes: i64 = db
        .query_one("SELECT pg_table_size('todos')", &[])
        .await?
        .get(0);

    let (copy_time, copy_bytes) = raw::copy_out(&db, "todos").await?;
    ctx.progress(
        NAME,
        format!(
            "COPY out took {:.2} s; deploying the rules",
            copy_time.as_secs_f64()
        ),
    );

    let pid = applier::worker_pid(&db, Duration::from_secs(30)).await?;
    let sampler = MemorySampler::start(pid);
    let deployed_at = epoch_now();
    let activated =
        applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(3600))
            .await;
    let memory = sampler.stop().await;
    let (version, activated_at) = activated?;
    let seconds = activated_at - deployed_at;
    ctx.progress(NAME, format!("active after {seconds:.2} s"));
    let copied: i64 = db
        .query_one(
            "SELECT snapshot_rows FROM ferry.status() WHERE version = $1",
            &[&version],
        )
        .await?
        .get(0);
    ensure!(copied == n, "the snapshot copied {copied} rows of {n}");
    let shmem_kib = applier::process_memory(pid).map_or(0, |m| m.shmem_kib);

    let what = "rows";
    Ok(FigureOutcome {
        measurements: vec![
            Measurement::new(
                format!("Snapshot: {} rows, deploy → active", thousands(n as f64)),
                Quantity::rate(n as f64, seconds, what),
            )
            .raw("COPY out", Quantity::rate(n as f64, copy_time.as_secs_f64(), what)),
            Measurement::new(
                "Snapshot: applier worker peak memory (VmHWM)",
                Quantity::kib(memory.peak_rss_kib),
            )
            .reference("PowerSync ~450 MB"),
        ],
        notes: vec![
            format!(
                "table {:.0} MiB; COPY out {:.2} s ({:.0} MiB of text); ferry {seconds:.2} s from deploy_rules to the activating checkpoint",
                table_bytes as f64 / 1_048_576.0,
                copy_time.as_secs_f64(),
                copy_bytes as f64 / 1_048_576.0,
            ),
            format!(
                "worker memory: peak RSS (VmHWM) {:.0} MiB, of which shared memory (shared buffers it touched) {:.0} MiB at the end; peak private (RssAnon, sampled every 50 ms) {:.0} MiB",
                memory.peak_rss_kib as f64 / 1024.0,
                shmem_kib as f64 / 1024.0,
                memory.anon_peak_kib as f64 / 1024.0,
            ),
        ],
    })
}
