//! SQL functions registered on ferry's connections:
//!
//! - `ferry_tx_id()`: the upload-queue transaction id of the current SQLite transaction: the first
//!   call in a transaction takes the next id, later calls in the same transaction return it again
//!   (the commit and rollback hooks in [`super::hooks`] end the transaction). Ids only grow: the
//!   next one is kept in `ferry_tx` by a trigger on `ferry_crud`, so an id is never reused even
//!   after the queue drained.
//! - `ferry_crud_json(op, type, id, new, old)`: the JSON of one upload-queue entry
//!   ([`ferry_protocol::CrudEntry`]); PUT data leaves out NULL columns, PATCH data holds only the
//!   changed columns, and an update that changed nothing gives NULL (and is not queued).
//! - `uuid()`: a random UUID v4 as text, handy for new row ids.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_protocol::{CrudEntry, CrudOp};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Value};

/// The transaction-id counter shared by `ferry_tx_id()` and the commit/rollback hooks.
#[derive(Debug, Default)]
pub(crate) struct TxIds {
    state: Mutex<TxIdState>,
}

#[derive(Debug, Default)]
struct TxIdState {
    next: i64,
    current: Option<i64>,
}

impl TxIds {
    /// Sets the next id (read from `ferry_tx` when the database opens).
    pub(crate) fn set_next(&self, next: i64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.next = state.next.max(next);
    }

    /// The current transaction's id, taking a new one on first use.
    fn current(&self) -> i64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = state.current {
            return id;
        }
        let id = state.next.max(1);
        state.next = id + 1;
        state.current = Some(id);
        id
    }

    /// The transaction ended (committed or rolled back).
    pub(crate) fn end_transaction(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current = None;
    }
}

/// Registers the functions of the writer connection.
pub(crate) fn register_writer_functions(
    conn: &Connection,
    tx_ids: Arc<TxIds>,
) -> rusqlite::Result<()> {
    conn.create_scalar_function("ferry_tx_id", 0, FunctionFlags::SQLITE_UTF8, move |_| {
        Ok(tx_ids.current())
    })?;
    conn.create_scalar_function(
        "ferry_crud_json",
        5,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        crud_json,
    )?;
    register_uuid(conn)
}

/// Registers `uuid()` (the only function readers need).
pub(crate) fn register_uuid(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function("uuid", 0, FunctionFlags::SQLITE_UTF8, |_| Ok(uuid_v4()))
}

fn text_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    match ctx.get_raw(i) {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => Ok(Some(String::from_utf8_lossy(t).into_owned())),
        ValueRef::Integer(n) => Ok(Some(n.to_string())),
        ValueRef::Real(r) => Ok(Some(r.to_string())),
        ValueRef::Blob(_) => Err(rusqlite::Error::UserFunctionError(
            "ferry_crud_json: blob arguments are not supported".into(),
        )),
    }
}

fn object_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<Map<String, Value>>> {
    let Some(text) = text_arg(ctx, i)? else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        _ => Err(rusqlite::Error::UserFunctionError(
            format!("ferry_crud_json: argument {i} is not a JSON object").into(),
        )),
    }
}

fn crud_json(ctx: &mut Context<'_>) -> rusqlite::Result<Option<String>> {
    let op = match text_arg(ctx, 0)?.as_deref() {
        Some("PUT") => CrudOp::Put,
        Some("PATCH") => CrudOp::Patch,
        Some("DELETE") => CrudOp::Delete,
        other => {
            return Err(rusqlite::Error::UserFunctionError(
                format!("ferry_crud_json: unknown op {other:?}").into(),
            ))
        }
    };
    let table = text_arg(ctx, 1)?.unwrap_or_default();
    let id = text_arg(ctx, 2)?.unwrap_or_default();
    let new = object_arg(ctx, 3)?;
    let old = object_arg(ctx, 4)?;
    let data = match op {
        CrudOp::Put => Some(
            new.unwrap_or_default()
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect::<Map<String, Value>>(),
        ),
        CrudOp::Patch => {
            let old = old.unwrap_or_default();
            let changed: Map<String, Value> = new
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| old.get(k).unwrap_or(&Value::Null) != v)
                .collect();
            if changed.is_empty() {
                return Ok(None);
            }
            Some(changed)
        }
        CrudOp::Delete => None,
    };
    let entry = CrudEntry {
        op,
        id,
        table,
        data,
        old: None,
        metadata: None,
    };
    serde_json::to_string(&entry)
        .map(Some)
        .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
}

/// 64 random bits: a fresh [`RandomState`] (seeded by the OS) hashing a counter and the time.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

/// A random UUID version 4, lower-case text.
pub(crate) fn uuid_v4() -> String {
    let hi = random_u64();
    let lo = random_u64();
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000; // version 4
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000; // variant 10
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        register_writer_functions(&conn, Arc::new(TxIds::default())).unwrap();
        conn
    }

    fn crud(conn: &Connection, op: &str, new: Option<&str>, old: Option<&str>) -> Option<String> {
        conn.query_row(
            "SELECT ferry_crud_json(?1, 'todos', 't1', ?2, ?3)",
            rusqlite::params![op, new, old],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn put_leaves_out_null_columns() {
        let conn = conn();
        assert_eq!(
            crud(&conn, "PUT", Some(r#"{"a":"x","b":null,"c":1.5}"#), None).unwrap(),
            r#"{"op":"PUT","id":"t1","type":"todos","data":{"a":"x","c":1.5}}"#
        );
    }

    #[test]
    fn patch_holds_only_changed_columns_and_empty_patch_is_null() {
        let conn = conn();
        assert_eq!(
            crud(
                &conn,
                "PATCH",
                Some(r#"{"a":"x","b":null,"c":2}"#),
                Some(r#"{"a":"x","b":"y","c":1}"#)
            )
            .unwrap(),
            r#"{"op":"PATCH","id":"t1","type":"todos","data":{"b":null,"c":2}}"#
        );
        assert_eq!(
            crud(&conn, "PATCH", Some(r#"{"a":"x"}"#), Some(r#"{"a":"x"}"#)),
            None
        );
    }

    #[test]
    fn delete_has_no_data() {
        let conn = conn();
        assert_eq!(
            crud(&conn, "DELETE", None, None).unwrap(),
            r#"{"op":"DELETE","id":"t1","type":"todos"}"#
        );
    }

    #[test]
    fn tx_id_is_stable_within_a_transaction() {
        let ids = TxIds::default();
        ids.set_next(7);
        assert_eq!(ids.current(), 7);
        assert_eq!(ids.current(), 7);
        ids.end_transaction();
        assert_eq!(ids.current(), 8);
    }

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
