//! Applies the app's [`Schema`] to a database: creates the data tables, views, triggers and
//! indexes of [`crate::schema::ddl`], and moves synced rows between data tables and
//! `ferry_untyped` as tables appear and disappear, so that no synced row is ever lost.
//!
//! Runs in the transaction that opens the database. Views and triggers are always regenerated
//! (cheap); indexes are only dropped or created when their definition changed (costly on big
//! tables).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Transaction;

use crate::error::{Error, Result};
use crate::schema::ddl::{self, INDEX_PREFIX, MARKER, TRIGGER_PREFIX};
use crate::schema::{Schema, DATA_PREFIX, LOCAL_DATA_PREFIX};

fn names(tx: &Transaction<'_>, sql: &str) -> Result<Vec<String>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Makes the database's tables, views, triggers and indexes match `schema` (already validated).
pub(crate) fn apply_schema(tx: &Transaction<'_>, schema: &Schema) -> Result<()> {
    // Generated views (their triggers go with them) and any stray generated trigger.
    for view in names(
        tx,
        &format!("SELECT name FROM sqlite_schema WHERE type = 'view' AND sql LIKE '%{MARKER}%'"),
    )? {
        tx.execute_batch(&format!("DROP VIEW IF EXISTS \"{view}\""))?;
    }
    for trigger in names(
        tx,
        &format!(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE \
             '{}%' ESCAPE '\\'",
            TRIGGER_PREFIX.replace('_', "\\_")
        ),
    )? {
        tx.execute_batch(&format!("DROP TRIGGER IF EXISTS \"{trigger}\""))?;
    }

    let wanted: BTreeSet<String> = schema.tables.iter().map(|t| t.data_table()).collect();
    let existing = names(
        tx,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND (name LIKE 'ferry\\_data\\_\\_%' \
         ESCAPE '\\' OR name LIKE 'ferry\\_data\\_local\\_\\_%' ESCAPE '\\')",
    )?;
    for table in existing.iter().filter(|t| !wanted.contains(*t)) {
        if let Some(row_type) = table.strip_prefix(DATA_PREFIX) {
            // Synced rows of a type no longer in the schema are kept for when it comes back.
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO ferry_untyped(type, id, data) \
                     SELECT ?1, id, data FROM \"{table}\" WHERE data IS NOT NULL"
                ),
                [row_type],
            )?;
        } else {
            debug_assert!(table.starts_with(LOCAL_DATA_PREFIX));
        }
        tx.execute_batch(&format!("DROP TABLE \"{table}\""))?;
    }

    for table in &schema.tables {
        let data = table.data_table();
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS \"{data}\"(id TEXT PRIMARY KEY NOT NULL, data TEXT)"
        ))?;
        if !table.local_only {
            let moved = tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO \"{data}\"(id, data) \
                     SELECT id, data FROM ferry_untyped WHERE type = ?1"
                ),
                [&table.name],
            )?;
            if moved > 0 {
                tx.execute("DELETE FROM ferry_untyped WHERE type = ?1", [&table.name])?;
            }
        }
    }

    // Indexes: keep those whose SQL is unchanged.
    let mut stmt = tx.prepare(&format!(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND name LIKE '{}%' ESCAPE '\\'",
        INDEX_PREFIX.replace('_', "\\_")
    ))?;
    let current: BTreeMap<String, String> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let desired: BTreeMap<String, String> =
        schema.tables.iter().flat_map(ddl::create_indexes).collect();
    for (name, sql) in &current {
        if desired.get(name) != Some(sql) {
            tx.execute_batch(&format!("DROP INDEX IF EXISTS \"{name}\""))?;
        }
    }
    for (name, sql) in &desired {
        if current.get(name) != Some(sql) {
            tx.execute_batch(sql)?;
        }
    }

    for table in &schema.tables {
        tx.execute_batch(&ddl::create_view(table)).map_err(|e| {
            Error::Schema(format!(
                "cannot create the view {:?} of table {:?}: {e} (is there a table or view of that \
                 name already?)",
                table.view_name(),
                table.name
            ))
        })?;
        for trigger in ddl::create_triggers(table) {
            tx.execute_batch(&trigger)?;
        }
    }
    let json = serde_json::to_string(schema).map_err(|e| Error::Schema(e.to_string()))?;
    tx.execute(
        "INSERT OR REPLACE INTO ferry_kv(key, value) VALUES ('app_schema', ?1)",
        [json],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::Connection;

    use super::*;
    use crate::schema::{Index, Table};
    use crate::storage::functions::{register_writer_functions, TxIds};
    use crate::storage::migrations::migrate;

    fn db(schema: &Schema) -> Result<Connection> {
        let mut conn = Connection::open_in_memory()?;
        let ids = Arc::new(TxIds::default());
        register_writer_functions(&conn, ids.clone())?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        apply_schema(&tx, schema)?;
        tx.commit()?;
        crate::storage::hooks::install(&mut conn, Arc::default(), ids)?;
        Ok(conn)
    }

    fn reapply(conn: &mut Connection, schema: &Schema) -> Result<()> {
        let tx = conn.transaction()?;
        apply_schema(&tx, schema)?;
        tx.commit()?;
        Ok(())
    }

    fn todos() -> Table {
        Table::new("todos").text("description").integer("completed")
    }

    #[test]
    fn view_reads_typed_columns_from_json() -> Result<()> {
        let conn = db(&Schema::new(vec![todos()]))?;
        conn.execute(
            "INSERT INTO ferry_data__todos(id, data) VALUES ('t1', '{\"description\":\"milk\",\"completed\":\"1\",\"extra\":5}')",
            [],
        )?;
        let (d, c): (String, i64) = conn.query_row(
            "SELECT description, completed FROM todos WHERE id = 't1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        assert_eq!((d.as_str(), c), ("milk", 1));
        Ok(())
    }

    #[test]
    fn marker_survives_in_sqlite_schema() -> Result<()> {
        let conn = db(&Schema::new(vec![todos()]))?;
        let sql: String = conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'todos'",
            [],
            |r| r.get(0),
        )?;
        assert!(sql.ends_with(MARKER), "{sql}");
        Ok(())
    }

    #[test]
    fn local_writes_are_queued_with_one_tx_id_per_transaction() -> Result<()> {
        let mut conn = db(&Schema::new(vec![todos()]))?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO todos(id, description, completed) VALUES ('t1', 'milk', 0)",
            [],
        )?;
        tx.execute("UPDATE todos SET completed = 1 WHERE id = 't1'", [])?;
        tx.commit()?;
        conn.execute("DELETE FROM todos WHERE id = 't1'", [])?;
        let mut stmt = conn.prepare("SELECT tx_id, data FROM ferry_crud ORDER BY id")?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        assert_eq!(
            rows,
            vec![
                (
                    1,
                    r#"{"op":"PUT","id":"t1","type":"todos","data":{"description":"milk","completed":0}}"#
                        .to_owned()
                ),
                (
                    1,
                    r#"{"op":"PATCH","id":"t1","type":"todos","data":{"completed":1}}"#.to_owned()
                ),
                (2, r#"{"op":"DELETE","id":"t1","type":"todos"}"#.to_owned()),
            ]
        );
        let updated: i64 =
            conn.query_row("SELECT count(*) FROM ferry_updated_rows", [], |r| r.get(0))?;
        assert_eq!(updated, 1);
        Ok(())
    }

    #[test]
    fn bad_ids_and_id_changes_are_refused() -> Result<()> {
        let conn = db(&Schema::new(vec![todos()]))?;
        let e = conn
            .execute("INSERT INTO todos(id, description) VALUES (NULL, 'x')", [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("todos: id must be a non-null TEXT value"), "{e}");
        conn.execute("INSERT INTO todos(id) VALUES ('a')", [])?;
        let e = conn
            .execute("UPDATE todos SET id = 'b' WHERE id = 'a'", [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be changed"), "{e}");
        Ok(())
    }

    #[test]
    fn local_only_tables_queue_nothing_and_insert_only_store_nothing() -> Result<()> {
        let conn = db(&Schema::new(vec![
            Table::new("drafts").text("body").local_only(),
            Table::new("logs").text("line").insert_only(),
        ]))?;
        conn.execute("INSERT INTO drafts(id, body) VALUES ('d', 'x')", [])?;
        conn.execute("UPDATE drafts SET body = 'y'", [])?;
        conn.execute("INSERT INTO logs(id, line) VALUES ('l', 'hello')", [])?;
        let body: String = conn.query_row("SELECT body FROM drafts", [], |r| r.get(0))?;
        assert_eq!(body, "y");
        let logs: i64 = conn.query_row("SELECT count(*) FROM logs", [], |r| r.get(0))?;
        assert_eq!(logs, 0);
        let queued: Vec<String> = {
            let mut s = conn.prepare("SELECT data FROM ferry_crud")?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        assert_eq!(
            queued,
            vec![r#"{"op":"PUT","id":"l","type":"logs","data":{"line":"hello"}}"#.to_owned()]
        );
        // Synced rows of an insert-only table show, but cannot be deleted locally.
        conn.execute(
            "INSERT INTO ferry_data__logs(id, data) VALUES ('s', '{\"line\":\"synced\"}')",
            [],
        )?;
        let e = conn
            .execute("DELETE FROM logs", [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("insert-only"), "{e}");
        Ok(())
    }

    #[test]
    fn removing_and_readding_a_table_keeps_its_synced_rows() -> Result<()> {
        let mut conn = db(&Schema::new(vec![todos()]))?;
        conn.execute(
            "INSERT INTO ferry_data__todos(id, data) VALUES ('t1', '{\"description\":\"milk\",\"note\":\"n\"}')",
            [],
        )?;
        reapply(&mut conn, &Schema::new(vec![]))?;
        let untyped: i64 = conn.query_row(
            "SELECT count(*) FROM ferry_untyped WHERE type = 'todos'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(untyped, 1);
        // Back, with a new column: the value that was always in the JSON shows up.
        reapply(&mut conn, &Schema::new(vec![todos().text("note")]))?;
        let note: String =
            conn.query_row("SELECT note FROM todos WHERE id = 't1'", [], |r| r.get(0))?;
        assert_eq!(note, "n");
        let untyped: i64 =
            conn.query_row("SELECT count(*) FROM ferry_untyped", [], |r| r.get(0))?;
        assert_eq!(untyped, 0);
        Ok(())
    }

    #[test]
    fn indexes_are_used_and_only_rebuilt_when_changed() -> Result<()> {
        let table = todos().index(Index::new("by_done").column("completed"));
        let mut conn = db(&Schema::new(vec![table.clone()]))?;
        let plan: String = conn.query_row(
            "EXPLAIN QUERY PLAN SELECT * FROM todos WHERE completed = 1",
            [],
            |r| r.get(3),
        )?;
        assert!(plan.contains("ferry_index__todos__by_done"), "{plan}");
        let root = |conn: &Connection| -> Result<i64> {
            Ok(conn.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'ferry_index__todos__by_done'",
                [],
                |r| r.get(0),
            )?)
        };
        let before = root(&conn)?;
        reapply(&mut conn, &Schema::new(vec![table]))?;
        assert_eq!(root(&conn)?, before);
        reapply(&mut conn, &Schema::new(vec![todos()]))?;
        let left: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE 'ferry_index%'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(left, 0);
        Ok(())
    }

    #[test]
    fn view_name_clash_with_an_app_table_is_a_clear_error() -> Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch("CREATE TABLE todos(x)")?;
        drop(conn);
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch("CREATE TABLE todos(x)")?;
        register_writer_functions(&conn, Arc::new(TxIds::default()))?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        let e = apply_schema(&tx, &Schema::new(vec![todos()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot create the view \"todos\""), "{e}");
        Ok(())
    }
}
