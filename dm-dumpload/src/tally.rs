//! Per-table counts behind the dump's and the load's logs: the first chunk of a table taken
//! logs the table's start, the last one finished logs its end with the rows and bytes of all
//! its chunks; the totals make the run's last log. Chunks of one table run on several
//! connections at once, so the counts are atomic.
//!
//! Logs (`tracing`): per run at info, per table at debug. Errors are not logged here: they are
//! returned, and logged once where the subtask handles them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The counts of one table.
#[derive(Debug, Default)]
struct TableTally {
    /// Chunks of the table still to finish in this run.
    chunks_left: AtomicU64,
    /// Whether a chunk of the table was taken.
    started: AtomicBool,
    rows: AtomicU64,
    bytes: AtomicU64,
}

/// The counts of every table of a dump or a load, by the table's index in the dump header.
#[derive(Debug)]
pub(crate) struct Tallies {
    tables: Vec<TableTally>,
}

impl Tallies {
    /// Counts for tables with these numbers of chunks to do in this run.
    pub(crate) fn new(chunks: impl IntoIterator<Item = u64>) -> Self {
        Tallies {
            tables: chunks
                .into_iter()
                .map(|chunks| TableTally {
                    chunks_left: AtomicU64::new(chunks),
                    ..TableTally::default()
                })
                .collect(),
        }
    }

    /// A chunk of `table` is taken: true when it is the table's first.
    pub(crate) fn start(&self, table: usize) -> bool {
        self.tables
            .get(table)
            .is_some_and(|tally| !tally.started.swap(true, Ordering::Relaxed))
    }

    /// A chunk of `table` is finished with `rows` and `bytes`: the table's totals when it was
    /// the table's last chunk.
    pub(crate) fn finish(&self, table: usize, rows: u64, bytes: u64) -> Option<(u64, u64)> {
        let tally = self.tables.get(table)?;
        let rows = tally.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let bytes = tally.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let left = tally.chunks_left.fetch_sub(1, Ordering::Relaxed);
        (left == 1).then_some((rows, bytes))
    }

    /// Tables with chunks in this run, and the rows and bytes of the chunks finished.
    pub(crate) fn totals(&self) -> (usize, u64, u64) {
        self.tables
            .iter()
            .fold((0, 0, 0), |(tables, rows, bytes), tally| {
                (
                    tables + usize::from(tally.started.load(Ordering::Relaxed)),
                    rows + tally.rows.load(Ordering::Relaxed),
                    bytes + tally.bytes.load(Ordering::Relaxed),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_starts_once_and_finishes_with_its_last_chunk() {
        let tallies = Tallies::new([2, 1]);
        assert!(tallies.start(0));
        assert!(!tallies.start(0));
        assert_eq!(tallies.finish(0, 10, 100), None);
        assert!(tallies.start(1));
        assert_eq!(tallies.finish(1, 1, 5), Some((1, 5)));
        assert_eq!(tallies.finish(0, 5, 50), Some((15, 150)));
        assert_eq!(tallies.totals(), (2, 16, 155));
        assert!(!tallies.start(7));
        assert_eq!(tallies.finish(7, 1, 1), None);
    }
}
