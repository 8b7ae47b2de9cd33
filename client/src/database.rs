//! [`FerryDatabase`]: the public entry point. Opens the SQLite file with the app's schema and
//! offers reads, writes, transactions, watched queries, the sync status, and
//! [`FerryDatabase::connect`] to start syncing.
//!
//! One writer connection (behind a mutex, used from tokio's blocking pool) does every write: the
//! app's, the sync's and the uploader's. Reads go to a separate read-only connection (WAL lets
//! them run while a checkpoint is being applied); an in-memory database uses the writer for both.
//! After each use of the writer, the tables changed by its committed transactions are announced
//! to watchers ([`crate::watch`]) and, for `ferry_crud`, to the uploader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferry_protocol::BucketPriority;
use futures::{Stream, StreamExt};
use rusqlite::{Connection, Transaction};
use tokio::sync::{broadcast, Notify};

use crate::connector::Connector;
use crate::driver::{SyncHandle, SyncOptions};
use crate::error::{Error, Result};
use crate::row::{query_rows, IntoParams, Row};
use crate::schema::Schema;
use crate::status::{self, StatusHub, SyncStatus};
use crate::storage::hooks::{ChangeCollector, CRUD_TABLE};
use crate::storage::{self, open_reader, open_writer};
use crate::sync::state_machine::load_sync_state;
use crate::upload::{self, PendingTransaction};

/// A set of changed table names, as announced after a commit.
pub(crate) type TableSet = Arc<BTreeSet<String>>;

struct WriterState {
    conn: Connection,
    changes: Arc<ChangeCollector>,
}

/// Shared state behind every clone of a [`FerryDatabase`] and the background tasks.
pub(crate) struct Inner {
    pub(crate) schema: Schema,
    pub(crate) client_id: String,
    writer: Mutex<WriterState>,
    reader: Option<Mutex<Connection>>,
    changes: broadcast::Sender<TableSet>,
    pub(crate) status: StatusHub,
    /// Woken when `ferry_crud` changed.
    pub(crate) upload_wakeup: Notify,
    sync: tokio::sync::Mutex<Option<SyncHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    /// Runs `f` on the writer connection, on the calling thread, then announces the changes it
    /// committed.
    pub(crate) fn with_writer<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R>) -> Result<R> {
        let mut state = lock(&self.writer);
        let result = f(&mut state.conn);
        let committed = state.changes.take_committed();
        let crud_changed = committed.iter().any(|s| s.contains(CRUD_TABLE));
        let queue_len = if crud_changed {
            upload::queue_len(&state.conn).ok()
        } else {
            None
        };
        drop(state);
        for set in committed {
            // No receivers is fine.
            let _ = self.changes.send(Arc::new(set));
        }
        if let Some(len) = queue_len {
            self.status.update(|s| s.upload_queue_len = len);
            self.upload_wakeup.notify_one();
        }
        result
    }

    /// Runs `f` on a read connection (the writer for in-memory databases), on the calling thread.
    pub(crate) fn with_reader<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        match &self.reader {
            Some(reader) => f(&lock(reader)),
            None => self.with_writer(|conn| f(conn)),
        }
    }

    /// Runs `f` in a write transaction (committed if it returns `Ok`).
    pub(crate) fn write_tx<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let r = f(&tx)?;
            tx.commit()?;
            Ok(r)
        })
    }

    pub(crate) fn subscribe_changes(&self) -> broadcast::Receiver<TableSet> {
        self.changes.subscribe()
    }
}

/// Runs `f` with the shared state on tokio's blocking pool.
pub(crate) async fn blocking<R: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Inner) -> Result<R> + Send + 'static,
) -> Result<R> {
    let inner = inner.clone();
    tokio::task::spawn_blocking(move || f(&inner))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// A ferry database: a SQLite file whose tables (per the [`Schema`]) are kept in sync with the
/// server while connected, and can be read and written at any time, offline included.
///
/// Cloning is cheap: clones share the connections and the sync.
///
/// ```no_run
/// # async fn demo() -> ferry_client::Result<()> {
/// use ferry_client::{params, FerryDatabase, GatewayConnector, Schema, SyncOptions, Table};
///
/// let schema = Schema::new(vec![Table::new("todos").text("description").integer("completed")]);
/// let db = FerryDatabase::open("app.db", schema)?;
/// db.execute("INSERT INTO todos(id, description, completed) VALUES (uuid(), ?1, 0)",
///            params!["buy milk"]).await?;
/// let connector = GatewayConnector::new("http://127.0.0.1:8080", "<jwt>");
/// db.connect(connector, SyncOptions::default()).await?;
/// db.wait_for_first_sync().await;
/// let todos = db.query("SELECT id, description FROM todos", ()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FerryDatabase {
    inner: Arc<Inner>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for FerryDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FerryDatabase")
            .field("path", &self.path)
            .field("client_id", &self.inner.client_id)
            .finish()
    }
}

impl FerryDatabase {
    /// Opens (creating if needed) the database file at `path` with `schema`. Tables and columns
    /// added to the schema since the last open appear with the data already synced for them;
    /// removed ones are set aside, not deleted.
    pub fn open(path: impl AsRef<Path>, schema: Schema) -> Result<FerryDatabase> {
        let path = path.as_ref().to_path_buf();
        let writer = open_writer(Some(&path), &schema)?;
        let reader = open_reader(&path)?;
        FerryDatabase::build(writer, Some(reader), schema, Some(path))
    }

    /// An in-memory database (lost when the last clone is dropped). Reads share the writer
    /// connection.
    pub fn open_in_memory(schema: Schema) -> Result<FerryDatabase> {
        let writer = open_writer(None, &schema)?;
        FerryDatabase::build(writer, None, schema, None)
    }

    fn build(
        writer: storage::Writer,
        reader: Option<Connection>,
        schema: Schema,
        path: Option<PathBuf>,
    ) -> Result<FerryDatabase> {
        writer.conn.set_prepared_statement_cache_capacity(64);
        let mut initial = SyncStatus {
            upload_queue_len: upload::queue_len(&writer.conn)?,
            ..SyncStatus::default()
        };
        initial.priority_status = load_sync_state(&writer.conn)?;
        initial.last_synced_at = initial
            .priority_status
            .iter()
            .find(|p| p.priority.is_none())
            .map(|p| p.last_synced_at);
        let (changes, _) = broadcast::channel(256);
        let inner = Inner {
            schema,
            client_id: writer.client_id,
            writer: Mutex::new(WriterState {
                conn: writer.conn,
                changes: writer.changes,
            }),
            reader: reader.map(Mutex::new),
            changes,
            status: StatusHub::new(initial),
            upload_wakeup: Notify::new(),
            sync: tokio::sync::Mutex::new(None),
        };
        Ok(FerryDatabase {
            inner: Arc::new(inner),
            path,
        })
    }

    /// This client's id (a UUID created with the database; sent with every sync request and
    /// upload).
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The schema the database was opened with.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// Runs one statement that writes (through the views: the write is queued for upload) and
    /// returns the number of rows changed.
    pub async fn execute(&self, sql: impl Into<String>, params: impl IntoParams) -> Result<usize> {
        let sql = sql.into();
        let params = params.into_params();
        blocking(&self.inner, move |inner| {
            inner.with_writer(|conn| {
                let result = conn
                    .prepare_cached(&sql)
                    .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(&params)))
                    .map_err(|e| Error::query(&sql, e));
                if !conn.is_autocommit() {
                    // The writer is shared with the sync: a transaction must not stay open.
                    conn.execute_batch("ROLLBACK")?;
                    return Err(Error::Query {
                        sql,
                        message: "the statement left a transaction open (rolled back); use \
                                  FerryDatabase::transaction for multi-statement transactions"
                            .to_owned(),
                    });
                }
                result
            })
        })
        .await
    }

    /// Runs `sql` as a batch of statements without parameters, in one transaction.
    pub async fn execute_batch(&self, sql: impl Into<String>) -> Result<()> {
        let sql = sql.into();
        blocking(&self.inner, move |inner| {
            inner.write_tx(|tx| tx.execute_batch(&sql).map_err(|e| Error::query(&sql, e)))
        })
        .await
    }

    /// Runs a query and returns all its rows.
    pub async fn query(&self, sql: impl Into<String>, params: impl IntoParams) -> Result<Vec<Row>> {
        let sql = sql.into();
        let params = params.into_params();
        blocking(&self.inner, move |inner| {
            inner.with_reader(|conn| query_rows(conn, &sql, &params))
        })
        .await
    }

    /// Runs `f` in one write transaction: committed if it returns `Ok`, rolled back otherwise.
    /// All writes of one transaction are uploaded together, with one transaction id.
    pub async fn transaction<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
    {
        blocking(&self.inner, move |inner| inner.write_tx(f)).await
    }

    /// Runs `f` with a read-only connection (for reads that `query` cannot express).
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        blocking(&self.inner, move |inner| inner.with_reader(f)).await
    }

    /// A stream of the results of `sql`: first its current result, then a new result each time a
    /// committed transaction (a local write or a synced checkpoint) changed a table it reads.
    /// See [`crate::watch`].
    pub fn watch(
        &self,
        sql: impl Into<String>,
        params: impl IntoParams,
    ) -> impl Stream<Item = Result<Vec<Row>>> + Send + 'static {
        crate::watch::watch(self.inner.clone(), sql.into(), params.into_params())
    }

    /// A stream of the sets of tables changed by each committed transaction (views' table names;
    /// `ferry_crud` for the upload queue).
    pub fn table_changes(&self) -> impl Stream<Item = Arc<BTreeSet<String>>> + Send + 'static {
        let rx = self.inner.subscribe_changes();
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(set) => return Some((set, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// The current sync status.
    pub fn status(&self) -> SyncStatus {
        self.inner.status.get()
    }

    /// The current sync status, then every change of it.
    pub fn status_stream(&self) -> impl Stream<Item = SyncStatus> + Send + 'static {
        status::stream(self.inner.status.subscribe())
    }

    /// Waits until a full checkpoint has been published (returns at once if one was, even in an
    /// earlier session).
    pub async fn wait_for_first_sync(&self) {
        self.wait_for_status(SyncStatus::has_synced).await;
    }

    /// Waits until every bucket of priority number `<= priority` has been published once.
    pub async fn wait_for_first_sync_priority(&self, priority: BucketPriority) {
        self.wait_for_status(move |s| s.has_synced_priority(priority))
            .await;
    }

    /// Waits until `condition` holds for the status.
    pub async fn wait_for_status(&self, condition: impl Fn(&SyncStatus) -> bool) {
        let mut statuses = std::pin::pin!(self.status_stream());
        while let Some(status) = statuses.next().await {
            if condition(&status) {
                return;
            }
        }
    }

    /// The number of entries in the upload queue.
    pub async fn upload_queue_len(&self) -> Result<u64> {
        blocking(&self.inner, |inner| {
            inner.with_writer(|conn| upload::queue_len(conn))
        })
        .await
    }

    /// The oldest queued local transaction, for apps that upload by hand instead of (or besides)
    /// a [`Connector`]. Call [`FerryDatabase::complete_crud_transaction`] once the backend committed it.
    pub async fn next_crud_transaction(&self) -> Result<Option<PendingTransaction>> {
        blocking(&self.inner, |inner| {
            inner.with_writer(|conn| upload::next_transaction(conn, &inner.client_id))
        })
        .await
    }

    /// Removes an uploaded transaction (and everything queued before it) from the queue.
    pub async fn complete_crud_transaction(&self, pending: &PendingTransaction) -> Result<()> {
        let last = pending.last_entry_id();
        blocking(&self.inner, move |inner| {
            inner.with_writer(|conn| upload::complete(conn, last))
        })
        .await
    }

    /// Starts syncing with `connector` in background tasks (needs a tokio runtime): downloads,
    /// uploads, reconnects with backoff. A previous connection is stopped first. The tasks run
    /// until [`FerryDatabase::disconnect`] (or the runtime ends), even if every handle is dropped.
    pub async fn connect<C: Connector>(&self, connector: C, options: SyncOptions) -> Result<()> {
        let mut sync = self.inner.sync.lock().await;
        if let Some(handle) = sync.take() {
            handle.stop().await;
        }
        *sync = Some(crate::driver::start(
            self.inner.clone(),
            connector,
            options,
        )?);
        Ok(())
    }

    /// Stops syncing (waits for the background tasks to end). Local reads and writes go on.
    pub async fn disconnect(&self) {
        if let Some(handle) = self.inner.sync.lock().await.take() {
            handle.stop().await;
        }
        self.inner.status.update(|s| {
            s.connected = false;
            s.connecting = false;
            s.downloading = false;
            s.uploading = false;
            s.download_progress = None;
        });
    }

    /// Stops syncing; the connections close when the last clone is dropped.
    pub async fn close(self) {
        self.disconnect().await;
    }

    /// The file path (`None` for an in-memory database).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}
