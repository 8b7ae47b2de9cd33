//! Figure "backlog": many single-row transactions committed (by a few connections at once) while
//! the worker is paused; then the worker catches up. Transactions per second from the resume to
//! the checkpoint covering the last one, next to raw decode of the same WAL.

use std::time::Duration;

use anyhow::Context as _;
use futures::future::{try_join_all, BoxFuture};

use crate::bench::applier;
use crate::bench::catch_up;
use crate::bench::figure::{Context, Figure};
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
use crate::bench::workload;
use crate::database::TestDb;

const NAME: &str = "backlog";

/// Backlog: single-row transactions/s, vs raw decode.
#[derive(Debug, Clone, Copy)]
pub struct Backlog;

impl Figure for Backlog {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "transactions/s catching up on single-row transactions committed while the worker was paused, vs raw decode"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

/// Commits rows `1..=n` as one transaction each, spread over `writers` connections.
pub(super) async fn single_row_transactions(
    db: &TestDb,
    n: i64,
    writers: usize,
) -> anyhow::Result<()> {
    let writers = writers.max(1) as i64;
    try_join_all((0..writers).map(|w| async move {
        let client = db.connect().await?;
        let insert = client
            .prepare(workload::INSERT_RANGE)
            .await
            .context("preparing the insert")?;
        let mut g = w + 1;
        while g <= n {
            client
                .execute(&insert, &[&g, &g])
                .await
                .with_context(|| format!("inserting todo {g}"))?;
            g += writers;
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(())
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let n = ctx.sizes.backlog_transactions;
    let writers = ctx.sizes.writers;

    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_backlog").await?;
    workload::create_schema(db.client()).await?;
    let (version, _) =
        applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(120))
            .await?;

    let m = catch_up::measure(ctx, NAME, &db, version, n, || {
        single_row_transactions(&db, n, writers)
    })
    .await?;

    let what = "transactions";
    let mut notes = m.notes();
    notes.push(format!("{writers} connections committed the transactions"));
    Ok(FigureOutcome {
        measurements: vec![Measurement::new(
            format!("Backlog: {} single-row transactions", thousands(n as f64)),
            Quantity::rate(n as f64, m.ferry_seconds, what),
        )
        .raw(
            "raw decode",
            Quantity::rate(n as f64, m.raw_decode.as_secs_f64(), what),
        )
        .target(Target::AtLeast(10_000.0))
        .target(Target::AtLeastFractionOfRaw(0.5))
        .reference("PowerSync ~7,400 transactions/s")],
        notes,
    })
}
