//! [`SyncStateMachine`]: the sans-IO core of the client's sync (PROTOCOL.md §4.4). Events (a
//! protocol line, the connection opening or ending, an upload finishing) go in with the
//! transaction to work in; [`SyncAction`]s (open a stream with this request, fetch credentials,
//! close the stream, status changed, a sync completed) come out. It never touches the network and
//! never sleeps; [`crate::driver`] does both.
//!
//! Per line (§4.4):
//! - `checkpoint`: becomes the target; local buckets not in it are deleted.
//! - `checkpoint_diff`: patches the target (a protocol violation without a checkpoint first).
//! - `data`: ops are stored ([`super::oplog`]).
//! - `checkpoint_complete` / `partial_checkpoint_complete`: checksums are validated; on success
//!   the checkpoint is published if the write gate is open, else kept until an upload completes or
//!   a newer checkpoint replaces it; on a mismatch the failing buckets are deleted and the stream
//!   is closed so that they download again.
//! - `token_expires_in`: prefetch credentials at `<= 30` s, close and refetch at `<= 0`.
//! - unknown lines: ignored.
//!
//! An `Err` from [`SyncStateMachine::handle`] means the transaction must be rolled back and the
//! iteration restarted (a [`SyncEvent::Start`] reloads everything from the database).

use std::collections::BTreeMap;

use ferry_protocol::{
    BucketPriority, BucketRequest, OpId, StreamingSyncRequest, SyncLine, TokenExpiresIn,
};
use rusqlite::Transaction;
use serde_json::{Map, Value};

use super::checkpoint::{self, Published};
use super::oplog;
use super::write_gate;
use super::{PublishScope, PublishTargets, TargetCheckpoint};
use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::status::{
    from_micros, DownloadProgress, DownloadStatus, PriorityProgress, PriorityStatus,
};
use crate::storage::migrations::FULL_SYNC_PRIORITY;

/// Something that happened, for the state machine to react to.
#[derive(Debug, Clone)]
pub enum SyncEvent {
    /// Begin a sync iteration: build the request from the local buckets.
    Start,
    /// The stream is open (HTTP 200 received).
    ConnectionEstablished,
    /// A line of the stream.
    Line(SyncLine),
    /// The stream ended (cleanly or not).
    ConnectionEnded,
    /// The uploader drained the queue and set a new write-gate target: a checkpoint waiting for
    /// the gate may be publishable now.
    UploadCompleted,
}

/// What the host must do.
#[derive(Debug)]
pub enum SyncAction {
    /// Open a sync stream (`POST {endpoint}/sync/stream`) with this body.
    EstablishStream(StreamingSyncRequest),
    /// Fetch credentials: `expired` means the current token no longer works (the stream is being
    /// closed); otherwise prefetch them for the next connection.
    FetchCredentials {
        /// The token has expired.
        expired: bool,
    },
    /// Close the stream and start a new iteration; `error` says why, when it is a problem.
    CloseStream {
        /// What went wrong, if anything.
        error: Option<Error>,
    },
    /// The download status changed.
    StatusChanged(DownloadStatus),
    /// A checkpoint was published: `priority` `None` for a full one.
    DidCompleteSync {
        /// The priority of a partial checkpoint.
        priority: Option<BucketPriority>,
        /// What the publication did.
        published: Published,
    },
}

/// Per-bucket op counts for progress.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    at_last: u64,
    since_last: u64,
}

/// The sync state machine. See the module docs.
#[derive(Debug)]
pub struct SyncStateMachine {
    client_id: String,
    parameters: Option<Map<String, Value>>,
    targets: PublishTargets,
    target: Option<TargetCheckpoint>,
    /// A validated checkpoint waiting for the write gate.
    pending: Option<PublishScope>,
    counts: BTreeMap<String, Counts>,
    status: DownloadStatus,
    prefetch_requested: bool,
}

impl SyncStateMachine {
    /// A state machine for a client with this id and schema; `parameters` are sent as the
    /// request's client parameters.
    pub fn new(
        client_id: impl Into<String>,
        schema: &Schema,
        parameters: Option<Map<String, Value>>,
    ) -> SyncStateMachine {
        SyncStateMachine {
            client_id: client_id.into(),
            parameters,
            targets: PublishTargets::new(schema),
            target: None,
            pending: None,
            counts: BTreeMap::new(),
            status: DownloadStatus::default(),
            prefetch_requested: false,
        }
    }

    /// The current download status.
    pub fn status(&self) -> &DownloadStatus {
        &self.status
    }

    /// The checkpoint being downloaded, if any.
    pub fn target(&self) -> Option<&TargetCheckpoint> {
        self.target.as_ref()
    }

    /// Handles one event in `tx`. See the module docs.
    pub fn handle(&mut self, tx: &Transaction<'_>, event: SyncEvent) -> Result<Vec<SyncAction>> {
        let mut actions = Vec::new();
        match event {
            SyncEvent::Start => {
                self.reset();
                self.status.priority_status = load_sync_state(tx)?;
                actions.push(SyncAction::StatusChanged(self.status.clone()));
                actions.push(SyncAction::EstablishStream(self.request(tx)?));
            }
            SyncEvent::ConnectionEstablished => {}
            SyncEvent::ConnectionEnded => {
                self.reset();
                actions.push(SyncAction::StatusChanged(self.status.clone()));
            }
            SyncEvent::UploadCompleted => {
                if let (Some(scope), Some(target)) = (self.pending, &self.target) {
                    if write_gate::is_open(tx, target.write_checkpoint)? {
                        self.pending = None;
                        self.publish(tx, scope, &mut actions)?;
                    }
                }
            }
            SyncEvent::Line(line) => self.line(tx, line, &mut actions)?,
        }
        Ok(actions)
    }

    fn reset(&mut self) {
        self.target = None;
        self.pending = None;
        self.counts.clear();
        self.prefetch_requested = false;
        self.status.downloading = false;
        self.status.progress = None;
    }

    /// The body of `POST /sync/stream`: every local bucket with its position.
    fn request(&self, tx: &Transaction<'_>) -> Result<StreamingSyncRequest> {
        let mut stmt =
            tx.prepare_cached("SELECT name, last_op FROM ferry_buckets ORDER BY name")?;
        let buckets = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .map(|row| {
                let (name, after) = row?;
                Ok(BucketRequest {
                    name,
                    after: OpId::try_from(after)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StreamingSyncRequest {
            buckets,
            include_checksum: true,
            raw_data: true,
            binary_data: false,
            client_id: Some(self.client_id.clone()),
            parameters: self.parameters.clone(),
            ..StreamingSyncRequest::default()
        })
    }

    fn violation(actions: &mut Vec<SyncAction>, message: String) {
        actions.push(SyncAction::CloseStream {
            error: Some(Error::ProtocolViolation(message)),
        });
    }

    fn line(
        &mut self,
        tx: &Transaction<'_>,
        line: SyncLine,
        actions: &mut Vec<SyncAction>,
    ) -> Result<()> {
        match line {
            SyncLine::Checkpoint(checkpoint) => {
                self.pending = None;
                let target = TargetCheckpoint::from_checkpoint(checkpoint);
                let local: Vec<String> = {
                    let mut stmt = tx.prepare_cached("SELECT name FROM ferry_buckets")?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                let gone: Vec<&str> = local
                    .iter()
                    .map(String::as_str)
                    .filter(|name| !target.buckets.contains_key(*name))
                    .collect();
                checkpoint::delete_buckets(tx, gone)?;
                self.target = Some(target);
                self.load_counts(tx)?;
                self.status_changed(true, actions);
            }
            SyncLine::CheckpointDiff(diff) => {
                let Some(target) = self.target.as_mut() else {
                    Self::violation(
                        actions,
                        "a checkpoint_diff line arrived before any checkpoint line".into(),
                    );
                    return Ok(());
                };
                self.pending = None;
                let removed = diff.removed_buckets.clone();
                target.apply_diff(diff);
                checkpoint::delete_buckets(tx, removed.iter().map(String::as_str))?;
                for name in &removed {
                    self.counts.remove(name);
                }
                self.load_counts(tx)?;
                self.status_changed(true, actions);
            }
            SyncLine::Data(data) => {
                let stored = oplog::store_data_line(tx, &data)?;
                let counts = self.counts.entry(data.bucket).or_default();
                counts.since_last += stored.ops;
                if self.target.is_some() {
                    self.status_changed(true, actions);
                }
            }
            SyncLine::CheckpointComplete(complete) => {
                self.complete(tx, complete.last_op_id, PublishScope::Full, actions)?;
            }
            SyncLine::PartialCheckpointComplete(partial) => {
                self.complete(
                    tx,
                    partial.last_op_id,
                    PublishScope::UpTo(partial.priority),
                    actions,
                )?;
            }
            SyncLine::TokenExpiresIn(TokenExpiresIn(seconds)) => {
                if seconds <= 0 {
                    actions.push(SyncAction::FetchCredentials { expired: true });
                    actions.push(SyncAction::CloseStream { error: None });
                } else if seconds <= 30 && !self.prefetch_requested {
                    self.prefetch_requested = true;
                    actions.push(SyncAction::FetchCredentials { expired: false });
                }
            }
            SyncLine::Unknown(value) => {
                tracing::debug!(line = %value, "ignoring a sync line of unknown type");
            }
        }
        Ok(())
    }

    fn complete(
        &mut self,
        tx: &Transaction<'_>,
        last_op_id: OpId,
        scope: PublishScope,
        actions: &mut Vec<SyncAction>,
    ) -> Result<()> {
        let Some(target) = &self.target else {
            Self::violation(
                actions,
                format!(
                    "a completion line for checkpoint {last_op_id} arrived before any checkpoint line"
                ),
            );
            return Ok(());
        };
        if target.last_op_id != last_op_id {
            Self::violation(
                actions,
                format!(
                    "a completion line names checkpoint {last_op_id}, but the current checkpoint \
                     is {}",
                    target.last_op_id
                ),
            );
            return Ok(());
        }
        let failed = checkpoint::validate(tx, target, scope)?;
        if !failed.is_empty() {
            checkpoint::delete_buckets(tx, failed.iter().map(|m| m.bucket.as_str()))?;
            let error = Error::ChecksumMismatch {
                checkpoint: last_op_id.get(),
                buckets: failed.iter().map(checkpoint::Mismatch::describe).collect(),
            };
            tracing::warn!(%error, "checksum mismatch");
            actions.push(SyncAction::CloseStream { error: Some(error) });
            return Ok(());
        }
        checkpoint::mark_validated(tx, target, scope)?;
        if scope == PublishScope::Full {
            write_gate::record_seen(tx, target.write_checkpoint)?;
        }
        if write_gate::is_open(tx, target.write_checkpoint)? {
            self.pending = None;
            self.publish(tx, scope, actions)?;
        } else {
            tracing::debug!(
                ?scope,
                "checkpoint validated; waiting for local writes to sync"
            );
            // A full checkpoint covers any partial one waiting.
            self.pending = match (self.pending, scope) {
                (Some(PublishScope::Full), _) => Some(PublishScope::Full),
                _ => Some(scope),
            };
            if scope == PublishScope::Full {
                self.status_changed(false, actions);
            }
        }
        Ok(())
    }

    fn publish(
        &mut self,
        tx: &Transaction<'_>,
        scope: PublishScope,
        actions: &mut Vec<SyncAction>,
    ) -> Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let published = checkpoint::publish(tx, &self.targets, target, scope)?;
        for bucket in target.buckets_in(scope) {
            self.counts.insert(
                bucket.bucket.clone(),
                Counts {
                    at_last: bucket.count,
                    since_last: 0,
                },
            );
        }
        actions.push(SyncAction::DidCompleteSync {
            priority: scope.priority(),
            published,
        });
        self.status.priority_status = load_sync_state(tx)?;
        let downloading = scope != PublishScope::Full;
        self.status_changed(downloading, actions);
        Ok(())
    }

    fn load_counts(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let mut stmt =
            tx.prepare_cached("SELECT name, count_at_last, count_since_last FROM ferry_buckets")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        self.counts.clear();
        for row in rows {
            let (name, at_last, since_last) = row?;
            self.counts.insert(
                name,
                Counts {
                    at_last: u64::try_from(at_last).unwrap_or(0),
                    since_last: u64::try_from(since_last).unwrap_or(0),
                },
            );
        }
        Ok(())
    }

    fn progress(&self) -> Option<DownloadProgress> {
        let target = self.target.as_ref()?;
        let mut per_priority: BTreeMap<BucketPriority, (u64, u64)> = BTreeMap::new();
        for bucket in target.buckets.values() {
            let counts = self.counts.get(&bucket.bucket).copied().unwrap_or_default();
            let total = bucket.count.saturating_sub(counts.at_last);
            let done = counts.since_last.min(total);
            let entry = per_priority.entry(bucket.priority).or_default();
            entry.0 += done;
            entry.1 += total;
        }
        let mut cumulative = (0, 0);
        let priorities = per_priority
            .into_iter()
            .map(|(priority, (done, total))| {
                cumulative.0 += done;
                cumulative.1 += total;
                PriorityProgress {
                    priority,
                    downloaded: cumulative.0,
                    total: cumulative.1,
                }
            })
            .collect();
        Some(DownloadProgress { priorities })
    }

    fn status_changed(&mut self, downloading: bool, actions: &mut Vec<SyncAction>) {
        let status = DownloadStatus {
            downloading,
            progress: if downloading { self.progress() } else { None },
            priority_status: self.status.priority_status.clone(),
        };
        if status != self.status {
            self.status = status;
            actions.push(SyncAction::StatusChanged(self.status.clone()));
        }
    }
}

/// `ferry_sync_state` as status entries.
pub(crate) fn load_sync_state(tx: &rusqlite::Connection) -> Result<Vec<PriorityStatus>> {
    let mut stmt = tx.prepare_cached(
        "SELECT priority, last_synced_at FROM ferry_sync_state ORDER BY priority",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (priority, at) = row?;
        let priority = if priority == FULL_SYNC_PRIORITY {
            None
        } else {
            match u8::try_from(priority)
                .ok()
                .and_then(|p| BucketPriority::new(p).ok())
            {
                Some(p) => Some(p),
                // Not written by this version; ignore rather than misread it as a full sync.
                None => continue,
            }
        };
        out.push(PriorityStatus {
            priority,
            last_synced_at: from_micros(at),
        });
    }
    Ok(out)
}
