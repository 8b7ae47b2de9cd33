//! The `ferry` logical decoding output plugin: Postgres' callbacks, adapted.
//!
//! Options (given by the applier to `pg_logical_slot_peek_binary_changes`):
//! - `relations`: comma-separated OIDs of the relations to encode; changes of others are dropped;
//! - `value_options`: ferry-rules' `ValueOptions` as JSON (timestamp formatting).
//!
//! Every change becomes one record of [`crate::change_record`]; a relation's shape (`R`) is sent
//! before its first change in a session and again when its descriptor changes. Logical messages
//! with prefix `ferry` pass through; every commit is sent, so the applier can confirm the position
//! of transactions that touched nothing it reads. The applier's own writes carry a replication
//! origin and are dropped by `filter_by_origin_cb` before Postgres buffers them. The plugin reads
//! no user table and never raises an error over data.

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;

use ferry_rules::pg_convert::ValueOptions;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;

use crate::change_record::{ChangeRecord, ColumnValue, Encoder, RelationInfo};
use crate::pg_adapter::tuple::TupleConverter;

/// A relation's converter and the descriptor it was built from.
struct CachedRelation {
    tupdesc: pg_sys::TupleDesc,
    /// The descriptor's shape, to notice ALTER TABLE (a rebuilt descriptor may reuse the old one's
    /// address, so the pointer alone does not tell).
    shape: Vec<(u32, bool, [u8; 64])>,
    converter: TupleConverter,
    info: RelationInfo,
    sent: bool,
}

/// The plugin's per-session state, kept in the decoding context's memory.
struct PluginState {
    relations: HashSet<u32>,
    /// The applier's replication origin: its own writes are dropped.
    origin: pg_sys::RepOriginId,
    value_options: ValueOptions,
    /// Reset after every change: output-function results and other per-row allocations.
    row_context: pg_sys::MemoryContext,
    /// Lives as long as the decoding context: converters' function state.
    cache_context: pg_sys::MemoryContext,
    cache: HashMap<u32, CachedRelation>,
    encoder: Encoder,
    old_values: Vec<ColumnValue>,
    new_values: Vec<ColumnValue>,
    /// Whether the current transaction produced any record.
    emitted_in_txn: bool,
}

/// The entry point Postgres looks up in a library used as an output plugin.
///
/// # Safety
/// Called by Postgres with a valid callbacks struct to fill in.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn _PG_output_plugin_init(cb: *mut pg_sys::OutputPluginCallbacks) {
    // SAFETY: Postgres passes a valid, zeroed callbacks struct.
    let cb = unsafe { &mut *cb };
    cb.startup_cb = Some(startup);
    cb.begin_cb = Some(begin);
    cb.change_cb = Some(change);
    cb.truncate_cb = Some(truncate);
    cb.commit_cb = Some(commit);
    cb.message_cb = Some(message);
    cb.filter_by_origin_cb = Some(filter_by_origin);
    cb.shutdown_cb = Some(shutdown);
}

/// The plugin's options.
struct Options {
    relations: HashSet<u32>,
    value_options: ValueOptions,
    origin: pg_sys::RepOriginId,
}

/// Reads the plugin's options from the `DefElem` list.
///
/// # Safety
/// `ctx` must be a valid decoding context.
unsafe fn parse_options(ctx: *mut pg_sys::LogicalDecodingContext) -> Options {
    let mut options = Options {
        relations: HashSet::new(),
        value_options: ValueOptions::default(),
        origin: pg_sys::InvalidRepOriginId as pg_sys::RepOriginId,
    };
    // SAFETY: output_plugin_options is NIL or a List of DefElem pointers built by Postgres.
    let list = unsafe { (*ctx).output_plugin_options };
    if list.is_null() {
        return options;
    }
    // SAFETY: a non-NIL List has `length` cells in `elements`.
    let cells = unsafe { std::slice::from_raw_parts((*list).elements, (*list).length as usize) };
    for cell in cells {
        // SAFETY: each cell of an options list holds a DefElem pointer; defname is a C string
        // and defGetString renders its argument as one.
        let (name, value) = unsafe {
            let elem = cell.ptr_value.cast::<pg_sys::DefElem>();
            let name = CStr::from_ptr((*elem).defname)
                .to_string_lossy()
                .into_owned();
            let value = if (*elem).arg.is_null() {
                String::new()
            } else {
                CStr::from_ptr(pg_sys::defGetString(elem))
                    .to_string_lossy()
                    .into_owned()
            };
            (name, value)
        };
        match name.as_str() {
            "relations" => {
                for oid in value.split(',').filter(|s| !s.trim().is_empty()) {
                    match oid.trim().parse::<u32>() {
                        Ok(oid) => {
                            options.relations.insert(oid);
                        }
                        Err(_) => error!(
                            "ferry output plugin: option relations: '{oid}' is not a relation OID"
                        ),
                    }
                }
            }
            "value_options" => match serde_json::from_str(&value) {
                Ok(v) => options.value_options = v,
                Err(e) => error!("ferry output plugin: option value_options is not valid: {e}"),
            },
            "origin" => match value.parse::<pg_sys::RepOriginId>() {
                Ok(v) => options.origin = v,
                Err(_) => error!("ferry output plugin: option origin: '{value}' is not an origin id"),
            },
            other => error!(
                "ferry output plugin: unknown option '{other}' (known: relations, value_options, origin)"
            ),
        }
    }
    options
}

#[pg_guard]
unsafe extern "C-unwind" fn startup(
    ctx: *mut pg_sys::LogicalDecodingContext,
    options: *mut pg_sys::OutputPluginOptions,
    _is_init: bool,
) {
    // SAFETY: Postgres passes valid pointers; the state is allocated in the decoding context's
    // memory and dropped when that context is deleted.
    unsafe {
        (*options).output_type = pg_sys::OutputPluginOutputType::OUTPUT_PLUGIN_BINARY_OUTPUT;
        (*options).receive_rewrites = false;
        let Options {
            relations,
            value_options,
            origin,
        } = parse_options(ctx);
        let parent = (*ctx).context;
        let row_context = pg_sys::AllocSetContextCreateInternal(
            parent,
            c"ferry output plugin rows".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let state = PluginState {
            relations,
            origin,
            value_options,
            row_context,
            cache_context: parent,
            cache: HashMap::new(),
            encoder: Encoder::new(),
            old_values: Vec::new(),
            new_values: Vec::new(),
            emitted_in_txn: false,
        };
        let state = PgMemoryContexts::For(parent).leak_and_drop_on_delete(state);
        (*ctx).output_plugin_private = state.cast();
    }
}

/// The plugin state of a decoding context.
///
/// # Safety
/// `ctx` must be a context whose startup callback ran.
unsafe fn state<'a>(ctx: *mut pg_sys::LogicalDecodingContext) -> &'a mut PluginState {
    // SAFETY: startup stored a valid PluginState pointer that lives as long as the context.
    unsafe { &mut *(*ctx).output_plugin_private.cast::<PluginState>() }
}

/// Writes one record as one output row.
///
/// # Safety
/// `ctx` must be a valid decoding context inside a callback.
unsafe fn write_record(ctx: *mut pg_sys::LogicalDecodingContext, bytes: &[u8], last: bool) {
    // SAFETY: prepare/append/write is the protocol for emitting a row from a callback; ctx->out is
    // the StringInfo Postgres set up for it.
    unsafe {
        pg_sys::OutputPluginPrepareWrite(ctx, last);
        pg_sys::appendBinaryStringInfo((*ctx).out, bytes.as_ptr().cast(), bytes.len() as i32);
        pg_sys::OutputPluginWrite(ctx, last);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _txn: *mut pg_sys::ReorderBufferTXN,
) {
    // Nothing to send: a transaction's changes and its commit arrive together.
    // SAFETY: ctx is valid and its startup ran.
    unsafe { state(ctx) }.emitted_in_txn = false;
}

/// Finds or builds the converter for `relation`, sending its shape first when new or changed.
///
/// # Safety
/// `ctx` and `relation` must be valid; called inside a change callback.
unsafe fn relation_entry(
    ctx: *mut pg_sys::LogicalDecodingContext,
    state: &mut PluginState,
    relation: pg_sys::Relation,
) -> &mut CachedRelation {
    // SAFETY: relation is a valid open relation given to the callback.
    let (relid, tupdesc) = unsafe { ((*relation).rd_id.to_u32(), (*relation).rd_att) };
    // SAFETY: tupdesc is the relation's valid descriptor.
    let current_shape = unsafe { shape_of(tupdesc) };
    let stale = match state.cache.get(&relid) {
        Some(cached) => cached.tupdesc != tupdesc || cached.shape != current_shape,
        None => true,
    };
    if stale {
        // SAFETY: catalog lookups are allowed under the historic snapshot decoding runs in.
        let entry = unsafe { build_relation(state.cache_context, relation) };
        state.cache.insert(relid, entry);
    }
    let entry = state.cache.get_mut(&relid).expect("inserted above");
    if !entry.sent {
        state.encoder.clear();
        state
            .encoder
            .record(&ChangeRecord::Relation(entry.info.clone()));
        // SAFETY: inside a callback.
        unsafe { write_record(ctx, state.encoder.bytes(), false) };
        entry.sent = true;
    }
    entry
}

/// The shape of a descriptor: per attribute its type, whether it is dropped, and its name.
///
/// # Safety
/// `tupdesc` must be a valid tuple descriptor.
unsafe fn shape_of(tupdesc: pg_sys::TupleDesc) -> Vec<(u32, bool, [u8; 64])> {
    // SAFETY: attrs has natts entries.
    unsafe {
        (0..(*tupdesc).natts as usize)
            .map(|i| {
                let attr = &*(*tupdesc).attrs.as_ptr().add(i);
                let mut name = [0u8; 64];
                for (dst, src) in name.iter_mut().zip(attr.attname.data.iter()) {
                    *dst = *src as u8;
                }
                (attr.atttypid.to_u32(), attr.attisdropped, name)
            })
            .collect()
    }
}

/// Builds a relation's converter and shape.
///
/// # Safety
/// `relation` must be valid; `mcxt` must live as long as the decoding context.
unsafe fn build_relation(
    mcxt: pg_sys::MemoryContext,
    relation: pg_sys::Relation,
) -> CachedRelation {
    // SAFETY: relation, its pg_class row and its descriptor are valid for the callback.
    unsafe {
        let rd_rel = (*relation).rd_rel;
        let name = CStr::from_ptr((*rd_rel).relname.data.as_ptr())
            .to_string_lossy()
            .into_owned();
        let nsp = pg_sys::get_namespace_name((*rd_rel).relnamespace);
        let schema = if nsp.is_null() {
            String::new()
        } else {
            CStr::from_ptr(nsp).to_string_lossy().into_owned()
        };
        // The row identity: the replica identity index, else the primary key; with neither
        // (REPLICA IDENTITY FULL without a key) no column is flagged and the whole row is the key.
        let mut key = pg_sys::RelationGetIndexAttrBitmap(
            relation,
            pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_IDENTITY_KEY,
        );
        if key.is_null() {
            key = pg_sys::RelationGetIndexAttrBitmap(
                relation,
                pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY,
            );
        }
        let tupdesc = (*relation).rd_att;
        let converter = TupleConverter::new(tupdesc, mcxt, |attnum| {
            !key.is_null()
                && pg_sys::bms_is_member(
                    i32::from(attnum) - pg_sys::FirstLowInvalidHeapAttributeNumber,
                    key,
                )
        });
        let info = RelationInfo {
            relid: (*relation).rd_id.to_u32(),
            schema,
            name,
            columns: converter.column_infos(),
        };
        CachedRelation {
            tupdesc,
            shape: shape_of(tupdesc),
            converter,
            info,
            sent: false,
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn change(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _txn: *mut pg_sys::ReorderBufferTXN,
    relation: pg_sys::Relation,
    change: *mut pg_sys::ReorderBufferChange,
) {
    // SAFETY: Postgres passes valid pointers for the duration of the callback.
    unsafe {
        let state = state(ctx);
        let relid = (*relation).rd_id.to_u32();
        if !state.relations.contains(&relid) {
            return;
        }
        let old_context = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = state.row_context;
        let options = state.value_options;
        let tp = (*change).data.tp;
        let action = (*change).action;
        let mut old_values = std::mem::take(&mut state.old_values);
        let mut new_values = std::mem::take(&mut state.new_values);
        let entry = relation_entry(ctx, state, relation);
        let tupdesc = entry.tupdesc;
        let has_old = !tp.oldtuple.is_null();
        let has_new = !tp.newtuple.is_null();
        if has_old {
            entry.converter.convert(
                &mut (*tp.oldtuple).tuple,
                tupdesc,
                &options,
                false,
                &mut old_values,
            );
        }
        let mut toasted = false;
        if has_new {
            toasted = entry.converter.convert(
                &mut (*tp.newtuple).tuple,
                tupdesc,
                &options,
                true,
                &mut new_values,
            );
        }
        let record = match action {
            pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_INSERT if has_new => {
                Some(ChangeRecord::Insert {
                    relid,
                    new: std::mem::take(&mut new_values),
                    toasted,
                })
            }
            pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_UPDATE if has_new => {
                Some(ChangeRecord::Update {
                    relid,
                    old: has_old.then(|| std::mem::take(&mut old_values)),
                    new: std::mem::take(&mut new_values),
                    toasted,
                })
            }
            pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_DELETE if has_old => {
                Some(ChangeRecord::Delete {
                    relid,
                    old: std::mem::take(&mut old_values),
                })
            }
            // A delete without an old tuple (REPLICA IDENTITY NOTHING) cannot be matched to a row;
            // deploy_rules refuses such tables, so this only happens after an ALTER TABLE.
            _ => None,
        };
        if let Some(record) = record {
            state.emitted_in_txn = true;
            state.encoder.clear();
            state.encoder.record(&record);
            write_record(ctx, state.encoder.bytes(), true);
            // Give the buffers back for reuse.
            match record {
                ChangeRecord::Insert { new, .. } => new_values = new,
                ChangeRecord::Update { old, new, .. } => {
                    new_values = new;
                    if let Some(old) = old {
                        old_values = old;
                    }
                }
                ChangeRecord::Delete { old, .. } => old_values = old,
                _ => {}
            }
        }
        state.old_values = old_values;
        state.new_values = new_values;
        pg_sys::CurrentMemoryContext = old_context;
        pg_sys::MemoryContextReset(state.row_context);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn truncate(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _txn: *mut pg_sys::ReorderBufferTXN,
    nrelations: core::ffi::c_int,
    relations: *mut pg_sys::Relation,
    _change: *mut pg_sys::ReorderBufferChange,
) {
    // SAFETY: relations has nrelations valid entries for the callback's duration.
    unsafe {
        let state = state(ctx);
        let mut relids = Vec::new();
        for i in 0..nrelations.max(0) as usize {
            let relid = (*(*relations.add(i))).rd_id.to_u32();
            if state.relations.contains(&relid) {
                relids.push(relid);
            }
        }
        if relids.is_empty() {
            return;
        }
        state.emitted_in_txn = true;
        state.encoder.clear();
        state.encoder.record(&ChangeRecord::Truncate { relids });
        write_record(ctx, state.encoder.bytes(), true);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn commit(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    _commit_lsn: pg_sys::XLogRecPtr,
) {
    // SAFETY: txn is valid for the callback; commit_time is the active union member at commit.
    unsafe {
        let state = state(ctx);
        // A transaction that produced no record sends no commit either: the applier moves the
        // slot past WAL that does not concern it by itself.
        if !state.emitted_in_txn {
            return;
        }
        state.encoder.clear();
        state.encoder.record(&ChangeRecord::Commit {
            end_lsn: (*txn).end_lsn,
            commit_time: (*txn).xact_time.commit_time,
            xid: (*txn).xid.into_inner(),
        });
        write_record(ctx, state.encoder.bytes(), true);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn message(
    ctx: *mut pg_sys::LogicalDecodingContext,
    _txn: *mut pg_sys::ReorderBufferTXN,
    _message_lsn: pg_sys::XLogRecPtr,
    transactional: bool,
    prefix: *const core::ffi::c_char,
    message_size: pg_sys::Size,
    message: *const core::ffi::c_char,
) {
    // SAFETY: prefix is a C string and message has message_size bytes, valid for the callback.
    unsafe {
        let prefix = CStr::from_ptr(prefix).to_string_lossy();
        if !prefix.starts_with("ferry") {
            return;
        }
        let content = std::slice::from_raw_parts(message.cast::<u8>(), message_size);
        let state = state(ctx);
        if transactional {
            state.emitted_in_txn = true;
        }
        state.encoder.clear();
        state.encoder.record(&ChangeRecord::Message {
            transactional,
            prefix: prefix.into_owned(),
            content: content.to_vec(),
        });
        write_record(ctx, state.encoder.bytes(), true);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn filter_by_origin(
    ctx: *mut pg_sys::LogicalDecodingContext,
    origin_id: pg_sys::RepOriginId,
) -> bool {
    // The applier's own writes carry its origin: drop them before Postgres buffers them. Changes
    // of other origins (say, a logical replication subscription into this database) are synced.
    // SAFETY: ctx is valid and its startup ran.
    let state = unsafe { state(ctx) };
    origin_id != pg_sys::InvalidRepOriginId as pg_sys::RepOriginId && origin_id == state.origin
}

#[pg_guard]
unsafe extern "C-unwind" fn shutdown(_ctx: *mut pg_sys::LogicalDecodingContext) {
    // The state is dropped with the decoding context's memory.
}
