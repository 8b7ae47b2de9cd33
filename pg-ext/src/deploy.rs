//! `ferry.deploy_rules(yaml)`: validate sync rules and record them as a new version.
//!
//! Validation errors come from ferry-rules with line and column; the tables the rules read must
//! exist and have a row identity (a primary key, a replica identity index, or REPLICA IDENTITY
//! FULL). The version starts as `processing`; applier steps create its slot, snapshot its tables,
//! stream, and activate it at its first consistent checkpoint. Deploying the rules of the version
//! already being built or served is a no-op that returns that version.

use pgrx::prelude::*;
use pgrx::Spi;

use crate::errors::{select_opt, FerryError, OrRaise};
use crate::pg_adapter::origin;

/// One table the rules read, resolved in the catalog.
struct ResolvedTable {
    relid: pg_sys::Oid,
    schema: String,
    name: String,
    key_columns: Vec<String>,
    identity_full: bool,
    estimated_rows: i64,
}

/// Deploys sync rules; returns the version id.
#[pg_extern]
fn deploy_rules(yaml: &str) -> i64 {
    deploy(yaml).or_raise()
}

fn deploy(yaml: &str) -> Result<i64, FerryError> {
    let compiled =
        ferry_rules::compile(yaml).map_err(|e| FerryError::InvalidRules(e.to_string()))?;
    for warning in &compiled.warnings {
        warning!("sync rules: {warning}");
    }
    let existing: Option<i64> = select_opt(
        "SELECT id FROM ferry.sync_rules WHERE content_hash = md5($1) AND content = $1 \
           AND state IN ('processing', 'active') ORDER BY id DESC LIMIT 1",
        &[yaml.into()],
    )?;
    if let Some(id) = existing {
        notice!("ferry: these sync rules are already deployed as version {id}");
        return Ok(id);
    }
    // A version still being built for older rules is replaced by this one.
    Spi::run(
        "UPDATE ferry.sync_rules SET state = 'stopped', stopped_at = now() WHERE state = 'processing'",
    )?;
    create_version(yaml, &compiled.plan)
}

/// Records a new `processing` version of `yaml` (already compiled to `plan`), with its source
/// tables and storage partitions. Also used to rebuild a version whose slot was lost.
pub fn create_version(yaml: &str, plan: &ferry_rules::Plan) -> Result<i64, FerryError> {
    let mut tables = Vec::new();
    for table in plan.source_tables() {
        tables.extend(resolve_tables(&table.schema, &table.name)?);
    }
    origin::ensure_exists()?;
    let id: i64 = Spi::get_one("SELECT nextval('ferry.sync_rules_id_seq')")?
        .ok_or_else(|| FerryError::Internal("no version id".into()))?;
    // SAFETY: MyDatabaseId is set in a connected backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let slot_name = format!("ferry_{dboid}_{id}");
    Spi::run_with_args(
        "INSERT INTO ferry.sync_rules (id, content, content_hash, plan, slot_name) VALUES ($1, $2, md5($2), $3, $4)",
        &[
            id.into(),
            yaml.into(),
            plan.to_json().into(),
            slot_name.as_str().into(),
        ],
    )?;
    for t in &tables {
        Spi::run_with_args(
            "INSERT INTO ferry.source_tables (version, relid, schema_name, table_name, key_columns, identity_full, estimated_rows) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                id.into(),
                t.relid.into(),
                t.schema.as_str().into(),
                t.name.as_str().into(),
                t.key_columns.clone().into(),
                t.identity_full.into(),
                t.estimated_rows.into(),
            ],
        )?;
    }
    for parent in ["ops", "current_rows", "parameter_index", "bucket_state"] {
        Spi::run(&format!(
            "CREATE TABLE ferry.{parent}_v{id} PARTITION OF ferry.{parent} FOR VALUES IN ({id})"
        ))?;
    }
    Ok(id)
}

/// Cancels the deploy in progress (the `processing` version), if any; the active version keeps
/// serving. Returns the cancelled version, or NULL when none was in progress.
#[pg_extern]
fn cancel_deploy() -> Option<i64> {
    select_opt::<i64>(
        "SELECT id FROM ferry.sync_rules WHERE state = 'processing' ORDER BY id DESC LIMIT 1",
        &[],
    )
    .and_then(|id| {
        Spi::run(
            "UPDATE ferry.sync_rules SET state = 'stopped', stopped_at = now() WHERE state = 'processing'",
        )?;
        Ok(id)
    })
    .or_raise()
}

/// The tables a rules table name (or `%` pattern) refers to, with their row identity.
fn resolve_tables(schema: &str, name: &str) -> Result<Vec<ResolvedTable>, FerryError> {
    let pattern = name.strip_suffix('%');
    let rows = Spi::connect(|client| {
        let rows = client.select(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relreplident::text, \
                    GREATEST(c.reltuples, 0)::int8, \
                    (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_index i \
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                      WHERE i.indrelid = c.oid AND ( \
                            (c.relreplident = 'i' AND i.indisreplident) \
                         OR (c.relreplident IN ('d', 'f') AND i.indisprimary))) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') \
               AND CASE WHEN $3 THEN starts_with(c.relname::text, $2) ELSE c.relname = $2 END \
             ORDER BY c.relname",
            None,
            &[schema.into(), pattern.unwrap_or(name).into(), pattern.is_some().into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push((
                row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?.unwrap_or_default(),
                row.get::<i64>(5)?.unwrap_or_default(),
                row.get::<Vec<String>>(6)?.unwrap_or_default(),
            ));
        }
        Ok::<_, FerryError>(out)
    })?;
    if rows.is_empty() && pattern.is_none() {
        return Err(FerryError::UndefinedTable(format!("{schema}.{name}")));
    }
    let mut tables = Vec::new();
    for (relid, schema, name, replident, estimated_rows, key_columns) in rows {
        let qualified = format!("{schema}.{name}");
        let identity_full = replident == "f";
        if replident == "n" {
            return Err(FerryError::TableNotReplicable {
                table: qualified,
                reason: "it has REPLICA IDENTITY NOTHING, so deletes cannot be matched to rows; \
                         use ALTER TABLE … REPLICA IDENTITY DEFAULT (with a primary key) or FULL"
                    .into(),
            });
        }
        if key_columns.is_empty() && !identity_full {
            return Err(FerryError::TableNotReplicable {
                table: qualified,
                reason: "it has no primary key and no replica identity index; add a primary key \
                         (or ALTER TABLE … REPLICA IDENTITY FULL)"
                    .into(),
            });
        }
        tables.push(ResolvedTable {
            relid,
            schema,
            name,
            key_columns,
            identity_full,
            estimated_rows,
        });
    }
    Ok(tables)
}
