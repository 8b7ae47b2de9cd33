//! The benchmark: ferry's speed and memory figures, each measured next to the raw limit of the
//! same machine in the same run (DESIGN.md, "Quality bars"). Run by the `ferry-bench` binary
//! (`src/bin/bench.rs`); figures are reported, never pass/fail gates, and never checked by timed
//! tests.
//!
//! - [`figure`]: what a figure is ([`Figure`]), the sizes ([`Sizes`]) and the run's [`Context`];
//! - [`figures`]: the figures, one file each, and their [`figures::registry`];
//! - [`raw`]: the raw limits (raw decode, COPY out, raw SQLite insert), each defined once;
//! - [`catch_up`]: the paused-backlog measurement shared by the backlog figures;
//! - [`pacing`]: single-row writes at a fixed rate, shared by the latency figures;
//! - [`applier`]: driving and observing the extension's applier worker, and any process's memory;
//! - [`gateway_process`]: the gateway in a child process of its own (memory, many connections);
//! - [`stream_reader`]: a raw `POST /sync/stream` reader, line by line, without a client;
//! - [`open_files`]: raising the open-file limit for figures holding thousands of streams;
//! - [`workload`]: the `todos` table, its rules and the row generator;
//! - [`stats`]: percentiles of latency samples;
//! - [`report`], [`machine`]: the Markdown table and the machine it was measured on.

pub mod applier;
pub mod catch_up;
pub mod figure;
pub mod figures;
pub mod gateway_process;
pub mod machine;
pub mod open_files;
pub mod pacing;
pub mod raw;
pub mod report;
pub mod stats;
pub mod stream_reader;
pub mod workload;

pub use figure::{Context, Figure, Sizes};
pub use report::{FigureOutcome, Measurement, Quantity, Report, Target};
