//! The upload queue (`ferry_crud`) and the uploader task.
//!
//! The queue hands out the oldest local transaction as a [`CrudTransaction`] (client id,
//! transaction id, entries in order); entries are removed only after the connector reports that
//! the backend committed them, so a queued write is never lost. A definitive
//! rejection drops the transaction too (the server's state then replaces it, PROTOCOL.md §4.7).
//! When the queue has drained, the uploader asks the service for a write checkpoint
//! (`/write-checkpoint2.json`) and sets it as the write gate's target ([`crate::sync::write_gate`]),
//! then tells the sync state machine, which may now publish a checkpoint it held back.

use std::sync::Arc;

use ferry_protocol::{CrudEntry, CrudTransaction};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;
use crate::connector::{Connector, UploadError};
use crate::database::{blocking, Inner};
use crate::driver::{sleep_or_cancel, CredentialsCache};
use crate::error::{Error, Result};
use crate::sync::write_gate;
use crate::transport::http::HttpTransport;

/// A queued local transaction, ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTransaction {
    /// What to send: the client id, the transaction id and the entries.
    pub transaction: CrudTransaction,
    last_entry_id: i64,
}

impl PendingTransaction {
    /// The queue position of its last entry (everything up to it is removed on completion).
    pub fn last_entry_id(&self) -> i64 {
        self.last_entry_id
    }
}

/// Entries in the queue.
pub(crate) fn queue_len(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM ferry_crud")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The oldest queued transaction: all entries sharing the oldest entry's transaction id.
pub(crate) fn next_transaction(
    conn: &Connection,
    client_id: &str,
) -> Result<Option<PendingTransaction>> {
    let Some(tx_id): Option<i64> = conn
        .prepare_cached("SELECT tx_id FROM ferry_crud ORDER BY id LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt =
        conn.prepare_cached("SELECT id, data FROM ferry_crud WHERE tx_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([tx_id], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut entries = Vec::new();
    let mut last_entry_id = 0;
    for row in rows {
        let (id, data) = row?;
        let entry: CrudEntry = serde_json::from_str(&data).map_err(|e| {
            Error::ProtocolViolation(format!(
                "upload queue entry {id} is not a valid CRUD entry ({e}): {data}"
            ))
        })?;
        entries.push(entry);
        last_entry_id = id;
    }
    Ok(Some(PendingTransaction {
        transaction: CrudTransaction {
            client_id: client_id.to_owned(),
            transaction_id: tx_id,
            entries,
        },
        last_entry_id,
    }))
}

/// Removes every entry up to `last_entry_id` (an uploaded or rejected transaction); the write
/// gate stays closed until a write checkpoint is obtained.
pub(crate) fn complete(conn: &Connection, last_entry_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM ferry_crud WHERE id <= ?1")?
        .execute([last_entry_id])?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ferry_kv(key, value) VALUES ('write_gate_target', ?1)",
    )?
    .execute([crate::storage::migrations::MAX_OP_ID])?;
    Ok(())
}

/// Everything the uploader task needs.
pub(crate) struct Uploader<C> {
    pub(crate) inner: Arc<Inner>,
    pub(crate) connector: Arc<C>,
    pub(crate) credentials: Arc<CredentialsCache>,
    pub(crate) http: Arc<HttpTransport>,
    /// Tells the sync task that the write gate may have opened.
    pub(crate) upload_completed: mpsc::UnboundedSender<()>,
    pub(crate) backoff: Backoff,
    /// The status's `upload_error` as a failed write-checkpoint request set it: cleared once a
    /// request succeeds (an upload's own errors are cleared by the next successful upload, and a
    /// rejection's stays for the app to see).
    pub(crate) checkpoint_error: Option<String>,
}

impl<C: Connector> Uploader<C> {
    /// Uploads until cancelled.
    pub(crate) async fn run(mut self, mut cancel: watch::Receiver<bool>) {
        loop {
            if *cancel.borrow() {
                return;
            }
            let next = blocking(&self.inner, |inner| {
                inner.with_writer(|conn| next_transaction(conn, &inner.client_id))
            })
            .await;
            let delay = match next {
                Ok(Some(pending)) => {
                    // A connector call that hangs must not keep `disconnect()` waiting; an upload
                    // cut short stays queued and is sent again (uploads are at-least-once).
                    tokio::select! {
                        delay = self.upload(pending) => delay,
                        _ = cancel.changed() => return,
                    }
                }
                Ok(None) => {
                    self.inner.status.update(|s| s.uploading = false);
                    let checkpoint = tokio::select! {
                        r = self.write_checkpoint() => r,
                        _ = cancel.changed() => return,
                    };
                    match checkpoint {
                        Ok(true) => None,
                        Ok(false) => {
                            // Idle: wait for the next local write.
                            tokio::select! {
                                () = self.inner.upload_wakeup.notified() => {}
                                _ = cancel.changed() => return,
                            }
                            None
                        }
                        Err(e) => {
                            let message = e.to_string();
                            self.failed(&message);
                            self.checkpoint_error = Some(message);
                            Some(self.backoff.next_delay())
                        }
                    }
                }
                Err(e) => {
                    self.failed(&e.to_string());
                    Some(self.backoff.next_delay())
                }
            };
            if let Some(delay) = delay {
                if !sleep_or_cancel(delay, &mut cancel).await {
                    return;
                }
            }
        }
    }

    fn failed(&self, message: &str) {
        tracing::warn!(error = message, "upload failed");
        let message = message.to_owned();
        self.inner.status.update(|s| {
            s.uploading = false;
            s.upload_error = Some(message);
        });
    }

    /// Uploads one transaction; returns the delay before the next attempt, if any.
    async fn upload(&mut self, pending: PendingTransaction) -> Option<std::time::Duration> {
        self.inner.status.update(|s| s.uploading = true);
        let last = pending.last_entry_id;
        let tx_id = pending.transaction.transaction_id;
        let result = self.connector.upload(&pending.transaction).await;
        let remove = match &result {
            Ok(()) => true,
            Err(UploadError::Rejected(reason)) => {
                tracing::warn!(transaction_id = tx_id, %reason, "upload rejected; dropping it");
                true
            }
            Err(UploadError::Retry(_)) => false,
        };
        if remove {
            let done = blocking(&self.inner, move |inner| {
                inner.with_writer(|conn| complete(conn, last))
            })
            .await;
            if let Err(e) = done {
                self.failed(&e.to_string());
                return Some(self.backoff.next_delay());
            }
        }
        match result {
            Ok(()) => {
                self.backoff.reset();
                self.inner.status.update(|s| s.upload_error = None);
                None
            }
            Err(UploadError::Rejected(reason)) => {
                self.inner.status.update(|s| {
                    s.upload_error = Some(format!(
                        "transaction {tx_id} was rejected and dropped: {reason}"
                    ));
                });
                None
            }
            Err(UploadError::Retry(reason)) => {
                self.failed(&reason);
                Some(self.backoff.next_delay())
            }
        }
    }

    /// When the queue drained after local writes: gets a write checkpoint and sets it as the
    /// gate's target. Returns whether it did anything (then the queue is looked at again).
    async fn write_checkpoint(&mut self) -> Result<bool> {
        let state = blocking(&self.inner, |inner| {
            inner.with_writer(|conn| {
                Ok(if write_gate::needs_write_checkpoint(conn)? {
                    Some(write_gate::crud_sequence(conn)?)
                } else {
                    None
                })
            })
        })
        .await?;
        let Some(sequence) = state else {
            return Ok(false);
        };
        let credentials = self.credentials.get(self.connector.as_ref()).await?;
        let write_checkpoint = match self
            .http
            .write_checkpoint(&credentials, &self.inner.client_id)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                if e.needs_new_credentials() {
                    self.credentials.invalidate().await;
                }
                return Err(e);
            }
        };
        if let Some(stale) = self.checkpoint_error.take() {
            self.inner.status.update(|s| {
                if s.upload_error.as_ref() == Some(&stale) {
                    s.upload_error = None;
                }
            });
        }
        let set = blocking(&self.inner, move |inner| {
            inner.with_writer(|conn| write_gate::set_target(conn, write_checkpoint, sequence))
        })
        .await?;
        if set {
            tracing::debug!(
                write_checkpoint,
                "upload queue drained; waiting for the write checkpoint"
            );
            self.backoff.reset();
            let _ = self.upload_completed.send(());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Schema, Table};
    use crate::storage::open_writer;

    #[test]
    fn transactions_are_handed_out_oldest_first_and_removed_on_completion() -> Result<()> {
        let schema = Schema::new(vec![Table::new("todos").text("description")]);
        let writer = open_writer(None, &schema)?;
        let conn = writer.conn;
        conn.execute_batch(
            "BEGIN; INSERT INTO todos(id, description) VALUES ('a', 'x');
             INSERT INTO todos(id, description) VALUES ('b', 'y'); COMMIT;
             UPDATE todos SET description = 'z' WHERE id = 'a';",
        )?;
        assert_eq!(queue_len(&conn)?, 3);
        let first = next_transaction(&conn, "c1")?.unwrap();
        assert_eq!(first.transaction.client_id, "c1");
        assert_eq!(first.transaction.entries.len(), 2);
        let again = next_transaction(&conn, "c1")?.unwrap();
        assert_eq!(again, first, "not removed until completed");
        complete(&conn, first.last_entry_id())?;
        let second = next_transaction(&conn, "c1")?.unwrap();
        assert!(second.transaction.transaction_id > first.transaction.transaction_id);
        assert_eq!(
            serde_json::to_string(&second.transaction.entries).unwrap(),
            r#"[{"op":"PATCH","id":"a","type":"todos","data":{"description":"z"}}]"#
        );
        complete(&conn, second.last_entry_id())?;
        assert!(next_transaction(&conn, "c1")?.is_none());
        Ok(())
    }
}
