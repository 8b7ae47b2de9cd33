//! Planner statistics of a version's storage partitions.
//!
//! A version's partitions start empty and can grow by millions of rows in minutes (a snapshot, a
//! bulk load) — long before autovacuum's next look. Planned on the statistics of an empty table,
//! the lookup of stored rows by key turns into a scan of everything stored, and every step gets
//! slower as the version grows. So a step re-analyzes the partitions it looks rows up in whenever
//! one has doubled in size since it was last analyzed: a handful of times over its life, each a
//! small sample (the plans only need the table's size and that keys are unique).
//!
//! The op log is only ever read by (bucket, op id) ranges, which the primary key serves whatever
//! the statistics say; autovacuum keeps its statistics.

use pgrx::Spi;

use crate::errors::{select_opt, FerryError};

/// Partitions of the version's storage the applier looks rows up in by key
/// (`ferry.<parent>_v<id>`).
const PARENTS: [&str; 2] = ["current_rows", "parameter_index"];

/// `default_statistics_target` of these analyses: samples 3,000 rows.
const STATISTICS_TARGET: &str = "10";

/// Smallest size, in pages, worth analyzing (1 MB).
const MIN_PAGES: i64 = 128;

/// Analyzes the partitions of version `id` that have doubled in size since their last analysis.
pub fn analyze_grown(id: i64) -> Result<(), FerryError> {
    let names: Vec<String> = PARENTS.iter().map(|p| format!("{p}_v{id}")).collect();
    let mut grown = Vec::new();
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relnamespace = 'ferry'::regnamespace AND c.relname = ANY($1) \
               AND pg_relation_size(c.oid) / current_setting('block_size')::int8 \
                   >= greatest($2, 2 * c.relpages::int8)",
            None,
            &[names.into(), MIN_PAGES.into()],
        )?;
        for row in rows {
            if let Some(name) = row.get::<String>(1)? {
                grown.push(name);
            }
        }
        Ok::<_, FerryError>(())
    })?;
    if grown.is_empty() {
        return Ok(());
    }
    let previous: Option<String> =
        select_opt("SELECT current_setting('default_statistics_target')", &[])?;
    Spi::run_with_args(
        "SELECT set_config('default_statistics_target', $1, true)",
        &[STATISTICS_TARGET.into()],
    )?;
    for name in grown {
        Spi::run(&format!("ANALYZE ferry.{name}"))?;
    }
    // Only the analyses above use the small sample: restore the caller's setting.
    if let Some(previous) = previous {
        Spi::run_with_args(
            "SELECT set_config('default_statistics_target', $1, true)",
            &[previous.as_str().into()],
        )?;
    }
    Ok(())
}
