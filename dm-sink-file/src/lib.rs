//! # dm-sink-file: a change feed file as a sink, exactly once
//!
//! [`FileSinks`] replicates into a JSON-lines file: one line per row change (op, table, before,
//! after, binlog position and row, GTID set, commit time), one per DDL statement, and the
//! checkpoints in the same file. No database is behind it: it implements `dm_core`'s sink
//! traits ([`Sink`], [`DdlSink`], [`CheckpointStore`], [`SinkFactory`]) on a file, so `dm_syncer::run_with` drives it as it drives MySQL (`examples/change-feed.rs`).
//!
//! ```text
//! syncer worker w --ChangeBatch + WorkerCheckpoint--> FileSink --block: change lines + commit--+
//! syncer DDL      --DdlJob--------------------------> FileSink --block: one ddl line----------+--> writer thread
//! syncer loop     --GlobalCheckpoint----------------> FileSink --block: one checkpoint line---+    write + fsync
//! start: FileSinks::open --> read the feed back, cut a torn tail, flock --> CheckpointStore::load
//! ```
//!
//! How it keeps the sink promises (`dm_core::sink`):
//! - a batch's lines and its worker checkpoint are one block, written with one `write` and one
//!   `fsync` before `apply_batch` returns `Ok`; a block cut short by a crash has no `commit`
//!   line and is cut off at the next start, so the changes and the checkpoint are there
//!   together or not at all;
//! - a global checkpoint is one line, its own block;
//! - a DDL statement is one `ddl` line naming its event's position and its index in the event:
//!   the line is the DDL and its record at once, so [`DdlSink::ddl_ran`]
//!   answers exactly from the feed, for every statement (`EXCHANGE PARTITION` too);
//! - one process writes a feed (an exclusive `flock`, which the kernel releases when the
//!   process dies, kill -9 included).
//!
//! The file sink keeps no tables of its own: it describes the tables of the `catalog` the feed
//! was created with (the upstream's structures, which the syncer seeds its tracker from; stored
//! as the feed's first block, so that every later run describes them the same way and a change
//! goes to the same worker as before a crash) until a DDL names them, and every other table as
//! mirrored (the syncer's own structure stands for it). A damaged feed (a complete line that
//! does not fit its block) is refused, never cut.
//!
//! Memory: the writer's queue holds at most [`QUEUE_CAPACITY`] requests, each one batch, DDL
//! or checkpoint; queued blocks are written together (group commit). Each batch waits in the
//! queue while its worker waits for the answer, so the bytes queued are those of the batches in
//! flight, which the syncer's `max_in_flight_bytes` bounds (64 MiB by default), plus one
//! checkpoint line.
//!
//! Error model: [`FileSinkError`]: a failed write is transient (cut back, retried), a feed that
//! cannot be read back or is locked or belongs to another source is definite, a writer that
//! stopped is a bug.

pub mod error;
mod feed;
pub mod line;

use std::collections::HashMap;
use std::path::PathBuf;

use dm_core::{
    ChangeBatch, CheckpointStore, DdlCheck, DdlJob, DdlSink, Flavor, GlobalCheckpoint, Sink,
    SinkFactory, SinkTable, SourceCheckpoints, TableRef, TableSchema,
};
use tokio::sync::{mpsc, oneshot};

pub use error::FileSinkError;

use feed::{Effect, Feed, Request};

/// How many requests (batches, DDL statements, checkpoints) wait for the writer at most.
pub const QUEUE_CAPACITY: usize = 64;

/// Where the feed is and whose it is.
#[derive(Clone, Debug)]
pub struct FileSinkOptions {
    /// The feed file (created when missing).
    pub path: PathBuf,
    /// The source whose changes it holds (`source-id`): a feed holds one source.
    pub source: String,
    /// The upstream's flavour (to read GTID sets back).
    pub flavor: Flavor,
    /// Tables as the upstream defines them at the start, by their routed names: what
    /// [`Sink::describe_table`] answers for a table until a DDL names it.
    pub catalog: Vec<TableSchema>,
}

/// An open feed: the factory of its sinks (`dm_core::SinkFactory`).
#[derive(Clone, Debug)]
pub struct FileSinks {
    requests: mpsc::Sender<Request>,
    path: String,
}

/// One handle on a feed (the control sink and every worker's are alike).
#[derive(Clone, Debug)]
pub struct FileSink {
    requests: mpsc::Sender<Request>,
    path: String,
}

impl FileSinks {
    /// Opens the feed: locks it, reads it back, cuts a torn tail, and starts its writer thread
    /// (which ends when the last handle is dropped).
    pub async fn open(options: FileSinkOptions) -> Result<FileSinks, FileSinkError> {
        let path = options.path.display().to_string();
        let catalog: HashMap<TableRef, TableSchema> = options
            .catalog
            .into_iter()
            .map(|schema| (schema.table().clone(), schema))
            .collect();
        let (source, flavor, file) = (options.source, options.flavor, options.path);
        let stopped = |reason: String| FileSinkError::Stopped {
            path: path.clone(),
            reason,
        };
        let feed = tokio::task::spawn_blocking(move || Feed::open(&file, &source, flavor, catalog))
            .await
            .map_err(|error| stopped(error.to_string()))??;
        let (requests, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("dm-change-feed".into())
            .spawn(move || feed.serve(receiver))
            .map_err(|error| stopped(error.to_string()))?;
        Ok(FileSinks { requests, path })
    }

    /// A handle on the feed.
    pub fn sink(&self) -> FileSink {
        FileSink {
            requests: self.requests.clone(),
            path: self.path.clone(),
        }
    }
}

impl FileSink {
    fn stopped(&self) -> FileSinkError {
        FileSinkError::Stopped {
            path: self.path.clone(),
            reason: "the writer thread is gone".into(),
        }
    }

    /// Sends a request and waits for its answer.
    async fn ask<Answer>(
        &self,
        request: impl FnOnce(oneshot::Sender<Answer>) -> Request,
    ) -> Result<Answer, FileSinkError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| self.stopped())?;
        answer.await.map_err(|_| self.stopped())
    }

    async fn append(&self, block: Vec<u8>, effect: Effect) -> Result<(), FileSinkError> {
        self.ask(|reply| Request::Append {
            block,
            effect,
            reply,
        })
        .await?
    }
}

impl Sink for FileSink {
    type Error = FileSinkError;

    /// The batch's change lines and its `commit` line, one block.
    async fn apply_batch(&mut self, batch: &ChangeBatch) -> Result<(), FileSinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut block = Vec::with_capacity(batch.len() * 160 + 160);
        for change in batch.changes() {
            line::push_change(&mut block, change);
        }
        line::push_commit(&mut block, batch.len(), batch.checkpoint());
        self.append(block, Effect::Commit(batch.checkpoint().cloned()))
            .await
    }

    async fn describe_table(&mut self, table: &TableRef) -> Result<SinkTable, FileSinkError> {
        let table = table.clone();
        self.ask(|reply| Request::Describe { table, reply }).await
    }
}

impl DdlSink for FileSink {
    type Error = FileSinkError;

    /// Nothing: the feed's `ddl` line is the DDL's own record.
    async fn ddl_before(
        &mut self,
        _ddl: &DdlJob,
    ) -> Result<Vec<(String, Option<String>)>, FileSinkError> {
        Ok(Vec::new())
    }

    async fn apply_ddl(&mut self, ddl: &DdlJob) -> Result<(), FileSinkError> {
        let line = line::ddl_line(ddl);
        let mut block = Vec::new();
        line::push_ddl(&mut block, &line);
        let effect = Effect::Ddl {
            key: (line.position.clone(), line.suffix, line.statement),
            tables: line.tables(),
        };
        self.append(block, effect).await
    }

    async fn ddl_ran(
        &mut self,
        ddl: &DdlJob,
        _before: &[(String, Option<String>)],
    ) -> Result<DdlCheck, FileSinkError> {
        let key = (
            ddl.location.position.to_string(),
            ddl.location.suffix,
            ddl.index,
        );
        let ran = self.ask(|reply| Request::DdlRan { key, reply }).await?;
        Ok(if ran { DdlCheck::Ran } else { DdlCheck::NotRun })
    }
}

impl CheckpointStore for FileSink {
    type Error = FileSinkError;

    async fn load(&mut self) -> Result<SourceCheckpoints, FileSinkError> {
        self.ask(|reply| Request::Load { reply }).await
    }

    /// One `checkpoint` line, its own block.
    async fn save(&mut self, checkpoint: &GlobalCheckpoint) -> Result<(), FileSinkError> {
        let mut block = Vec::new();
        line::push_checkpoint(&mut block, checkpoint);
        self.append(block, Effect::Checkpoint(Box::new(checkpoint.clone())))
            .await
    }
}

impl SinkFactory for FileSinks {
    type Error = FileSinkError;
    type Control = FileSink;
    type Worker = FileSink;

    async fn open_control(&mut self) -> Result<FileSink, FileSinkError> {
        Ok(self.sink())
    }

    async fn open_worker(
        &mut self,
        _worker: usize,
        _workers: usize,
    ) -> Result<FileSink, FileSinkError> {
        Ok(self.sink())
    }
}

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use std::io::Write;

    use dm_core::testsuite::{
        batch_commits_with_its_checkpoint, ddl_is_told_once_it_ran, global_checkpoint_round_trips,
        suite_insert, suite_location, suite_table,
    };
    use dm_core::{ApplyMode, WorkerCheckpoint};

    use super::*;

    fn options(path: PathBuf) -> FileSinkOptions {
        FileSinkOptions {
            path,
            source: "suite-source".into(),
            flavor: Flavor::MariaDb,
            catalog: vec![(*suite_table()).clone()],
        }
    }

    #[tokio::test]
    async fn the_feed_passes_the_conformance_checks() {
        let directory = tempfile::tempdir().expect("temp dir");
        let mut sinks = FileSinks::open(options(directory.path().join("a.jsonl")))
            .await
            .expect("open");
        batch_commits_with_its_checkpoint(&mut sinks).await;
        let mut sinks = FileSinks::open(options(directory.path().join("b.jsonl")))
            .await
            .expect("open");
        global_checkpoint_round_trips(&mut sinks).await;
        let mut sinks = FileSinks::open(options(directory.path().join("c.jsonl")))
            .await
            .expect("open");
        ddl_is_told_once_it_ran(&mut sinks).await;
    }

    /// Opens the feed once the previous writer thread (ending with its last handle) let go.
    async fn reopen(path: &std::path::Path) -> FileSinks {
        for _ in 0..500 {
            match FileSinks::open(options(path.to_owned())).await {
                Ok(sinks) => return sinks,
                Err(FileSinkError::Locked { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await
                }
                Err(error) => panic!("reopen: {error}"),
            }
        }
        panic!("the feed stays locked")
    }

    #[tokio::test]
    async fn a_torn_block_is_cut_off_and_the_rest_reads_back() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("feed.jsonl");
        let checkpoint = WorkerCheckpoint {
            source: "suite-source".into(),
            worker: 0,
            workers: 1,
            location: suite_location(100),
            row: 0,
            replayed: None,
        };
        {
            let sinks = FileSinks::open(options(path.clone())).await.expect("open");
            let mut batch = ChangeBatch::of(vec![suite_insert(1, 100)], ApplyMode::Exact);
            batch.set_checkpoint(checkpoint.clone());
            sinks.sink().apply_batch(&batch).await.expect("batch");
            assert!(
                matches!(
                    FileSinks::open(options(path.clone())).await,
                    Err(FileSinkError::Locked { .. })
                ),
                "one writer per feed"
            );
        }
        drop(reopen(&path).await);
        let complete = std::fs::metadata(&path).expect("feed").len();
        // A crash in the middle of the next block: a change line and half a commit line.
        let mut torn = Vec::new();
        line::push_change(&mut torn, &suite_insert(2, 200));
        torn.extend_from_slice(b"{\"op\":\"commit\",\"chan");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(&torn))
            .expect("write");
        let sinks = reopen(&path).await;
        assert_eq!(
            std::fs::metadata(&path).expect("feed").len(),
            complete,
            "the torn block is cut off"
        );
        let stored = sinks.sink().load().await.expect("load");
        assert_eq!(stored.workers, vec![checkpoint]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|line| line.contains("\"op\":\"insert\""))
        );
    }

    #[tokio::test]
    async fn complete_lines_that_do_not_fit_are_damage_not_a_torn_block() {
        let directory = tempfile::tempdir().expect("temp dir");
        let checkpoint = GlobalCheckpoint::new("suite-source", suite_location(100));
        // A change line, then a complete checkpoint line: no write cut short leaves that.
        let path = directory.path().join("a.jsonl");
        let mut bytes = Vec::new();
        line::push_change(&mut bytes, &suite_insert(1, 100));
        line::push_checkpoint(&mut bytes, &checkpoint);
        std::fs::write(&path, &bytes).expect("write");
        let error = FileSinks::open(options(path.clone()))
            .await
            .expect_err("damaged");
        assert!(matches!(error, FileSinkError::Damaged { .. }), "{error}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "nothing was cut from a damaged feed"
        );
        // A commit line counting other changes than its block holds.
        let path = directory.path().join("b.jsonl");
        let mut bytes = Vec::new();
        line::push_change(&mut bytes, &suite_insert(1, 100));
        line::push_commit(&mut bytes, 2, None);
        std::fs::write(&path, &bytes).expect("write");
        let error = FileSinks::open(options(path)).await.expect_err("damaged");
        assert!(matches!(error, FileSinkError::Damaged { .. }), "{error}");
    }

    #[tokio::test]
    async fn tables_are_described_from_the_catalog_the_feed_was_created_with() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("feed.jsonl");
        let table = suite_table();
        drop(
            FileSinks::open(options(path.clone()))
                .await
                .expect("create"),
        );
        // A later run reads a catalog in which the table changed (a DDL after the checkpoint
        // already ran upstream): the feed keeps describing it as it was created.
        let changed = TableSchema::new(
            table.table().clone(),
            table.columns()[..1].to_vec(),
            Vec::new(),
        )
        .expect("changed table");
        let mut later = options(path.clone());
        later.catalog = vec![changed];
        let sinks = loop {
            match FileSinks::open(later.clone()).await {
                Ok(sinks) => break sinks,
                Err(FileSinkError::Locked { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await
                }
                Err(error) => panic!("reopen: {error}"),
            }
        };
        let described = sinks
            .sink()
            .describe_table(table.table())
            .await
            .expect("describe");
        assert_eq!(described, SinkTable::Defined((*table).clone()));
    }

    #[tokio::test]
    async fn damage_before_a_complete_block_is_refused() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("feed.jsonl");
        let mut bytes = b"not json\n".to_vec();
        line::push_commit(&mut bytes, 0, None);
        std::fs::write(&path, bytes).expect("write");
        let error = FileSinks::open(options(path)).await.expect_err("damaged");
        assert!(
            matches!(error, FileSinkError::Damaged { offset: 0, .. }),
            "{error}"
        );
    }
}
