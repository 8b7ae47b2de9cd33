//! What a figure is: a named measurement the benchmark can run ([`Figure`]), the sizes it runs at
//! ([`Sizes`], full or `--quick`), and what the run gives it ([`Context`]: sizes, progress lines,
//! throwaway clusters).
//!
//! The figures themselves live in [`super::figures`], one file each, listed by its registry.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;

use super::machine::Machine;
use super::report::FigureOutcome;
use crate::cluster::{Cluster, ClusterOptions};
use crate::database::TestDb;

/// One figure of the benchmark.
///
/// A figure starts what it needs (its own cluster through [`Context::worker_database`], a
/// gateway, clients), measures ferry and the raw limit of the same work in the same run, and
/// returns rows for the table. It cleans up by dropping what it started.
pub trait Figure: Send + Sync {
    /// The name `--only` selects it by (`bulk_ingest`).
    fn name(&self) -> &'static str;

    /// One line saying what it measures (shown by `--list`).
    fn about(&self) -> &'static str;

    /// Measures.
    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>>;
}

/// How big each figure's workload is.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// `"full"` or `"quick"`.
    pub name: &'static str,
    /// Bulk ingest: row changes in all.
    pub bulk_rows: i64,
    /// Bulk ingest: the transactions they are committed in.
    pub bulk_transactions: i64,
    /// Backlog: single-row transactions.
    pub backlog_transactions: i64,
    /// Backlog and steady lag: concurrent writing connections.
    pub writers: usize,
    /// Steady lag: the commit rates measured, per second.
    pub lag_rates: Vec<u32>,
    /// Steady lag: seconds of writing at each rate.
    pub lag_seconds: u32,
    /// Snapshot: rows of the table.
    pub snapshot_rows: i64,
    /// Redeploy: rows of the table the new rules are built over.
    pub redeploy_rows: i64,
    /// Initial sync: rows of the one bucket a client downloads.
    pub initial_sync_rows: i64,
    /// Live latency: connected streams (one user each).
    pub live_streams: usize,
    /// Live latency: single-row commits per second.
    pub live_rate: u32,
    /// Live latency: seconds of writing per storage size.
    pub live_seconds: u32,
    /// Live latency: rows (so ops) stored before the second measurement.
    pub live_stored_rows: i64,
    /// Idle streams: concurrent streams opened against one gateway process.
    pub idle_streams: usize,
    /// Client apply: rows of the synthetic checkpoint.
    pub client_apply_rows: u64,
}

impl Sizes {
    /// The sizes of the issue.
    pub fn full() -> Sizes {
        Sizes {
            name: "full",
            bulk_rows: 1_000_000,
            bulk_transactions: 10,
            backlog_transactions: 20_000,
            writers: 4,
            lag_rates: vec![500, 2000],
            lag_seconds: 20,
            snapshot_rows: 1_000_000,
            redeploy_rows: 1_000_000,
            initial_sync_rows: 1_000_000,
            live_streams: 100,
            live_rate: 1000,
            live_seconds: 20,
            live_stored_rows: 1_000_000,
            idle_streams: 10_000,
            client_apply_rows: 1_000_000,
        }
    }

    /// Small sizes for a smoke test of a couple of minutes.
    pub fn quick() -> Sizes {
        Sizes {
            name: "quick",
            bulk_rows: 100_000,
            bulk_transactions: 10,
            backlog_transactions: 2_000,
            writers: 4,
            lag_rates: vec![500, 2000],
            lag_seconds: 4,
            snapshot_rows: 100_000,
            redeploy_rows: 100_000,
            initial_sync_rows: 100_000,
            live_streams: 100,
            live_rate: 1000,
            live_seconds: 4,
            live_stored_rows: 100_000,
            idle_streams: 1_000,
            client_apply_rows: 100_000,
        }
    }
}

/// What every figure gets from the run.
#[derive(Debug)]
pub struct Context {
    /// The sizes of this run.
    pub sizes: Sizes,
    started: Instant,
    machine: Mutex<Machine>,
}

impl Context {
    /// A run with these sizes, on this machine.
    pub fn new(sizes: Sizes, machine: Machine) -> Context {
        Context {
            sizes,
            started: Instant::now(),
            machine: Mutex::new(machine),
        }
    }

    /// Prints a progress line for `figure` on stderr.
    pub fn progress(&self, figure: &str, message: impl std::fmt::Display) {
        eprintln!(
            "[{:>7.1}s] {figure}: {message}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Starts a throwaway cluster whose ferry applier worker serves database `name`, and creates
    /// that database with the extension. The cluster is removed when the returned database is
    /// dropped.
    pub async fn worker_database(&self, name: &str) -> anyhow::Result<WorkerDb> {
        let cluster = Arc::new(Cluster::start(ClusterOptions {
            worker_databases: vec![name.to_owned()],
        })?);
        let db = TestDb::create_named(cluster, name).await?;
        let known = self.lock_machine().postgres.is_empty();
        if known {
            let mut machine = self.machine();
            machine.read_server(&db).await?;
            *self.lock_machine() = machine;
        }
        Ok(WorkerDb { db })
    }

    /// The machine description so far.
    pub fn machine(&self) -> Machine {
        self.lock_machine().clone()
    }

    fn lock_machine(&self) -> std::sync::MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A [`TestDb`] on a cluster of its own whose applier worker serves it.
///
/// Dropping it first closes the database to new connections: the postmaster restarts a
/// terminated worker after a second, and a worker reconnecting while [`TestDb`]'s cleanup drops
/// the database would make `DROP DATABASE` fail. Then the database, its slots and the cluster go
/// as usual.
#[derive(Debug)]
pub struct WorkerDb {
    db: TestDb,
}

impl Deref for WorkerDb {
    type Target = TestDb;

    fn deref(&self) -> &TestDb {
        &self.db
    }
}

impl Drop for WorkerDb {
    fn drop(&mut self) {
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", self.db.name());
        let closed = self
            .db
            .cluster()
            .with_sync_client("postgres", move |c| Ok(c.batch_execute(&sql)?));
        if let Err(e) = closed {
            eprintln!("warning: closing database {}: {e:#}", self.db.name());
        }
    }
}
