//! SQLite update, commit and rollback hooks on the writer connection: they collect the tables each
//! committed transaction changed (for watched queries and the uploader) and end the transaction of
//! `ferry_tx_id()`.
//!
//! Table names are reported the way watched queries see them: `ferry_data__todos` and
//! `ferry_data_local__todos` become `todos`; `ferry_crud` stays (it wakes the uploader); ferry's
//! other internal tables are not reported. Fanning the sets out to listeners is
//! [`crate::database`]'s job, after each use of the writer.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use super::functions::TxIds;
use crate::schema::{DATA_PREFIX, LOCAL_DATA_PREFIX};

/// The name under which a change to `table` is reported, or `None` for ferry's bookkeeping tables.
pub(crate) fn reported_name(table: &str) -> Option<&str> {
    if let Some(rest) = table.strip_prefix(DATA_PREFIX) {
        Some(rest)
    } else if let Some(rest) = table.strip_prefix(LOCAL_DATA_PREFIX) {
        Some(rest)
    } else if table == CRUD_TABLE {
        Some(table)
    } else if table.starts_with("ferry_") || table.starts_with("sqlite_") {
        None
    } else {
        Some(table)
    }
}

/// The upload queue's table name, as reported.
pub(crate) const CRUD_TABLE: &str = "ferry_crud";

#[derive(Debug, Default)]
struct Collected {
    /// Tables changed by the open transaction.
    pending: BTreeSet<String>,
    /// The table of the last change, to skip the set lookup for runs of changes to one table.
    last: String,
    /// One set per committed transaction that changed something, oldest first.
    committed: Vec<BTreeSet<String>>,
}

/// The collected changes of one connection.
#[derive(Debug, Default)]
pub(crate) struct ChangeCollector {
    inner: Mutex<Collected>,
}

impl ChangeCollector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self, db: &str, table: &str) {
        if db != "main" {
            return;
        }
        let Some(name) = reported_name(table) else {
            return;
        };
        let mut c = self.lock();
        if c.last != name {
            name.clone_into(&mut c.last);
            c.pending.insert(name.to_owned());
        }
    }

    fn committed(&self) {
        let mut c = self.lock();
        c.last.clear();
        if !c.pending.is_empty() {
            let set = std::mem::take(&mut c.pending);
            c.committed.push(set);
        }
    }

    fn rolled_back(&self) {
        let mut c = self.lock();
        c.last.clear();
        c.pending.clear();
    }

    /// The sets of tables changed by transactions committed since the last call, oldest first.
    pub(crate) fn take_committed(&self) -> Vec<BTreeSet<String>> {
        std::mem::take(&mut self.lock().committed)
    }
}

/// Installs the hooks on `conn`.
pub(crate) fn install(
    conn: &mut Connection,
    changes: Arc<ChangeCollector>,
    tx_ids: Arc<TxIds>,
) -> rusqlite::Result<()> {
    let on_update = changes.clone();
    conn.update_hook(Some(move |_action, db: &str, table: &str, _rowid| {
        on_update.changed(db, table)
    }))?;
    let on_commit = changes.clone();
    let ids = tx_ids.clone();
    conn.commit_hook(Some(move || {
        on_commit.committed();
        ids.end_transaction();
        false
    }))?;
    conn.rollback_hook(Some(move || {
        changes.rolled_back();
        tx_ids.end_transaction();
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_tables_are_reported_by_table_name() {
        assert_eq!(reported_name("ferry_data__todos"), Some("todos"));
        assert_eq!(reported_name("ferry_data_local__drafts"), Some("drafts"));
        assert_eq!(reported_name("ferry_crud"), Some("ferry_crud"));
        assert_eq!(reported_name("ferry_oplog"), None);
        assert_eq!(reported_name("my_table"), Some("my_table"));
    }

    #[test]
    fn one_set_per_committed_transaction_and_none_for_rollbacks() -> rusqlite::Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let changes = Arc::new(ChangeCollector::default());
        install(&mut conn, changes.clone(), Arc::new(TxIds::default()))?;
        conn.execute_batch(
            "CREATE TABLE a(x); CREATE TABLE b(x); CREATE TABLE ferry_oplog(x);
             BEGIN; INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO a VALUES (2);
             INSERT INTO ferry_oplog VALUES (1); COMMIT;
             BEGIN; INSERT INTO a VALUES (3); ROLLBACK;
             INSERT INTO b VALUES (2);",
        )?;
        let sets = changes.take_committed();
        let names: Vec<Vec<&str>> = sets
            .iter()
            .map(|s| s.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(names, vec![vec!["a", "b"], vec!["b"]]);
        assert!(changes.take_committed().is_empty());
        Ok(())
    }
}
