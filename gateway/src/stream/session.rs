//! One sync stream's life (PROTOCOL.md §3.4): [`Session::open`] resolves the user's buckets with
//! `ferry.checkpoint_for` (before the HTTP status is sent, so its errors are proper responses),
//! then [`Session::run`] writes the lines into a bounded channel that the HTTP body drains:
//! the first `checkpoint`, `data` by priority with `partial_checkpoint_complete` between groups,
//! `checkpoint_complete`; then, per new checkpoint from the process's watcher, a
//! `checkpoint_diff` with only this stream's changed buckets (or a new write checkpoint),
//! its data and completion; `token_expires_in` keepalives; and the end at token expiry, on a
//! change of the active rules version, or at shutdown.
//!
//! Between batches the session holds no database connection, and per stream it keeps only its
//! bucket set, positions and at most one batch of ops. The pure parts are in
//! [`crate::stream::buckets`], [`crate::stream::batching`] and [`crate::stream::keepalive`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferry_protocol::{
    encode_line, Checkpoint, CheckpointComplete, CheckpointDiff, OpId, PartialCheckpointComplete,
    StreamingSyncRequest, SyncLine, TokenExpiresIn,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::app::wait_for_shutdown;
use crate::auth::Claims;
use crate::checkpoint_watch::{CatchUp, ChangeRecord, WatchState};
use crate::config::LimitsConfig;
use crate::db::{Db, DbError, Lsn, OpRow, ResolvedCheckpoint};
use crate::error::GatewayError;
use crate::metrics;
use crate::stream::batching::{
    chunk_rows, group_by_priority, last_bucket_has_more, remaining_after_batch,
};
use crate::stream::buckets::{diff, BucketSet};
use crate::stream::keepalive;

/// PROTOCOL.md §3.4 step 5: after this many ops for one checkpoint, a newer checkpoint
/// interrupts the data loop.
const INTERRUPT_AFTER_OPS: usize = 1000;

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The client went away (the body was dropped).
    ClientGone,
    /// The token expired (`token_expires_in: 0` was sent).
    TokenExpired,
    /// Another sync rules version became active.
    VersionChanged,
    /// The process is shutting down.
    Shutdown,
    /// An error; the client reconnects. Carries a `PSYNC_*` code and a log message.
    Error(&'static str, String),
}

impl StreamEnd {
    fn from_db(e: DbError) -> StreamEnd {
        match e {
            DbError::VersionNotFound => StreamEnd::VersionChanged,
            DbError::NoActiveVersion => StreamEnd::VersionChanged,
            DbError::TooManyParameterResults(m) => StreamEnd::Error("PSYNC_S2305", m),
            DbError::Unavailable(m) => StreamEnd::Error("PSYNC_S2003", m),
            other => StreamEnd::Error("PSYNC_S2001", other.to_string()),
        }
    }
}

/// Maps a failure of the first `checkpoint_for` to the HTTP error.
pub fn open_error(e: DbError) -> GatewayError {
    match e {
        DbError::NoActiveVersion | DbError::VersionNotFound => GatewayError::NoSyncRules,
        DbError::TooManyParameterResults(m) => GatewayError::TooManyParameterResults(m),
        DbError::InvalidArgument(m) => GatewayError::BadRequest(m),
        DbError::Unavailable(m) => GatewayError::Unavailable(m),
        other => GatewayError::Internal(other.to_string()),
    }
}

/// What a stream needs from the process.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The database.
    pub db: Db,
    /// The process's checkpoint watcher.
    pub watch: watch::Receiver<Arc<WatchState>>,
    /// Turns true at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Limits.
    pub limits: LimitsConfig,
}

enum DataOutcome {
    Completed,
    Invalidated,
    Interrupted,
}

/// One open sync stream.
#[derive(Debug)]
pub struct Session {
    ctx: SessionContext,
    claims: Claims,
    claims_for_db: Value,
    parameters: Value,
    client_id: Option<String>,
    write_checkpoint_key: String,
    version: i64,
    op_id: i64,
    lsn: Lsn,
    set: BucketSet,
    positions: HashMap<String, i64>,
    pending: BTreeSet<String>,
    write_checkpoint: Option<i64>,
    cached: Option<HashMap<String, Vec<OpRow>>>,
    next_keepalive: Instant,
    keepalive_seed: u64,
}

fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Session {
    /// Resolves the user's buckets at the latest checkpoint. Errors here become HTTP errors.
    pub async fn open(
        ctx: SessionContext,
        claims: Claims,
        request: StreamingSyncRequest,
    ) -> Result<Session, GatewayError> {
        let client_id = request.client_id.clone().filter(|c| !c.is_empty());
        // The token's payload as it is: the sync rules read it as `request.jwt()`. The client id
        // has its own argument (the write-checkpoint key is `sub/client_id`).
        let claims_for_db = Value::Object(claims.payload.clone());
        let parameters = request
            .parameters
            .clone()
            .map(Value::Object)
            .unwrap_or(Value::Null);
        let resolved = ctx
            .db
            .checkpoint_for(
                &claims_for_db,
                &parameters,
                &claims.sub,
                client_id.as_deref(),
            )
            .await
            .map_err(open_error)?;
        let limit = ctx.limits.max_buckets_per_connection;
        if resolved.buckets.len() > limit {
            return Err(GatewayError::TooManyBuckets {
                count: resolved.buckets.len(),
                limit,
            });
        }
        let set = BucketSet::from_resolved(&resolved.buckets);
        let positions: HashMap<String, i64> = request
            .buckets
            .iter()
            .filter(|b| set.buckets.contains_key(&b.name))
            .filter_map(|b| {
                i64::try_from(b.after)
                    .ok()
                    .map(|after| (b.name.clone(), after))
            })
            .collect();
        let pending = set
            .buckets
            .iter()
            .filter(|(name, info)| {
                info.count > 0 && positions.get(*name).copied().unwrap_or(0) < resolved.op_id
            })
            .map(|(name, _)| name.clone())
            .collect();
        let keepalive_seed = claims.iat as u64 ^ (unix_now_f64() * 1e6) as u64;
        let mut session = Session {
            claims_for_db,
            parameters,
            client_id,
            write_checkpoint_key: resolved.write_checkpoint_key.clone(),
            version: resolved.version,
            op_id: resolved.op_id,
            lsn: resolved.lsn,
            set,
            positions,
            pending,
            write_checkpoint: resolved.write_checkpoint,
            cached: None,
            next_keepalive: Instant::now(),
            keepalive_seed,
            ctx,
            claims,
        };
        session.schedule_keepalive();
        tracing::debug!(
            user = %session.claims.sub,
            client_id = ?session.client_id,
            version = session.version,
            checkpoint = session.op_id,
            buckets = session.set.buckets.len(),
            "sync stream opened"
        );
        Ok(session)
    }

    /// Sends lines into `tx` until the stream ends; returns why.
    pub async fn run(mut self, tx: mpsc::Sender<Bytes>) -> StreamEnd {
        let mut out = LineWriter {
            tx,
            shutdown: self.ctx.shutdown.clone(),
        };
        match self.run_inner(&mut out).await {
            Ok(()) => StreamEnd::Shutdown,
            Err(end) => end,
        }
    }

    async fn run_inner(&mut self, out: &mut LineWriter) -> Result<(), StreamEnd> {
        self.send_full_checkpoint(out).await?;
        // Mark the watcher's current state as seen: `open` already read a checkpoint at least
        // as new.
        self.ctx.watch.borrow_and_update();
        loop {
            match self.send_data(out).await? {
                DataOutcome::Completed => {
                    out.send(SyncLine::CheckpointComplete(CheckpointComplete {
                        last_op_id: op_id(self.op_id),
                    }))
                    .await?;
                }
                DataOutcome::Invalidated => {
                    tracing::debug!(
                        checkpoint = self.op_id,
                        "checkpoint invalidated by compaction; waiting for a newer one"
                    );
                }
                DataOutcome::Interrupted => {}
            }
            self.wait_for_work(out).await?;
        }
    }

    fn schedule_keepalive(&mut self) {
        let remaining = self.claims.exp as f64 - unix_now_f64();
        self.keepalive_seed = self.keepalive_seed.wrapping_add(1);
        let delay = keepalive::next_delay(
            remaining,
            Duration::from_secs(self.ctx.limits.keepalive_secs),
            keepalive::jitter(self.keepalive_seed),
        );
        self.next_keepalive = Instant::now() + delay;
    }

    async fn send_keepalive(&mut self, out: &mut LineWriter) -> Result<(), StreamEnd> {
        let remaining = self.claims.exp as f64 - unix_now_f64();
        let value = keepalive::expires_in_value(remaining);
        out.send(SyncLine::TokenExpiresIn(TokenExpiresIn(value)))
            .await?;
        if value <= 0 {
            return Err(StreamEnd::TokenExpired);
        }
        self.schedule_keepalive();
        Ok(())
    }

    async fn keepalive_if_due(&mut self, out: &mut LineWriter) -> Result<(), StreamEnd> {
        if Instant::now() >= self.next_keepalive {
            self.send_keepalive(out).await?;
        }
        if *self.ctx.shutdown.borrow() {
            return Err(StreamEnd::Shutdown);
        }
        Ok(())
    }

    async fn send_full_checkpoint(&mut self, out: &mut LineWriter) -> Result<(), StreamEnd> {
        out.send(SyncLine::Checkpoint(Checkpoint {
            last_op_id: op_id(self.op_id),
            write_checkpoint: self.write_checkpoint.and_then(|w| u64::try_from(w).ok()),
            buckets: self.set.entries(),
            streams: self.set.stream_descriptions(),
        }))
        .await
    }

    async fn send_diff(
        &mut self,
        out: &mut LineWriter,
        updated: &BTreeSet<String>,
        removed: Vec<String>,
    ) -> Result<(), StreamEnd> {
        out.send(SyncLine::CheckpointDiff(CheckpointDiff {
            last_op_id: op_id(self.op_id),
            write_checkpoint: self.write_checkpoint.and_then(|w| u64::try_from(w).ok()),
            updated_buckets: updated.iter().filter_map(|b| self.set.entry(b)).collect(),
            removed_buckets: removed,
        }))
        .await
    }

    fn newer_checkpoint_known(&self) -> bool {
        !matches!(
            self.ctx.watch.borrow().catch_up(self.version, self.lsn),
            CatchUp::UpToDate
        )
    }

    /// Sends the data of the pending buckets up to the current checkpoint.
    async fn send_data(&mut self, out: &mut LineWriter) -> Result<DataOutcome, StreamEnd> {
        let cached = self.cached.take();
        let groups = group_by_priority(
            self.pending
                .iter()
                .filter_map(|b| self.set.buckets.get(b).map(|i| (b.as_str(), i.priority))),
        );
        // Buckets that left the set are no longer pending.
        self.pending.retain(|b| self.set.buckets.contains_key(b));
        let limits = self.ctx.limits.clone();
        let max_ops = limits.batch_ops as usize;
        let query_limit = i32::try_from(limits.batch_ops)
            .unwrap_or(i32::MAX - 1)
            .saturating_add(1);
        let mut invalid = false;
        let mut ops_sent = 0usize;
        let group_count = groups.len();
        for (index, (priority, names)) in groups.into_iter().enumerate() {
            if let Some(cached) = &cached {
                let rows: Vec<OpRow> = names
                    .iter()
                    .flat_map(|b| {
                        let after = self.positions.get(b).copied().unwrap_or(0);
                        cached
                            .get(b)
                            .into_iter()
                            .flatten()
                            .filter(move |r| r.op_id > after)
                            .cloned()
                    })
                    .collect();
                let chunked = chunk_rows(
                    rows,
                    &mut self.positions,
                    self.op_id,
                    limits.chunk_bytes,
                    false,
                )
                .map_err(|e| StreamEnd::Error("PSYNC_S2001", e))?;
                invalid |= chunked.invalidated;
                out.send_data(chunked.lines).await?;
            } else {
                let mut remaining = names.clone();
                loop {
                    let afters: Vec<i64> = remaining
                        .iter()
                        .map(|b| self.positions.get(b).copied().unwrap_or(0))
                        .collect();
                    // One row more than a batch uses tells whether (and where) more follow.
                    let mut rows = self
                        .ctx
                        .db
                        .bucket_data(&remaining, &afters, self.op_id, query_limit)
                        .await
                        .map_err(StreamEnd::from_db)?;
                    let extra = if rows.len() > max_ops {
                        rows.truncate(max_ops + 1);
                        rows.pop()
                    } else {
                        None
                    };
                    let has_more = last_bucket_has_more(&rows, extra.as_ref());
                    let next = remaining_after_batch(
                        &remaining,
                        extra.as_ref().map(|r| r.bucket.as_str()),
                    );
                    let chunked = chunk_rows(
                        rows,
                        &mut self.positions,
                        self.op_id,
                        limits.chunk_bytes,
                        has_more,
                    )
                    .map_err(|e| StreamEnd::Error("PSYNC_S2001", e))?;
                    invalid |= chunked.invalidated;
                    ops_sent += chunked.ops;
                    out.send_data(chunked.lines).await?;
                    let Some(next) = next else { break };
                    remaining = next;
                    self.keepalive_if_due(out).await?;
                    if ops_sent >= INTERRUPT_AFTER_OPS && self.newer_checkpoint_known() {
                        return Ok(DataOutcome::Interrupted);
                    }
                }
            }
            if !invalid {
                for name in &names {
                    self.pending.remove(name);
                }
                if index + 1 < group_count {
                    out.send(SyncLine::PartialCheckpointComplete(
                        PartialCheckpointComplete {
                            last_op_id: op_id(self.op_id),
                            priority,
                        },
                    ))
                    .await?;
                }
            }
            self.keepalive_if_due(out).await?;
        }
        Ok(if invalid {
            DataOutcome::Invalidated
        } else {
            DataOutcome::Completed
        })
    }

    /// Waits until there is something to send (a diff, data), sending keepalives meanwhile.
    async fn wait_for_work(&mut self, out: &mut LineWriter) -> Result<(), StreamEnd> {
        loop {
            let state = self.ctx.watch.borrow_and_update().clone();
            let work = match state.catch_up(self.version, self.lsn) {
                CatchUp::UpToDate => false,
                CatchUp::VersionChanged => return Err(StreamEnd::VersionChanged),
                CatchUp::Resolve => self.re_resolve(out).await?,
                CatchUp::Records(records) => self.apply_records(out, &records).await?,
            };
            if work {
                return Ok(());
            }
            let mut shutdown = self.ctx.shutdown.clone();
            tokio::select! {
                changed = self.ctx.watch.changed() => {
                    if changed.is_err() {
                        return Err(StreamEnd::Shutdown);
                    }
                }
                _ = tokio::time::sleep_until(self.next_keepalive) => self.send_keepalive(out).await?,
                _ = wait_for_shutdown(&mut shutdown) => return Err(StreamEnd::Shutdown),
            }
        }
    }

    /// Applies change records; returns whether lines were sent and data may follow.
    async fn apply_records(
        &mut self,
        out: &mut LineWriter,
        records: &[Arc<ChangeRecord>],
    ) -> Result<bool, StreamEnd> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(false);
        };
        if records.iter().any(|r| r.lookups_changed) {
            return self.re_resolve(out).await;
        }
        let was_synced = self.pending.is_empty() && first.prev_lsn == self.lsn;
        let mut updated = BTreeSet::new();
        let mut write_checkpoint = self.write_checkpoint;
        for record in records {
            updated.extend(self.set.apply_changes(&record.buckets));
            if let Some(w) = record.write_checkpoints.get(&self.write_checkpoint_key) {
                write_checkpoint = Some(*w);
            }
        }
        self.op_id = last.op_id;
        self.lsn = last.lsn;
        let write_checkpoint_changed = write_checkpoint != self.write_checkpoint;
        self.write_checkpoint = write_checkpoint;
        if updated.is_empty() && !write_checkpoint_changed && self.pending.is_empty() {
            return Ok(false);
        }
        self.cached = if was_synced && records.iter().all(|r| r.ops.is_some()) {
            let mut merged: HashMap<String, Vec<OpRow>> = HashMap::new();
            for record in records {
                let ops = record.ops.as_ref().expect("checked above");
                for bucket in &updated {
                    if let Some(rows) = ops.get(bucket) {
                        merged
                            .entry(bucket.clone())
                            .or_default()
                            .extend(rows.iter().cloned());
                    }
                }
            }
            Some(merged)
        } else {
            None
        };
        self.pending.extend(updated.iter().cloned());
        self.send_diff(out, &updated, Vec::new()).await?;
        Ok(true)
    }

    /// Resolves the bucket set again (lookups changed, or the history does not reach back);
    /// returns whether lines were sent and data may follow.
    async fn re_resolve(&mut self, out: &mut LineWriter) -> Result<bool, StreamEnd> {
        let resolved: ResolvedCheckpoint = self
            .ctx
            .db
            .checkpoint_for(
                &self.claims_for_db,
                &self.parameters,
                &self.claims.sub,
                self.client_id.as_deref(),
            )
            .await
            .map_err(StreamEnd::from_db)?;
        if resolved.version != self.version {
            return Err(StreamEnd::VersionChanged);
        }
        let limit = self.ctx.limits.max_buckets_per_connection;
        if resolved.buckets.len() > limit {
            return Err(StreamEnd::Error(
                "PSYNC_S2305",
                format!(
                    "too many buckets: {} (limit {limit})",
                    resolved.buckets.len()
                ),
            ));
        }
        let mut new_set = BucketSet::from_resolved(&resolved.buckets);
        let changes = diff(&self.set, &new_set);
        let full = !self.set.knows_streams_of(&new_set);
        if !full {
            new_set.streams = self.set.streams.clone();
        }
        for removed in &changes.removed {
            self.positions.remove(removed);
            self.pending.remove(removed);
        }
        let updated: BTreeSet<String> = changes
            .updated
            .iter()
            .filter(|b| new_set.buckets.get(*b).is_some_and(|i| i.count > 0))
            .cloned()
            .collect();
        self.pending.extend(updated.iter().cloned());
        self.set = new_set;
        self.op_id = resolved.op_id;
        self.lsn = resolved.lsn;
        self.cached = None;
        let write_checkpoint = resolved.write_checkpoint.or(self.write_checkpoint);
        let write_checkpoint_changed = write_checkpoint != self.write_checkpoint;
        self.write_checkpoint = write_checkpoint;
        if full {
            self.send_full_checkpoint(out).await?;
            return Ok(true);
        }
        if changes.is_empty() && !write_checkpoint_changed && self.pending.is_empty() {
            return Ok(false);
        }
        let all_updated: BTreeSet<String> = changes.updated.into_iter().collect();
        self.send_diff(out, &all_updated, changes.removed).await?;
        Ok(true)
    }
}

fn op_id(value: i64) -> OpId {
    OpId(u64::try_from(value).unwrap_or(0))
}

/// Encodes lines and hands them to the HTTP body, waiting while the client is slow.
struct LineWriter {
    tx: mpsc::Sender<Bytes>,
    shutdown: watch::Receiver<bool>,
}

impl LineWriter {
    async fn send(&mut self, line: SyncLine) -> Result<(), StreamEnd> {
        let mut buf = Vec::with_capacity(128);
        encode_line(&line, &mut buf).map_err(|e| StreamEnd::Error("PSYNC_S2001", e.to_string()))?;
        let metrics = metrics::global();
        metrics.line_sent(line.type_name());
        if let SyncLine::Data(data) = &line {
            metrics.ops_sent(data.data.len());
        }
        metrics.bytes_sent(buf.len());
        self.push(Bytes::from(buf)).await
    }

    async fn send_data(&mut self, lines: Vec<ferry_protocol::DataLine>) -> Result<(), StreamEnd> {
        for line in lines {
            self.send(SyncLine::Data(line)).await?;
        }
        Ok(())
    }

    async fn push(&mut self, bytes: Bytes) -> Result<(), StreamEnd> {
        tokio::select! {
            sent = self.tx.send(bytes) => sent.map_err(|_| StreamEnd::ClientGone),
            _ = wait_for_shutdown(&mut self.shutdown) => Err(StreamEnd::Shutdown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_checkpoint_errors_map_to_protocol_codes() {
        let code = |e: DbError| open_error(e).envelope().error.code;
        assert_eq!(code(DbError::NoActiveVersion), "PSYNC_S2302");
        assert_eq!(
            code(DbError::TooManyParameterResults("x".into())),
            "PSYNC_S2305"
        );
        assert_eq!(code(DbError::Unavailable("x".into())), "PSYNC_S2003");
        assert_eq!(code(DbError::Other("x".into())), "PSYNC_S2001");
    }
}
