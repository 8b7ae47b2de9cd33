//! Sync status: [`SyncStatus`] (connection, download progress per priority, last synced, upload
//! queue, last errors), published through a `tokio::sync::watch` channel.
//!
//! The download half ([`DownloadStatus`]) is computed by the sync state machine; the connection
//! and upload halves by the driver and the uploader. Reading the status is
//! [`crate::FerryDatabase::status`] / [`crate::FerryDatabase::status_stream`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_protocol::BucketPriority;
use futures::Stream;
use tokio::sync::watch;

/// Download progress for all buckets of priority number `<= priority` of the checkpoint being
/// downloaded: ops received since the last publication of those buckets, out of those the
/// checkpoint adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityProgress {
    /// The priority (cumulative: this and every higher priority).
    pub priority: BucketPriority,
    /// Ops downloaded.
    pub downloaded: u64,
    /// Ops to download.
    pub total: u64,
}

/// Progress of the checkpoint being downloaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadProgress {
    /// One entry per priority present in the checkpoint, highest priority (lowest number) first;
    /// the last entry covers every bucket.
    pub priorities: Vec<PriorityProgress>,
}

impl DownloadProgress {
    /// `(downloaded, total)` over every bucket.
    pub fn overall(&self) -> (u64, u64) {
        self.priorities
            .last()
            .map_or((0, 0), |p| (p.downloaded, p.total))
    }

    /// `(downloaded, total)` over the buckets of priority number `<= priority`.
    pub fn until_priority(&self, priority: BucketPriority) -> (u64, u64) {
        self.priorities
            .iter()
            .rev()
            .find(|p| p.priority <= priority)
            .map_or((0, 0), |p| (p.downloaded, p.total))
    }

    /// Fraction downloaded overall, `0.0..=1.0` (1.0 when there is nothing to download).
    pub fn fraction(&self) -> f64 {
        let (done, total) = self.overall();
        if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        }
    }
}

/// When a priority (or everything) last synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityStatus {
    /// The priority; `None` for a full sync (every priority).
    pub priority: Option<BucketPriority>,
    /// When its last checkpoint was published.
    pub last_synced_at: SystemTime,
}

/// The download half of the status, maintained by the sync state machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownloadStatus {
    /// A checkpoint is being downloaded.
    pub downloading: bool,
    /// Its progress.
    pub progress: Option<DownloadProgress>,
    /// Last syncs recorded in the database (full and per priority).
    pub priority_status: Vec<PriorityStatus>,
}

impl DownloadStatus {
    /// When the last full sync was published.
    pub fn last_synced_at(&self) -> Option<SystemTime> {
        self.priority_status
            .iter()
            .find(|p| p.priority.is_none())
            .map(|p| p.last_synced_at)
    }
}

/// The state of synchronization, as shown to the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncStatus {
    /// A sync stream is open.
    pub connected: bool,
    /// A sync stream is being opened (or re-opened after an error).
    pub connecting: bool,
    /// A checkpoint is being downloaded.
    pub downloading: bool,
    /// Its progress (ops done / total, per priority).
    pub download_progress: Option<DownloadProgress>,
    /// The uploader is sending local writes.
    pub uploading: bool,
    /// Local transactions waiting in the upload queue (entries, not transactions).
    pub upload_queue_len: u64,
    /// When the last full sync was published (persists across restarts).
    pub last_synced_at: Option<SystemTime>,
    /// Last syncs per priority.
    pub priority_status: Vec<PriorityStatus>,
    /// The last download / connection error, cleared by the next published checkpoint.
    pub download_error: Option<String>,
    /// The last upload error, cleared by the next successful upload; one from asking the
    /// service for a write checkpoint is also cleared once such a request succeeds.
    pub upload_error: Option<String>,
}

impl SyncStatus {
    /// A full checkpoint has been published at least once (now or in an earlier session).
    pub fn has_synced(&self) -> bool {
        self.last_synced_at.is_some()
    }

    /// Every bucket of priority number `<= priority` has been published at least once.
    pub fn has_synced_priority(&self, priority: BucketPriority) -> bool {
        self.priority_status
            .iter()
            .any(|p| p.priority.is_none_or(|q| q >= priority))
    }

    pub(crate) fn apply_download(&mut self, download: &DownloadStatus) {
        self.downloading = download.downloading;
        self.download_progress.clone_from(&download.progress);
        self.priority_status.clone_from(&download.priority_status);
        self.last_synced_at = download.last_synced_at();
    }
}

/// Converts `ferry_sync_state.last_synced_at` (µs since the epoch).
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// Owns the status and tells watchers about changes.
#[derive(Debug)]
pub(crate) struct StatusHub {
    tx: watch::Sender<SyncStatus>,
}

impl StatusHub {
    pub(crate) fn new(initial: SyncStatus) -> StatusHub {
        StatusHub {
            tx: watch::Sender::new(initial),
        }
    }

    /// Changes the status; watchers are woken only if it actually changed.
    pub(crate) fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        self.tx.send_if_modified(|status| {
            let before = status.clone();
            f(status);
            *status != before
        });
    }

    pub(crate) fn get(&self) -> SyncStatus {
        self.tx.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.tx.subscribe()
    }
}

/// A stream of statuses: the current one first, then each change.
pub(crate) fn stream(rx: watch::Receiver<SyncStatus>) -> impl Stream<Item = SyncStatus> {
    futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let status = rx.borrow_and_update().clone();
        Some((status, (rx, false)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> BucketPriority {
        BucketPriority::new(n).unwrap()
    }

    #[test]
    fn progress_is_cumulative_by_priority() {
        let progress = DownloadProgress {
            priorities: vec![
                PriorityProgress {
                    priority: p(1),
                    downloaded: 5,
                    total: 10,
                },
                PriorityProgress {
                    priority: p(3),
                    downloaded: 5,
                    total: 40,
                },
            ],
        };
        assert_eq!(progress.overall(), (5, 40));
        assert_eq!(progress.until_priority(p(1)), (5, 10));
        assert_eq!(progress.until_priority(p(2)), (5, 10));
        assert_eq!(progress.until_priority(p(0)), (0, 0));
        assert!((progress.fraction() - 0.125).abs() < 1e-9);
    }

    #[test]
    fn partial_sync_covers_higher_priorities_only() {
        let status = SyncStatus {
            priority_status: vec![PriorityStatus {
                priority: Some(p(1)),
                last_synced_at: UNIX_EPOCH,
            }],
            ..SyncStatus::default()
        };
        assert!(status.has_synced_priority(p(0)));
        assert!(status.has_synced_priority(p(1)));
        assert!(!status.has_synced_priority(p(2)));
        assert!(!status.has_synced());
    }
}
