//! SPI calls that run as volatile (a fresh snapshot, like any statement) without assigning a
//! transaction id.
//!
//! pgrx runs SPI read-only until the transaction has an id, and assigns one for anything that
//! might write. Neither fits logical decoding: the slot functions (peek, advance) misbehave under
//! read-only SPI's borrowed snapshot, and assigning an id in every applier step would make each
//! idle step write a commit record. These two functions call SPI directly instead.

use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum};

use crate::errors::FerryError;

/// A connected SPI session, finished on drop (also on an early return).
struct Session;

impl Session {
    fn connect() -> Result<Session, FerryError> {
        // SAFETY: SPI_connect may be called in any transaction; paired with SPI_finish in drop.
        let rc = unsafe { pg_sys::SPI_connect() };
        if rc != pg_sys::SPI_OK_CONNECT as i32 {
            return Err(FerryError::Internal(format!("SPI_connect failed ({rc})")));
        }
        Ok(Session)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: matches the successful SPI_connect of this session.
        unsafe { pg_sys::SPI_finish() };
    }
}

/// Text arguments as SPI wants them.
struct Args {
    types: Vec<pg_sys::Oid>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<core::ffi::c_char>,
}

impl Args {
    fn new(args: &[&str]) -> Args {
        Args {
            types: vec![pg_sys::TEXTOID; args.len()],
            values: args
                .iter()
                .map(|a| a.into_datum().unwrap_or(pg_sys::Datum::from(0usize)))
                .collect(),
            nulls: vec![b' ' as core::ffi::c_char; args.len()],
        }
    }
}

fn c_query(query: &str) -> Result<CString, FerryError> {
    CString::new(query).map_err(|_| FerryError::Internal("query contains a NUL byte".into()))
}

/// Executes `query` with text arguments (`$1::text` …), ignoring its result.
///
/// The statement runs under the top transaction's resource owner, restored afterwards: the slot
/// functions (creating a slot waits for running transactions and sets up a decoding context) may
/// leave `CurrentResourceOwner` switched to the top transaction's, and a snapshot registered
/// under the caller's portal would then be released under the wrong owner ("snapshot reference
/// … is not owned by resource owner TopTransaction"). Everything it holds is released at the end
/// of the transaction either way.
pub fn exec(query: &str, args: &[&str]) -> Result<(), FerryError> {
    let _session = Session::connect()?;
    let query = c_query(query)?;
    let mut a = Args::new(args);
    // SAFETY: a transaction is in progress (SPI is connected), so TopTransactionResourceOwner is
    // valid; the previous owner is restored right after the call.
    let saved_owner = unsafe {
        let saved = pg_sys::CurrentResourceOwner;
        pg_sys::CurrentResourceOwner = pg_sys::TopTransactionResourceOwner;
        saved
    };
    // SAFETY: the arrays have one entry per argument and outlive the call.
    let rc = unsafe {
        pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            a.types.len() as i32,
            a.types.as_mut_ptr(),
            a.values.as_mut_ptr(),
            a.nulls.as_ptr(),
            false,
            0,
        )
    };
    // SAFETY: restores the owner saved above (on an error, transaction abort resets it).
    unsafe { pg_sys::CurrentResourceOwner = saved_owner };
    if rc < 0 {
        return Err(FerryError::Internal(format!(
            "SPI_execute_with_args failed ({rc})"
        )));
    }
    Ok(())
}

/// Runs `query` (whose first column is `bytea`) through a cursor, calling `f` with each fetched
/// batch of at most `fetch` values (NULLs as empty), so the result is never held whole.
pub fn for_each_bytea_batch(
    query: &str,
    args: &[&str],
    fetch: i64,
    mut f: impl FnMut(Vec<Vec<u8>>) -> Result<(), FerryError>,
) -> Result<(), FerryError> {
    let _session = Session::connect()?;
    let query = c_query(query)?;
    let mut a = Args::new(args);
    // SAFETY: the arrays have one entry per argument and outlive the call; a NULL name lets SPI
    // pick a portal name.
    let portal = unsafe {
        pg_sys::SPI_cursor_open_with_args(
            std::ptr::null(),
            query.as_ptr(),
            a.types.len() as i32,
            a.types.as_mut_ptr(),
            a.values.as_mut_ptr(),
            a.nulls.as_ptr(),
            false,
            0,
        )
    };
    let result = loop {
        // SAFETY: portal is the open cursor; SPI_tuptable then holds the fetched rows, which are
        // copied out and freed before `f` runs (it may use SPI itself).
        let batch = unsafe {
            pg_sys::SPI_cursor_fetch(portal, true, fetch as core::ffi::c_long);
            let table = pg_sys::SPI_tuptable;
            if table.is_null() {
                Vec::new()
            } else {
                let n = (*table).numvals as usize;
                let mut batch = Vec::with_capacity(n);
                for i in 0..n {
                    let mut isnull = false;
                    let datum = pg_sys::SPI_getbinval(
                        *(*table).vals.add(i),
                        (*table).tupdesc,
                        1,
                        &mut isnull,
                    );
                    let bytes = if isnull {
                        Vec::new()
                    } else {
                        Vec::<u8>::from_polymorphic_datum(datum, false, pg_sys::BYTEAOID)
                            .unwrap_or_default()
                    };
                    batch.push(bytes);
                }
                pg_sys::SPI_freetuptable(table);
                batch
            }
        };
        if batch.is_empty() {
            break Ok(());
        }
        if let Err(e) = f(batch) {
            break Err(e);
        }
    };
    // SAFETY: the portal is still open (closed only here).
    unsafe { pg_sys::SPI_cursor_close(portal) };
    result
}
