//! The feed file: read back at start (a torn tail cut off), then written by one thread that
//! owns it, one block per request, each block one write followed by one fsync.
//!
//! ```text
//! open: flock(exclusive) -> read lines: change* commit | ddl | checkpoint = one block
//!       -> truncate after the last complete block -> FeedState (checkpoints, DDL marks)
//! FileSink handles --Request (bounded channel)--> writer thread: blocks queued together
//!       are written with one write + one fsync (group commit), then applied to FeedState,
//!       then acknowledged
//! ```
//!
//! Invariants: the file always ends with a complete block once a write returned `Ok`; a failed
//! write is cut off again (`set_len` to the last complete block) before anything else is
//! written, and when even that fails the writer stops; state is changed only after the fsync,
//! so what a handle reads back is durable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use dm_core::{
    Flavor, GlobalCheckpoint, SinkTable, SourceCheckpoints, TableCheckpoint, TableRef, TableSchema,
    TableSnapshot, WorkerCheckpoint,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::FileSinkError;
use crate::line::{Parsed, parse};

/// What writing a block changes once it is durable.
pub(crate) enum Effect {
    /// A batch: its worker checkpoint, if any.
    Commit(Option<WorkerCheckpoint>),
    /// A DDL statement ran: `(position, statement index)` and the tables it acts on.
    Ddl {
        key: (String, u32, usize),
        tables: Vec<TableRef>,
    },
    /// A global checkpoint.
    Checkpoint(Box<GlobalCheckpoint>),
    /// The catalog the feed was created with.
    Catalog(Vec<TableSchema>),
}

/// What a handle asks the writer.
pub(crate) enum Request {
    /// Write `block` (complete lines) durably, then apply `effect`.
    Append {
        block: Vec<u8>,
        effect: Effect,
        reply: oneshot::Sender<Result<(), FileSinkError>>,
    },
    /// The stored checkpoints.
    Load {
        reply: oneshot::Sender<SourceCheckpoints>,
    },
    /// Whether a DDL statement's line is in the feed.
    DdlRan {
        key: (String, u32, usize),
        reply: oneshot::Sender<bool>,
    },
    /// What the sink knows of a table.
    Describe {
        table: TableRef,
        reply: oneshot::Sender<SinkTable>,
    },
}

/// What the feed holds, as far as the sink needs it.
#[derive(Default)]
pub(crate) struct FeedState {
    workers: BTreeMap<u32, WorkerCheckpoint>,
    global: Option<GlobalCheckpoint>,
    tables: BTreeMap<String, (TableRef, TableSnapshot)>,
    ddls: HashSet<(String, u32, usize)>,
    /// Tables a DDL line names: described as mirrored from then on.
    touched: HashSet<TableRef>,
    /// The upstream structures the feed was opened with, by routed name.
    catalog: HashMap<TableRef, TableSchema>,
}

impl FeedState {
    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Commit(Some(checkpoint)) => {
                self.workers.insert(checkpoint.worker, checkpoint);
            }
            Effect::Commit(None) => {}
            Effect::Ddl { key, tables } => {
                self.ddls.insert(key);
                self.touched.extend(tables);
            }
            Effect::Catalog(tables) => {
                self.catalog = tables
                    .into_iter()
                    .map(|schema| (schema.table().clone(), schema))
                    .collect();
            }
            Effect::Checkpoint(checkpoint) => {
                let mut checkpoint = *checkpoint;
                for TableCheckpoint { table, snapshot } in std::mem::take(&mut checkpoint.tables) {
                    match snapshot {
                        Some(snapshot) => {
                            self.tables.insert(table.quoted(), (table, snapshot));
                        }
                        None => {
                            self.tables.remove(&table.quoted());
                        }
                    }
                }
                self.global = Some(checkpoint);
            }
        }
    }

    fn load(&self) -> SourceCheckpoints {
        SourceCheckpoints {
            global: self.global.clone().map(|mut global| {
                global.tables = self
                    .tables
                    .values()
                    .map(|(table, snapshot)| TableCheckpoint {
                        table: table.clone(),
                        snapshot: Some(snapshot.clone()),
                    })
                    .collect();
                global
            }),
            workers: self.workers.values().cloned().collect(),
        }
    }

    fn describe(&self, table: &TableRef) -> SinkTable {
        match self.catalog.get(table) {
            Some(schema) if !self.touched.contains(table) => SinkTable::Defined(schema.clone()),
            _ => SinkTable::Mirrored,
        }
    }
}

/// The open feed: the file, its committed length and what it holds.
pub(crate) struct Feed {
    path: PathBuf,
    file: File,
    /// The length of the complete blocks: where the next block goes.
    committed: u64,
    state: FeedState,
}

fn io_error(path: &Path, what: &str, error: std::io::Error) -> FileSinkError {
    FileSinkError::Io {
        path: path.display().to_string(),
        reason: format!("{what}: {error}"),
    }
}

impl Feed {
    /// Opens (or creates) the feed at `path`, locks it, reads it back and cuts a torn tail.
    pub(crate) fn open(
        path: &Path,
        source: &str,
        flavor: Flavor,
        catalog: HashMap<TableRef, TableSchema>,
    ) -> Result<Feed, FileSinkError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| io_error(path, "opening", error))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| FileSinkError::Locked {
                path: path.display().to_string(),
            },
        )?;
        let damaged = |offset: u64, reason: String| FileSinkError::Damaged {
            path: path.display().to_string(),
            offset,
            reason,
        };
        let mut state = FeedState::default();
        let mut stored_catalog = false;
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        let mut offset = 0u64;
        let mut committed = 0u64;
        let mut pending_changes = 0u64;
        // Where the first line that is not part of a complete block starts, and why.
        let mut torn: Option<(u64, String)> = None;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|error| io_error(path, "reading", error))?;
            if read == 0 {
                break;
            }
            let start = offset;
            offset += read as u64;
            let complete = line.last() == Some(&b'\n');
            let parsed = if complete {
                parse(&line[..line.len() - 1])
            } else {
                Err("a line without its line break".to_owned())
            };
            if let Some((at, reason)) = &torn {
                // Past a torn tail nothing may complete a block: that would be damage, not a
                // write cut short.
                if matches!(
                    parsed,
                    Ok(Parsed::Commit(_)
                        | Parsed::Ddl(_)
                        | Parsed::Checkpoint(_)
                        | Parsed::Catalog(_))
                ) {
                    return Err(damaged(*at, reason.clone()));
                }
                continue;
            }
            let effect = match parsed {
                Err(reason) => {
                    torn = Some((start, reason));
                    continue;
                }
                Ok(Parsed::Change) => {
                    pending_changes += 1;
                    continue;
                }
                Ok(Parsed::Commit(commit)) if commit.changes == pending_changes => Effect::Commit(
                    commit
                        .worker(flavor)
                        .map_err(|reason| damaged(start, reason))?,
                ),
                // A write cut short leaves a prefix of its block, never a complete line that
                // does not fit: these are damage, and refused (cutting them could drop a
                // checkpoint or a DDL's record that was acknowledged).
                Ok(Parsed::Commit(commit)) => {
                    return Err(damaged(
                        start,
                        format!(
                            "a commit of {} changes after {pending_changes} change lines",
                            commit.changes
                        ),
                    ));
                }
                Ok(_) if pending_changes > 0 => {
                    return Err(damaged(
                        start,
                        "change lines without their commit line".to_owned(),
                    ));
                }
                Ok(Parsed::Catalog(_)) if committed > 0 => {
                    return Err(damaged(
                        start,
                        "a catalog that is not the first block".to_owned(),
                    ));
                }
                Ok(Parsed::Catalog(line)) => {
                    stored_catalog = true;
                    Effect::Catalog(line.tables)
                }
                Ok(Parsed::Ddl(ddl)) => Effect::Ddl {
                    key: (ddl.position.clone(), ddl.suffix, ddl.statement),
                    tables: ddl.tables(),
                },
                Ok(Parsed::Checkpoint(checkpoint)) => Effect::Checkpoint(Box::new(
                    checkpoint
                        .checkpoint(flavor)
                        .map_err(|reason| damaged(start, reason))?,
                )),
            };
            state.apply(effect);
            pending_changes = 0;
            committed = offset;
        }
        drop(reader);
        let stored = state
            .global
            .as_ref()
            .map(|global| &global.source)
            .into_iter()
            .chain(state.workers.values().map(|worker| &worker.source))
            .find(|stored| *stored != source);
        if let Some(stored) = stored {
            return Err(FileSinkError::OtherSource {
                path: path.display().to_string(),
                stored: stored.clone(),
                expected: source.to_owned(),
            });
        }
        let mut feed = Feed {
            path: path.to_owned(),
            file,
            committed,
            state,
        };
        if offset > committed {
            // A block cut short by a crash: it was never acknowledged.
            feed.cut()?;
        }
        feed.file
            .seek(SeekFrom::Start(committed))
            .map_err(|error| io_error(path, "seeking", error))?;
        if !stored_catalog {
            let tables: Vec<TableSchema> = catalog.into_values().collect();
            if feed.committed == 0 {
                // A new feed: its catalog is its first block, so that every later run describes
                // the tables the same way.
                feed.write(&crate::line::catalog_block(&tables))?;
                // The file's name too is durable before anything is acknowledged.
                if let Some(directory) = path
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                {
                    File::open(directory)
                        .and_then(|directory| directory.sync_all())
                        .map_err(|error| io_error(path, "syncing its directory", error))?;
                }
            }
            // (A feed an earlier version wrote has no catalog block: the caller's stands in.)
            feed.state.apply(Effect::Catalog(tables));
        }
        Ok(feed)
    }

    /// Cuts the file back to its complete blocks.
    fn cut(&mut self) -> Result<(), FileSinkError> {
        self.file
            .set_len(self.committed)
            .and_then(|()| self.file.sync_data())
            .and_then(|()| self.file.seek(SeekFrom::Start(self.committed)).map(|_| ()))
            .map_err(|error| io_error(&self.path, "cutting a torn block", error))
    }

    /// Writes `block` with one write and one fsync.
    fn write(&mut self, block: &[u8]) -> Result<(), FileSinkError> {
        self.file
            .write_all(block)
            .and_then(|()| self.file.sync_data())
            .map_err(|error| io_error(&self.path, "writing", error))?;
        self.committed += block.len() as u64;
        Ok(())
    }

    /// Serves `requests` until every handle is gone. Appends queued together are written as
    /// one block (group commit) and acknowledged after its fsync.
    pub(crate) fn serve(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut next = None;
        let mut broken: Option<String> = None;
        loop {
            let Some(request) = next.take().or_else(|| requests.blocking_recv()) else {
                return;
            };
            match request {
                Request::Append {
                    block,
                    effect,
                    reply,
                } => {
                    let mut block = block;
                    let mut appends = vec![(effect, reply)];
                    // Everything already queued goes in the same write.
                    while let Ok(queued) = requests.try_recv() {
                        match queued {
                            Request::Append {
                                block: more,
                                effect,
                                reply,
                            } => {
                                block.extend_from_slice(&more);
                                appends.push((effect, reply));
                            }
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                    let result = match &broken {
                        Some(reason) => Err(FileSinkError::Stopped {
                            path: self.path.display().to_string(),
                            reason: reason.clone(),
                        }),
                        None => self.write(&block),
                    };
                    match result {
                        Ok(()) => {
                            for (effect, reply) in appends {
                                self.state.apply(effect);
                                let _ = reply.send(Ok(()));
                            }
                        }
                        Err(error) => {
                            if broken.is_none()
                                && let Err(cut) = self.cut()
                            {
                                broken = Some(cut.to_string());
                            }
                            let path = self.path.display().to_string();
                            let reason = error.to_string();
                            for (_, reply) in appends {
                                let _ = reply.send(Err(match &broken {
                                    // Nothing more can be written safely.
                                    Some(why) => FileSinkError::Stopped {
                                        path: path.clone(),
                                        reason: why.clone(),
                                    },
                                    // Cut back to the last complete block: a retry may pass.
                                    None => FileSinkError::Io {
                                        path: path.clone(),
                                        reason: reason.clone(),
                                    },
                                }));
                            }
                        }
                    }
                }
                Request::Load { reply } => {
                    let _ = reply.send(self.state.load());
                }
                Request::DdlRan { key, reply } => {
                    let _ = reply.send(self.state.ddls.contains(&key));
                }
                Request::Describe { table, reply } => {
                    let _ = reply.send(self.state.describe(&table));
                }
            }
        }
    }
}
