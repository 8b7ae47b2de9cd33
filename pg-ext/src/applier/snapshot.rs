//! The initial snapshot of a new version: its tables copied in keyset pages, one page per step.
//!
//! Pages follow the row identity (`WHERE (key) > (last key) ORDER BY key LIMIT n`, resumable from
//! the last key recorded with the page's ops), or `ctid` for tables whose identity is the whole
//! row. Rows are read under the applier's pinned settings and converted exactly as decoded changes
//! are. Changes made during the copy are replayed from the slot afterwards, and no checkpoint is
//! made before the stream passes the position recorded when the copy ended (PROTOCOL.md §5.3), so
//! what clients see is always consistent.

use pgrx::prelude::*;
use pgrx::{spi::quote_identifier, Spi};

use crate::applier::batch::{Batch, Change};
use crate::applier::checkpoint::{self, Position};
use crate::applier::version::{SourceTable, Version};
use crate::change_record::ColumnValue;
use crate::errors::{select_opt, FerryError};
use crate::gucs;
use crate::pg_adapter::{origin, spi_tuples};

/// Copies one page of the first table not done yet, or finishes the snapshot. True: did work.
pub fn step(version: &Version) -> Result<bool, FerryError> {
    let mut tables: Vec<&SourceTable> = version
        .tables
        .values()
        .filter(|t| !t.snapshot_done)
        .collect();
    tables.sort_by_key(|t| t.relid);
    match tables.first() {
        Some(table) => copy_page(version, table),
        None => finish(version),
    }
}

/// The text type of each key column, for casting the stored last key back.
fn key_types(table: &SourceTable) -> Result<Vec<String>, FerryError> {
    let mut types = Vec::new();
    for column in &table.key_columns {
        let ty: Option<String> = select_opt(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1 AND attname = $2 AND NOT attisdropped",
            &[
                pg_sys::Oid::from(table.relid).into(),
                column.as_str().into(),
            ],
        )?;
        types.push(ty.ok_or_else(|| FerryError::TableNotReplicable {
            table: format!("{}.{}", table.table.schema, table.table.name),
            reason: format!("its key column {column} no longer exists"),
        })?);
    }
    Ok(types)
}

fn copy_page(version: &Version, table: &SourceTable) -> Result<bool, FerryError> {
    let page = gucs::snapshot_page_rows();
    let qualified = format!(
        "{}.{}",
        quote_identifier(&table.table.schema),
        quote_identifier(&table.table.name)
    );
    let by_key = !table.key_columns.is_empty();
    let (key_expr, order, filter) = if by_key {
        let types = key_types(table)?;
        let cols: Vec<String> = table
            .key_columns
            .iter()
            .map(|c| format!("t.{}", quote_identifier(c)))
            .collect();
        let casts: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("($1::text[])[{}]::{ty}", i + 1))
            .collect();
        (
            format!(
                "ARRAY[{}]::text[]",
                cols.iter()
                    .map(|c| format!("{c}::text"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            cols.join(", "),
            format!("({}) > ({})", cols.join(", "), casts.join(", ")),
        )
    } else {
        (
            "ARRAY[t.ctid::text]".to_owned(),
            "t.ctid".to_owned(),
            "t.ctid > ($1::text[])[1]::tid".to_owned(),
        )
    };
    let last_key = table.snapshot_last_key.clone();
    let query = match &last_key {
        Some(_) => format!(
            "SELECT t.*, {key_expr} FROM {qualified} t WHERE {filter} ORDER BY {order} LIMIT {page}"
        ),
        None => format!("SELECT t.*, {key_expr} FROM {qualified} t ORDER BY {order} LIMIT {page}"),
    };
    let natts: Option<i64> = select_opt(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
        &[pg_sys::Oid::from(table.relid).into()],
    )?;
    let natts = natts.unwrap_or(0) as usize;

    let options = version.value_options();
    let mut rows: Vec<(Vec<ColumnValue>, bool)> = Vec::new();
    let mut new_last_key = last_key.clone();
    let columns = Spi::connect(|client| {
        let args = match &last_key {
            Some(k) => vec![k.clone().into()],
            None => vec![],
        };
        client.select(query.as_str(), None, &args)?;
        Ok::<_, FerryError>(spi_tuples::for_each_result_row(
            natts,
            &options,
            |values, key, toasted| {
                rows.push((values.to_vec(), toasted));
                if key.is_some() {
                    new_last_key = key;
                }
            },
        ))
    })?;
    let copied = rows.len() as i64;
    let columns = columns
        .into_iter()
        .map(|mut c| {
            c.is_key = table.key_columns.contains(&c.name);
            c
        })
        .collect();

    // Keyset pages never return a key twice, so a first copy needs no stored state; ctid pages
    // can (a row updated during the copy moves), so they load it.
    let mut batch = Batch::new(version, by_key);
    batch.relation(table.relid, columns)?;
    for (new, toasted) in rows {
        batch.push(Change::Upsert {
            relid: table.relid,
            new,
            old: None,
            toasted,
        })?;
    }
    batch.flush()?;
    Spi::run_with_args(
        "UPDATE ferry.source_tables SET snapshot_last_key = $3, snapshot_rows = snapshot_rows + $4, \
                snapshot_done = $5 \
         WHERE version = $1 AND relid = $2",
        &[
            version.state.id.into(),
            pg_sys::Oid::from(table.relid).into(),
            new_last_key.into(),
            copied.into(),
            (copied < page).into(),
        ],
    )?;
    checkpoint::finish_step(version, &batch, Position::default(), serde_json::Map::new())?;
    Ok(true)
}

/// Marks the snapshot done: no checkpoint before the current WAL position, and a message the
/// stream will decode after it, so the version activates even if nothing else is written.
fn finish(version: &Version) -> Result<bool, FerryError> {
    Spi::run_with_args(
        "UPDATE ferry.sync_rules SET snapshot_done = true, \
                no_checkpoint_before = pg_current_wal_insert_lsn() WHERE id = $1",
        &[version.state.id.into()],
    )?;
    origin::emit_untagged_message(&format!("{{\"snapshot_done\":{}}}", version.state.id))?;
    Ok(true)
}
