//! Task modes: which of dump, load and sync a task runs, and where its sync starts.
//!
//! ```text
//! all         dump -> load -> Handoff (the caller starts dm_syncer::run from it)
//! full        dump -> load
//! dump        dump into the directory
//! load        load the directory
//! load&sync   load the directory -> Handoff
//! incremental nothing here: the syncer starts from the task's meta or its checkpoint
//! ```
//!
//! With `loaders.<name>.direct: true` (ours; DM always writes files) `all` and `full` dump
//! straight into the loader. Otherwise the dump goes to `loaders.dir` suffixed `.<task>`, a
//! complete dump found there is loaded rather than dumped again (a restarted task resumes its
//! load), and `clean-dump-file` removes it once the load is finished and its hand-off stored.
//!
//! Invariant: a finished load is never repeated; a restarted `all` task hands off the location
//! stored with its first load, so the syncer (which resumes from its own checkpoint anyway)
//! starts where the data loaded ends.

use std::sync::Arc;

use dm_core::sink::LoadSinkFactory;
use dm_sink::MySqlLoadSinks;
use dm_task::config::TaskMode;
use dm_task::filter::BlockAllowList;

use crate::config::DumpLoadConfig;
use crate::directory::{METADATA_FILE, read_directory};
use crate::dumper::DumpOptions;
use crate::error::DumpError;
use crate::loader::{Handoff, LoadStage, Loader};
use crate::migrate::{dump_to_directory, load_directory, migrate_stream};
use crate::progress::Progress;

/// The dump and load stages of one task and source, loading with `Sinks` (MySQL's by
/// default).
pub struct FullStages<'a, Sinks = MySqlLoadSinks> {
    /// The task's dump/load options.
    pub config: &'a DumpLoadConfig,
    /// Upstream and snapshot.
    pub dump: DumpOptions,
    /// Which tables to dump.
    pub filter: &'a BlockAllowList,
    /// The loader.
    pub loader: &'a Loader<Sinks>,
    /// Dump progress (a direct stream reports both).
    pub dump_progress: Arc<Progress>,
    /// Load progress.
    pub load_progress: Arc<Progress>,
    /// Remove the dump directory once loaded (DM's `clean-dump-file`).
    pub clean_dump_file: bool,
}

impl<Sinks: LoadSinkFactory> FullStages<'_, Sinks> {
    /// Runs what `mode` asks of the dump and load stages; returns the hand-off when the mode
    /// continues with the syncer (`all`, `load&sync`).
    pub async fn run(&self, mode: TaskMode) -> Result<Option<Handoff>, DumpError> {
        let hands_off = matches!(mode, TaskMode::All | TaskMode::LoadAndSync);
        let directory = &self.config.directory;
        match mode {
            TaskMode::Incremental => return Ok(None),
            TaskMode::Dump => {
                self.dump_files().await?;
                return Ok(None);
            }
            _ => {}
        }
        if let Some(stored) = self.loader.stored(self.dump.snapshot.flavor).await?
            && stored.stage == LoadStage::Finished
        {
            let handoff = Handoff::new(stored.location, stored.exit_point);
            return Ok(hands_off.then_some(handoff));
        }
        let handoff = match mode {
            TaskMode::All | TaskMode::Full if self.config.direct => {
                migrate_stream(
                    &self.dump,
                    self.filter,
                    self.loader,
                    self.dump_progress.clone(),
                    self.load_progress.clone(),
                )
                .await?
            }
            TaskMode::All | TaskMode::Full => {
                if !directory.join(METADATA_FILE).exists() {
                    self.dump_files().await?;
                }
                self.load_files().await?
            }
            _ => self.load_files().await?,
        };
        Ok(hands_off.then_some(handoff))
    }

    async fn dump_files(&self) -> Result<(), DumpError> {
        dump_to_directory(
            &self.dump,
            self.filter,
            &self.config.directory,
            self.config.compression,
            self.dump_progress.clone(),
        )
        .await
        .map(|_| ())
    }

    async fn load_files(&self) -> Result<Handoff, DumpError> {
        let directory = &self.config.directory;
        // Read before loading so that a missing or broken dump is named before anything runs.
        read_directory(directory)?;
        let handoff = load_directory(
            self.loader,
            self.config.pool_size,
            directory,
            self.load_progress.clone(),
        )
        .await?;
        if self.clean_dump_file {
            std::fs::remove_dir_all(directory).map_err(|error| DumpError::File {
                path: directory.display().to_string(),
                reason: format!("removing the loaded dump (clean-dump-file): {error}"),
            })?;
        }
        Ok(handoff)
    }
}
