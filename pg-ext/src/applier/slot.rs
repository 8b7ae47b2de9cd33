//! Replication slots of versions: `ferry_<database oid>_<version>`, created by an applier step
//! before it writes anything (Postgres refuses otherwise), and adopted if a crashed step created
//! one but could not record it.

use pgrx::prelude::*;
use pgrx::Spi;

use crate::applier::version::VersionState;
use crate::errors::{select_opt, FerryError};
use crate::pg_adapter::volatile_spi;

/// Creates (or adopts) the slot of `version`. False when the transaction has already written, so
/// the next step must do it.
pub fn create(version: &VersionState) -> Result<bool, FerryError> {
    let exists: Option<bool> = select_opt(
        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
        &[version.slot_name.as_str().into()],
    )?;
    if exists != Some(true) {
        let has_xid: Option<bool> =
            select_opt("SELECT pg_current_xact_id_if_assigned() IS NOT NULL", &[])?;
        if has_xid == Some(true) {
            notice!(
                "ferry: the slot of version {} can only be created in a transaction that has not written yet; the next step will",
                version.id
            );
            return Ok(false);
        }
        volatile_spi::exec(
            "SELECT pg_create_logical_replication_slot($1, 'ferry')",
            &[&version.slot_name],
        )?;
    }
    Spi::run_with_args(
        "UPDATE ferry.sync_rules SET slot_created = true WHERE id = $1",
        &[version.id.into()],
    )?;
    Ok(true)
}
