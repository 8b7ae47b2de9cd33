//! Heap tuples to SQLite values: the one conversion used by both the output plugin (decoded
//! changes) and the snapshot (rows read through SPI), so a row converts identically either way.
//!
//! Common fixed-size types are read straight from the datum; every other type goes through its
//! output function and ferry-rules' pure text conversions (PROTOCOL.md §1.7), under the session
//! settings the applier pins (DateStyle ISO, TimeZone UTC, extra_float_digits 3, bytea_output hex).
//! Unchanged TOAST values of decoded updates are detected and marked, never detoasted.

use std::ffi::CStr;

use ferry_rules::pg_convert::{convert, PgType, ValueOptions};
use ferry_rules::Value;
use pgrx::pg_sys;

use crate::change_record::{ColumnInfo, ColumnValue};

/// How one column is read.
struct Column {
    /// Index into the tuple descriptor.
    index: usize,
    info: ColumnInfo,
    pg_type: PgType,
    is_varlena: bool,
    output: Box<pg_sys::FmgrInfo>,
}

/// Converts tuples of one tuple descriptor. Build once per relation shape, reuse for every row.
pub struct TupleConverter {
    natts: usize,
    columns: Vec<Column>,
    datums: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl TupleConverter {
    /// Prepares a converter for `tupdesc`. `is_key(attnum)` says whether a column (1-based
    /// attribute number) is part of the row's identity. Output-function state is allocated in
    /// `mcxt`, which must outlive the converter.
    ///
    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor and `mcxt` a live memory context.
    pub unsafe fn new(
        tupdesc: pg_sys::TupleDesc,
        mcxt: pg_sys::MemoryContext,
        is_key: impl Fn(i16) -> bool,
    ) -> TupleConverter {
        // SAFETY: the caller passes a valid descriptor; attrs has natts entries.
        let natts = unsafe { (*tupdesc).natts as usize };
        let mut columns = Vec::with_capacity(natts);
        for index in 0..natts {
            // SAFETY: index < natts.
            let attr = unsafe { &*(*tupdesc).attrs.as_ptr().add(index) };
            if attr.attisdropped {
                continue;
            }
            // SAFETY: attname is a NUL-terminated NameData.
            let name = unsafe { CStr::from_ptr(attr.attname.data.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            let type_oid = attr.atttypid;
            let mut output_oid = pg_sys::Oid::INVALID;
            let mut is_varlena = false;
            // SAFETY: type_oid comes from the catalog; the out-pointers are valid locals.
            unsafe { pg_sys::getTypeOutputInfo(type_oid, &mut output_oid, &mut is_varlena) };
            let mut output: Box<pg_sys::FmgrInfo> = Box::default();
            // SAFETY: output points at a FmgrInfo we own; mcxt is live (caller's contract).
            unsafe { pg_sys::fmgr_info_cxt(output_oid, output.as_mut(), mcxt) };
            let oid = type_oid.to_u32();
            columns.push(Column {
                index,
                info: ColumnInfo {
                    name,
                    type_oid: oid,
                    is_key: is_key(attr.attnum),
                },
                pg_type: PgType::from_builtin_oid(oid).unwrap_or(PgType::Other),
                is_varlena: attr.attlen == -1,
                output,
            });
        }
        TupleConverter {
            natts,
            columns,
            datums: vec![pg_sys::Datum::from(0usize); natts],
            nulls: vec![true; natts],
        }
    }

    /// Keeps only the first `n` attributes of the descriptor (the snapshot query appends its
    /// keyset key after the table's columns).
    pub fn limit(mut self, n: usize) -> Self {
        self.columns.retain(|c| c.index < n);
        self
    }

    /// The columns this converter produces, in order.
    pub fn column_infos(&self) -> Vec<ColumnInfo> {
        self.columns.iter().map(|c| c.info.clone()).collect()
    }

    /// Converts `tuple` into `out` (cleared first), one value per column of
    /// [`column_infos`](Self::column_infos). With `detect_toast`, an on-disk TOAST pointer (an
    /// unchanged value in a decoded update) becomes [`ColumnValue::UnchangedToast`]. Returns
    /// whether any value is stored out of line: an on-disk TOAST pointer, or (in a decoded
    /// change) a value logical decoding reassembled from its TOAST chunks.
    ///
    /// Memory the output functions allocate goes to the current memory context: callers reset it.
    ///
    /// # Safety
    /// `tuple` must be a valid heap tuple of the descriptor this converter was built for.
    pub unsafe fn convert(
        &mut self,
        tuple: pg_sys::HeapTuple,
        tupdesc: pg_sys::TupleDesc,
        options: &ValueOptions,
        detect_toast: bool,
        out: &mut Vec<ColumnValue>,
    ) -> bool {
        out.clear();
        let mut out_of_line = false;
        // SAFETY: datums and nulls have natts entries, the descriptor's attribute count.
        unsafe {
            pg_sys::heap_deform_tuple(
                tuple,
                tupdesc,
                self.datums.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
            )
        };
        for column in &mut self.columns {
            if column.index >= self.natts || self.nulls[column.index] {
                out.push(ColumnValue::Value(Value::Null));
                continue;
            }
            let datum = self.datums[column.index];
            if column.is_varlena {
                let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
                // SAFETY: a non-null varlena datum points at a varlena header.
                let (external, on_disk) = unsafe {
                    let external = pgrx::varlena::varatt_is_1b_e(ptr);
                    let on_disk = external
                        && pgrx::varlena::vartag_external(ptr)
                            == pg_sys::vartag_external::VARTAG_ONDISK as u8;
                    (external, on_disk)
                };
                out_of_line |= external;
                if detect_toast && on_disk {
                    out.push(ColumnValue::UnchangedToast);
                    continue;
                }
            }
            // SAFETY: datum is a non-null value of the column's type.
            let value = unsafe { convert_datum(column, datum, options) };
            out.push(ColumnValue::Value(value));
        }
        out_of_line
    }
}

/// Converts one non-null datum.
///
/// # Safety
/// `datum` must be a non-null value of `column`'s type.
unsafe fn convert_datum(
    column: &mut Column,
    datum: pg_sys::Datum,
    options: &ValueOptions,
) -> Value {
    match column.pg_type {
        PgType::Bool => return Value::Integer(i64::from(datum.value() & 0xff != 0)),
        PgType::Int2 => return Value::Integer(i64::from(datum.value() as i16)),
        PgType::Int4 => return Value::Integer(i64::from(datum.value() as i32)),
        PgType::Int8 => return Value::Integer(datum.value() as i64),
        PgType::Oid => return Value::Integer(i64::from(datum.value() as u32)),
        PgType::Float8 => return Value::Real(f64::from_bits(datum.value() as u64)),
        PgType::Float4 => {
            // Postgres prints a float4 with the shortest digits that round-trip (`0.1`), and that
            // text is what sync rules see; f64::from(0.1f32) would be 0.10000000149011612.
            let f = f32::from_bits(datum.value() as u32);
            return Value::Real(f.to_string().parse().unwrap_or(f64::from(f)));
        }
        _ => {}
    }
    // SAFETY: output is an initialised FmgrInfo for the type's output function.
    let cstr = unsafe { pg_sys::OutputFunctionCall(column.output.as_mut(), datum) };
    // SAFETY: output functions return a palloc'd NUL-terminated string.
    let text = unsafe { CStr::from_ptr(cstr) };
    match text.to_str() {
        Ok(text) => convert(&column.pg_type, text, options),
        // The server encoding is UTF-8 in every cluster ferry supports; anything else is kept as
        // text with replacement characters rather than failing the change.
        Err(_) => Value::Text(text.to_string_lossy().into_owned()),
    }
}
