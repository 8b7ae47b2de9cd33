//! The write gate (PROTOCOL.md §4.7, legacy `/write-checkpoint2.json` scheme): downloaded data is
//! published only when the upload queue is empty **and** the server has acknowledged the write
//! checkpoint taken after the last upload. Then the server's state already contains every local
//! write, so publishing it never shows an accepted write flicker back to an older value.
//!
//! ferry applies the gate to every priority: unlike PowerSync it makes no exception for
//! priority-0 partial checkpoints.
//!
//! State in `ferry_kv`:
//! - `write_gate_target`: set to `i64::MAX` by every local write (a trigger on `ferry_crud`), and
//!   to the write checkpoint obtained once the queue drained ([`set_target`]);
//! - `write_gate_seen`: the highest write checkpoint carried by a validated full checkpoint
//!   ([`record_seen`]).
//!
//! The gate is open iff `ferry_crud` is empty and `target <= max(seen, the checkpoint's own write
//! checkpoint)` (no target: open).

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

fn kv_i64(conn: &Connection, key: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT value FROM ferry_kv WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// Whether downloaded data of a checkpoint carrying `write_checkpoint` may be published now.
pub fn is_open(conn: &Connection, write_checkpoint: Option<u64>) -> Result<bool> {
    let queued: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM ferry_crud)")?
        .query_row([], |r| r.get(0))?;
    if queued {
        return Ok(false);
    }
    let Some(target) = kv_i64(conn, "write_gate_target")? else {
        return Ok(true);
    };
    let seen = kv_i64(conn, "write_gate_seen")?.unwrap_or(0);
    let current = write_checkpoint.map_or(0, |w| i64::try_from(w).unwrap_or(i64::MAX));
    Ok(target <= seen.max(current))
}

/// Records the write checkpoint of a validated full checkpoint.
pub fn record_seen(conn: &Connection, write_checkpoint: Option<u64>) -> Result<()> {
    let Some(seen) = write_checkpoint else {
        return Ok(());
    };
    let seen = i64::try_from(seen).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO ferry_kv(key, value) VALUES ('write_gate_seen', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = max(coalesce(value, 0), excluded.value)",
    )?
    .execute([seen])?;
    Ok(())
}

/// The upload queue's sequence: changes whenever an entry is queued.
pub fn crud_sequence(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'ferry_crud'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Whether the gate waits for a write checkpoint: the queue is empty but local writes were made
/// since the last one was requested (target is the `i64::MAX` sentinel).
pub fn needs_write_checkpoint(conn: &Connection) -> Result<bool> {
    let queued: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM ferry_crud)")?
        .query_row([], |r| r.get(0))?;
    Ok(!queued && kv_i64(conn, "write_gate_target")? == Some(i64::MAX))
}

/// After the queue drained, sets the target to the write checkpoint `write_checkpoint` that the
/// server created, unless something was queued since `sequence` was read (then the new entries
/// must be uploaded first). Returns whether it was set.
pub fn set_target(conn: &Connection, write_checkpoint: u64, sequence: i64) -> Result<bool> {
    let queued: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM ferry_crud)")?
        .query_row([], |r| r.get(0))?;
    if queued || crud_sequence(conn)? != sequence {
        return Ok(false);
    }
    let target = i64::try_from(write_checkpoint).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ferry_kv(key, value) VALUES ('write_gate_target', ?1)",
    )?
    .execute(params![target])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::migrations::migrate;

    #[test]
    fn gate_follows_queue_and_write_checkpoints() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        tx.commit()?;
        assert!(is_open(&conn, None)?, "no local writes ever: open");
        conn.execute("INSERT INTO ferry_crud(tx_id, data) VALUES (1, '{}')", [])?;
        assert!(!is_open(&conn, Some(100))?, "queued writes: closed");
        let seq = crud_sequence(&conn)?;
        conn.execute("DELETE FROM ferry_crud", [])?;
        assert!(
            !is_open(&conn, Some(100))?,
            "uploaded, no write checkpoint yet"
        );
        assert!(needs_write_checkpoint(&conn)?);
        assert!(set_target(&conn, 7, seq)?);
        assert!(!needs_write_checkpoint(&conn)?);
        assert!(!is_open(&conn, Some(6))?, "server has not caught up");
        assert!(is_open(&conn, Some(7))?);
        record_seen(&conn, Some(7))?;
        assert!(is_open(&conn, None)?);
        record_seen(&conn, Some(3))?;
        assert!(is_open(&conn, None)?, "seen never goes back");
        Ok(())
    }

    #[test]
    fn target_is_not_set_when_something_was_queued_meanwhile() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let tx = conn.transaction()?;
        migrate(&tx)?;
        tx.commit()?;
        conn.execute("INSERT INTO ferry_crud(tx_id, data) VALUES (1, '{}')", [])?;
        conn.execute("DELETE FROM ferry_crud", [])?;
        let seq = crud_sequence(&conn)?;
        conn.execute("INSERT INTO ferry_crud(tx_id, data) VALUES (2, '{}')", [])?;
        conn.execute("DELETE FROM ferry_crud", [])?;
        assert!(!set_target(&conn, 9, seq)?);
        Ok(())
    }
}
