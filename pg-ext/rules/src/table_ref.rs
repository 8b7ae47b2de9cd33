//! Source table names as sync rules see them: a schema and a table, or a `%` pattern.
//!
//! Holds [`TableRef`] only. Names are compared exactly: the compiler already lowercased unquoted
//! identifiers and kept quoted ones, so the extension passes names exactly as the catalog has them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The schema used when a query names a table without one.
pub const DEFAULT_SCHEMA: &str = "public";

/// A source table: `schema.name`. A `name` ending in `%` is a pattern (`todos_%`) that matches
/// every table of the schema with that prefix (PROTOCOL.md §1.4); see [`TableRef::matches`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    /// Schema name, `public` unless the query names another.
    pub schema: String,
    /// Table name, or a pattern ending in `%`.
    pub name: String,
}

impl TableRef {
    /// A table in `schema`.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableRef {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// A table in the `public` schema.
    pub fn public(name: impl Into<String>) -> Self {
        TableRef::new(DEFAULT_SCHEMA, name)
    }

    /// True if this is a `%` pattern rather than one table.
    pub fn is_pattern(&self) -> bool {
        self.name.ends_with('%')
    }

    /// True if `table` is this table, or matches this pattern. A pattern's prefix is everything
    /// before the final `%`; the matched rest is the row's `_table_suffix`.
    pub fn matches(&self, table: &TableRef) -> bool {
        if self.schema != table.schema {
            return false;
        }
        match self.name.strip_suffix('%') {
            Some(prefix) => table.name.starts_with(prefix),
            None => self.name == table.name,
        }
    }

    /// For a pattern matching `table`: the part of the table's name after the prefix.
    pub fn suffix_of<'a>(&self, table: &'a TableRef) -> Option<&'a str> {
        let prefix = self.name.strip_suffix('%')?;
        table.name.strip_prefix(prefix)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_by_prefix_within_the_schema() {
        let pattern = TableRef::public("todos_%");
        assert!(pattern.is_pattern());
        assert!(pattern.matches(&TableRef::public("todos_2024")));
        assert_eq!(
            pattern.suffix_of(&TableRef::public("todos_2024")),
            Some("2024")
        );
        assert!(!pattern.matches(&TableRef::new("other", "todos_2024")));
        assert!(!TableRef::public("todos").matches(&TableRef::public("todos_1")));
    }
}
