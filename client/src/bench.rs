//! Apply throughput, measured against the raw limit of the same machine in the same run
//! (DESIGN.md, "Quality bars"): [`run_apply_benchmark`] times
//!
//! 1. **raw SQLite insert** ([`raw_sqlite_insert`], the one definition of that raw limit, also
//!    used by the `ferry-tests` benchmark for rows read from Postgres): one rusqlite prepared
//!    `INSERT` per row into a plain table, in one transaction, WAL mode, `synchronous = NORMAL`,
//!    SQLite's other settings left at their defaults; here into
//!    `todos(id TEXT PRIMARY KEY, description TEXT, completed INTEGER, list_id TEXT)`;
//! 2. **ferry apply** of a checkpoint holding the same rows: the NDJSON stream (`checkpoint`,
//!    `data` lines of [`BenchConfig::ops_per_line`] PUTs, `checkpoint_complete`) pushed in 64 KiB
//!    chunks through [`ferry_protocol::SyncLineDecoder`] into the [`SyncStateMachine`], each
//!    chunk's lines in one transaction as the driver does, until the checkpoint is published and
//!    committed: decoding, storing the ops, checksum validation and publication all count.
//!
//! Both run on fresh files in the given directory. The `ferry-tests` benchmark binary calls
//! [`run_apply_benchmark`]; `cargo run --release -p ferry-client --example apply_bench` prints a
//! report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_protocol::SyncLineDecoder;
use rusqlite::{Connection, Params};

use crate::error::{Error, Result};
use crate::schema::{Schema, Table};
use crate::storage::open_writer;
use crate::sync::{SyncAction, SyncEvent, SyncStateMachine};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Where the two database files are created (removed first if present).
    pub dir: PathBuf,
    /// Rows in the checkpoint.
    pub rows: u64,
    /// Ops per `data` line (the PowerSync service sends up to 1000 per line).
    pub ops_per_line: usize,
}

impl BenchConfig {
    /// `rows` rows in `dir`, 1000 ops per line.
    pub fn new(dir: impl Into<PathBuf>, rows: u64) -> BenchConfig {
        BenchConfig {
            dir: dir.into(),
            rows,
            ops_per_line: 1000,
        }
    }
}

/// Timings of one run.
#[derive(Debug, Clone)]
pub struct ApplyBenchmark {
    /// Rows in the checkpoint.
    pub rows: u64,
    /// Size of the NDJSON stream.
    pub stream_bytes: u64,
    /// The raw SQLite insert of the same rows.
    pub raw_insert: Duration,
    /// The whole apply: from the first byte to the published, committed checkpoint.
    pub apply: Duration,
    /// Of which handling `checkpoint_complete` (validation and publication).
    pub publish: Duration,
}

impl ApplyBenchmark {
    /// Rows per second of the raw insert.
    pub fn raw_rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.raw_insert.as_secs_f64().max(1e-9)
    }

    /// Rows per second of the apply.
    pub fn apply_rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.apply.as_secs_f64().max(1e-9)
    }

    /// Apply rate divided by raw insert rate (the target is at least 0.5).
    pub fn ratio(&self) -> f64 {
        self.apply_rows_per_sec() / self.raw_rows_per_sec()
    }

    /// A human-readable summary.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "rows:              {} ({:.1} MB of NDJSON)",
            self.rows,
            self.stream_bytes as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "raw SQLite insert: {:>10.0} rows/s ({:.2} s)",
            self.raw_rows_per_sec(),
            self.raw_insert.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "ferry apply:       {:>10.0} rows/s ({:.2} s, of which publish {:.2} s)",
            self.apply_rows_per_sec(),
            self.apply.as_secs_f64(),
            self.publish.as_secs_f64()
        );
        let _ = write!(out, "apply / raw:       {:.2}", self.ratio());
        out
    }
}

/// The schema of the synthetic rows.
pub fn bench_schema() -> Schema {
    Schema::new(vec![Table::new("todos")
        .text("description")
        .integer("completed")
        .text("list_id")])
}

/// Row `i` of the synthetic data: `(id, description, completed, list_id)`. Ids are
/// UUID-shaped and in no particular order, like those of a real app.
pub fn synthetic_row(i: u64) -> (String, String, i64, String) {
    let a = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5851_F42D_4C95_7F2D;
    let b = a.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ i;
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        (b >> 52) & 0xFFF,
        b & 0xFFFF_FFFF_FFFF
    );
    (
        id,
        format!("Todo number {i}"),
        i64::from(i.is_multiple_of(3)),
        format!("list-{}", i % 100),
    )
}

/// The NDJSON lines of a checkpoint holding `rows` synthetic rows in one bucket.
pub fn synthetic_stream(rows: u64, ops_per_line: usize) -> Vec<Vec<u8>> {
    let ops_per_line = ops_per_line.max(1) as u64;
    let checksum = |op_id: u64| (op_id.wrapping_mul(2_654_435_761) & 0xFFFF_FFFF) as u32;
    let total: u32 = (1..=rows).fold(0u32, |acc, op| acc.wrapping_add(checksum(op)));
    let mut lines = Vec::new();
    lines.push(
        format!(
            r#"{{"checkpoint":{{"last_op_id":"{rows}","buckets":[{{"bucket":"bench[]","checksum":{total},"count":{rows},"priority":3,"subscriptions":[{{"default":0}}]}}],"streams":[{{"name":"bench","is_default":true,"errors":[]}}]}}}}"#
        )
        .into_bytes(),
    );
    let mut op = 1;
    while op <= rows {
        let last = (op + ops_per_line - 1).min(rows);
        let mut line = String::with_capacity(220 * (last - op + 1) as usize);
        let _ = write!(
            line,
            r#"{{"data":{{"bucket":"bench[]","after":"{}","next_after":"{last}","has_more":{},"data":["#,
            op - 1,
            last < rows
        );
        for i in op..=last {
            let (id, description, completed, list_id) = synthetic_row(i);
            if i > op {
                line.push(',');
            }
            let data = format!(
                r#"{{"id":"{id}","description":"{description}","completed":{completed},"list_id":"{list_id}"}}"#
            );
            let _ = write!(
                line,
                r#"{{"op_id":"{i}","op":"PUT","object_type":"todos","object_id":"{id}","subkey":null,"checksum":{},"data":{}}}"#,
                checksum(i),
                serde_json::Value::String(data)
            );
        }
        line.push_str("]}}");
        lines.push(line.into_bytes());
        op = last + 1;
    }
    lines.push(format!(r#"{{"checkpoint_complete":{{"last_op_id":"{rows}"}}}}"#).into_bytes());
    lines
}

fn fresh(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Task(format!(
                    "cannot remove {}: {e}",
                    PathBuf::from(p).display()
                )))
            }
        }
    }
    Ok(())
}

/// The raw SQLite insert (DESIGN.md, "Quality bars"): on a fresh file at `path` in WAL mode with
/// `synchronous = NORMAL`, runs `create_table` (a plain table, untimed), then times one
/// transaction executing the prepared statement `insert` once per item of `rows`, committed.
///
/// `rows` should be already materialized (e.g. a slice mapped to tuples of references), so that
/// only SQLite's work is timed.
pub fn raw_sqlite_insert<P: Params>(
    path: &Path,
    create_table: &str,
    insert: &str,
    rows: impl IntoIterator<Item = P>,
) -> Result<Duration> {
    fresh(path)?;
    let mut conn = Connection::open(path)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    conn.execute_batch(create_table)?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut statement = tx.prepare(insert)?;
        for row in rows {
            statement.execute(row)?;
        }
    }
    tx.commit()?;
    Ok(started.elapsed())
}

/// Times the raw insert of synthetic rows `1..=rows` into a plain table (see the module docs).
pub fn raw_insert(path: &Path, rows: u64) -> Result<Duration> {
    let data: Vec<_> = (1..=rows).map(synthetic_row).collect();
    raw_sqlite_insert(
        path,
        "CREATE TABLE todos(id TEXT PRIMARY KEY NOT NULL, description TEXT, completed INTEGER, list_id TEXT);",
        "INSERT INTO todos(id, description, completed, list_id) VALUES (?1, ?2, ?3, ?4)",
        data.iter()
            .map(|(id, description, completed, list_id)| (id, description, completed, list_id)),
    )
}

/// Runs both measurements (see the module docs) and checks that every row was published.
pub fn run_apply_benchmark(config: &BenchConfig) -> Result<ApplyBenchmark> {
    std::fs::create_dir_all(&config.dir)
        .map_err(|e| Error::Task(format!("cannot create {}: {e}", config.dir.display())))?;
    let raw = raw_insert(&config.dir.join("raw.db"), config.rows)?;

    let lines = synthetic_stream(config.rows, config.ops_per_line);
    let stream: Vec<u8> = lines
        .into_iter()
        .flat_map(|mut l| {
            l.push(b'\n');
            l
        })
        .collect();
    let path = config.dir.join("ferry.db");
    fresh(&path)?;
    let schema = bench_schema();
    let mut writer = open_writer(Some(&path), &schema)?;
    let mut sm = SyncStateMachine::new(writer.client_id.clone(), &schema, None);
    {
        let tx = writer.conn.transaction()?;
        sm.handle(&tx, SyncEvent::Start)?;
        sm.handle(&tx, SyncEvent::ConnectionEstablished)?;
        tx.commit()?;
    }

    let started = Instant::now();
    let mut decoder = SyncLineDecoder::new();
    let mut publish = Duration::ZERO;
    let mut published = false;
    for chunk in stream.chunks(64 * 1024) {
        decoder.push(chunk);
        let mut lines = Vec::new();
        while let Some(line) = decoder.next_line() {
            lines.push(line?);
        }
        if lines.is_empty() {
            continue;
        }
        let tx = writer.conn.transaction()?;
        for line in lines {
            let is_complete = matches!(line, ferry_protocol::SyncLine::CheckpointComplete(_));
            let t = Instant::now();
            let actions = sm.handle(&tx, SyncEvent::Line(line))?;
            for action in actions {
                match action {
                    SyncAction::DidCompleteSync { priority: None, .. } => published = true,
                    SyncAction::CloseStream { error: Some(e) } => return Err(e),
                    _ => {}
                }
            }
            if is_complete {
                publish += t.elapsed();
            }
        }
        let t = Instant::now();
        tx.commit()?;
        if published {
            publish += t.elapsed();
        }
    }
    decoder.finish()?;
    let apply = started.elapsed();
    let count: i64 = writer
        .conn
        .query_row("SELECT count(*) FROM todos", [], |r| r.get(0))?;
    if !published || u64::try_from(count).ok() != Some(config.rows) {
        return Err(Error::Task(format!(
            "the benchmark checkpoint was not fully published: {count} of {} rows",
            config.rows
        )));
    }
    Ok(ApplyBenchmark {
        rows: config.rows,
        stream_bytes: stream.len() as u64,
        raw_insert: raw,
        apply,
        publish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_benchmark_publishes_every_row() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = BenchConfig::new(dir.path(), 2_500);
        config.ops_per_line = 300;
        let result = run_apply_benchmark(&config)?;
        assert_eq!(result.rows, 2_500);
        assert!(result.apply > Duration::ZERO && result.raw_insert > Duration::ZERO);
        assert!(result.report().contains("apply / raw"));
        Ok(())
    }

    #[test]
    fn synthetic_ids_are_distinct() {
        let ids: std::collections::HashSet<String> =
            (1..=10_000).map(|i| synthetic_row(i).0).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
