//! Figure "initial sync": a table of 1M rows (~150 bytes each), with rules that put every row in
//! one bucket for the syncing user, already active; a new client downloads it all. Measured
//! twice, each against a fresh gateway process whose peak memory (`VmHWM`) is reported:
//!
//! - **raw streaming reader**: one `POST /sync/stream` read line by line up to the first
//!   `checkpoint_complete`, ops counted without parsing (and checked against the row count):
//!   rows/s from the request to the completion, next to COPY out of the same table;
//! - **ferry-client**: a real `ferry_client` database on a temp SQLite file, from `connect` until
//!   its first sync is published (then every row is checked to be queryable): rows/s, next to
//!   the raw SQLite insert of the same rows.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use ferry_client::{FerryDatabase, GatewayConnector, Schema, SyncOptions, Table};
use futures::future::BoxFuture;

use crate::bench::applier::{self, MemorySampler, SampledMemory};
use crate::bench::figure::{Context, Figure};
use crate::bench::gateway_process::GatewayProcess;
use crate::bench::raw;
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
use crate::bench::stream_reader::SyncStreamReader;
use crate::bench::workload;
use crate::database::TestDb;
use crate::gateway;

const NAME: &str = "initial_sync";

/// One global bucket holding every todo: whoever syncs downloads the whole table.
const RULES: &str = "
bucket_definitions:
  everything:
    data:
      - SELECT * FROM todos
";

/// The user who syncs.
const USER: &str = "bench-user";

/// The longest a first sync may take.
const SYNC_TIMEOUT: Duration = Duration::from_secs(3600);

/// The gateway's memory target from the issue: under 100 MB.
const GATEWAY_MEMORY_MIB: f64 = 100e6 / 1_048_576.0;

/// Initial sync: rows/s of a first download, raw reader and ferry-client, vs COPY out and raw
/// SQLite insert; gateway memory.
#[derive(Debug, Clone, Copy)]
pub struct InitialSync;

impl Figure for InitialSync {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "rows/s of a first sync of one big bucket (raw stream reader vs COPY out; ferry-client vs raw SQLite insert); gateway memory"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

/// The `todos` table as the client sees it.
fn client_schema() -> Schema {
    Schema::new(vec![Table::new("todos")
        .text("list_id")
        .text("owner_id")
        .text("description")
        .integer("done")
        .integer("priority")
        .text("created_at")])
}

/// What the raw streaming reader measured.
struct RawRead {
    seconds: f64,
    bytes: u64,
    data_lines: u64,
    memory: SampledMemory,
}

/// One stream read to its first `checkpoint_complete` from a fresh gateway process.
async fn raw_read(ctx: &Context, db: &TestDb, n: i64) -> anyhow::Result<RawRead> {
    let gateway = GatewayProcess::start(db, None).await?;
    ctx.progress(NAME, format!("raw streaming reader: {n} rows"));
    let sampler = MemorySampler::start(gateway.pid());
    let started = Instant::now();
    let read = async {
        let mut reader = SyncStreamReader::open(gateway.addr(), USER, "bench-raw-reader").await?;
        tokio::time::timeout(SYNC_TIMEOUT, reader.read_first_sync())
            .await
            .context("the raw reader's first sync timed out")?
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let memory = sampler.stop().await;
    gateway.stop().await?;
    let first = read?;
    ensure!(
        first.ops == n as u64,
        "the raw reader received {} ops, the table has {n} rows",
        first.ops
    );
    Ok(RawRead {
        seconds,
        bytes: first.bytes,
        data_lines: first.data_lines,
        memory,
    })
}

/// A ferry client on a temp file syncing from a fresh gateway process until its first sync is
/// published; checks that all `n` rows are queryable. Returns the seconds from `connect` to
/// the publication and the gateway's memory.
async fn client_sync(
    ctx: &Context,
    db: &TestDb,
    dir: &std::path::Path,
    n: i64,
) -> anyhow::Result<(f64, SampledMemory)> {
    let gateway = GatewayProcess::start(db, None).await?;
    ctx.progress(NAME, format!("ferry-client: {n} rows"));
    let client = FerryDatabase::open(dir.join("client.db"), client_schema())?;
    let sampler = MemorySampler::start(gateway.pid());
    let started = Instant::now();
    let synced = async {
        client
            .connect(
                GatewayConnector::new(gateway.url(), gateway::token(USER)),
                SyncOptions::default(),
            )
            .await?;
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        let mut first_sync = std::pin::pin!(client.wait_for_first_sync());
        loop {
            tokio::select! {
                () = &mut first_sync => break,
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    ensure!(tokio::time::Instant::now() < deadline, "no first sync within {SYNC_TIMEOUT:?}");
                    let status = client.status();
                    if let Some(progress) = &status.download_progress {
                        let (done, total) = progress.overall();
                        ctx.progress(NAME, format!("ferry-client at {done} of {total} ops"));
                    }
                    if let Some(e) = &status.download_error {
                        ctx.progress(NAME, format!("ferry-client download error: {e}"));
                    }
                }
            }
        }
        anyhow::Ok(started.elapsed().as_secs_f64())
    }
    .await;
    let memory = sampler.stop().await;
    client.disconnect().await;
    gateway.stop().await?;
    let seconds = synced?;
    let count: i64 = client
        .query("SELECT count(*) FROM todos", ())
        .await?
        .first()
        .context("no count")?
        .get(0)?;
    ensure!(
        count == n,
        "the client holds {count} rows after its first sync, the table has {n}"
    );
    client.close().await;
    Ok((seconds, memory))
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let n = ctx.sizes.initial_sync_rows;
    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_initial_sync").await?;
    workload::create_schema(db.client()).await?;
    ctx.progress(NAME, format!("filling the table with {n} rows"));
    workload::fill(db.client(), 1, n).await?;
    db.exec("VACUUM ANALYZE todos").await?;
    applier::deploy_and_wait_active(ctx, NAME, &db, RULES, Duration::from_secs(3600)).await?;

    let (copy_time, copy_bytes) = raw::copy_out(&db, "todos").await?;
    let raw = raw_read(ctx, &db, n).await?;
    ctx.progress(NAME, format!("raw reader: {:.2} s", raw.seconds));

    let dir = tempfile::tempdir().context("creating a temp directory")?;
    let (client_seconds, client_memory) = client_sync(ctx, &db, dir.path(), n).await?;
    ctx.progress(NAME, format!("ferry-client: {client_seconds:.2} s"));
    let (insert_time, inserted) = raw::sqlite_insert_todos(&db, &dir.path().join("raw.db")).await?;
    ensure!(
        inserted == n as u64,
        "raw SQLite insert: {inserted} rows of {n}"
    );

    let what = "rows";
    let size = thousands(n as f64);
    let reference = "PowerSync service with its own Rust SDK on this machine: ~12,700 rows/s for 1M rows; ~450 MB";
    Ok(FigureOutcome {
        measurements: vec![
            Measurement::new(
                format!("Initial sync of {size} rows in one bucket: raw stream reader"),
                Quantity::rate(n as f64, raw.seconds, what),
            )
            .raw(
                "COPY out",
                Quantity::rate(n as f64, copy_time.as_secs_f64(), what),
            )
            .target(Target::AtLeast(100_000.0)),
            Measurement::new(
                "Initial sync, raw stream reader: gateway peak memory (VmHWM)",
                Quantity::kib(raw.memory.peak_rss_kib),
            )
            .target(Target::AtMost(GATEWAY_MEMORY_MIB)),
            Measurement::new(
                format!("Initial sync of {size} rows in one bucket: ferry-client"),
                Quantity::rate(n as f64, client_seconds, what),
            )
            .raw(
                "raw SQLite insert",
                Quantity::rate(n as f64, insert_time.as_secs_f64(), what),
            )
            .target(Target::AtLeast(100_000.0))
            .reference(reference),
            Measurement::new(
                "Initial sync, ferry-client: gateway peak memory (VmHWM)",
                Quantity::kib(client_memory.peak_rss_kib),
            )
            .target(Target::AtMost(GATEWAY_MEMORY_MIB))
            .reference("PowerSync ~450 MB"),
        ],
        notes: vec![
            format!(
                "raw reader: {:.2} s from the request to checkpoint_complete, {:.0} MiB of NDJSON in {} data lines; COPY out {:.2} s ({:.0} MiB of text)",
                raw.seconds,
                raw.bytes as f64 / 1_048_576.0,
                raw.data_lines,
                copy_time.as_secs_f64(),
                copy_bytes as f64 / 1_048_576.0,
            ),
            format!(
                "ferry-client: {client_seconds:.2} s from connect to the published first sync; raw SQLite insert of the same rows {:.2} s",
                insert_time.as_secs_f64(),
            ),
            format!(
                "gateway process (a fresh one per measurement): peak RSS {:.0} MiB / {:.0} MiB, peak private memory (RssAnon, sampled every 50 ms) {:.0} MiB / {:.0} MiB (raw reader / ferry-client)",
                raw.memory.peak_rss_kib as f64 / 1024.0,
                client_memory.peak_rss_kib as f64 / 1024.0,
                raw.memory.anon_peak_kib as f64 / 1024.0,
                client_memory.anon_peak_kib as f64 / 1024.0,
            ),
        ],
    })
}
