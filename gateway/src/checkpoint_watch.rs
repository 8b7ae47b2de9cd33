//! The per-process checkpoint watcher: one Postgres connection that `LISTEN`s on
//! `ferry_checkpoint`, reads each new checkpoint's change record (`ferry.checkpoint_changes`)
//! and — when small enough — its new ops (`ferry.bucket_data`) exactly once, and hands them to
//! every stream through a `tokio::sync::watch` channel holding a [`WatchState`].
//!
//! The state carries a bounded, contiguous history of [`ChangeRecord`]s so a stream that was
//! busy sending data can catch up on several checkpoints at once; a stream whose position is
//! older than the history re-resolves its buckets with `ferry.checkpoint_for` instead. After a
//! reconnect the watcher re-reads the latest checkpoint (notifications may have been lost), and
//! it also polls every few seconds as a safety net. Streams themselves are in [`crate::stream`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

use crate::app::wait_for_shutdown;
use crate::db::{BucketState, Db, DbError, LatestCheckpoint, Lsn, OpRow};
use crate::metrics;

/// Records kept in the history.
const MAX_HISTORY: usize = 256;
/// Safety-net poll interval.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Only the newest records keep their shared ops (streams further behind read from Postgres).
const RECORDS_WITH_OPS: usize = 16;
/// Largest total size of one checkpoint's shared ops.
const MAX_SHARED_BYTES: usize = 8 * 1024 * 1024;
/// After a disconnection longer than this, the history is dropped (change records may have
/// been pruned meanwhile) and streams re-resolve.
const MAX_GAP: Duration = Duration::from_secs(10 * 60);

/// A checkpoint's change record, read once per process.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// The op id of the checkpoint before it (of the same version).
    pub prev_op_id: i64,
    /// The position of the checkpoint before it.
    pub prev_lsn: Lsn,
    /// This checkpoint's op id.
    pub op_id: i64,
    /// This checkpoint's position.
    pub lsn: Lsn,
    /// Buckets that received ops, with their checksum and count at this checkpoint.
    pub buckets: HashMap<String, BucketState>,
    /// Whether parameter lookups changed (dynamic buckets must be re-resolved).
    pub lookups_changed: bool,
    /// Write checkpoints that became visible: key → value.
    pub write_checkpoints: HashMap<String, i64>,
    /// The ops of `buckets` in `(prev_op_id, op_id]`, by bucket, when the checkpoint was small
    /// enough to share (see `limits.shared_ops_per_checkpoint`).
    pub ops: Option<Arc<HashMap<String, Vec<OpRow>>>>,
}

/// What the watcher knows, as seen by streams.
#[derive(Debug, Clone, Default)]
pub struct WatchState {
    /// Whether the `LISTEN` connection is up and the state below is current.
    pub connected: bool,
    /// The active version (`None`: none active, or not known yet).
    pub version: Option<i64>,
    /// The newest checkpoint of that version: (op id, position).
    pub latest: Option<(i64, Lsn)>,
    /// The history covers every checkpoint with a position in `(base, latest]`.
    pub base: Option<Lsn>,
    /// Change records, oldest first, contiguous.
    pub history: Vec<Arc<ChangeRecord>>,
}

/// What a stream at a position should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum CatchUp {
    /// Nothing newer than the stream's checkpoint.
    UpToDate,
    /// Apply these records (oldest first).
    Records(Vec<Arc<ChangeRecord>>),
    /// The history does not reach back to the stream's position: re-resolve from scratch.
    Resolve,
    /// The active version is not the stream's any more: end the stream.
    VersionChanged,
}

impl WatchState {
    /// What a stream of `version` at position `lsn` should do.
    pub fn catch_up(&self, version: i64, lsn: Lsn) -> CatchUp {
        if !self.connected {
            return CatchUp::UpToDate;
        }
        if self.version != Some(version) {
            return CatchUp::VersionChanged;
        }
        let Some((_, latest_lsn)) = self.latest else {
            return CatchUp::UpToDate;
        };
        if latest_lsn <= lsn {
            return CatchUp::UpToDate;
        }
        match self.base {
            Some(base) if lsn >= base => CatchUp::Records(
                self.history
                    .iter()
                    .filter(|r| r.lsn > lsn)
                    .cloned()
                    .collect(),
            ),
            _ => CatchUp::Resolve,
        }
    }

    fn reset(&mut self, latest: Option<LatestCheckpoint>) {
        self.version = latest.map(|l| l.version);
        self.latest = latest.map(|l| (l.op_id, l.lsn));
        self.base = latest.map(|l| l.lsn);
        self.history.clear();
    }

    fn push(&mut self, record: ChangeRecord) {
        self.latest = Some((record.op_id, record.lsn));
        self.history.push(Arc::new(record));
        // Keep memory bounded: older records lose their ops.
        if let Some(index) = self.history.len().checked_sub(RECORDS_WITH_OPS + 1) {
            if self.history[index].ops.is_some() {
                let mut stripped = (*self.history[index]).clone();
                stripped.ops = None;
                self.history[index] = Arc::new(stripped);
            }
        }
        if self.history.len() > MAX_HISTORY {
            let drop = self.history.len() - MAX_HISTORY;
            self.history.drain(..drop);
            self.base = self.history.first().map(|r| r.prev_lsn);
        }
    }
}

/// The `ferry_checkpoint` NOTIFY payload (sql/API.md).
#[derive(Debug, Deserialize)]
struct Notification {
    version: i64,
    #[serde(default)]
    active: bool,
}

/// Starts the watcher task; it runs until `shutdown` turns true.
pub fn spawn(
    db: Db,
    shared_ops_limit: u32,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Arc<WatchState>> {
    let (tx, rx) = watch::channel(Arc::new(WatchState::default()));
    tokio::spawn(async move {
        let mut watcher = Watcher {
            db,
            tx,
            state: WatchState::default(),
            shared_ops_limit,
            disconnected_at: None,
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            let outcome = tokio::select! {
                outcome = watcher.run_connection() => outcome,
                _ = wait_for_shutdown(&mut shutdown) => return,
            };
            if watcher.state.connected {
                watcher.disconnected_at = Some(std::time::Instant::now());
            }
            watcher.state.connected = false;
            watcher.publish();
            metrics::global().listener_connected(false);
            match outcome {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint listener disconnected; reconnecting")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = wait_for_shutdown(&mut shutdown) => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    });
    rx
}

struct Watcher {
    db: Db,
    tx: watch::Sender<Arc<WatchState>>,
    state: WatchState,
    shared_ops_limit: u32,
    disconnected_at: Option<std::time::Instant>,
}

impl Watcher {
    fn publish(&self) {
        self.tx.send_replace(Arc::new(self.state.clone()));
    }

    /// One connection's life: connect, LISTEN, catch up, then follow notifications.
    async fn run_connection(&mut self) -> Result<(), DbError> {
        let (client, mut connection) = self.db.connect_listener().await?;
        let (wake_tx, mut wake_rx) = mpsc::channel::<String>(16);
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == Db::CHANNEL => {
                        // A full queue already holds a wake-up; the reader reads everything new.
                        let _ = wake_tx.try_send(n.payload().to_owned());
                    }
                    Ok(_) => {}
                    Err(e) => return e.to_string(),
                }
            }
            "connection closed".to_owned()
        });
        let result = self.follow(&client, &mut wake_rx).await;
        driver.abort();
        result
    }

    async fn follow(
        &mut self,
        client: &tokio_postgres::Client,
        wake_rx: &mut mpsc::Receiver<String>,
    ) -> Result<(), DbError> {
        client.batch_execute(Db::LISTEN_SQL).await?;
        if self
            .disconnected_at
            .take()
            .is_some_and(|t| t.elapsed() > MAX_GAP)
        {
            // Change records of the gap may be gone: start from the latest checkpoint.
            self.state.reset(None);
        }
        self.poll(client).await?;
        self.state.connected = true;
        metrics::global().listener_connected(true);
        tracing::info!(version = ?self.state.version, "checkpoint listener connected");
        self.publish();
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                payload = wake_rx.recv() => {
                    let Some(payload) = payload else {
                        return Err(DbError::Unavailable("listener connection closed".into()));
                    };
                    let mut version_change = self.is_version_change(&payload);
                    while let Ok(more) = wake_rx.try_recv() {
                        version_change |= self.is_version_change(&more);
                    }
                    if version_change {
                        self.poll(client).await?;
                    } else {
                        self.read_changes(client).await?;
                    }
                }
                _ = tick.tick() => self.poll(client).await?,
            }
            self.publish();
        }
    }

    fn is_version_change(&self, payload: &str) -> bool {
        match serde_json::from_str::<Notification>(payload) {
            Ok(n) => n.active && Some(n.version) != self.state.version,
            Err(_) => true,
        }
    }

    /// Re-reads the latest checkpoint; resets on a version change, else reads what is new.
    async fn poll(&mut self, client: &tokio_postgres::Client) -> Result<(), DbError> {
        let latest = Db::latest_checkpoint_on(client).await?;
        match latest {
            Some(l) if Some(l.version) == self.state.version => {
                if self.state.latest.is_none_or(|(_, lsn)| l.lsn > lsn) {
                    self.read_changes(client).await?;
                }
            }
            _ => {
                if latest.map(|l| l.version) != self.state.version {
                    tracing::info!(
                        version = ?latest.map(|l| l.version),
                        previous = ?self.state.version,
                        "active sync rules version"
                    );
                }
                self.state.reset(latest);
            }
        }
        Ok(())
    }

    /// Reads the change records after the newest known checkpoint, and their ops when small.
    async fn read_changes(&mut self, client: &tokio_postgres::Client) -> Result<(), DbError> {
        let (Some(version), Some((mut prev_op_id, mut prev_lsn))) =
            (self.state.version, self.state.latest)
        else {
            return self.poll_reset(client).await;
        };
        let rows = match Db::checkpoint_changes_on(client, version, prev_lsn).await {
            Ok(rows) => rows,
            Err(DbError::VersionNotFound) => return self.poll_reset(client).await,
            Err(e) => return Err(e),
        };
        for row in rows {
            let lag = SystemTime::now()
                .duration_since(row.created_at)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            metrics::global().checkpoint_seen(lag);
            let ops = self
                .read_shared_ops(client, &row.buckets, prev_op_id, row.op_id)
                .await;
            let record = ChangeRecord {
                prev_op_id,
                prev_lsn,
                op_id: row.op_id,
                lsn: row.lsn,
                buckets: row
                    .buckets
                    .into_iter()
                    .map(|b| (b.bucket.clone(), b))
                    .collect(),
                lookups_changed: row.lookups_changed,
                write_checkpoints: row.write_checkpoints,
                ops,
            };
            prev_op_id = record.op_id;
            prev_lsn = record.lsn;
            self.state.push(record);
        }
        Ok(())
    }

    async fn poll_reset(&mut self, client: &tokio_postgres::Client) -> Result<(), DbError> {
        let latest = Db::latest_checkpoint_on(client).await?;
        self.state.reset(latest);
        Ok(())
    }

    async fn read_shared_ops(
        &self,
        client: &tokio_postgres::Client,
        buckets: &[BucketState],
        prev_op_id: i64,
        op_id: i64,
    ) -> Option<Arc<HashMap<String, Vec<OpRow>>>> {
        if buckets.is_empty() || self.shared_ops_limit == 0 {
            return Some(Arc::new(HashMap::new()));
        }
        let names: Vec<String> = buckets.iter().map(|b| b.bucket.clone()).collect();
        let afters = vec![prev_op_id; names.len()];
        let limit = i32::try_from(self.shared_ops_limit).unwrap_or(i32::MAX - 1);
        match Db::bucket_data_on(client, &names, &afters, op_id, limit + 1).await {
            Ok(rows)
                if rows.len() <= limit as usize
                    && rows.iter().map(OpRow::approx_bytes).sum::<usize>() <= MAX_SHARED_BYTES =>
            {
                let mut by_bucket: HashMap<String, Vec<OpRow>> = HashMap::new();
                for row in rows {
                    by_bucket.entry(row.bucket.clone()).or_default().push(row);
                }
                Some(Arc::new(by_bucket))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a checkpoint's ops; streams read them themselves");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(prev: u64, lsn: u64) -> ChangeRecord {
        ChangeRecord {
            prev_op_id: prev as i64,
            prev_lsn: Lsn(prev),
            op_id: lsn as i64,
            lsn: Lsn(lsn),
            buckets: HashMap::new(),
            lookups_changed: false,
            write_checkpoints: HashMap::new(),
            ops: None,
        }
    }

    fn state() -> WatchState {
        let mut state = WatchState {
            connected: true,
            ..WatchState::default()
        };
        state.reset(Some(LatestCheckpoint {
            version: 1,
            op_id: 10,
            lsn: Lsn(10),
            created_at: SystemTime::now(),
        }));
        state.push(record(10, 20));
        state.push(record(20, 30));
        state
    }

    #[test]
    fn stream_at_the_latest_checkpoint_is_up_to_date() {
        assert_eq!(state().catch_up(1, Lsn(30)), CatchUp::UpToDate);
        assert_eq!(state().catch_up(1, Lsn(35)), CatchUp::UpToDate);
    }

    #[test]
    fn stream_behind_gets_the_records_after_its_position() {
        let CatchUp::Records(records) = state().catch_up(1, Lsn(10)) else {
            panic!("expected records")
        };
        assert_eq!(
            records.iter().map(|r| r.op_id).collect::<Vec<_>>(),
            [20, 30]
        );
        let CatchUp::Records(records) = state().catch_up(1, Lsn(20)) else {
            panic!("expected records")
        };
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn stream_older_than_the_history_re_resolves() {
        assert_eq!(state().catch_up(1, Lsn(5)), CatchUp::Resolve);
    }

    #[test]
    fn another_active_version_ends_the_stream() {
        assert_eq!(state().catch_up(2, Lsn(30)), CatchUp::VersionChanged);
        let disconnected = WatchState {
            connected: false,
            ..state()
        };
        assert_eq!(disconnected.catch_up(2, Lsn(30)), CatchUp::UpToDate);
    }

    #[test]
    fn only_recent_records_keep_their_shared_ops() {
        let mut s = state();
        for i in 0..(RECORDS_WITH_OPS as u64 + 5) {
            let mut r = record(30 + i, 31 + i);
            r.ops = Some(Arc::new(HashMap::new()));
            s.push(r);
        }
        let with_ops = s.history.iter().filter(|r| r.ops.is_some()).count();
        assert_eq!(with_ops, RECORDS_WITH_OPS);
        assert!(s.history.last().unwrap().ops.is_some());
    }

    #[test]
    fn history_is_bounded_and_stays_contiguous() {
        let mut s = state();
        for i in 0..(MAX_HISTORY as u64 + 10) {
            s.push(record(30 + i, 31 + i));
        }
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert_eq!(s.base, Some(s.history[0].prev_lsn));
        assert_eq!(s.catch_up(1, Lsn(10)), CatchUp::Resolve);
    }
}
