//! The ferry Postgres extension.
//!
//! `CREATE EXTENSION ferry` creates schema `ferry` with ferry's storage (from `sql/`), the SQL API
//! the gateway and operators call (documented in `sql/API.md`), the `ferry` logical decoding output
//! plugin, and the applier that turns decoded changes into per-bucket operations.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

/// The extension's version, as built.
#[pg_extern(immutable, parallel_safe)]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Required by `cargo pgrx test`; ferry's decoding tests run from the `ferry-tests` crate instead.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
