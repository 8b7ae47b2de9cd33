//! SQL generated from a [`Table`]: the view over its JSON data table, the INSTEAD OF triggers that
//! turn writes to the view into data-table writes plus upload-queue entries, and expression
//! indexes.
//!
//! Generated SQL only; running it (and deciding what to drop) is
//! [`crate::storage::user_tables`]'s job. Names in the schema are validated identifiers
//! ([`super::Schema::validate`]), so they are embedded in SQL (quoted) without further escaping.
//!
//! The triggers call two SQL functions registered on the writer connection
//! ([`crate::storage::functions`]): `ferry_tx_id()` (one id per SQLite transaction) and
//! `ferry_crud_json(op, type, id, new, old)` (the upload-queue entry, or NULL for an update that
//! changed nothing).

use super::{ColumnType, Index, Table};

/// Appended to every generated view, so ferry recognises (and replaces) its own views.
pub(crate) const MARKER: &str = "-- ferry-auto-generated";

/// Name prefix of every generated trigger.
pub(crate) const TRIGGER_PREFIX: &str = "ferry_view_";

/// Name prefix of every generated index.
pub(crate) const INDEX_PREFIX: &str = "ferry_index__";

/// `CAST(json_extract(data, '$.col') AS TYPE)`: how the view reads a column; the expression
/// indexes use exactly the same text so that SQLite's planner matches them.
fn column_expr(name: &str, column_type: ColumnType) -> String {
    format!(
        "CAST(json_extract(data, '$.{name}') AS {})",
        column_type.sql()
    )
}

/// `json_object('a', <prefix>."a", ...)` over all columns.
fn json_object(table: &Table, prefix: &str) -> String {
    if table.columns.is_empty() {
        return "json_object()".to_owned();
    }
    let args: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("'{0}', {prefix}.\"{0}\"", c.name))
        .collect();
    format!("json_object({})", args.join(", "))
}

/// `CREATE VIEW`.
pub(crate) fn create_view(table: &Table) -> String {
    let mut names = vec!["\"id\"".to_owned()];
    let mut exprs = vec!["id".to_owned()];
    for c in &table.columns {
        names.push(format!("\"{}\"", c.name));
        exprs.push(column_expr(&c.name, c.column_type));
    }
    format!(
        "CREATE VIEW \"{view}\"({names}) AS SELECT {exprs} FROM \"{data}\" {MARKER}",
        view = table.view_name(),
        names = names.join(", "),
        exprs = exprs.join(", "),
        data = table.data_table(),
    )
}

/// The INSTEAD OF triggers of the view.
pub(crate) fn create_triggers(table: &Table) -> Vec<String> {
    let view = table.view_name();
    let name = &table.name;
    let data = table.data_table();
    let new_json = json_object(table, "NEW");
    let old_json = json_object(table, "OLD");
    let check_id = format!(
        "SELECT CASE WHEN NEW.id IS NULL OR typeof(NEW.id) != 'text' THEN \
         RAISE(FAIL, '{view}: id must be a non-null TEXT value') END;"
    );
    let trigger = |kind: &str, body: String| {
        format!(
            "CREATE TRIGGER \"{TRIGGER_PREFIX}{kind}__{view}\" INSTEAD OF {upper} ON \"{view}\" \
             FOR EACH ROW BEGIN {body} END",
            upper = kind.to_ascii_uppercase(),
        )
    };
    let mark_updated = |id: &str| {
        format!(
            "INSERT OR IGNORE INTO ferry_updated_rows(row_type, row_id) VALUES ('{name}', {id});"
        )
    };
    let queue = |op: &str, id: &str, new: &str, old: &str| {
        format!(
            "INSERT INTO ferry_crud(tx_id, data) SELECT ferry_tx_id(), e FROM (SELECT \
             ferry_crud_json('{op}', '{name}', {id}, {new}, {old}) AS e) WHERE e IS NOT NULL;"
        )
    };

    if table.insert_only {
        let refuse = |what: &str| {
            format!("SELECT RAISE(FAIL, '{view} is insert-only: rows cannot be {what}d');")
        };
        return vec![
            trigger(
                "insert",
                format!("{check_id} {}", queue("PUT", "NEW.id", &new_json, "NULL")),
            ),
            trigger("update", refuse("update")),
            trigger("delete", refuse("delete")),
        ];
    }

    let insert_row = format!("INSERT INTO \"{data}\"(id, data) VALUES (NEW.id, {new_json});");
    let update_row = format!(
        "SELECT CASE WHEN OLD.id IS NOT NEW.id THEN RAISE(FAIL, '{view}: the id of a row cannot be \
         changed') END; UPDATE \"{data}\" SET data = json_patch(data, {new_json}) WHERE id = NEW.id;"
    );
    let delete_row = format!("DELETE FROM \"{data}\" WHERE id = OLD.id;");
    if table.local_only {
        return vec![
            trigger("insert", format!("{check_id} {insert_row}")),
            trigger("update", update_row),
            trigger("delete", delete_row),
        ];
    }
    vec![
        trigger(
            "insert",
            format!(
                "{check_id} {insert_row} {} {}",
                mark_updated("NEW.id"),
                queue("PUT", "NEW.id", &new_json, "NULL")
            ),
        ),
        trigger(
            "update",
            format!(
                "{update_row} {} {}",
                mark_updated("NEW.id"),
                queue("PATCH", "NEW.id", &new_json, &old_json)
            ),
        ),
        trigger(
            "delete",
            format!(
                "{delete_row} {} {}",
                mark_updated("OLD.id"),
                queue("DELETE", "OLD.id", "NULL", "NULL")
            ),
        ),
    ]
}

/// The name of the SQLite index for `index` of `table`.
pub(crate) fn index_name(table: &Table, index: &Index) -> String {
    format!("{INDEX_PREFIX}{}__{}", table.name, index.name)
}

/// `CREATE INDEX` statements, with their names.
pub(crate) fn create_indexes(table: &Table) -> Vec<(String, String)> {
    table
        .indexes
        .iter()
        .map(|index| {
            let columns: Vec<String> = index
                .columns
                .iter()
                .map(|ic| {
                    let expr = if ic.name.eq_ignore_ascii_case("id") {
                        "id".to_owned()
                    } else {
                        let column = table
                            .columns
                            .iter()
                            .find(|c| c.name.eq_ignore_ascii_case(&ic.name));
                        // Validation guarantees the column exists; fall back to TEXT regardless.
                        let ty = column.map_or(ColumnType::Text, |c| c.column_type);
                        let name = column.map_or(ic.name.as_str(), |c| c.name.as_str());
                        column_expr(name, ty)
                    };
                    format!("{expr} {}", if ic.ascending { "ASC" } else { "DESC" })
                })
                .collect();
            let name = index_name(table, index);
            let sql = format!(
                "CREATE INDEX \"{name}\" ON \"{}\"({})",
                table.data_table(),
                columns.join(", ")
            );
            (name, sql)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Index;

    fn todos() -> Table {
        Table::new("todos")
            .text("description")
            .integer("completed")
            .index(Index::new("by_done").column("completed").desc("id"))
    }

    #[test]
    fn view_casts_each_column_from_json() {
        assert_eq!(
            create_view(&todos()),
            "CREATE VIEW \"todos\"(\"id\", \"description\", \"completed\") AS SELECT id, \
             CAST(json_extract(data, '$.description') AS TEXT), \
             CAST(json_extract(data, '$.completed') AS INTEGER) FROM \"ferry_data__todos\" \
             -- ferry-auto-generated"
        );
    }

    #[test]
    fn index_uses_the_view_expression() {
        let indexes = create_indexes(&todos());
        assert_eq!(
            indexes,
            vec![(
                "ferry_index__todos__by_done".to_owned(),
                "CREATE INDEX \"ferry_index__todos__by_done\" ON \"ferry_data__todos\"(\
                 CAST(json_extract(data, '$.completed') AS INTEGER) ASC, id DESC)"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn synced_triggers_queue_uploads_and_local_only_do_not() {
        let synced = create_triggers(&todos()).join("\n");
        assert!(
            synced.contains("ferry_crud_json('PUT', 'todos', NEW.id"),
            "{synced}"
        );
        assert!(synced.contains("ferry_crud_json('PATCH'"), "{synced}");
        assert!(synced.contains("ferry_crud_json('DELETE'"), "{synced}");
        let local = create_triggers(&todos().local_only()).join("\n");
        assert!(!local.contains("ferry_crud"), "{local}");
        assert!(local.contains("ferry_data_local__todos"), "{local}");
        let insert_only = create_triggers(&todos().insert_only()).join("\n");
        assert!(!insert_only.contains("INSERT INTO \"ferry_data__todos\""));
        assert!(insert_only.contains("insert-only"));
    }
}
