//! The SQLite side of the client: opening the writer and reader connections with ferry's settings,
//! its internal tables ([`migrations`]), the SQL functions its triggers call ([`functions`]), the
//! hooks that report changed tables ([`hooks`]), and applying the app's schema ([`user_tables`]).
//!
//! Sync and upload logic is elsewhere ([`crate::sync`], [`crate::upload`]); this module only sets
//! up connections and tables.

pub(crate) mod functions;
pub(crate) mod hooks;
pub(crate) mod migrations;
pub(crate) mod user_tables;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;
use crate::schema::Schema;
use functions::TxIds;
use hooks::ChangeCollector;

/// How long a connection waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The writer connection's page cache: 64 MiB (PowerSync's SDKs use 50 MB). Big checkpoints touch
/// many pages of the op log and the data tables; SQLite's default of 2 MiB makes them re-read.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// The writer connection, set up and migrated.
pub(crate) struct Writer {
    /// The connection.
    pub(crate) conn: Connection,
    /// Tables changed by its committed transactions.
    pub(crate) changes: Arc<ChangeCollector>,
    /// This client's id.
    pub(crate) client_id: String,
}

fn configure(conn: &Connection, file: bool, cache_kib: i64) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file {
        // journal_mode returns a row; read it rather than execute_batch.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{cache_kib}; \
         PRAGMA journal_size_limit = 6291456;"
    ))?;
    Ok(())
}

/// Opens (creating it if needed) the database at `path`, or an in-memory database for `None`:
/// settings, hooks, functions, migrations and the app schema.
pub(crate) fn open_writer(path: Option<&Path>, schema: &Schema) -> Result<Writer> {
    schema.validate()?;
    let mut conn = match path {
        Some(path) => Connection::open(path)?,
        None => Connection::open_in_memory()?,
    };
    configure(&conn, path.is_some(), WRITER_CACHE_KIB)?;
    let tx_ids = Arc::new(TxIds::default());
    let changes = Arc::new(ChangeCollector::default());
    functions::register_writer_functions(&conn, tx_ids.clone())?;
    let tx = conn.transaction()?;
    migrations::migrate(&tx)?;
    let client_id = migrations::client_id(&tx)?;
    user_tables::apply_schema(&tx, schema)?;
    tx_ids.set_next(migrations::next_tx_id(&tx)?);
    tx.commit()?;
    hooks::install(&mut conn, changes.clone(), tx_ids)?;
    Ok(Writer {
        conn,
        changes,
        client_id,
    })
}

/// Opens a read-only connection to the database at `path` (after [`open_writer`] created it).
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA cache_size = -8192;")?;
    functions::register_uuid(&conn)?;
    Ok(conn)
}
