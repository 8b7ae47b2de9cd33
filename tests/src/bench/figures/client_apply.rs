//! Figure "client apply": the client crate's apply benchmark
//! (`ferry_client::bench::run_apply_benchmark`): rows/s applying one checkpoint's data (decode,
//! store, validate, publish) into SQLite, next to the raw SQLite insert of the same rows measured
//! by the same call.

use anyhow::Context as _;
use ferry_client::bench::{run_apply_benchmark, BenchConfig};
use futures::future::BoxFuture;

use crate::bench::figure::{Context, Figure};
use crate::bench::report::{thousands, FigureOutcome, Measurement, Quantity, Target};

const NAME: &str = "client_apply";

/// Client apply: rows/s applying a checkpoint, vs raw SQLite insert.
#[derive(Debug, Clone, Copy)]
pub struct ClientApply;

impl Figure for ClientApply {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "rows/s the client applies a synthetic checkpoint into SQLite, vs raw SQLite insert"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, anyhow::Result<FigureOutcome>> {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: &Context) -> anyhow::Result<FigureOutcome> {
    let rows = ctx.sizes.client_apply_rows;
    let dir = tempfile::tempdir().context("creating a temp directory")?;
    let config = BenchConfig::new(dir.path(), rows);
    let ops_per_line = config.ops_per_line;
    ctx.progress(
        NAME,
        format!("raw SQLite insert and ferry apply of {rows} rows"),
    );
    let result = tokio::task::spawn_blocking(move || run_apply_benchmark(&config))
        .await
        .context("the apply benchmark panicked")?
        .context("the apply benchmark")?;
    ctx.progress(
        NAME,
        format!(
            "apply {:.2} s, raw insert {:.2} s",
            result.apply.as_secs_f64(),
            result.raw_insert.as_secs_f64()
        ),
    );
    let what = "rows";
    Ok(FigureOutcome {
        measurements: vec![Measurement::new(
            format!(
                "Client apply: a checkpoint of {} rows, {ops_per_line} ops per data line",
                thousands(rows as f64)
            ),
            Quantity::rate(rows as f64, result.apply.as_secs_f64(), what),
        )
        .raw(
            "raw SQLite insert",
            Quantity::rate(rows as f64, result.raw_insert.as_secs_f64(), what),
        )
        .target(Target::AtLeastFractionOfRaw(0.5))],
        notes: vec![format!(
            "{:.0} MiB of NDJSON; apply {:.2} s, of which validating and publishing at checkpoint_complete {:.2} s; raw SQLite insert {:.2} s",
            result.stream_bytes as f64 / 1_048_576.0,
            result.apply.as_secs_f64(),
            result.publish.as_secs_f64(),
            result.raw_insert.as_secs_f64(),
        )],
    })
}
