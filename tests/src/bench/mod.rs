//! The benchmark: ferry's speed and memory figures, each measured next to the raw limit of the
//! same machine in the same run (DESIGN.md, "Quality bars"). Run by the `ferry-bench` binary
//! (`src/bin/bench.rs`); figures are reported, never pass/fail gates, and never checked by timed
//! tests.
//!
//! - [`figure`]: what a figure is ([`Figure`]), the sizes ([`Sizes`]) and the run's [`Context`];
//! - [`figures`]: the figures, one file each, and their [`figures::registry`];
//! - [`raw`]: the raw limits (raw decode, COPY out), each defined once;
//! - [`catch_up`]: the paused-backlog measurement shared by the backlog figures;
//! - [`applier`]: driving and observing the extension's applier worker and its memory;
//! - [`workload`]: the `todos` table, its rules and the row generator;
//! - [`report`], [`machine`]: the Markdown table and the machine it was measured on.

pub mod applier;
pub mod catch_up;
pub mod figure;
pub mod figures;
pub mod machine;
pub mod raw;
pub mod report;
pub mod workload;

pub use figure::{Context, Figure, Sizes};
pub use report::{FigureOutcome, Measurement, Quantity, Report, Target};
