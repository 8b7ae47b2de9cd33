//! The raw limits ferry's figures are compared with, each defined once (DESIGN.md, "Quality
//! bars"):
//!
//! - **raw decode**: `pg_recvlogical` with `test_decoding` over the same committed rows, from a
//!   slot created before the writes up to the LSN after them, output to `/dev/null`
//!   ([`RawDecodeSlot`]);
//! - **COPY out**: `COPY <table> TO STDOUT`, drained and discarded ([`copy_out`]);
//! - **raw SQLite insert**: defined once in the client crate
//!   (`ferry_client::bench::raw_sqlite_insert`); [`sqlite_insert_todos`] runs it over the rows
//!   of the `todos` table.
//!
//! Figures decide what to measure; this module only knows how to run each raw limit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt;

use crate::database::TestDb;

/// The directory of the Postgres programs the harness clusters run (as `scripts/pg-cluster.sh`
/// picks it: `$PG_BIN`, else Postgres 15's).
pub fn pg_bin() -> PathBuf {
    std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// A `test_decoding` slot created before the writes that raw decode will read.
#[derive(Debug)]
pub struct RawDecodeSlot {
    name: String,
}

impl RawDecodeSlot {
    /// Creates logical slot `name` with `test_decoding` on `db`'s database.
    pub async fn create(db: &TestDb, name: &str) -> anyhow::Result<RawDecodeSlot> {
        db.query_one(
            "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
            &[&name],
        )
        .await?;
        Ok(RawDecodeSlot {
            name: name.to_owned(),
        })
    }

    /// Runs `pg_recvlogical --start` from the slot up to `endpos`, writing to `/dev/null`, and
    /// returns how long it took (the program's whole run: connect, decode, exit).
    pub async fn decode_to(&self, db: &TestDb, endpos: &str) -> anyhow::Result<Duration> {
        let program = pg_bin().join("pg_recvlogical");
        let conn = db.cluster().conn_string(db.name());
        let started = Instant::now();
        let output = tokio::process::Command::new(&program)
            .arg(format!("--dbname={conn}"))
            .arg(format!("--slot={}", self.name))
            .arg("--start")
            .arg(format!("--endpos={endpos}"))
            .args(["--no-loop", "--fsync-interval=0", "--file=/dev/null"])
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", program.display()))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!(
                "pg_recvlogical failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(elapsed)
    }

    /// Drops the slot (it would retain WAL).
    pub async fn drop_slot(self, db: &TestDb) -> anyhow::Result<()> {
        db.query_one("SELECT pg_drop_replication_slot($1)", &[&self.name])
            .await?;
        Ok(())
    }
}

/// `COPY <table> TO STDOUT` on a connection of its own, drained and discarded: how long it took
/// and how many bytes it produced.
pub async fn copy_out(db: &TestDb, table: &str) -> anyhow::Result<(Duration, u64)> {
    let client = db.connect().await?;
    let started = Instant::now();
    let stream = client
        .copy_out(&format!("COPY {table} TO STDOUT"))
        .await
        .with_context(|| format!("COPY {table} TO STDOUT"))?;
    let mut stream = std::pin::pin!(stream);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.context("reading COPY data")?.len() as u64;
    }
    Ok((started.elapsed(), bytes))
}

/// The `todos` table ([`super::workload::SCHEMA`]) as a plain SQLite table.
const SQLITE_TODOS: &str = "CREATE TABLE todos(id TEXT PRIMARY KEY NOT NULL, list_id TEXT, \
     owner_id TEXT, description TEXT, done INTEGER, priority INTEGER, created_at TEXT);";

/// One `todos` row as SQLite values.
type TodoRow = (String, String, String, String, i64, i64, String);

/// Raw SQLite insert of every row of `db`'s `todos` table into a fresh SQLite file at `path`:
/// the rows are read from Postgres first (not timed), then `ferry_client::bench::raw_sqlite_insert`
/// inserts them. Returns how long the insert took and how many rows it inserted.
pub async fn sqlite_insert_todos(db: &TestDb, path: &Path) -> anyhow::Result<(Duration, u64)> {
    let rows = db
        .client()
        .query_raw(
            "SELECT id, list_id, owner_id, description, done::int4::int8, priority::int8, created_at::text \
             FROM todos",
            std::iter::empty::<i32>(),
        )
        .await
        .context("reading the todos rows")?;
    let mut rows = std::pin::pin!(rows);
    let mut data: Vec<TodoRow> = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row.context("reading a todos row")?;
        data.push((
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
        ));
    }
    let path = path.to_owned();
    let n = data.len() as u64;
    let elapsed = tokio::task::spawn_blocking(move || {
        ferry_client::bench::raw_sqlite_insert(
            &path,
            SQLITE_TODOS,
            "INSERT INTO todos(id, list_id, owner_id, description, done, priority, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            data.iter()
                .map(|(a, b, c, d, e, f, g)| (a, b, c, d, e, f, g)),
        )
    })
    .await
    .context("the raw SQLite insert panicked")?
    .context("raw SQLite insert")?;
    Ok((elapsed, n))
}
