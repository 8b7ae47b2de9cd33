//! Figure "bulk ingest": 1M row changes committed in a few big transactions while the worker is
//! paused; then the worker catches up. Row changes per second from the resume to the checkpoint
//! covering them, next to raw decode of the same WAL; and the worker's peak memory.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::bench::applier;
use crate::bench::catch_up;
use crate::bench::figure::{Context, Figure};
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
use crate::bench::workload;

const NAME: &str = "bulk_ingest";

/// Bulk ingest: row changes/s of big transactions, vs raw decode.
#[derive(Debug, Clone, Copy)]
pub struct BulkIngest;

impl Figure for BulkIngest {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "row changes/s catching up on big transactions committed while the worker was paused, vs raw decode; worker memory"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let transactions = ctx.sizes.bulk_transactions.max(1);
    let per_transaction = ctx.sizes.bulk_rows / transactions;
    let changes = per_transaction * transactions;

    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_bulk").await?;
    workload::create_schema(db.client()).await?;
    let (version, _) =
        applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(120))
            .await?;

    let client = db.client();
    let m = catch_up::measure(ctx, NAME, &db, version, changes, || async move {
        for t in 0..transactions {
            workload::insert_range(client, t * per_transaction + 1, (t + 1) * per_transaction)
                .await?;
        }
        Ok(())
    })
    .await?;

    let what = "row changes";
    let size = format!(
        "{} row changes in {transactions} transactions of {}",
        thousands(changes as f64),
        thousands(per_transaction as f64)
    );
    Ok(FigureOutcome {
        measurements: vec![
            Measurement::new(
                format!("Bulk ingest: {size}"),
                Quantity::rate(changes as f64, m.ferry_seconds, what),
            )
            .raw(
                "raw decode",
                Quantity::rate(changes as f64, m.raw_decode.as_secs_f64(), what),
            )
            .target(Target::AtLeast(50_000.0))
            .target(Target::AtLeastFractionOfRaw(0.5))
            .reference("PowerSync ~9,900 rows/s"),
            Measurement::new(
                "Bulk ingest: applier worker peak memory (VmHWM)",
                Quantity::kib(m.memory.peak_rss_kib),
            )
            .reference("PowerSync ~450 MB"),
        ],
        notes: m.notes(),
    })
}
