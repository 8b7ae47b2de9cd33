//! A sync-rules version as the applier sees it: its state row, its compiled plan (cached per
//! backend: versions never change once deployed), and its source tables.
//!
//! This is also the one place that calls ferry-rules' evaluation for the applier, turning its
//! results into what the applier stores.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ferry_rules::{Plan, Row, TableRef, ValueOptions};
use pgrx::prelude::*;
use pgrx::Spi;

use crate::errors::{select_opt, FerryError};

/// The state row of a version (`ferry.sync_rules`).
#[derive(Debug, Clone)]
pub struct VersionState {
    /// The version id.
    pub id: i64,
    /// `processing` or `active`.
    pub state: String,
    /// Its replication slot.
    pub slot_name: String,
    /// Whether the slot was created.
    pub slot_created: bool,
    /// Whether the snapshot is complete.
    pub snapshot_done: bool,
    /// No checkpoint before this position.
    pub no_checkpoint_before: Option<u64>,
    /// Position applied so far.
    pub processed_lsn: Option<u64>,
    /// The next op id to hand out.
    pub next_op_id: i64,
}

/// A source table of a version.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// Its OID.
    pub relid: u32,
    /// Its name as the rules see it.
    pub table: TableRef,
    /// Identity columns, in attribute order; empty means the whole row.
    pub key_columns: Vec<String>,
    /// REPLICA IDENTITY FULL: no row copy kept.
    pub identity_full: bool,
    /// Snapshot finished for this table.
    pub snapshot_done: bool,
    /// Last key copied (text of each key column).
    pub snapshot_last_key: Option<Vec<Option<String>>>,
}

/// What one row evaluates to, in the applier's terms.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// (bucket, object_type, object_id, row JSON, checksum).
    pub outputs: Vec<(String, String, String, String, u32)>,
    /// (lookup key, output rows JSON).
    pub lookups: Vec<(String, String)>,
    /// Evaluation errors, one message each.
    pub errors: Vec<String>,
}

/// A loaded version: state, plan and tables.
pub struct Version {
    /// Its state row.
    pub state: VersionState,
    /// Its compiled rules.
    pub plan: Rc<Plan>,
    /// Its source tables by OID.
    pub tables: HashMap<u32, SourceTable>,
    /// Its partition of `ferry.ops`.
    pub ops_partition: pg_sys::Oid,
    /// Its partition of `ferry.current_rows`.
    pub current_rows_partition: pg_sys::Oid,
}

thread_local! {
    static PLANS: RefCell<HashMap<i64, Rc<Plan>>> = RefCell::new(HashMap::new());
}

/// The compiled plan of version `id`, parsed once per backend.
pub fn plan(id: i64) -> Result<Rc<Plan>, FerryError> {
    if let Some(plan) = PLANS.with(|p| p.borrow().get(&id).cloned()) {
        return Ok(plan);
    }
    let json: Option<String> = select_opt(
        "SELECT plan FROM ferry.sync_rules WHERE id = $1",
        &[id.into()],
    )?;
    let json = json.ok_or(FerryError::UnknownVersion(id))?;
    let plan = Rc::new(
        Plan::from_json(&json)
            .map_err(|e| FerryError::Internal(format!("stored plan of version {id}: {e}")))?,
    );
    PLANS.with(|p| p.borrow_mut().insert(id, plan.clone()));
    Ok(plan)
}

/// Parses a `pg_lsn` text (`X/Y`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// Formats an LSN as `pg_lsn` text.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// The versions the applier works on: processing ones first, then the active one.
pub fn working_versions() -> Result<Vec<VersionState>, FerryError> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT id, state, slot_name, slot_created, snapshot_done, \
                    no_checkpoint_before::text, processed_lsn::text, next_op_id \
             FROM ferry.sync_rules WHERE state IN ('processing', 'active') \
             ORDER BY state = 'active', id",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(VersionState {
                id: row.get::<i64>(1)?.unwrap_or_default(),
                state: row.get::<String>(2)?.unwrap_or_default(),
                slot_name: row.get::<String>(3)?.unwrap_or_default(),
                slot_created: row.get::<bool>(4)?.unwrap_or_default(),
                snapshot_done: row.get::<bool>(5)?.unwrap_or_default(),
                no_checkpoint_before: row.get::<String>(6)?.as_deref().and_then(parse_lsn),
                processed_lsn: row.get::<String>(7)?.as_deref().and_then(parse_lsn),
                next_op_id: row.get::<i64>(8)?.unwrap_or(1),
            });
        }
        Ok(out)
    })
}

impl Version {
    /// Loads the plan and source tables of a version.
    pub fn load(state: VersionState) -> Result<Version, FerryError> {
        let plan = plan(state.id)?;
        let tables = Spi::connect(|client| {
            let rows = client.select(
                "SELECT relid, schema_name, table_name, key_columns, identity_full, snapshot_done, \
                        snapshot_last_key \
                 FROM ferry.source_tables WHERE version = $1 ORDER BY relid",
                None,
                &[state.id.into()],
            )?;
            let mut tables = HashMap::new();
            for row in rows {
                let relid = row
                    .get::<pg_sys::Oid>(1)?
                    .map(|o| o.to_u32())
                    .unwrap_or_default();
                tables.insert(
                    relid,
                    SourceTable {
                        relid,
                        table: TableRef::new(
                            row.get::<String>(2)?.unwrap_or_default(),
                            row.get::<String>(3)?.unwrap_or_default(),
                        ),
                        key_columns: row.get::<Vec<String>>(4)?.unwrap_or_default(),
                        identity_full: row.get::<bool>(5)?.unwrap_or_default(),
                        snapshot_done: row.get::<bool>(6)?.unwrap_or_default(),
                        snapshot_last_key: row.get::<Vec<Option<String>>>(7)?,
                    },
                );
            }
            Ok::<_, FerryError>(tables)
        })?;
        let partition = |parent: &str| -> Result<pg_sys::Oid, FerryError> {
            let oid: Option<pg_sys::Oid> = select_opt(
                "SELECT to_regclass(format('ferry.%s_v%s', $1::text, $2::int8))::oid",
                &[parent.into(), state.id.into()],
            )?;
            oid.ok_or_else(|| {
                FerryError::Internal(format!(
                    "the storage of version {} is missing ({parent})",
                    state.id
                ))
            })
        };
        let ops_partition = partition("ops")?;
        let current_rows_partition = partition("current_rows")?;
        Ok(Version {
            state,
            plan,
            tables,
            ops_partition,
            current_rows_partition,
        })
    }

    /// The value conversion settings of this version's rules.
    pub fn value_options(&self) -> ValueOptions {
        self.plan.value_options()
    }

    /// Evaluates a row of `table` against the rules.
    pub fn evaluate(&self, table: &TableRef, row: &Row) -> Evaluated {
        let version = u64::try_from(self.state.id).ok();
        let rows = self.plan.evaluate_row(table, row, version);
        let params = self.plan.evaluate_parameter_row(table, row);
        let mut out = Evaluated::default();
        for o in rows.outputs {
            out.outputs
                .push((o.bucket, o.object_type, o.object_id, o.data, o.checksum));
        }
        for evaluated in params.lookups {
            out.lookups
                .push((evaluated.lookup.key(), evaluated.rows_json()));
        }
        out.errors.extend(rows.errors.iter().map(|e| e.to_string()));
        out.errors
            .extend(params.errors.iter().map(|e| e.to_string()));
        out
    }
}
