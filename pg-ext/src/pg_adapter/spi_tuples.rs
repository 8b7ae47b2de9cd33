//! Raw access to the tuples of the last SPI result, for converting them with
//! [`TupleConverter`](crate::pg_adapter::tuple::TupleConverter) exactly as decoded changes are.

use ferry_rules::pg_convert::ValueOptions;
use pgrx::pg_sys;

use crate::change_record::{ColumnInfo, ColumnValue};
use crate::pg_adapter::tuple::TupleConverter;

/// Converts every row of the current SPI result (the last `select`), calling `f` with the
/// converted values of its first `columns` columns, the text of the column after them (the
/// keyset key array, or `None`) and whether any value is stored out of line (TOAST). Returns the
/// column infos of the converted columns.
///
/// Must be called right after an SPI query, inside the same `Spi::connect`.
pub fn for_each_result_row(
    columns: usize,
    options: &ValueOptions,
    mut f: impl FnMut(&[ColumnValue], Option<Vec<Option<String>>>, bool),
) -> Vec<ColumnInfo> {
    // SAFETY: SPI_tuptable is the result of the last SPI query in this SPI connection (the
    // caller's contract); its vals array has numvals tuples of tupdesc.
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() {
            return Vec::new();
        }
        let tupdesc = (*table).tupdesc;
        let natts = (*tupdesc).natts as usize;
        let mcxt = pg_sys::CurrentMemoryContext;
        let mut converter = TupleConverter::new(tupdesc, mcxt, |_| false).limit(columns);
        let key_index = (natts > columns).then_some(columns);
        let mut values = Vec::new();
        for i in 0..(*table).numvals as usize {
            let tuple = *(*table).vals.add(i);
            let toasted = converter.convert(tuple, tupdesc, options, false, &mut values);
            let key = key_index.and_then(|k| {
                let mut isnull = false;
                let datum = pg_sys::SPI_getbinval(tuple, tupdesc, (k + 1) as i32, &mut isnull);
                if isnull {
                    None
                } else {
                    <Vec<Option<String>> as pgrx::FromDatum>::from_polymorphic_datum(
                        datum,
                        false,
                        pg_sys::TEXTARRAYOID,
                    )
                }
            });
            f(&values, key, toasted);
        }
        converter.column_infos()
    }
}
