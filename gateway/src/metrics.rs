//! The process's Prometheus metrics: plain atomics, rendered in the text exposition format by
//! [`Metrics::render`] (served at `GET /metrics` by [`crate::routes::metrics`]).
//!
//! Hand-rolled rather than a metrics crate: a dozen series with fixed label sets (line types,
//! `PSYNC_*` codes) need no registry, and the exposition format is a few lines of text. One
//! process-wide instance, [`global`], because metrics are per process by nature.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Line types counted separately (PROTOCOL.md §3.3).
pub const LINE_TYPES: [&str; 6] = [
    "checkpoint",
    "checkpoint_diff",
    "data",
    "checkpoint_complete",
    "partial_checkpoint_complete",
    "token_expires_in",
];

/// Upper bounds (seconds) of the checkpoint lag histogram.
const LAG_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// The metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    streams_open: AtomicI64,
    streams_started: AtomicU64,
    lines_sent: [AtomicU64; 6],
    bytes_sent: AtomicU64,
    ops_sent: AtomicU64,
    checkpoints_seen: AtomicU64,
    lag_buckets: [AtomicU64; 10],
    lag_count: AtomicU64,
    lag_sum_micros: AtomicU64,
    listener_connected: AtomicI64,
    errors: Mutex<BTreeMap<String, u64>>,
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::default)
}

/// Decrements the open-stream gauge when dropped.
#[derive(Debug)]
pub struct OpenStreamGuard(&'static Metrics);

impl Drop for OpenStreamGuard {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a stream as open until the guard is dropped.
    pub fn stream_opened(&'static self) -> OpenStreamGuard {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        self.streams_started.fetch_add(1, Ordering::Relaxed);
        OpenStreamGuard(self)
    }

    /// Counts one line of type `line_type`.
    pub fn line_sent(&self, line_type: &str) {
        if let Some(i) = LINE_TYPES.iter().position(|t| *t == line_type) {
            self.lines_sent[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts bytes written to streams.
    pub fn bytes_sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts ops sent in data lines.
    pub fn ops_sent(&self, ops: usize) {
        self.ops_sent.fetch_add(ops as u64, Ordering::Relaxed);
    }

    /// Records a checkpoint seen by the listener, `lag_secs` after it was committed.
    pub fn checkpoint_seen(&self, lag_secs: f64) {
        self.checkpoints_seen.fetch_add(1, Ordering::Relaxed);
        let lag = lag_secs.max(0.0);
        for (i, bound) in LAG_BUCKETS.iter().enumerate() {
            if lag <= *bound {
                self.lag_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.lag_count.fetch_add(1, Ordering::Relaxed);
        self.lag_sum_micros
            .fetch_add((lag * 1e6) as u64, Ordering::Relaxed);
    }

    /// Sets whether the LISTEN connection is up.
    pub fn listener_connected(&self, connected: bool) {
        self.listener_connected
            .store(i64::from(connected), Ordering::Relaxed);
    }

    /// Counts an error by its code (`PSYNC_S2103`, ...).
    pub fn error(&self, code: &str) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(code.to_owned()).or_default() += 1;
    }

    /// The number of open streams.
    pub fn open_streams(&self) -> i64 {
        self.streams_open.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of all metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP ferry_gateway_streams_open Sync streams currently open."
        );
        let _ = writeln!(out, "# TYPE ferry_gateway_streams_open gauge");
        let _ = writeln!(out, "ferry_gateway_streams_open {}", self.open_streams());
        let _ = writeln!(
            out,
            "# HELP ferry_gateway_streams_total Sync streams started."
        );
        let _ = writeln!(out, "# TYPE ferry_gateway_streams_total counter");
        let _ = writeln!(
            out,
            "ferry_gateway_streams_total {}",
            load(&self.streams_started)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_gateway_lines_sent_total Sync stream lines sent, by type."
        );
        let _ = writeln!(out, "# TYPE ferry_gateway_lines_sent_total counter");
        for (i, t) in LINE_TYPES.iter().enumerate() {
            let _ = writeln!(
                out,
                "ferry_gateway_lines_sent_total{{type=\"{t}\"}} {}",
                load(&self.lines_sent[i])
            );
        }
        let _ = writeln!(
            out,
            "# HELP ferry_gateway_bytes_sent_total Bytes of sync stream lines sent."
        );
        let _ = writeln!(out, "# TYPE ferry_gateway_bytes_sent_total counter");
        let _ = writeln!(
            out,
            "ferry_gateway_bytes_sent_total {}",
            load(&self.bytes_sent)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_gateway_ops_sent_total Ops sent in data lines."
        );
        let _ = writeln!(out, "# TYPE ferry_gateway_ops_sent_total counter");
        let _ = writeln!(out, "ferry_gateway_ops_sent_total {}", load(&self.ops_sent));
        let _ = writeln!(out, "# HELP ferry_gateway_checkpoints_seen_total Checkpoints announced by Postgres and read by this process.");
        let _ = writeln!(out, "# TYPE ferry_gateway_checkpoints_seen_total counter");
        let _ = writeln!(
            out,
            "ferry_gateway_checkpoints_seen_total {}",
            load(&self.checkpoints_seen)
        );
        let _ = writeln!(out, "# HELP ferry_gateway_checkpoint_lag_seconds Time from a checkpoint's commit until this process read it.");
        let _ = writeln!(out, "# TYPE ferry_gateway_checkpoint_lag_seconds histogram");
        for (i, bound) in LAG_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "ferry_gateway_checkpoint_lag_seconds_bucket{{le=\"{bound}\"}} {}",
                load(&self.lag_buckets[i])
            );
        }
        let count = load(&self.lag_count);
        let _ = writeln!(
            out,
            "ferry_gateway_checkpoint_lag_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "ferry_gateway_checkpoint_lag_seconds_sum {}",
            load(&self.lag_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "ferry_gateway_checkpoint_lag_seconds_count {count}");
        let _ = writeln!(out, "# HELP ferry_gateway_listener_connected Whether the LISTEN connection to Postgres is up.");
        let _ = writeln!(out, "# TYPE ferry_gateway_listener_connected gauge");
        let _ = writeln!(
            out,
            "ferry_gateway_listener_connected {}",
            self.listener_connected.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_gateway_errors_total Errors answered or ending streams, by code."
        );
        let _ = writeln!(out, "# TYPE ferry_gateway_errors_total counter");
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        for (code, n) in errors.iter() {
            let _ = writeln!(
                out,
                "ferry_gateway_errors_total{{code=\"{}\"}} {n}",
                escape(code)
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_series_in_text_format() {
        let m = Metrics::default();
        m.line_sent("data");
        m.line_sent("data");
        m.bytes_sent(120);
        m.checkpoint_seen(0.02);
        m.error("PSYNC_S2103");
        let text = m.render();
        assert!(
            text.contains("ferry_gateway_lines_sent_total{type=\"data\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("ferry_gateway_bytes_sent_total 120\n"));
        assert!(text.contains("ferry_gateway_checkpoint_lag_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("ferry_gateway_checkpoint_lag_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("ferry_gateway_checkpoint_lag_seconds_count 1\n"));
        assert!(text.contains("ferry_gateway_errors_total{code=\"PSYNC_S2103\"} 1\n"));
        assert!(text.contains("# TYPE ferry_gateway_streams_open gauge\n"));
    }

    #[test]
    fn open_stream_guard_decrements_on_drop() {
        let m = global();
        let before = m.open_streams();
        let guard = m.stream_opened();
        assert_eq!(m.open_streams(), before + 1);
        drop(guard);
        assert_eq!(m.open_streams(), before);
    }
}
