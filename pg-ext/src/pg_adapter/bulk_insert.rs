//! Inserting many rows into one of ferry's own tables the way `COPY FROM` does: tuples go to the
//! heap a page at a time (one WAL record per page, not per row) and then into the table's
//! indexes, without planning or executing an `INSERT` statement.
//!
//! Only for ferry's storage partitions, which have no triggers, no foreign keys, no partition
//! routing to do (the caller names the partition) and no constraints beyond their unique indexes,
//! which are still checked: a duplicate key raises the usual unique-violation error.

use std::ffi::c_int;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::FerryError;

/// One column's values for every row, in the table's attribute order.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    /// `bigint`, the same value in every row.
    ConstInt8(i64),
    /// `bigint`.
    Int8(&'a [i64]),
    /// `oid`.
    Oid(&'a [pg_sys::Oid]),
    /// `text`.
    Text(&'a [String]),
    /// `text` or NULL.
    OptText(&'a [Option<String>]),
    /// `bytea` or NULL.
    OptBytes(&'a [Option<Vec<u8>>]),
    /// NULL in every row.
    Null,
}

/// Rows handed to the heap at once.
const BATCH: usize = 1_000;

/// Inserts `rows` rows into the table `relid`, whose attributes are exactly `columns` (in order;
/// each slice has `rows` entries). The rows are visible to the statements that follow.
pub fn insert(relid: pg_sys::Oid, columns: &[Column<'_>], rows: usize) -> Result<(), FerryError> {
    if rows == 0 {
        return Ok(());
    }
    // SAFETY: called inside a transaction by the applier, on one of ferry's heap tables, which
    // the caller has verified exists. Every pointer below comes from the Postgres function that
    // created it and is used only while it is valid: the relation is open until table_close, the
    // slots and executor state are freed before returning, and datums are allocated in a memory
    // context reset after each batch (after the heap and indexes have copied them).
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let tupdesc = (*rel).rd_att;
        let natts = (*tupdesc).natts as usize;
        if natts != columns.len() {
            pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
            return Err(FerryError::Internal(format!(
                "bulk insert into relation {}: {natts} attributes, {} columns given",
                relid.to_u32(),
                columns.len()
            )));
        }
        let estate = pg_sys::CreateExecutorState();
        let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>())
            .cast::<pg_sys::ResultRelInfo>();
        pg_sys::InitResultRelInfo(rri, rel, 1, std::ptr::null_mut(), 0);
        pg_sys::ExecOpenIndices(rri, false);
        let batch_context = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"ferry bulk insert".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let cid = pg_sys::GetCurrentCommandId(true);
        let mut slots: Vec<*mut pg_sys::TupleTableSlot> = (0..BATCH.min(rows))
            .map(|_| pg_sys::table_slot_create(rel, std::ptr::null_mut()))
            .collect();

        let mut start = 0;
        while start < rows {
            let n = BATCH.min(rows - start);
            let outer = pg_sys::MemoryContextSwitchTo(batch_context);
            for (k, &slot) in slots.iter().take(n).enumerate() {
                clear(slot);
                let row = start + k;
                let values = (*slot).tts_values;
                let nulls = (*slot).tts_isnull;
                for (a, column) in columns.iter().enumerate() {
                    let datum = column_datum(column, row);
                    *nulls.add(a) = datum.is_none();
                    *values.add(a) = datum.unwrap_or(pg_sys::Datum::from(0usize));
                }
                pg_sys::ExecStoreVirtualTuple(slot);
            }
            pg_sys::heap_multi_insert(
                rel,
                slots.as_mut_ptr(),
                n as c_int,
                cid,
                0,
                std::ptr::null_mut(),
            );
            for &slot in slots.iter().take(n) {
                pg_sys::ExecInsertIndexTuples(
                    rri,
                    slot,
                    estate,
                    false,
                    false,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
            pg_sys::MemoryContextSwitchTo(outer);
            for &slot in slots.iter().take(n) {
                clear(slot);
            }
            pg_sys::MemoryContextReset(batch_context);
            start += n;
        }

        for slot in slots.drain(..) {
            pg_sys::ExecDropSingleTupleTableSlot(slot);
        }
        pg_sys::MemoryContextDelete(batch_context);
        pg_sys::ExecCloseIndices(rri);
        pg_sys::FreeExecutorState(estate);
        pg_sys::pfree(rri.cast());
        // The lock is kept until the end of the transaction, as for any insert.
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::CommandCounterIncrement();
    }
    Ok(())
}

/// Empties a slot (`ExecClearTuple`, an inline function in C).
///
/// # Safety
/// `slot` must be a valid slot.
unsafe fn clear(slot: *mut pg_sys::TupleTableSlot) {
    // SAFETY: every slot has its ops table, whose clear callback takes the slot.
    unsafe {
        if let Some(clear) = (*(*slot).tts_ops).clear {
            clear(slot);
        }
    }
}

/// The datum of `column` in row `row` (None: NULL), allocated in the current memory context.
///
/// # Safety
/// Must run inside a transaction (it pallocs); `row` must be in range.
unsafe fn column_datum(column: &Column<'_>, row: usize) -> Option<pg_sys::Datum> {
    let varlena = |bytes: &[u8]| {
        // SAFETY: cstring_to_text_with_len copies `len` bytes into a new varlena; text and bytea
        // share that representation.
        let ptr = unsafe {
            pg_sys::cstring_to_text_with_len(bytes.as_ptr().cast(), bytes.len() as c_int)
        };
        pg_sys::Datum::from(ptr)
    };
    match column {
        Column::ConstInt8(v) => v.into_datum(),
        Column::Int8(v) => v[row].into_datum(),
        Column::Oid(v) => v[row].into_datum(),
        Column::Text(v) => Some(varlena(v[row].as_bytes())),
        Column::OptText(v) => v[row].as_deref().map(|s| varlena(s.as_bytes())),
        Column::OptBytes(v) => v[row].as_deref().map(varlena),
        Column::Null => None,
    }
}
