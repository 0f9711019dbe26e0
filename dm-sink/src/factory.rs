//! The sinks of one task and source on a MySQL-compatible downstream: [`MySqlSinks`] opens them
//! for the syncer (`dm_core::SinkFactory`), each with the task's [`MetaScope`].
//!
//! ```text
//! the first open of either kind     -> the meta schema and checkpoint tables created if missing
//! MySqlSinks::open_control          -> MySqlSink (no lock): table definitions, DDL, checkpoints
//! MySqlSinks::open_worker(w, n)     -> MySqlSink, connected, holding GET_LOCK('dm-syncer-<hash>-<w>')
//!                                      (hash of meta schema, task, source: the same in every run)
//! ```
//!
//! Invariant ("no old writer", `docs/design/checkpoint.md`): a worker's connection holds its
//! named lock, which the server releases only when the connection ends, i.e. after the
//! transaction it may still be running committed or rolled back; a new run opens every worker
//! (taking every lock) before it loads the checkpoints, and a second syncer of the same task and
//! source waits, then fails with `SinkError::Locked` (DM-13005).

use dm_core::{Flavor, SinkFactory};

use crate::checkpoint::CheckpointTables;
use crate::error::SinkError;
use crate::mysql::{MySqlSink, MySqlSinkOptions};

/// Where a task and source keep their syncer state downstream: DM's checkpoint tables in the
/// task's meta schema, the source's id, and its flavour (to read GTID sets back). (The loader's
/// tables: [`crate::LoadScope`].)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaScope {
    /// The task's tables in the meta schema.
    pub tables: CheckpointTables,
    /// The source (`source-id`).
    pub source: String,
    /// The upstream's flavour.
    pub flavor: Flavor,
}

/// Opens the syncer's sinks of one task and source.
#[derive(Clone, Debug)]
pub struct MySqlSinks {
    options: MySqlSinkOptions,
    scope: MetaScope,
    /// Whether the checkpoint tables were created (by the first sink opened).
    prepared: bool,
}

impl MySqlSinks {
    /// The sinks of `scope` on the downstream `options` reach.
    pub fn new(options: MySqlSinkOptions, scope: MetaScope) -> Self {
        MySqlSinks {
            options,
            scope,
            prepared: false,
        }
    }

    /// Creates the checkpoint tables with `sink` the first time a sink is opened, so that
    /// every sink it opens can write at once.
    async fn prepare(&mut self, sink: &mut MySqlSink) -> Result<(), SinkError> {
        if !self.prepared {
            self.scope.tables.create(sink).await?;
            self.prepared = true;
        }
        Ok(())
    }

    /// The name of worker `worker`'s downstream lock: one per task, source and worker, the same
    /// in every run (FNV-1a of the names, to stay within the 64 characters a lock name may
    /// have).
    pub fn worker_lock_name(&self, worker: usize) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [
            self.scope.tables.meta_schema(),
            self.scope.tables.task(),
            self.scope.source.as_str(),
        ] {
            for byte in part.bytes().chain([0]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("dm-syncer-{hash:016x}-{worker}")
    }
}

impl SinkFactory for MySqlSinks {
    type Error = SinkError;
    type Control = MySqlSink;
    type Worker = MySqlSink;

    async fn open_control(&mut self) -> Result<MySqlSink, SinkError> {
        let mut sink = MySqlSink::new(self.options.clone())?.with_scope(self.scope.clone());
        self.prepare(&mut sink).await?;
        Ok(sink)
    }

    async fn open_worker(
        &mut self,
        worker: usize,
        _workers: usize,
    ) -> Result<MySqlSink, SinkError> {
        let mut options = self.options.clone();
        options.lock = Some(self.worker_lock_name(worker));
        let mut sink = MySqlSink::new(options)?.with_scope(self.scope.clone());
        sink.connect().await?;
        self.prepare(&mut sink).await?;
        Ok(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_stay_those_of_earlier_versions() {
        let sinks = MySqlSinks::new(
            MySqlSinkOptions::new("127.0.0.1", 3306, "root", ""),
            MetaScope {
                tables: CheckpointTables::new("dm_meta", "shop").expect("tables"),
                source: "mysql-01".into(),
                flavor: Flavor::MariaDb,
            },
        );
        // FNV-1a of "dm_meta\0shop\0mysql-01\0", as dm-syncer named the locks before the
        // sinks opened them: a new version still waits for an old run's transaction.
        assert_eq!(sinks.worker_lock_name(3), "dm-syncer-66c3e0ff821bce88-3");
        assert_ne!(sinks.worker_lock_name(3), sinks.worker_lock_name(2));
    }
}
