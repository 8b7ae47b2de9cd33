//! The Postgres adapter: every callback Postgres makes into ferry, and all of ferry's `unsafe`.
//!
//! Each module adapts one Postgres interface to safe Rust the rest of the extension calls:
//! bulk inserts into ferry's tables, the output plugin, tuple conversion, SPI result tuples, the replication origin, WAL positions,
//! transaction callbacks and the background worker.

pub mod bulk_insert;
pub mod origin;
pub mod output_plugin;
pub mod spi_tuples;
pub mod tuple;
pub mod volatile_spi;
pub mod wal;
pub mod worker;
pub mod xact;
