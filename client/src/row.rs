//! Query results and parameters: [`Row`] (owned values with column names, so results can cross
//! threads and be kept by watchers), [`IntoParams`] and the [`params!`](crate::params) macro.

use std::sync::Arc;

use rusqlite::types::{FromSql, Value, ValueRef};

use crate::error::{Error, Result};

/// One result row: owned values, addressable by position or column name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// A column of a [`Row`]: its position or its name.
pub trait ColumnIndex {
    /// The position of the column in `row`, if it has one.
    fn position(&self, row: &Row) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, row: &Row) -> Option<usize> {
        (*self < row.values.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn position(&self, row: &Row) -> Option<usize> {
        row.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(self))
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// One value, `None` if there is no such column.
    pub fn value(&self, index: impl ColumnIndex) -> Option<&Value> {
        index.position(self).map(|i| &self.values[i])
    }

    /// One value converted to `T` (any rusqlite [`FromSql`] type: `String`, `i64`, `f64`,
    /// `Option<T>`, ...).
    pub fn get<T: FromSql>(&self, index: impl ColumnIndex) -> Result<T> {
        let Some(i) = index.position(self) else {
            return Err(Error::Sqlite(rusqlite::Error::InvalidColumnIndex(
                self.values.len(),
            )));
        };
        T::column_result(ValueRef::from(&self.values[i])).map_err(|e| {
            Error::Sqlite(rusqlite::Error::FromSqlConversionFailure(
                i,
                self.values[i].data_type(),
                Box::new(e),
            ))
        })
    }
}

/// Converts a Rust value into an SQL parameter value.
pub trait IntoValue {
    /// The SQL value.
    fn into_value(self) -> Value;
}

macro_rules! into_value_via_from {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::from(self)
            }
        }
    )*};
}
into_value_via_from!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    f32,
    f64,
    bool,
    String,
    Vec<u8>,
    Value
);

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl IntoValue for &String {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, IntoValue::into_value)
    }
}

/// Statement parameters: `()`, a `Vec<Value>`, an array of values, or [`params!`](crate::params).
pub trait IntoParams {
    /// The parameters, bound as `?1`, `?2`, ...
    fn into_params(self) -> Vec<Value>;
}

impl IntoParams for () {
    fn into_params(self) -> Vec<Value> {
        Vec::new()
    }
}

impl IntoParams for Vec<Value> {
    fn into_params(self) -> Vec<Value> {
        self
    }
}

impl<T: IntoValue, const N: usize> IntoParams for [T; N] {
    fn into_params(self) -> Vec<Value> {
        self.into_iter().map(IntoValue::into_value).collect()
    }
}

/// Builds statement parameters from values of mixed types:
/// `ferry_client::params!["milk", 0, 1.5, None::<String>]`.
#[macro_export]
macro_rules! params {
    () => { ::std::vec::Vec::<$crate::Value>::new() };
    ($($value:expr),+ $(,)?) => {
        ::std::vec![$($crate::IntoValue::into_value($value)),+]
    };
}

/// Runs `sql` with `params` on `conn` and collects the rows.
pub(crate) fn query_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| Error::query(sql, e))?;
    let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
    let n = columns.len();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(|e| Error::query(sql, e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| Error::query(sql, e))? {
        let values = (0..n)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(Row::new(columns.clone(), values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_convert_by_position_and_name() -> Result<()> {
        let conn = rusqlite::Connection::open_in_memory()?;
        let rows = query_rows(
            &conn,
            "SELECT ?1 AS name, ?2 AS n, ?3 AS missing",
            &crate::params!["milk", 2, None::<i64>],
        )?;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.get::<String>("name")?, "milk");
        assert_eq!(row.get::<i64>(1)?, 2);
        assert_eq!(row.get::<Option<i64>>("MISSING")?, None);
        assert!(row.get::<i64>("nope").is_err());
        assert!(row.get::<i64>("name").is_err());
        Ok(())
    }

    #[test]
    fn bad_sql_names_the_statement() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = query_rows(&conn, "SELEC 1", &[]).unwrap_err().to_string();
        assert!(e.starts_with("query failed: near \"SELEC\""), "{e}");
        assert!(e.ends_with("(SQL: SELEC 1)"), "{e}");
    }
}
