//! The ferry Postgres extension.
//!
//! `CREATE EXTENSION ferry` creates schema `ferry` with ferry's storage (from `sql/`), the SQL API
//! the gateway and operators call (documented in `sql/API.md`), the `ferry` logical decoding output
//! plugin, and the applier that turns decoded changes into per-bucket operations.
//!
//! Layout: `pg_adapter/` holds every Postgres callback and all `unsafe` code; `applier/` the steps
//! that turn changes into ops and checkpoints; `change_record.rs` the plugin's output format;
//! `deploy.rs`, `read_api.rs` and `write_checkpoint.rs` the SQL functions.

use pgrx::prelude::*;

pub mod applier;
pub mod change_record;
pub mod deploy;
pub mod errors;
pub mod gucs;
pub mod pg_adapter;
pub mod read_api;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../../sql/storage.sql", name = "storage", bootstrap);
extension_sql_file!(
    "../../sql/api.sql",
    name = "api",
    requires = [applier::advance_step, read_api::explain_row]
);
extension_sql_file!(
    "../../sql/write_endpoint.sql",
    name = "write_endpoint",
    requires = ["api"]
);
extension_sql_file!("../../sql/roles.sql", name = "roles", finalize);

/// Called when the library is loaded: settings, the applier workers, transaction callbacks.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    pg_adapter::xact::init();
    pg_adapter::worker::register_static_workers();
}

/// The extension's version, as built.
#[pg_extern(immutable, parallel_safe)]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
