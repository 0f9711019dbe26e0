//! Progress of a dump or a load: counters the stages bump as chunks go by, read as a status
//! struct (rows, bytes, percent, rate, ETA) by `query-status` or a progress bar.
//!
//! Invariant: counters only grow; `percent` reaches 100 only when every chunk is done.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Shared counters of one dump or load.
#[derive(Debug)]
pub struct Progress {
    started: Mutex<Option<Instant>>,
    chunks_total: AtomicU64,
    chunks_done: AtomicU64,
    chunks_done_before: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    bytes_total: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// The progress at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressStatus {
    /// Chunks in the dump.
    pub chunks_total: u64,
    /// Chunks finished (including those finished by an earlier, interrupted run).
    pub chunks_done: u64,
    /// Rows finished by this run.
    pub rows: u64,
    /// Statement bytes finished by this run.
    pub bytes: u64,
    /// Bytes expected in all (exact for a dump directory, estimated from the upstream's table
    /// sizes for a dump or a direct stream).
    pub bytes_total: u64,
    /// 0 to 100.
    pub percent: f64,
    /// Bytes per second since the start.
    pub bytes_per_second: u64,
    /// Seconds left at the current rate, when it can be told.
    pub eta_seconds: Option<u64>,
}

impl Progress {
    /// Counters at zero.
    pub fn new() -> Self {
        Progress {
            started: Mutex::new(None),
            chunks_total: AtomicU64::new(0),
            chunks_done: AtomicU64::new(0),
            chunks_done_before: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
        }
    }

    /// The work is known: `chunks` in all, `done_before` finished by an earlier run, about
    /// `bytes` to move.
    pub fn begin(&self, chunks: u64, done_before: u64, bytes: u64) {
        if let Ok(mut started) = self.started.lock() {
            started.get_or_insert_with(Instant::now);
        }
        self.chunks_total.store(chunks, Ordering::Relaxed);
        self.chunks_done_before
            .store(done_before, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    /// `bytes` more moved.
    pub fn add_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A chunk of `rows` rows finished.
    pub fn chunk_done(&self, rows: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.chunks_done.fetch_add(1, Ordering::Relaxed);
    }

    /// The status now.
    pub fn status(&self) -> ProgressStatus {
        let chunks_total = self.chunks_total.load(Ordering::Relaxed);
        let chunks_done = self.chunks_done.load(Ordering::Relaxed)
            + self.chunks_done_before.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let bytes_total = self.bytes_total.load(Ordering::Relaxed);
        let elapsed = self
            .started
            .lock()
            .ok()
            .and_then(|started| started.map(|started| started.elapsed().as_secs_f64()))
            .unwrap_or(0.0);
        let by_chunks = if chunks_total == 0 {
            0.0
        } else {
            chunks_done as f64 / chunks_total as f64
        };
        let fraction = if chunks_total > 0 && chunks_done >= chunks_total {
            1.0
        } else if bytes_total > 0 {
            (bytes as f64 / bytes_total as f64)
                .max(by_chunks)
                .min(0.999)
        } else {
            by_chunks.min(0.999)
        };
        let bytes_per_second = if elapsed > 0.0 {
            (bytes as f64 / elapsed) as u64
        } else {
            0
        };
        let eta_seconds = (fraction > 0.0 && fraction < 1.0 && elapsed > 0.0)
            .then(|| (elapsed * (1.0 - fraction) / fraction) as u64);
        ProgressStatus {
            chunks_total,
            chunks_done,
            rows: self.rows.load(Ordering::Relaxed),
            bytes,
            bytes_total,
            percent: fraction * 100.0,
            bytes_per_second,
            eta_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_reaches_100_only_when_every_chunk_is_done() {
        let progress = Progress::new();
        progress.begin(4, 1, 1000);
        progress.add_bytes(5000);
        progress.chunk_done(10);
        let status = progress.status();
        assert_eq!(status.chunks_done, 2);
        assert!(status.percent < 100.0, "{status:?}");
        progress.chunk_done(10);
        progress.chunk_done(10);
        let status = progress.status();
        assert_eq!(status.percent, 100.0);
        assert_eq!(status.rows, 30);
        assert_eq!(status.eta_seconds, None);
    }
}
