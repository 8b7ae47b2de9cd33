//! The figures of the benchmark, one file each, and [`registry`], the list the binary runs (in
//! that order) and `--only` selects from.
//!
//! Adding a figure: write a type implementing [`Figure`] in a file of its own here, start what
//! it needs (a cluster with the applier worker:
//! [`Context::worker_database`](super::figure::Context::worker_database)), measure the raw limit
//! of the same work in the same run with [`super::raw`], return [`Measurement`](super::report::Measurement)
//! rows, and add the type to [`registry`]. Gateway figures start a gateway in a process of its
//! own next to the cluster ([`super::gateway_process`], so its memory is its own) and read
//! streams raw ([`super::stream_reader`]) or with real clients on temp files; client figures
//! compare with the raw SQLite insert ([`super::raw::sqlite_insert_todos`]).

mod backlog;
mod bulk_ingest;
mod client_apply;
mod idle_streams;
mod initial_sync;
mod live_latency;
mod redeploy;
mod snapshot;
mod steady_lag;

use anyhow::bail;

pub use backlog::Backlog;
pub use bulk_ingest::BulkIngest;
pub use client_apply::ClientApply;
pub use idle_streams::IdleStreams;
pub use initial_sync::InitialSync;
pub use live_latency::LiveLatency;
pub use redeploy::Redeploy;
pub use snapshot::Snapshot;
pub use steady_lag::SteadyLag;

use super::figure::Figure;

/// Every figure, in the order a run measures them.
pub fn registry() -> Vec<Box<dyn Figure>> {
    vec![
        Box::new(BulkIngest),
        Box::new(Backlog),
        Box::new(SteadyLag),
        Box::new(Snapshot),
        Box::new(Redeploy),
        Box::new(InitialSync),
        Box::new(LiveLatency),
        Box::new(IdleStreams),
        Box::new(ClientApply),
    ]
}

/// The figures named in `only` (all when empty), in registry order. Fails on an unknown name,
/// listing the known ones.
pub fn select(only: &[String]) -> anyhow::Result<Vec<Box<dyn Figure>>> {
    let all = registry();
    for name in only {
        if !all.iter().any(|f| f.name() == name) {
            let known: Vec<&str> = all.iter().map(|f| f.name()).collect();
            bail!(
                "unknown figure {name:?}; known figures: {}",
                known.join(", ")
            );
        }
    }
    Ok(all
        .into_iter()
        .filter(|f| only.is_empty() || only.iter().any(|n| n == f.name()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_names_are_unique_and_selectable() {
        let names: Vec<&str> = registry().iter().map(|f| f.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let picked = select(&["steady_lag".to_owned(), "bulk_ingest".to_owned()]).unwrap();
        let picked: Vec<&str> = picked.iter().map(|f| f.name()).collect();
        assert_eq!(picked, ["bulk_ingest", "steady_lag"]);
        assert!(select(&["nope".to_owned()]).is_err());
    }
}
