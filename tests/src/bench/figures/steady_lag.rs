//! Figure "steady lag": single-row commits at a fixed rate with the worker running; for each
//! write, the time from its commit (client clock when COMMIT returned) to the creation of the
//! first checkpoint that covers it (the first checkpoint whose op id reaches the op id of the
//! row's PUT: exact, whatever the number of writers). p50 and p99 per rate.
//!
//! Raw decode has no latency counterpart: these rows have no raw limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;

use crate::bench::applier::{self, Checkpoints};
use crate::bench::figure::{Context, Figure};
use crate::bench::pacing::{self, PacedRun, Write};
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
use crate::bench::stats::percentile;
use crate::bench::workload::{self, todo_id};
use crate::database::TestDb;

const NAME: &str = "steady_lag";

/// Steady lag: commit → checkpoint latency at fixed write rates.
#[derive(Debug, Clone, Copy)]
pub struct SteadyLag;

impl Figure for SteadyLag {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "commit → checkpoint latency (p50, p99) of single-row commits at fixed rates, worker running"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

/// Commits rows `first .. first + n` one transaction each at `rate` per second over `writers`
/// connections ([`pacing::paced_writes`]). The commits are given by row number `g`, with their
/// commit time (epoch seconds, client clock after COMMIT returned).
async fn paced_inserts(
    db: &TestDb,
    first: i64,
    n: i64,
    rate: u32,
    writers: usize,
) -> anyhow::Result<PacedRun> {
    let mut run = pacing::paced_writes(db, n, rate, writers, &[workload::INSERT_RANGE], |i| {
        let g = first + i;
        Write {
            statement: 0,
            params: vec![Box::new(g), Box::new(g)],
        }
    })
    .await?;
    for commit in &mut run.commits {
        commit.0 += first;
    }
    Ok(run)
}

/// For each commit, milliseconds from the commit to the creation of the first checkpoint whose
/// op id reaches the op id of the row's PUT. Also returns how many checkpoints covered them.
async fn commit_to_checkpoint(
    db: &TestDb,
    version: i64,
    commits: &[(i64, f64)],
) -> anyhow::Result<(Vec<f64>, usize)> {
    let (Some(lo), Some(hi)) = (
        commits.iter().map(|c| c.0).min(),
        commits.iter().map(|c| c.0).max(),
    ) else {
        return Ok((Vec::new(), 0));
    };
    let ops: HashMap<String, i64> = db
        .query(
            "SELECT object_id, op_id FROM ferry.ops \
             WHERE version = $1 AND object_type = 'todos' AND op = 'PUT' AND object_id BETWEEN $2 AND $3",
            &[&version, &todo_id(lo), &todo_id(hi)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let first_op = ops.values().copied().min().unwrap_or(0);
    let checkpoints = Checkpoints::read(db, version, first_op).await?;
    let mut latencies = Vec::with_capacity(commits.len());
    let mut used = std::collections::HashSet::new();
    for (g, committed_at) in commits {
        let id = todo_id(*g);
        let op = *ops
            .get(&id)
            .with_context(|| format!("no PUT op for {id}"))?;
        let (index, created_at) = checkpoints
            .covering(op)
            .with_context(|| format!("no checkpoint covers op {op} of {id}"))?;
        used.insert(index);
        latencies.push((created_at - committed_at) * 1000.0);
    }
    Ok((latencies, used.len()))
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let writers = ctx.sizes.writers;
    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_lag").await?;
    workload::create_schema(db.client()).await?;
    let (version, _) =
        applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(120))
            .await?;

    let mut outcome = FigureOutcome::default();
    let mut next = 1i64;
    for &rate in &ctx.sizes.lag_rates {
        let n = i64::from(rate) * i64::from(ctx.sizes.lag_seconds);
        let before = applier::rows_processed(&db, version).await?;
        ctx.progress(
            NAME,
            format!("{n} single-row commits at {rate}/s over {writers} connections"),
        );
        let writing = AtomicBool::new(true);
        let (written, window) = futures::join!(
            async {
                let written = paced_inserts(&db, next, n, rate, writers).await;
                writing.store(false, Ordering::Relaxed);
                written
            },
            async {
                // The slot's decode window, sampled while writing.
                let mut samples = Vec::new();
                while writing.load(Ordering::Relaxed) {
                    if let Ok(bytes) = applier::slot_decode_window(&db, version).await {
                        samples.push(bytes);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                samples
            }
        );
        let written = written?;
        let (commits, late) = (&written.commits, written.late);
        next += n;
        applier::wait_processed(
            ctx,
            NAME,
            &db,
            version,
            before + n,
            Duration::from_secs(600),
        )
        .await?;
        let (mut latencies, checkpoints) = commit_to_checkpoint(&db, version, commits).await?;
        latencies.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        let max = latencies.last().copied().unwrap_or(f64::NAN);
        let span = written.span();
        ctx.progress(NAME, format!("{rate}/s: p50 {p50:.2} ms, p99 {p99:.2} ms"));
        outcome.measurements.push(
            Measurement::new(
                format!("Steady lag at {rate} commits/s: p50 commit → checkpoint"),
                Quantity::millis(p50),
            )
            .target(Target::AtMost(10.0)),
        );
        outcome.measurements.push(Measurement::new(
            format!("Steady lag at {rate} commits/s: p99 commit → checkpoint"),
            Quantity::millis(p99),
        ));
        outcome.notes.push(format!(
            "{rate}/s: {} commits in {span:.1} s (achieved {} commits/s, {late} writes started > 5 ms late), \
             {checkpoints} checkpoints covered them ({:.1} commits per checkpoint); max latency {max:.1} ms",
            thousands(n as f64),
            thousands(n as f64 / span),
            n as f64 / checkpoints.max(1) as f64,
        ));
        let mean_window = window.iter().sum::<i64>() as f64 / window.len().max(1) as f64;
        outcome.notes.push(format!(
            "{rate}/s: WAL from the slot's restart_lsn to the current position (what each step decodes again), sampled every 200 ms: mean {:.1} MiB, max {:.1} MiB",
            mean_window / 1_048_576.0,
            window.iter().copied().max().unwrap_or(0) as f64 / 1_048_576.0,
        ));
    }
    Ok(outcome)
}
