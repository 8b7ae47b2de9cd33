//! Figure "redeploy": new sync rules deployed over a large table while writes continue. The new
//! version is built beside the active one (its own slot, snapshot and streaming) and activated
//! atomically; the figure is the time from `deploy_rules` to the activating checkpoint, and the
//! extra WAL Postgres retains meanwhile: the new slot holds WAL from its creation until it has
//! streamed past it, on top of what the active version's slot holds anyway.
//!
//! The raw limit for scale is `COPY out` of the same table (a redeploy reads every row once).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use futures::future::BoxFuture;

use crate::bench::applier::{self, epoch_now};
use crate::bench::figure::{Context, Figure};
use crate::bench::raw;
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity};
use crate::bench::workload::{self, todo_id};
use crate::database::TestDb;
use crate::wait::wait_until;

const NAME: &str = "redeploy";

/// WAL retained by the active slot when it has caught up (a few standby-snapshot intervals).
const SETTLED_WAL: i64 = 8 << 20;

/// Updates per second while the new version is built.
const WRITE_RATE: u32 = 500;

/// The redeployed rules: the same buckets with fewer columns, so every row is copied again.
const NEW_RULES: &str = "
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT id, list_id, description, done FROM todos WHERE owner_id = bucket.owner_id
";

/// Redeploy: time to activation and extra WAL retained, under writes.
#[derive(Debug, Clone, Copy)]
pub struct Redeploy;

impl Figure for Redeploy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "deploy_rules → activation of new rules over a large table under writes, and the extra WAL retained meanwhile"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

/// Bytes of WAL the cluster retains for ferry's slots: from the oldest `restart_lsn` to now.
async fn wal_retained(db: &TestDb) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "SELECT COALESCE((pg_current_wal_lsn() - min(restart_lsn))::int8, 0) \
             FROM pg_replication_slots WHERE slot_name LIKE 'ferry\\_%'",
            &[],
        )
        .await?
        .get(0))
}

/// Updates random rows of `1..=rows` at [`WRITE_RATE`] per second on a connection of its own
/// until `stop` is set. Returns the number of updates.
async fn write_until(db: &TestDb, rows: i64, stop: &AtomicBool) -> anyhow::Result<i64> {
    let client = db.connect().await?;
    let update = client
        .prepare("UPDATE todos SET priority = priority + 1, done = NOT done WHERE id = $1")
        .await?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(WRITE_RATE));
    let mut next = tokio::time::Instant::now();
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        // A fixed stride through the table: every update hits another owner's bucket.
        let g = 1 + (n * 7919) % rows;
        client
            .execute(&update, &[&todo_id(g)])
            .await
            .with_context(|| format!("updating todo {g}"))?;
        n += 1;
        next += interval;
        tokio::time::sleep_until(next).await;
    }
    Ok(n)
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let n = ctx.sizes.redeploy_rows;
    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_redeploy").await?;
    workload::create_schema(db.client()).await?;
    let (old, _) =
        applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(120))
            .await?;
    ctx.progress(NAME, format!("filling the table with {n} rows"));
    workload::fill(db.client(), 1, n).await?;
    applier::wait_processed(ctx, NAME, &db, old, n, Duration::from_secs(1800)).await?;
    let (copy_time, _) = raw::copy_out(&db, "todos").await?;
    // The slot moves past what a step applied at the start of the next step: let it settle.
    let baseline = wait_until(
        "the active slot to release the WAL of the fill",
        Duration::from_secs(60),
        || async {
            let bytes = wal_retained(&db).await?;
            Ok((bytes < SETTLED_WAL).then_some(bytes))
        },
    )
    .await?;

    ctx.progress(
        NAME,
        format!("redeploying under {WRITE_RATE} updates/s (WAL retained before: {baseline} bytes)"),
    );
    let stop = AtomicBool::new(false);
    let peak = AtomicI64::new(baseline);
    let wal_at_deploy: String = db
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    let deployed_at = epoch_now();
    let (written, sampled, activated) = futures::join!(
        write_until(&db, n, &stop),
        async {
            while !stop.load(Ordering::Relaxed) {
                let bytes = wal_retained(&db).await?;
                peak.fetch_max(bytes, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            anyhow::Ok(())
        },
        async {
            let activated = applier::deploy_and_wait_active(
                ctx,
                NAME,
                &db,
                NEW_RULES,
                Duration::from_secs(3600),
            )
            .await;
            stop.store(true, Ordering::Relaxed);
            activated
        }
    );
    let (new, activated_at) = activated?;
    sampled?;
    let updates = written?;
    let seconds = activated_at - deployed_at;
    let wal_written: i64 = db
        .query_one(
            "SELECT (pg_current_wal_lsn() - $1::text::pg_lsn)::int8",
            &[&wal_at_deploy],
        )
        .await?
        .get(0);
    ensure!(new != old, "the redeploy did not create a new version");

    // Afterwards only the new version's slot remains.
    let dropped_at = wait_until(
        "the old version's slot to be dropped",
        Duration::from_secs(120),
        || async {
            let slots = db.slots().await?;
            Ok((slots.len() == 1).then(epoch_now))
        },
    )
    .await?;
    let extra = peak.load(Ordering::Relaxed) - baseline;
    ctx.progress(
        NAME,
        format!("active after {seconds:.1} s; extra WAL retained at most {extra} bytes"),
    );

    Ok(FigureOutcome {
        measurements: vec![
            Measurement::new(
                format!(
                    "Redeploy over {} rows under {WRITE_RATE} updates/s: deploy → active",
                    thousands(n as f64)
                ),
                Quantity::seconds(seconds),
            )
            .reference(format!(
                "{} rows/s; COPY out of the table {:.1} s",
                thousands(n as f64 / seconds),
                copy_time.as_secs_f64()
            )),
            Measurement::new(
                "Redeploy: extra WAL retained meanwhile (peak)",
                Quantity::kib(u64::try_from(extra.max(0) / 1024).unwrap_or(0)),
            ),
        ],
        notes: vec![
            format!(
                "redeploy: {updates} updates committed while the new version was built; {:.0} MiB of WAL written from deploy_rules to activation; WAL retained by ferry's slots {:.1} MiB before, {:.0} MiB at the peak (sampled every 250 ms)",
                wal_written as f64 / 1_048_576.0,
                baseline as f64 / 1_048_576.0,
                peak.load(Ordering::Relaxed) as f64 / 1_048_576.0,
            ),
            format!(
                "redeploy: the old version's slot was dropped {:.1} s after the activation; COPY out of the same table {:.2} s",
                dropped_at - activated_at,
                copy_time.as_secs_f64()
            ),
        ],
    })
}
