//! Figure "idle streams": how many concurrent idle sync streams one gateway process holds, and
//! its memory per stream. N streams (a raw TCP/HTTP connection each from the benchmark process,
//! [`SyncStreamReader`]) are opened against a gateway process of their own; each reads up to its
//! first `checkpoint_complete` and then idles. Memory per stream is
//! `(VmRSS with N open − VmRSS before) / N`. Checked on the way: every stream completed its first
//! sync, a fresh stream still syncs with N open, and the gateway's Postgres connections
//! (`pg_stat_activity`) stay within its pool, since a stream holds no connection between
//! batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use futures::future::BoxFuture;
use futures::StreamExt;

use crate::bench::applier;
use crate::bench::figure::{Context, Figure};
use crate::bench::gateway_process::GatewayProcess;
use crate::bench::open_files;
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};
use crate::bench::stream_reader::SyncStreamReader;
use crate::bench::workload::{self, USERS};
use crate::database::TestDb;
use crate::gateway;
use crate::wait::wait_until;

const NAME: &str = "idle_streams";

/// Rows per user, so each stream's first sync has some data.
const ROWS_PER_USER: i64 = 10;

/// Streams being opened at once.
const OPEN_CONCURRENCY: usize = 64;

/// How long one stream may take to open and complete its first sync.
const FIRST_SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// Pause before reading memory, so that buffers of the opening burst are released.
const SETTLE: Duration = Duration::from_secs(2);

/// How long the gateway may take to end streams whose clients closed their connection (it
/// may only notice when it next writes: a keepalive is due every ~20 s).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The target from the issue.
const TARGET_STREAMS: f64 = 10_000.0;

/// Idle streams: concurrent streams per gateway process and memory per stream.
#[derive(Debug, Clone, Copy)]
pub struct IdleStreams;

impl Figure for IdleStreams {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "concurrent idle streams one gateway process holds, its memory per stream and its Postgres connections meanwhile"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

/// Opens stream number `i` (user `i % USERS`) and reads it to its first `checkpoint_complete`.
async fn open_synced(addr: std::net::SocketAddr, i: usize) -> anyhow::Result<SyncStreamReader> {
    let user = format!("user-{}", i as i64 % USERS);
    let mut reader = SyncStreamReader::open(addr, &user, &format!("bench-idle-{i}")).await?;
    tokio::time::timeout(FIRST_SYNC_TIMEOUT, reader.read_first_sync())
        .await
        .with_context(|| format!("stream {i}: no first sync within {FIRST_SYNC_TIMEOUT:?}"))??;
    Ok(reader)
}

/// The gateway's connections to Postgres now (its pool and its LISTEN connection: every
/// session of its login role on this database), by `application_name`.
async fn gateway_connections(db: &TestDb) -> anyhow::Result<Connections> {
    let rows = db
        .query(
            "SELECT application_name, count(*) FROM pg_stat_activity \
             WHERE usename = $1 AND datname = current_database() \
             GROUP BY 1 ORDER BY 1",
            &[&gateway::LOGIN_ROLE],
        )
        .await?;
    let by_name: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(Connections {
        total: by_name.iter().map(|(_, n)| n).sum(),
        by_name,
    })
}

/// The gateway's Postgres sessions at one moment.
#[derive(Debug)]
struct Connections {
    total: i64,
    by_name: Vec<(String, i64)>,
}

impl std::fmt::Display for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .by_name
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        write!(f, "{} ({})", self.total, parts.join(", "))
    }
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let n = ctx.sizes.idle_streams;
    let open_files = open_files::raise_to_hard_limit()?;
    if let Some(limit) = open_files {
        ensure!(
            limit >= n as u64 + 1_000,
            "the open-file limit is {limit}; {n} streams need more (raise the hard limit: ulimit -Hn)"
        );
    }
    ctx.progress(NAME, "starting a cluster with the applier worker");
    let db = ctx.worker_database("bench_idle").await?;
    workload::create_schema(db.client()).await?;
    workload::insert_range(db.client(), 1, ROWS_PER_USER * USERS).await?;
    applier::deploy_and_wait_active(ctx, NAME, &db, workload::RULES, Duration::from_secs(120))
        .await?;

    // The gateway's own limits, raised where they are below what the figure opens.
    let defaults = gateway::config_for("");
    let pool_size = defaults.postgres.pool_size as i64;
    let max_streams = (defaults.limits.max_streams < n + 1).then_some(n + 100);
    let gateway_process = GatewayProcess::start(&db, max_streams).await?;
    let addr = gateway_process.addr();

    // One stream first, so that what every process allocates once is in the baseline.
    drop(open_synced(addr, 0).await?);
    tokio::time::sleep(SETTLE).await;
    let before = gateway_process.memory()?;
    let connections_before = gateway_connections(&db).await?;

    ctx.progress(
        NAME,
        format!("opening {n} streams, {OPEN_CONCURRENCY} at a time"),
    );
    let started = Instant::now();
    let opening = AtomicBool::new(true);
    let (opened, peak_while_opening) = futures::join!(
        async {
            let mut pending = futures::stream::iter(0..n)
                .map(|i| open_synced(addr, i))
                .buffer_unordered(OPEN_CONCURRENCY);
            let mut streams = Vec::with_capacity(n);
            let mut result = Ok(());
            while let Some(stream) = pending.next().await {
                match stream {
                    Ok(stream) => streams.push(stream),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                if streams.len() % 1_000 == 0 {
                    ctx.progress(NAME, format!("{} streams synced", streams.len()));
                }
            }
            opening.store(false, Ordering::Relaxed);
            result.map(|()| streams)
        },
        async {
            // The gateway's Postgres sessions, sampled while the streams open.
            let mut peak = 0;
            while opening.load(Ordering::Relaxed) {
                if let Ok(c) = gateway_connections(&db).await {
                    peak = peak.max(c.total);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        }
    );
    let streams = opened?;
    let open_seconds = started.elapsed().as_secs_f64();
    ensure!(
        streams.len() == n,
        "{} of {n} streams completed their first sync",
        streams.len()
    );
    let connections_open = gateway_connections(&db).await?;
    tokio::time::sleep(SETTLE).await;
    let with = gateway_process.memory()?;
    let connections_idle = gateway_connections(&db).await?;

    let fresh_started = Instant::now();
    let fresh = open_synced(addr, n)
        .await
        .context("a fresh stream with all the others open")?;
    let fresh_ms = fresh_started.elapsed().as_secs_f64() * 1000.0;
    drop(fresh);
    let peak = gateway_process.memory()?.peak_rss_kib;
    let open_before_close = gateway_process.open_streams().await?;
    drop(streams);
    // How long the gateway takes to notice that idle clients went away, and what the process
    // keeps once their streams are gone (allocator retention vs per-stream state).
    let closed_at = Instant::now();
    let released = wait_until(
        "the gateway to end the closed streams",
        RELEASE_TIMEOUT,
        || async { Ok((gateway_process.open_streams().await? == 0).then_some(())) },
    )
    .await
    .map(|()| closed_at.elapsed().as_secs_f64());
    tokio::time::sleep(SETTLE).await;
    let after = gateway_process.memory()?;
    let still_open = gateway_process.open_streams().await.unwrap_or(-1);
    gateway_process.stop().await?;
    ensure!(
        open_before_close >= n as i64,
        "the gateway reported {open_before_close} open streams, {n} expected"
    );

    let per_stream_kib = with.rss_kib.saturating_sub(before.rss_kib) as f64 / n as f64;
    let anon_per_stream_kib = with.anon_kib.saturating_sub(before.anon_kib) as f64 / n as f64;
    ctx.progress(
        NAME,
        format!(
            "{n} streams: {per_stream_kib:.1} KiB each; a fresh stream synced in {fresh_ms:.0} ms"
        ),
    );
    let connections = peak_while_opening
        .max(connections_open.total)
        .max(connections_idle.total);
    Ok(FigureOutcome {
        measurements: vec![
            Measurement::new(
                "Idle streams held by one gateway process (all synced, a fresh one still syncs)",
                Quantity::count(n as f64, "streams"),
            )
            .target(Target::AtLeast(TARGET_STREAMS)),
            Measurement::new(
                format!(
                    "Idle streams: gateway memory per stream (ΔVmRSS / {})",
                    thousands(n as f64)
                ),
                Quantity::kibibytes(per_stream_kib),
            ),
            Measurement::new(
                format!(
                    "Idle streams: gateway resident memory with {} streams open (VmRSS)",
                    thousands(n as f64)
                ),
                Quantity::kib(with.rss_kib),
            ),
            Measurement::new(
                format!(
                    "Idle streams: gateway's Postgres connections with {} streams open",
                    thousands(n as f64)
                ),
                Quantity::count(connections as f64, "connections"),
            )
            .target(Target::AtMost((pool_size + 1) as f64)),
        ],
        notes: vec![
            format!(
                "opening and syncing {} streams ({OPEN_CONCURRENCY} at a time, {ROWS_PER_USER} rows each) took {open_seconds:.1} s ({} streams/s); a fresh stream then synced in {fresh_ms:.0} ms",
                thousands(n as f64),
                thousands(n as f64 / open_seconds),
            ),
            format!(
                "gateway VmRSS {:.1} MiB before, {:.1} MiB with the streams open (peak {:.1} MiB); private memory (RssAnon) {:.1} → {:.1} MiB, {anon_per_stream_kib:.1} KiB per stream",
                before.rss_kib as f64 / 1024.0,
                with.rss_kib as f64 / 1024.0,
                peak as f64 / 1024.0,
                before.anon_kib as f64 / 1024.0,
                with.anon_kib as f64 / 1024.0,
            ),
            format!(
                "gateway Postgres connections (pg_stat_activity, its login role): {connections_before} before, at most {peak_while_opening} while opening (sampled every 100 ms), {connections_open} right after, {connections_idle} idle; pool size {pool_size} plus one LISTEN connection; max_streams {}; open-file limit {}",
                max_streams.map_or_else(|| defaults.limits.max_streams.to_string(), |m| m.to_string()),
                open_files.map_or_else(|| "unlimited".to_owned(), |l| l.to_string()),
            ),
            format!(
                "the gateway's /metrics counted {open_before_close} open streams (the {n} idle ones, and closed ones it had not noticed yet); after the benchmark closed every connection: {}; VmRSS {:.1} MiB {} s later ({still_open} streams still open)",
                match released {
                    Ok(s) => format!("the gateway ended them all within {s:.1} s"),
                    Err(_) => format!("the gateway still had streams open after {} s", RELEASE_TIMEOUT.as_secs()),
                },
                after.rss_kib as f64 / 1024.0,
                SETTLE.as_secs(),
            ),
        ],
    })
}
