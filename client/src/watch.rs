//! Watched queries: [`crate::FerryDatabase::watch`] returns a stream that yields a query's result
//! now and again whenever a committed transaction changed a table the query reads.
//!
//! The tables are found once, with `EXPLAIN`: every `OpenRead` of the main database names a
//! b-tree by root page, which `sqlite_schema` maps to its table (an index maps to the table it
//! indexes); `ferry_data__X` is reported as `X` (PROTOCOL.md §4.9), so views resolve to the table
//! behind them. Changes come from the writer's hooks (`storage::hooks`), one set per
//! committed transaction, so one transaction causes at most one re-run; several transactions
//! committed while a re-run is under way cause one more re-run, not several.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::Stream;
use rusqlite::types::Value;
use rusqlite::Connection;
use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::database::{blocking, Inner, TableSet};
use crate::error::{Error, Result};
use crate::row::{query_rows, Row};
use crate::storage::hooks::reported_name;

/// The tables `sql` reads, as change sets name them.
pub(crate) fn tables_read(conn: &Connection, sql: &str) -> Result<BTreeSet<String>> {
    let explain = format!("EXPLAIN {sql}");
    let mut stmt = conn.prepare(&explain).map_err(|e| Error::query(sql, e))?;
    let mut root_pages = BTreeSet::new();
    // Parameters stay unbound (NULL): the plan does not depend on them.
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        let opcode: String = row.get(1)?;
        let p2: i64 = row.get(3)?;
        let p3: i64 = row.get(4)?;
        if opcode == "OpenRead" && p3 == 0 {
            root_pages.insert(p2);
        }
    }
    drop(rows);
    let mut schema = conn.prepare_cached(
        "SELECT rootpage, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')",
    )?;
    let by_root: HashMap<i64, String> = schema
        .query_map([], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, String>(1)?))
        })?
        .filter_map(|r| match r {
            Ok((Some(root), name)) => Some(Ok((root, name))),
            Ok((None, _)) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<_>>()?;
    Ok(root_pages
        .iter()
        .filter_map(|root| by_root.get(root))
        .filter_map(|table| reported_name(table).map(str::to_owned))
        .collect())
}

struct WatchState {
    inner: Arc<Inner>,
    sql: Arc<str>,
    params: Arc<[Value]>,
    changes: broadcast::Receiver<TableSet>,
    tables: Option<BTreeSet<String>>,
    done: bool,
}

impl WatchState {
    async fn run_query(&mut self) -> Result<Vec<Row>> {
        let sql = self.sql.clone();
        let params = self.params.clone();
        let need_tables = self.tables.is_none();
        let (tables, rows) = blocking(&self.inner, move |inner| {
            inner.with_reader(|conn| {
                let tables = if need_tables {
                    Some(tables_read(conn, &sql)?)
                } else {
                    None
                };
                Ok((tables, query_rows(conn, &sql, &params)?))
            })
        })
        .await?;
        if let Some(tables) = tables {
            self.tables = Some(tables);
        }
        Ok(rows)
    }

    /// Waits for a committed transaction that touches the query's tables; `false` when the
    /// database is gone.
    async fn wait_for_change(&mut self) -> bool {
        let Some(tables) = &self.tables else {
            return true;
        };
        let relevant = |set: &TableSet| set.iter().any(|t| tables.contains(t));
        loop {
            match self.changes.recv().await {
                Ok(set) if relevant(&set) => break,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
        // Fold transactions committed meanwhile into this re-run.
        loop {
            match self.changes.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Closed) => return false,
            }
        }
    }
}

/// See [`crate::FerryDatabase::watch`].
pub(crate) fn watch(
    inner: Arc<Inner>,
    sql: String,
    params: Vec<Value>,
) -> impl Stream<Item = Result<Vec<Row>>> + Send + 'static {
    // Subscribe before the first run, so no change after it is missed.
    let changes = inner.subscribe_changes();
    let state = WatchState {
        inner,
        sql: sql.into(),
        params: params.into(),
        changes,
        tables: None,
        done: false,
    };
    futures::stream::unfold((state, true), |(mut state, first)| async move {
        if state.done {
            return None;
        }
        if !first && !state.wait_for_change().await {
            return None;
        }
        let result = state.run_query().await;
        if result.is_err() && state.tables.is_none() {
            // The statement itself is broken: report it once and end.
            state.done = true;
        }
        Some((result, (state, false)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Index, Schema, Table};
    use crate::storage::open_writer;

    #[test]
    fn views_indexes_and_joins_resolve_to_their_tables() -> Result<()> {
        let schema = Schema::new(vec![
            Table::new("lists").text("name"),
            Table::new("todos")
                .text("list_id")
                .index(Index::new("by_list").column("list_id")),
            Table::new("drafts").text("body").local_only(),
        ]);
        let writer = open_writer(None, &schema)?;
        writer.conn.execute_batch("CREATE TABLE app_own(x)")?;
        let names = |sql: &str| -> Result<Vec<String>> {
            Ok(tables_read(&writer.conn, sql)?.into_iter().collect())
        };
        assert_eq!(names("SELECT * FROM todos WHERE list_id = ?1")?, ["todos"]);
        assert_eq!(
            names("SELECT l.name, count(t.id) FROM lists l LEFT JOIN todos t ON t.list_id = l.id GROUP BY l.id")?,
            ["lists", "todos"]
        );
        assert_eq!(names("SELECT * FROM drafts")?, ["drafts"]);
        assert_eq!(names("SELECT * FROM app_own")?, ["app_own"]);
        assert_eq!(names("SELECT count(*) FROM ferry_crud")?, ["ferry_crud"]);
        assert!(names("SELECT 1")?.is_empty());
        Ok(())
    }
}
