//! Measures how fast ferry applies a big checkpoint, next to a raw SQLite insert of the same rows
//! in the same run (see `ferry_client::bench`).
//!
//! ```text
//! cargo run --release -p ferry-client --example apply_bench -- --rows 1000000
//! ```

use std::path::PathBuf;

use clap::Parser;
use ferry_client::bench::{run_apply_benchmark, BenchConfig};

/// Apply throughput of ferry-client vs a raw SQLite insert.
#[derive(Parser)]
struct Args {
    /// Rows in the checkpoint.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Ops per data line.
    #[arg(long, default_value_t = 1000)]
    ops_per_line: usize,
    /// Directory for the database files (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = args.dir.unwrap_or_else(|| temp.path().to_path_buf());
    let mut config = BenchConfig::new(dir, args.rows);
    config.ops_per_line = args.ops_per_line;
    let result = run_apply_benchmark(&config)?;
    println!("{}", result.report());
    Ok(())
}
