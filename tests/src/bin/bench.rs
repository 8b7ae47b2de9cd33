//! `ferry-bench`: measures ferry's speed and memory figures next to the raw limits of the same
//! machine in the same run, and writes them as a Markdown table.
//!
//! ```text
//! cargo run --release -p ferry-tests --bin ferry-bench -- [--quick] [--only NAME,...] [--out FILE] [--list]
//! ```
//!
//! Each figure starts its own throwaway cluster (removed when the figure ends). The figures live
//! in `ferry_tests::bench::figures`; this file only parses the command line, runs them in turn,
//! and prints or writes the report. At startup it raises its open-file limit to the hard limit.
//!
//! Gateway figures re-execute this binary with the hidden flag `--gateway-process <libpq
//! string>` to run the gateway in a process of its own (`ferry_tests::bench::gateway_process`).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use ferry_tests::bench::figures;
use ferry_tests::bench::gateway_process;
use ferry_tests::bench::machine::{self, Machine};
use ferry_tests::bench::{open_files, Context, Report, Sizes};

/// Measures ferry's speed and memory against the raw limits of this machine.
#[derive(Debug, Parser)]
#[command(name = "ferry-bench")]
struct Args {
    /// Small sizes, for a smoke test of a couple of minutes.
    #[arg(long)]
    quick: bool,
    /// Run only these figures (comma-separated names; see --list).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the report to this Markdown file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// List the figures and exit.
    #[arg(long)]
    list: bool,
    /// Internal: run only a gateway for this libpq connection string, print its address, and
    /// run until killed or until stdin closes (used by the gateway figures).
    #[arg(long = gateway_process::FLAG, hide = true, value_name = "LIBPQ")]
    gateway_process: Option<String>,
    /// Internal: the gateway process's `limits.max_streams`.
    #[arg(long = gateway_process::MAX_STREAMS_FLAG, hide = true, requires = "gateway_process")]
    gateway_max_streams: Option<usize>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Err(e) = open_files::raise_to_hard_limit() {
        eprintln!("warning: {e:#}");
    }
    if let Some(conn_string) = &args.gateway_process {
        return gateway_process::serve(conn_string, args.gateway_max_streams).await;
    }
    if args.list {
        for figure in figures::registry() {
            println!("{:<14} {}", figure.name(), figure.about());
        }
        return Ok(());
    }
    let selected = figures::select(&args.only)?;
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let command = std::iter::once("ferry-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let ctx = Context::new(sizes, Machine::detect());
    let mut report = Report {
        command,
        sizes: ctx.sizes.name.to_owned(),
        ..Report::default()
    };

    for figure in &selected {
        ctx.progress(figure.name(), figure.about());
        let outcome = figure.run(&ctx).await.map_err(|e| {
            ctx.progress(figure.name(), format!("failed: {e:#}"));
            format!("{e:#}")
        });
        report.figures.push((figure.name().to_owned(), outcome));
    }

    report.machine = ctx.machine();
    report.machine.load_after = machine::load_average();
    let markdown = report.to_markdown();
    println!("{markdown}");
    if let Some(path) = &args.out {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    let failed: Vec<&str> = report
        .figures
        .iter()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(name, _)| name.as_str())
        .collect();
    anyhow::ensure!(failed.is_empty(), "figures failed: {}", failed.join(", "));
    Ok(())
}
