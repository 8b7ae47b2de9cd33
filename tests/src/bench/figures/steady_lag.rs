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
use futures::future::{try_join_all, BoxFuture};

use crate::bench::applier::{self, epoch_now};
use crate::bench::figure::{Context, Figure};
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
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

/// Commits rows `first .. first + n` one transaction each at `rate` per second (write `i` is due
/// `i / rate` seconds after the start; a writer that falls behind writes at once), over
/// `writers` connections. Returns each row's commit time (epoch seconds, client clock after
/// COMMIT returned) and how many writes started more than 5 ms late.
async fn paced_writes(
    db: &TestDb,
    first: i64,
    n: i64,
    rate: u32,
    writers: usize,
) -> anyhow::Result<(Vec<(i64, f64)>, usize)> {
    let writers = writers.max(1) as i64;
    let mut clients = Vec::new();
    for _ in 0..writers {
        let client = db.connect().await?;
        let insert = client
            .prepare(workload::INSERT_RANGE)
            .await
            .context("preparing the insert")?;
        clients.push((client, insert));
    }
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let per_writer = try_join_all(clients.iter().enumerate().map(
        |(w, (client, insert))| async move {
            let mut commits = Vec::new();
            let mut late = 0usize;
            let mut i = w as i64;
            while i < n {
                let due = start + interval.mul_f64(i as f64);
                let now = tokio::time::Instant::now();
                if now < due {
                    tokio::time::sleep_until(due).await;
                } else if now - due > Duration::from_millis(5) {
                    late += 1;
                }
                let g = first + i;
                client
                    .execute(insert, &[&g, &g])
                    .await
                    .with_context(|| format!("inserting todo {g}"))?;
                commits.push((g, epoch_now()));
                i += writers;
            }
            anyhow::Ok((commits, late))
        },
    ))
    .await?;
    let mut commits = Vec::with_capacity(n as usize);
    let mut late = 0;
    for (c, l) in per_writer {
        commits.extend(c);
        late += l;
    }
    commits.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok((commits, late))
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
    let checkpoints: Vec<(i64, f64)> = db
        .query(
            "SELECT op_id, extract(epoch FROM created_at)::float8 FROM ferry.checkpoints \
             WHERE version = $1 AND op_id >= $2 ORDER BY op_id, lsn",
            &[&version, &first_op],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut latencies = Vec::with_capacity(commits.len());
    let mut used = std::collections::HashSet::new();
    for (g, committed_at) in commits {
        let id = todo_id(*g);
        let op = *ops
            .get(&id)
            .with_context(|| format!("no PUT op for {id}"))?;
        let index = checkpoints.partition_point(|c| c.0 < op);
        let (_, created_at) = checkpoints
            .get(index)
            .with_context(|| format!("no checkpoint covers op {op} of {id}"))?;
        used.insert(index);
        latencies.push((created_at - committed_at) * 1000.0);
    }
    Ok((latencies, used.len()))
}

/// The `p`-quantile (0..=1) of sorted values, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
                let written = paced_writes(&db, next, n, rate, writers).await;
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
        let (commits, late) = written?;
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
        let (mut latencies, checkpoints) = commit_to_checkpoint(&db, version, &commits).await?;
        latencies.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        let max = latencies.last().copied().unwrap_or(f64::NAN);
        let span = match (commits.first(), commits.last()) {
            (Some(a), Some(b)) if b.1 > a.1 => b.1 - a.1,
            _ => f64::NAN,
        };
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

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[3.0], 0.5), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
