//! A source row: its columns in table order, each a [`Value`].
//!
//! Holds [`Row`] only. Columns are looked up by name on every access (a short linear scan), so a
//! row that gained or lost columns after `ALTER TABLE` is always read correctly; there is no
//! per-table column cache that could go stale.

use crate::value::Value;

/// One source row, columns in table order. Column names are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    columns: Vec<(String, Value)>,
}

impl Row {
    /// A row from `(name, value)` pairs in table order.
    pub fn new(columns: Vec<(String, Value)>) -> Self {
        Row { columns }
    }

    /// An empty row with room for `capacity` columns.
    pub fn with_capacity(capacity: usize) -> Self {
        Row {
            columns: Vec::with_capacity(capacity),
        }
    }

    /// Appends a column (the caller keeps names unique).
    pub fn push(&mut self, name: impl Into<String>, value: Value) {
        self.columns.push((name.into(), value));
    }

    /// The value of column `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.columns
            .iter()
            .find(|(n, _)| n.len() == name.len() && n == name)
            .map(|(_, v)| v)
    }

    /// All columns in table order.
    pub fn columns(&self) -> &[(String, Value)] {
        &self.columns
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True if the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

impl<N: Into<String>> FromIterator<(N, Value)> for Row {
    fn from_iter<I: IntoIterator<Item = (N, Value)>>(iter: I) -> Self {
        Row {
            columns: iter.into_iter().map(|(n, v)| (n.into(), v)).collect(),
        }
    }
}

impl From<Vec<(String, Value)>> for Row {
    fn from(columns: Vec<(String, Value)>) -> Self {
        Row { columns }
    }
}
