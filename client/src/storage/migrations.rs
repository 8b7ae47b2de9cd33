//! ferry's internal tables and their migrations. The version is kept in `ferry_kv`
//! (`schema_version`); each migration runs once, in the transaction that opens the database.
//!
//! | table | holds |
//! | --- | --- |
//! | `ferry_kv` | `client_id`, the write-gate keys (`write_gate_target`, `write_gate_seen`), the app schema last applied |
//! | `ferry_buckets` | one row per downloaded bucket: position (`last_op`), running checksum of every op received (validated against checkpoints), op counts for progress, priority |
//! | `ferry_stage` | ops downloaded but not yet published (PUT / REMOVE / CLEAR), in arrival order |
//! | `ferry_oplog` | the live PUT of each row in each bucket, as of the last published checkpoint |
//! | `ferry_updated_rows` | rows to re-evaluate at the next full publish (local writes, removed buckets) |
//! | `ferry_untyped` | synced rows whose type has no table in the schema (yet) |
//! | `ferry_crud` | the upload queue |
//! | `ferry_tx` | the next upload-queue transaction id |
//! | `ferry_sync_state` | when each priority (and the full set, priority 2147483647) last synced |
//!
//! Unlike PowerSync's `ps_oplog`, which holds downloaded ops straight away, ferry keeps
//! unvalidated ops in `ferry_stage` and merges them into `ferry_oplog` only when their checkpoint
//! is published (see [`crate::sync::checkpoint`]): `ferry_oplog` then always describes published
//! state, and a checkpoint's rows can be merged in one sorted pass.

use rusqlite::{OptionalExtension, Transaction};

use crate::error::Result;

/// The `op_id` sentinel of a closed write gate (PROTOCOL.md §4.7): `i64::MAX`.
pub(crate) const MAX_OP_ID: i64 = i64::MAX;

/// The priority under which a full sync is recorded in `ferry_sync_state`.
pub(crate) const FULL_SYNC_PRIORITY: i64 = 2_147_483_647;

const MIGRATIONS: &[&str] = &[
    // 1: the initial layout.
    r#"
    CREATE TABLE IF NOT EXISTS ferry_kv(key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT;
    CREATE TABLE ferry_buckets(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        priority INTEGER NOT NULL DEFAULT 3,
        last_op INTEGER NOT NULL DEFAULT 0,
        last_applied_op INTEGER NOT NULL DEFAULT 0,
        checksum INTEGER NOT NULL DEFAULT 0,
        count_at_last INTEGER NOT NULL DEFAULT 0,
        count_since_last INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE ferry_stage(
        bucket INTEGER NOT NULL,
        op_id INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        row_type TEXT,
        row_id TEXT,
        subkey TEXT,
        data TEXT
    ) STRICT;
    CREATE INDEX ferry_stage_bucket ON ferry_stage(bucket);
    CREATE TABLE ferry_oplog(
        row_type TEXT NOT NULL,
        row_id TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        subkey TEXT NOT NULL,
        op_id INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (row_type, row_id, bucket, subkey)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX ferry_oplog_bucket ON ferry_oplog(bucket);
    CREATE TABLE ferry_updated_rows(
        row_type TEXT NOT NULL,
        row_id TEXT NOT NULL,
        PRIMARY KEY (row_type, row_id)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE ferry_untyped(
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (type, id)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE ferry_crud(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tx_id INTEGER NOT NULL,
        data TEXT NOT NULL
    ) STRICT;
    CREATE TABLE ferry_tx(id INTEGER PRIMARY KEY CHECK (id = 1), next_tx INTEGER NOT NULL) STRICT;
    INSERT INTO ferry_tx(id, next_tx) VALUES (1, 1);
    CREATE TABLE ferry_sync_state(
        priority INTEGER PRIMARY KEY,
        last_synced_at INTEGER NOT NULL
    ) STRICT;
    CREATE TRIGGER ferry_crud_queued AFTER INSERT ON ferry_crud BEGIN
        UPDATE ferry_tx SET next_tx = NEW.tx_id + 1 WHERE next_tx <= NEW.tx_id;
        INSERT OR REPLACE INTO ferry_kv(key, value) VALUES ('write_gate_target', 9223372036854775807);
    END;
    "#,
];

/// Brings the internal tables up to date, in `tx`. Returns the version before.
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<i64> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS ferry_kv(key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT;",
    )?;
    let version: i64 = tx
        .query_row(
            "SELECT value FROM ferry_kv WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 1;
        if version < target {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT OR REPLACE INTO ferry_kv(key, value) VALUES ('schema_version', ?1)",
                [target],
            )?;
        }
    }
    Ok(version)
}

/// The client id, created (a random UUID) on first use.
pub(crate) fn client_id(tx: &Transaction<'_>) -> Result<String> {
    let existing: Option<String> = tx
        .query_row(
            "SELECT value FROM ferry_kv WHERE key = 'client_id'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = super::functions::uuid_v4();
    tx.execute(
        "INSERT INTO ferry_kv(key, value) VALUES ('client_id', ?1)",
        [&id],
    )?;
    Ok(id)
}

/// The next upload-queue transaction id.
pub(crate) fn next_tx_id(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx.query_row(
        "SELECT max((SELECT next_tx FROM ferry_tx), \
                    coalesce((SELECT max(tx_id) + 1 FROM ferry_crud), 1))",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn migrations_run_once_and_keep_the_client_id() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let tx = conn.transaction()?;
        assert_eq!(migrate(&tx)?, 0);
        let id = client_id(&tx)?;
        tx.commit()?;
        let tx = conn.transaction()?;
        assert_eq!(migrate(&tx)?, MIGRATIONS.len() as i64);
        assert_eq!(client_id(&tx)?, id);
        assert_eq!(next_tx_id(&tx)?, 1);
        Ok(())
    }

    #[test]
    fn queueing_advances_the_tx_counter_and_closes_the_gate() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        tx.execute("INSERT INTO ferry_crud(tx_id, data) VALUES (5, '{}')", [])?;
        tx.execute("DELETE FROM ferry_crud", [])?;
        assert_eq!(next_tx_id(&tx)?, 6);
        let target: i64 = tx.query_row(
            "SELECT value FROM ferry_kv WHERE key = 'write_gate_target'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(target, MAX_OP_ID);
        Ok(())
    }
}
