//! `ferry-client`: keeps a SQLite database on the device in sync with Postgres through a ferry
//! gateway (or a PowerSync service), offline first.
//!
//! - Define the app's tables as a [`Schema`]; [`FerryDatabase::open`] creates one view per table
//!   over JSON rows, so adding a column or a table never needs a migration.
//! - Read and write with plain SQL ([`FerryDatabase::query`], [`FerryDatabase::execute`],
//!   [`FerryDatabase::transaction`]); writes show at once and are queued for upload.
//! - [`FerryDatabase::connect`] with a [`Connector`] (credentials + upload to the app's backend)
//!   syncs in the background: checkpoints are validated by checksum and published atomically;
//!   downloaded data never overwrites local writes that the server has not confirmed yet.
//! - [`FerryDatabase::watch`] re-runs a query whenever a table it reads changes;
//!   [`FerryDatabase::status_stream`] reports connection, progress and errors.
//!
//! | module | holds |
//! | --- | --- |
//! | [`database`] | [`FerryDatabase`], the entry point |
//! | [`schema`] | [`Schema`], [`Table`], columns, indexes; generated views and triggers |
//! | [`sync`] | the sans-IO sync state machine, op storage, checkpoint validation/publication, write gate |
//! | [`driver`] | the tokio task running the sync over HTTP, with reconnects and backoff |
//! | [`connector`] | [`Connector`] (the app's credentials and uploads), [`GatewayConnector`] |
//! | [`upload`] | the upload queue and the uploader task |
//! | [`watch`] | watched queries |
//! | [`status`] | [`SyncStatus`] |
//! | [`row`] | [`Row`], parameters ([`params!`]) |
//! | [`mod@bench`] | apply throughput against a raw SQLite insert |
//! | [`error`] | [`Error`] |
//!
//! ```no_run
//! # async fn demo() -> ferry_client::Result<()> {
//! use futures::StreamExt;
//! use ferry_client::{params, FerryDatabase, GatewayConnector, Schema, SyncOptions, Table};
//!
//! let schema = Schema::new(vec![
//!     Table::new("todos").text("description").integer("completed").text("list_id"),
//! ]);
//! let db = FerryDatabase::open("todos.db", schema)?;
//! let connector = GatewayConnector::new("http://127.0.0.1:8080", "<jwt>")
//!     .with_gateway_write_endpoint();
//! db.connect(connector, SyncOptions::default()).await?;
//! db.wait_for_first_sync().await;
//! db.execute("UPDATE todos SET completed = 1 WHERE id = ?1", params!["t1"]).await?;
//! let mut todos = Box::pin(db.watch("SELECT id, description FROM todos ORDER BY id", ()));
//! while let Some(rows) = todos.next().await {
//!     println!("{} todos", rows?.len());
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
pub mod bench;
pub mod connector;
pub mod database;
pub mod driver;
pub mod error;
pub mod row;
pub mod schema;
pub mod status;
pub(crate) mod storage;
pub mod sync;
pub(crate) mod transport;
pub mod upload;
pub mod watch;

pub use connector::{BoxError, Connector, Credentials, GatewayConnector, UploadError};
pub use database::FerryDatabase;
pub use driver::SyncOptions;
pub use error::{Error, ErrorCategory, Result};
pub use ferry_protocol::{BucketPriority, CrudEntry, CrudOp, CrudTransaction};
pub use row::{ColumnIndex, IntoParams, IntoValue, Row};
pub use rusqlite;
pub use rusqlite::types::Value;
pub use schema::{Column, ColumnType, Index, IndexColumn, Schema, Table};
pub use status::{DownloadProgress, PriorityProgress, PriorityStatus, SyncStatus};
pub use upload::PendingTransaction;
