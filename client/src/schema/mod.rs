//! The app's [`Schema`]: its [`Table`]s with typed [`Column`]s, [`Index`]es, and the local-only and
//! insert-only options, plus validation with messages that name the table and column at fault.
//!
//! The SQL generated from a schema (views, INSTEAD OF triggers, expression indexes) is in
//! `schema::ddl`; creating it in a database, and moving rows between data tables and `ferry_untyped`
//! when tables come and go, is in `storage::user_tables`.
//!
//! Synced rows are stored as JSON, so adding a column or a table needs no migration and loses
//! nothing: a column's value shows up as soon as the column is in the schema.

pub(crate) mod ddl;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// At most this many columns per table (SQLite's `json_object` takes at most 1000 arguments).
pub const MAX_COLUMNS: usize = 499;

/// The type of a column, as the view presents it (`CAST(... AS TEXT|INTEGER|REAL)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// `TEXT`.
    Text,
    /// `INTEGER` (64-bit).
    Integer,
    /// `REAL` (64-bit float).
    Real,
}

impl ColumnType {
    /// The SQL type name used in `CAST`.
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
        }
    }
}

/// One column of a table. Every table also has an `id TEXT` column, which is not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column name (also the key in the row's JSON).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// One column of an [`Index`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexColumn {
    /// The column's name (a column of the table, or `id`).
    pub name: String,
    /// Ascending (the default) or descending.
    pub ascending: bool,
}

/// An index on some columns of a table, created as an expression index on the JSON data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The index name, unique within its table.
    pub name: String,
    /// The indexed columns, in order.
    pub columns: Vec<IndexColumn>,
}

impl Index {
    /// An index with no columns yet; add them with [`Index::column`] / [`Index::desc`].
    pub fn new(name: impl Into<String>) -> Index {
        Index {
            name: name.into(),
            columns: Vec::new(),
        }
    }

    /// Adds an ascending column.
    #[must_use]
    pub fn column(mut self, name: impl Into<String>) -> Index {
        self.columns.push(IndexColumn {
            name: name.into(),
            ascending: true,
        });
        self
    }

    /// Adds a descending column.
    #[must_use]
    pub fn desc(mut self, name: impl Into<String>) -> Index {
        self.columns.push(IndexColumn {
            name: name.into(),
            ascending: false,
        });
        self
    }
}

/// A table of the app: a view named [`Table::view_name`] over the JSON rows of its data table.
///
/// ```
/// use ferry_client::{Index, Table};
///
/// let todos = Table::new("todos")
///     .text("description")
///     .integer("completed")
///     .text("list_id")
///     .index(Index::new("by_list").column("list_id"));
/// assert_eq!(todos.columns.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The table name: the `object_type` of synced rows (PROTOCOL.md §1.4).
    pub name: String,
    /// The view's name, when it differs from [`Table::name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_name: Option<String>,
    /// The columns, besides `id`.
    pub columns: Vec<Column>,
    /// Indexes.
    #[serde(default)]
    pub indexes: Vec<Index>,
    /// Rows stay on this device: never uploaded, never synced (`ferry_data_local__<name>`).
    #[serde(default)]
    pub local_only: bool,
    /// Local inserts are only queued for upload, never stored locally; updates and deletes are
    /// not allowed. Synced rows of this type still show in the view.
    #[serde(default)]
    pub insert_only: bool,
}

impl Table {
    /// A synced table with no columns yet.
    pub fn new(name: impl Into<String>) -> Table {
        Table {
            name: name.into(),
            view_name: None,
            columns: Vec::new(),
            indexes: Vec::new(),
            local_only: false,
            insert_only: false,
        }
    }

    /// Adds a column.
    #[must_use]
    pub fn column(mut self, name: impl Into<String>, column_type: ColumnType) -> Table {
        self.columns.push(Column {
            name: name.into(),
            column_type,
        });
        self
    }

    /// Adds a `TEXT` column.
    #[must_use]
    pub fn text(self, name: impl Into<String>) -> Table {
        self.column(name, ColumnType::Text)
    }

    /// Adds an `INTEGER` column.
    #[must_use]
    pub fn integer(self, name: impl Into<String>) -> Table {
        self.column(name, ColumnType::Integer)
    }

    /// Adds a `REAL` column.
    #[must_use]
    pub fn real(self, name: impl Into<String>) -> Table {
        self.column(name, ColumnType::Real)
    }

    /// Adds an index.
    #[must_use]
    pub fn index(mut self, index: Index) -> Table {
        self.indexes.push(index);
        self
    }

    /// Makes the table local-only (see [`Table::local_only`]).
    #[must_use]
    pub fn local_only(mut self) -> Table {
        self.local_only = true;
        self
    }

    /// Makes the table insert-only (see [`Table::insert_only`]).
    #[must_use]
    pub fn insert_only(mut self) -> Table {
        self.insert_only = true;
        self
    }

    /// Names the view differently from the table (the synced `object_type` stays `name`).
    #[must_use]
    pub fn with_view_name(mut self, view_name: impl Into<String>) -> Table {
        self.view_name = Some(view_name.into());
        self
    }

    /// The name of the view the app reads and writes.
    pub fn view_name(&self) -> &str {
        self.view_name.as_deref().unwrap_or(&self.name)
    }

    /// The internal table holding the rows as JSON: `ferry_data__<name>`, or
    /// `ferry_data_local__<name>` for a local-only table.
    pub fn data_table(&self) -> String {
        if self.local_only {
            format!("{LOCAL_DATA_PREFIX}{}", self.name)
        } else {
            format!("{DATA_PREFIX}{}", self.name)
        }
    }

    fn validate(&self) -> Result<()> {
        check_name("table", &self.name, &self.name)?;
        if let Some(view) = &self.view_name {
            check_name("view", view, &self.name)?;
        }
        if self.local_only && self.insert_only {
            return Err(Error::Schema(format!(
                "table {:?} cannot be both local-only and insert-only",
                self.name
            )));
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(Error::Schema(format!(
                "table {:?} has {} columns; at most {MAX_COLUMNS} are supported",
                self.name,
                self.columns.len()
            )));
        }
        let mut seen = HashSet::new();
        for column in &self.columns {
            check_name("column", &column.name, &self.name)?;
            if column.name.eq_ignore_ascii_case("id") {
                return Err(Error::Schema(format!(
                    "table {:?}: do not declare the column \"id\"; every table has an id TEXT \
                     column already",
                    self.name
                )));
            }
            if !seen.insert(column.name.to_ascii_lowercase()) {
                return Err(Error::Schema(format!(
                    "table {:?}: column {:?} is declared twice",
                    self.name, column.name
                )));
            }
        }
        let mut index_names = HashSet::new();
        for index in &self.indexes {
            check_name("index", &index.name, &self.name)?;
            if !index_names.insert(index.name.to_ascii_lowercase()) {
                return Err(Error::Schema(format!(
                    "table {:?}: index {:?} is declared twice",
                    self.name, index.name
                )));
            }
            if index.columns.is_empty() {
                return Err(Error::Schema(format!(
                    "table {:?}: index {:?} has no columns",
                    self.name, index.name
                )));
            }
            for column in &index.columns {
                let known = column.name.eq_ignore_ascii_case("id")
                    || self
                        .columns
                        .iter()
                        .any(|c| c.name.eq_ignore_ascii_case(&column.name));
                if !known {
                    return Err(Error::Schema(format!(
                        "table {:?}: index {:?} names column {:?}, which the table does not have",
                        self.name, index.name, column.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The prefix of synced data tables.
pub(crate) const DATA_PREFIX: &str = "ferry_data__";
/// The prefix of local-only data tables.
pub(crate) const LOCAL_DATA_PREFIX: &str = "ferry_data_local__";

/// All tables of the app.
///
/// ```
/// use ferry_client::{Schema, Table};
///
/// let schema = Schema::new(vec![
///     Table::new("lists").text("name").text("owner_id"),
///     Table::new("todos").text("description").integer("completed").text("list_id"),
///     Table::new("drafts").text("body").local_only(),
/// ]);
/// assert!(schema.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// The tables.
    pub tables: Vec<Table>,
}

impl Schema {
    /// A schema of these tables.
    pub fn new(tables: Vec<Table>) -> Schema {
        Schema { tables }
    }

    /// The table whose synced `object_type` is `name` (local-only tables excluded).
    pub fn synced_table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| !t.local_only && t.name == name)
    }

    /// Checks names, duplicates and index columns. Errors name the table and column at fault.
    pub fn validate(&self) -> Result<()> {
        let mut names = HashSet::new();
        let mut views = HashSet::new();
        for table in &self.tables {
            table.validate()?;
            if !names.insert(table.name.to_ascii_lowercase()) {
                return Err(Error::Schema(format!(
                    "table {:?} is declared twice",
                    table.name
                )));
            }
            if !views.insert(table.view_name().to_ascii_lowercase()) {
                return Err(Error::Schema(format!(
                    "two tables use the view name {:?}",
                    table.view_name()
                )));
            }
        }
        Ok(())
    }
}

/// Names are plain identifiers: they are used in SQL and as JSON keys, and they must not collide
/// with ferry's or SQLite's own tables.
fn check_name(what: &str, name: &str, table: &str) -> Result<()> {
    let valid_chars = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    let context = if what == "table" {
        String::new()
    } else {
        format!("table {table:?}: ")
    };
    if name.is_empty() || name.len() > 100 || !valid_chars {
        return Err(Error::Schema(format!(
            "{context}{what} name {name:?} is not valid: use 1 to 100 ASCII letters, digits and \
             underscores, not starting with a digit"
        )));
    }
    let lower = name.to_ascii_lowercase();
    if (what == "table" || what == "view")
        && (lower.starts_with("ferry_") || lower.starts_with("sqlite_"))
    {
        return Err(Error::Schema(format!(
            "{context}{what} name {name:?} is reserved: names starting with ferry_ or sqlite_ \
             belong to ferry and SQLite"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(schema: Schema) -> String {
        schema.validate().unwrap_err().to_string()
    }

    #[test]
    fn valid_schema_passes() {
        let schema = Schema::new(vec![
            Table::new("todos")
                .text("description")
                .integer("completed")
                .real("weight")
                .index(Index::new("by_done").column("completed").desc("id")),
            Table::new("logs").text("line").insert_only(),
            Table::new("drafts").text("body").local_only(),
        ]);
        schema.validate().unwrap();
        assert_eq!(schema.tables[2].data_table(), "ferry_data_local__drafts");
        assert_eq!(schema.tables[0].data_table(), "ferry_data__todos");
        assert!(schema.synced_table("drafts").is_none());
    }

    #[test]
    fn id_column_is_implicit() {
        let e = err(Schema::new(vec![Table::new("t").text("id")]));
        assert!(e.contains("do not declare the column \"id\""), "{e}");
    }

    #[test]
    fn bad_names_are_refused_with_table_and_column() {
        let e = err(Schema::new(vec![Table::new("t").text("bad name")]));
        assert_eq!(
            e,
            "invalid schema: table \"t\": column name \"bad name\" is not valid: use 1 to 100 \
             ASCII letters, digits and underscores, not starting with a digit"
        );
        assert!(err(Schema::new(vec![Table::new("1t")])).contains("\"1t\" is not valid"));
        assert!(err(Schema::new(vec![Table::new("ferry_x")])).contains("reserved"));
        assert!(err(Schema::new(vec![Table::new("t\"x")])).contains("not valid"));
    }

    #[test]
    fn duplicates_are_refused() {
        let e = err(Schema::new(vec![Table::new("t"), Table::new("T")]));
        assert!(e.contains("declared twice"), "{e}");
        let e = err(Schema::new(vec![Table::new("t").text("a").integer("A")]));
        assert!(e.contains("column \"A\" is declared twice"), "{e}");
    }

    #[test]
    fn index_must_name_existing_columns() {
        let e = err(Schema::new(vec![Table::new("t")
            .text("a")
            .index(Index::new("i").column("b"))]));
        assert!(e.contains("index \"i\" names column \"b\""), "{e}");
    }

    #[test]
    fn local_only_and_insert_only_exclude_each_other() {
        let e = err(Schema::new(vec![Table::new("t")
            .local_only()
            .insert_only()]));
        assert!(e.contains("both local-only and insert-only"), "{e}");
    }

    #[test]
    fn schema_round_trips_as_json() {
        let schema = Schema::new(vec![Table::new("t")
            .text("a")
            .index(Index::new("i").column("a"))]);
        let json = serde_json::to_string(&schema).unwrap();
        assert!(json.contains(r#""type":"text""#), "{json}");
        assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), schema);
    }
}
