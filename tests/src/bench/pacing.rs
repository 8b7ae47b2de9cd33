//! Writes at a fixed rate: [`paced_writes`] commits `n` single-statement transactions at `rate`
//! per second over a few connections of their own, and records when each commit was
//! acknowledged. Shared by the latency figures; what each write is (which statement, which
//! parameters) is the figure's business.

use std::time::Duration;

use anyhow::Context as _;
use futures::future::try_join_all;
use tokio_postgres::types::ToSql;

use super::applier::epoch_now;
use crate::database::TestDb;

/// The parameters of one write.
pub type WriteParams = Vec<Box<dyn ToSql + Sync + Send>>;

/// One write: which of the prepared statements to execute, with which parameters.
pub struct Write {
    /// Index into the `statements` given to [`paced_writes`].
    pub statement: usize,
    /// Its parameters.
    pub params: WriteParams,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("statement", &self.statement)
            .field("params", &self.params.len())
            .finish()
    }
}

/// What [`paced_writes`] did.
#[derive(Debug, Clone, Default)]
pub struct PacedRun {
    /// Per write `i`: `(i, epoch seconds when its COMMIT was acknowledged)` (client clock), in
    /// acknowledgement order.
    pub commits: Vec<(i64, f64)>,
    /// Writes that started more than 5 ms after they were due (the writers fell behind).
    pub late: usize,
}

impl PacedRun {
    /// Seconds from the first acknowledged commit to the last.
    pub fn span(&self) -> f64 {
        match (self.commits.first(), self.commits.last()) {
            (Some(a), Some(b)) if b.1 > a.1 => b.1 - a.1,
            _ => f64::NAN,
        }
    }
}

/// Commits writes `0..n`, each a transaction of its own (autocommit), at `rate` per second:
/// write `i` is due `i / rate` seconds after the start and runs on connection `i % writers` (a
/// connection that falls behind writes at once). `statements` are prepared on each of the
/// `writers` connections first; `plan(i)` says what write `i` is.
pub async fn paced_writes(
    db: &TestDb,
    n: i64,
    rate: u32,
    writers: usize,
    statements: &[&str],
    plan: impl Fn(i64) -> Write + Sync,
) -> anyhow::Result<PacedRun> {
    let writers = writers.max(1) as i64;
    let mut clients = Vec::new();
    for _ in 0..writers {
        let client = db.connect().await?;
        let mut prepared = Vec::new();
        for sql in statements {
            prepared.push(
                client
                    .prepare(sql)
                    .await
                    .with_context(|| format!("preparing {sql}"))?,
            );
        }
        clients.push((client, prepared));
    }
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let plan = &plan;
    let per_writer = try_join_all(clients.iter().enumerate().map(
        |(w, (client, prepared))| async move {
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
                let write = plan(i);
                let statement = prepared
                    .get(write.statement)
                    .with_context(|| format!("write {i}: no statement {}", write.statement))?;
                let params: Vec<&(dyn ToSql + Sync)> = write
                    .params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                client
                    .execute(statement, &params)
                    .await
                    .with_context(|| format!("write {i}"))?;
                commits.push((i, epoch_now()));
                i += writers;
            }
            anyhow::Ok((commits, late))
        },
    ))
    .await?;
    let mut run = PacedRun::default();
    for (commits, late) in per_writer {
        run.commits.extend(commits);
        run.late += late;
    }
    run.commits.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(run)
}
