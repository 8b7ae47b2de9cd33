//! Planner statistics of a version's storage partitions.
//!
//! A version's partitions start empty and can grow by millions of rows in minutes (a snapshot, a
//! bulk load) — long before autovacuum's next look. Planned on the statistics of an empty table,
//! the lookup of stored rows by key turns into a scan of everything stored, and every step gets
//! slower as the version grows. So a step re-analyzes a partition whenever it has doubled in size
//! since it was last analyzed: a handful of times over a partition's life.

use pgrx::Spi;

use crate::errors::FerryError;

/// Storage partitioned by version (`ferry.<parent>_v<id>`).
const PARENTS: [&str; 4] = ["ops", "current_rows", "parameter_index", "bucket_state"];

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
    for name in grown {
        Spi::run(&format!("ANALYZE ferry.{name}"))?;
    }
    Ok(())
}
