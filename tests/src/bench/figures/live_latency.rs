//! Figure "live latency": commit-to-client latency of single-row writes at 1,000 writes/s with
//! 100 connected streams, measured on nearly empty storage and again with at least 1M ops
//! stored, to show whether latency grows with storage.
//!
//! Each stream is a raw streaming reader ([`SyncStreamReader`]) for one user of
//! [`workload::RULES`] (one bucket per owner) that parses every line after its first sync. Each
//! write is a one-row transaction on one of a few paced connections ([`pacing`]): an insert of a
//! new todo or an update of an existing one, always of a row owned by one of the connected
//! users. The writer records when the COMMIT was acknowledged.
//!
//! **When a write reaches the client.** A client may only publish data at a checkpoint boundary:
//! the op of a write becomes usable when the client has received the `checkpoint_complete` line
//! that follows the `data` line carrying the op (a checkpoint interrupted by a newer
//! `checkpoint_diff` publishes nothing: its ops wait for the next completion). The reader stamps
//! every PUT it received since the previous completion with the time that completion line was
//! received; a write's latency is that time minus its commit time (one clock: both sides run in
//! the benchmark process). Ops are matched to writes by `(object id, priority)`: inserts create
//! ids no stream has seen, and every update sets `priority` to a value no other write uses.
//!
//! The notes split each latency at the creation of the checkpoint covering the write's op
//! (`ferry.checkpoints.created_at`, same host clock): the applier's part before it, the
//! gateway's (NOTIFY, reads, network) after it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use ferry_protocol::{OpKind, SyncLine};
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::bench::applier::{self, epoch_now, Checkpoints, MemorySampler};
use crate::bench::figure::{Context, Figure};
use crate::bench::gateway_process::GatewayProcess;
use crate::bench::pacing::{self, Write};
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
use crate::bench::stats::percentile;
use crate::bench::stream_reader::{LineKind, SyncStreamReader};
use crate::bench::workload::{self, todo_id, USERS};
use crate::database::TestDb;
use crate::wait::wait_until;

const NAME: &str = "live_latency";

/// Rows in the table before the first measurement: 5 per user.
const SEED_ROWS: i64 = 5 * USERS;

/// Row numbers of the live inserts start here (above any filled row; a multiple of [`USERS`],
/// so that row `LIVE_INSERTS + w * USERS + u` belongs to user `u`).
const LIVE_INSERTS: i64 = 1_000_000_000;

/// An update sets `priority` to this plus the write's number: never a value another write or a
/// generated row (`g % 5`) has.
const UPDATE_PRIORITY_BASE: i64 = 5;

/// The update a write may be.
const UPDATE: &str = "UPDATE todos SET priority = $2::int8::int4 WHERE id = $1";

/// Writing connections.
const WRITERS: usize = 4;

/// How long after the last commit every write must have reached its stream.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How a received PUT is matched to the write that made it: `(object id, priority)`.
type OpKey = (String, i64);

/// Live latency: commit → usable on the client, p50/p99, empty and large storage.
#[derive(Debug, Clone, Copy)]
pub struct LiveLatency;

impl Figure for LiveLatency {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "commit → checkpoint_complete on connected streams (p50, p99) of single-row writes at a fixed rate, on empty and on large storage"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

/// Write `i` of a measurement whose first write has global number `first` (so priorities stay
/// unique across measurements), over `streams` connected users and a table of rows
/// `1..=table_rows`: what to execute, and the key of the op it produces. Writes alternate
/// between an insert of a new row and an update of an existing one, and go round the users.
fn live_write(first: i64, i: i64, streams: i64, table_rows: i64) -> (Write, OpKey) {
    let number = first + i;
    let user = (i / 2) % streams;
    if i % 2 == 0 {
        let g = LIVE_INSERTS + number * USERS + user;
        let write = Write {
            statement: 0,
            params: vec![Box::new(g), Box::new(g)],
        };
        (write, (todo_id(g), g % 5))
    } else {
        // Rows `USERS * a + user` for a = 1, 2, …: existing rows of this user, in turn.
        let layers = (table_rows / USERS - 1).max(1);
        let g = USERS * (1 + (i / 2 / streams) % layers) + user;
        let priority = UPDATE_PRIORITY_BASE + number;
        let write = Write {
            statement: 1,
            params: vec![Box::new(todo_id(g)), Box::new(priority)],
        };
        (write, (todo_id(g), priority))
    }
}

/// When each op became usable on its stream (epoch seconds), by key.
type Received = Arc<Mutex<HashMap<OpKey, f64>>>;

/// Reads stream `user` to its first sync, reports ready, then parses every line and stamps the
/// PUTs of each checkpoint with the time its `checkpoint_complete` arrived, until `stop`.
async fn follow(
    addr: SocketAddr,
    user: String,
    ready: Arc<AtomicUsize>,
    received: Received,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut reader = SyncStreamReader::open(addr, &user, &format!("bench-live-{user}")).await?;
    reader.read_first_sync().await?;
    ready.fetch_add(1, Ordering::Relaxed);
    let mut pending: Vec<OpKey> = Vec::new();
    let mut completions = 0u64;
    loop {
        let line = tokio::select! {
            line = reader.next_line() => line?,
            _ = stop.wait_for(|s| *s) => return Ok(completions),
        };
        let Some(line) = line else {
            anyhow::bail!("the stream of {user} ended");
        };
        match LineKind::of(&line) {
            LineKind::CheckpointComplete => {
                let at = epoch_now();
                completions += 1;
                let mut received = received.lock().unwrap_or_else(|e| e.into_inner());
                for key in pending.drain(..) {
                    received.entry(key).or_insert(at);
                }
            }
            LineKind::Data => {
                let SyncLine::Data(data) = serde_json::from_str(&line)
                    .with_context(|| format!("parsing a data line of {user}"))?
                else {
                    anyhow::bail!("a data line of {user} did not parse as one");
                };
                for op in data.data {
                    if let OpKind::Put { row, data } = op.kind {
                        let row_data: serde_json::Value = serde_json::from_str(&data)
                            .with_context(|| format!("op data of {}", row.object_id))?;
                        let priority = row_data
                            .get("priority")
                            .and_then(serde_json::Value::as_i64)
                            .with_context(|| format!("no priority in {data}"))?;
                        pending.push((row.object_id, priority));
                    }
                }
            }
            _ => {}
        }
    }
}

/// The op id of `version`'s latest checkpoint (0 before the first).
async fn latest_op(db: &TestDb, version: i64) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "SELECT COALESCE(max(op_id), 0)::int8 FROM ferry.checkpoints WHERE version = $1",
            &[&version],
        )
        .await?
        .get(0))
}

/// The PUTs of `version` after op id `after`, by the key a reader matches them with.
async fn ops_after(db: &TestDb, version: i64, after: i64) -> anyhow::Result<HashMap<OpKey, i64>> {
    Ok(db
        .query(
            "SELECT object_id, (data::json->>'priority')::int8, op_id FROM ferry.ops \
             WHERE version = $1 AND op_id > $2 AND op = 'PUT' AND object_type = 'todos'",
            &[&version, &after],
        )
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

/// What one measurement found.
struct Phase {
    /// Sorted latencies in ms: commit → usable on the client.
    latencies: Vec<f64>,
    /// Sorted ms from the commit to the creation of the checkpoint covering the write's op
    /// (the applier's part).
    to_checkpoint: Vec<f64>,
    /// Sorted ms from that checkpoint's creation to the write being usable on the client (the
    /// gateway's part, with the NOTIFY and the network).
    checkpoint_to_client: Vec<f64>,
    writes: i64,
    missing: usize,
    late: usize,
    span: f64,
    completions: u64,
}

/// Connects `streams` readers, writes `n` rows at `rate`/s, and collects the latencies.
async fn measure(
    ctx: &Context,
    db: &TestDb,
    gateway: &GatewayProcess,
    version: i64,
    first: i64,
    table_rows: i64,
) -> anyhow::Result<Phase> {
    let streams = ctx.sizes.live_streams;
    let rate = ctx.sizes.live_rate;
    let n = i64::from(rate) * i64::from(ctx.sizes.live_seconds);
    let ready = Arc::new(AtomicUsize::new(0));
    let received: Received = Arc::default();
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = (0..streams)
        .map(|u| {
            tokio::spawn(follow(
                gateway.addr(),
                format!("user-{u}"),
                ready.clone(),
                received.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    let measured = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while ready.load(Ordering::Relaxed) < streams {
            ensure!(
                !readers.iter().any(|r| r.is_finished()),
                "a stream ended before its first sync"
            );
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{} of {streams} streams synced in 120 s",
                ready.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ctx.progress(
            NAME,
            format!(
                "{streams} streams synced; {n} single-row writes at {rate}/s over {WRITERS} connections"
            ),
        );
        let first_op = latest_op(db, version).await?;
        let streams = streams as i64;
        let run = pacing::paced_writes(
            db,
            n,
            rate,
            WRITERS,
            &[workload::INSERT_RANGE, UPDATE],
            |i| live_write(first, i, streams, table_rows).0,
        )
        .await?;
        let keys: Vec<(OpKey, f64)> = run
            .commits
            .iter()
            .map(|&(i, at)| (live_write(first, i, streams, table_rows).1, at))
            .collect();
        let _ = wait_until("every write to reach its stream", DRAIN_TIMEOUT, || async {
            let received = received.lock().unwrap_or_else(|e| e.into_inner());
            Ok(keys.iter().all(|(k, _)| received.contains_key(k)).then_some(()))
        })
        .await;
        let ops = ops_after(db, version, first_op).await?;
        let checkpoints = Checkpoints::read(db, version, first_op).await?;
        let received = received.lock().unwrap_or_else(|e| e.into_inner());
        let mut latencies = Vec::with_capacity(keys.len());
        let mut to_checkpoint = Vec::with_capacity(keys.len());
        let mut checkpoint_to_client = Vec::with_capacity(keys.len());
        let mut missing = 0;
        for (key, committed_at) in &keys {
            let Some(at) = received.get(key) else {
                missing += 1;
                continue;
            };
            latencies.push((at - committed_at) * 1000.0);
            let covered = ops.get(key).and_then(|op| checkpoints.covering(*op));
            if let Some((_, created_at)) = covered {
                to_checkpoint.push((created_at - committed_at) * 1000.0);
                checkpoint_to_client.push((at - created_at) * 1000.0);
            }
        }
        for samples in [&mut latencies, &mut to_checkpoint, &mut checkpoint_to_client] {
            samples.sort_by(f64::total_cmp);
        }
        anyhow::Ok(Phase {
            latencies,
            to_checkpoint,
            checkpoint_to_client,
            writes: n,
            missing,
            late: run.late,
            span: run.span(),
            completions: 0,
        })
    }
    .await;
    let _ = stop.send(true);
    let mut completions = 0;
    let mut failed = None;
    for reader in readers {
        match reader.await.context("a stream reader panicked")? {
            Ok(c) => completions += c,
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return Err(e.context("a stream reader failed"));
    }
    let mut phase = measured?;
    phase.completions = completions;
    ensure!(
        phase.missing * 100 <= phase.writes as usize,
        "{} of {} writes never reached their stream",
        phase.missing,
        phase.writes
    );
    Ok(phase)
}

/// Both measurements against one gateway process: on the seeded table, then after storing
/// `live_stored_rows` more rows. Returns the ops stored at each and what it found.
async fn measure_both(
    ctx: &Context,
    db: &TestDb,
    gateway: &GatewayProcess,
    version: i64,
) -> anyhow::Result<Vec<(i64, Phase)>> {
    let stored = ctx.sizes.live_stored_rows;
    let ops_stored = || async move {
        anyhow::Ok(
            db.query_one(
                "SELECT count(*) FROM ferry.ops WHERE version = $1",
                &[&version],
            )
            .await?
            .get::<_, i64>(0),
        )
    };
    let empty_ops = ops_stored().await?;
    ctx.progress(NAME, format!("measuring with {empty_ops} ops stored"));
    let empty = measure(ctx, db, gateway, version, 0, SEED_ROWS).await?;
    let first = empty.writes;

    ctx.progress(NAME, format!("storing {stored} more rows"));
    let before = applier::rows_processed(db, version).await?;
    workload::fill(db.client(), SEED_ROWS + 1, SEED_ROWS + stored).await?;
    applier::wait_processed(
        ctx,
        NAME,
        db,
        version,
        before + stored,
        Duration::from_secs(3600),
    )
    .await?;
    // Storage that has been there a while: the load's autovacuum work and checkpoint are done
    // before measuring, as they would be long before on a production database (while they run,
    // they compete with the applier for these 2 cores; that is a load spike, not storage size).
    ctx.progress(NAME, "vacuuming and checkpointing after the load");
    db.exec("VACUUM ANALYZE").await?;
    db.exec("CHECKPOINT").await?;
    let large_ops = ops_stored().await?;
    ctx.progress(NAME, format!("measuring with {large_ops} ops stored"));
    let large = measure(ctx, db, gateway, version, first, SEED_ROWS + stored).await?;
    Ok(vec![(empty_ops, empty), (large_ops, large)])
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let streams = ctx.sizes.live_streams as i64;
    ensure!(
        (1..=USERS).contains(&streams),
        "live_streams must be 1..={USERS}"
    );
    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_live").await?;
    workload::create_schema(db.client()).await?;
    workload::insert_range(db.client(), 1, SEED_ROWS).await?;
    let (version, _) =
        applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(120))
            .await?;
    let gateway = GatewayProcess::start(&db, None).await?;
    let sampler = MemorySampler::start(gateway.pid());
    let phases = measure_both(ctx, &db, &gateway, version).await;
    let memory = sampler.stop().await;
    gateway.stop().await?;
    let phases = phases?;

    let rate = ctx.sizes.live_rate;
    let mut outcome = FigureOutcome::default();
    for (ops, phase) in &phases {
        let (p50, p99) = (
            percentile(&phase.latencies, 0.5),
            percentile(&phase.latencies, 0.99),
        );
        let max = phase.latencies.last().copied().unwrap_or(f64::NAN);
        let at = format!(
            "{} ops stored, {rate} writes/s, {streams} streams",
            thousands(*ops as f64)
        );
        ctx.progress(NAME, format!("{at}: p50 {p50:.2} ms, p99 {p99:.2} ms"));
        outcome.measurements.push(
            Measurement::new(
                format!("Live latency, {at}: p50 commit → client"),
                Quantity::millis(p50),
            )
            .target(Target::AtMost(20.0))
            .reference("PowerSync: 13 ms p50 on empty storage, ~420 ms p50 with 1.8M ops stored"),
        );
        outcome.measurements.push(
            Measurement::new(
                format!("Live latency, {at}: p99 commit → client"),
                Quantity::millis(p99),
            )
            .target(Target::AtMost(100.0)),
        );
        outcome.notes.push(format!(
            "{} ops stored: {} writes in {:.1} s (achieved {} writes/s, {} started > 5 ms late), {} never reached their stream; \
             {} checkpoint completions received over all streams; max latency {max:.1} ms",
            thousands(*ops as f64),
            thousands(phase.writes as f64),
            phase.span,
            thousands(phase.writes as f64 / phase.span),
            phase.late,
            phase.missing,
            thousands(phase.completions as f64),
        ));
        outcome.notes.push(format!(
            "{} ops stored: of which commit → covering checkpoint created (applier) p50 {:.2} ms, p99 {:.1} ms, max {:.1} ms; \
             checkpoint created → usable on the client (NOTIFY, gateway, network) p50 {:.2} ms, p99 {:.1} ms, max {:.1} ms",
            thousands(*ops as f64),
            percentile(&phase.to_checkpoint, 0.5),
            percentile(&phase.to_checkpoint, 0.99),
            phase.to_checkpoint.last().copied().unwrap_or(f64::NAN),
            percentile(&phase.checkpoint_to_client, 0.5),
            percentile(&phase.checkpoint_to_client, 0.99),
            phase.checkpoint_to_client.last().copied().unwrap_or(f64::NAN),
        ));
    }
    outcome.notes.push(format!(
        "half the writes insert a new row, half update an existing one, over {WRITERS} connections; gateway process peak RSS {:.0} MiB, peak private memory (RssAnon) {:.0} MiB",
        memory.peak_rss_kib as f64 / 1024.0,
        memory.anon_peak_kib as f64 / 1024.0,
    ));
    Ok(outcome)
}
