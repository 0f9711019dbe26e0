//! # dm-dumpload: consistent full migration
//!
//! Dumps an upstream consistently and loads it in parallel, then hands the binlog location of
//! the snapshot to the syncer:
//!
//! ```text
//! upstream --snapshot (N connections)--> dumper: catalog, chunk plan, chunks by key range
//!          --DumpItem (bounded)--> dump directory (metadata.json + chunk files)  | direct stream
//!          --> loader: schemas (routed), chunks in parallel, one transaction each with its mark
//!          --> Handoff { location, safe_mode_until } --> the caller starts the syncer from it
//! ```
//!
//! What to dump and where it goes come from the task (`dm-task`: `TaskConfig`, the
//! block-allow list, the table router). dm-dumpload and dm-syncer do not depend on each other:
//! the caller that chains dump, load and sync sees both (`dm-subtask`'s `Subtask`). The loader
//! speaks only `dm_core`'s load traits; this crate uses `dm-sink` only to build the
//! MySQL-compatible load sinks ([`Loader::new`] from [`LoadOptions`],
//! [`DumpLoadConfig::load_options`]), and [`Loader::with_sinks`] takes any.
//!
//! - [`snapshot`]: one consistent snapshot over N connections and its binlog location
//!   (`consistency: flush`, `lock`, or `none` with a safe-mode exit point).
//! - [`plan`]: cutting tables into chunks by integer key ranges (one chunk without such a key).
//! - [`encode`]: rows as multi-row INSERT statements, one per line.
//! - [`dumper`]: the catalog and the parallel readers.
//! - [`directory`]: the dump directory format (`docs/dump-format.md`).
//! - [`loader`]: schemas, parallel chunk loading, exactly once per chunk across restarts, over
//!   `dm_core`'s load traits (`LoadSinkFactory`, `LoadSink`, `LoadCheckpointStore`).
//! - [`migrate`]: the stages wired: dump to files, load files, or dump straight into the loader.
//! - [`config`]: DM's `mydumpers` / `loaders` task sections (of dm-task's `TaskConfig`): each
//!   key honoured, refused by name, or named in a warning.
//! - [`extra_args`]: the dumpling options of `extra-args` that mean something here.
//! - [`selection`]: what is dumped beyond the block-allow list (`where`, `-B`, `-T`) and the
//!   dump's session time zone (`skip-tz-utc`, `timezone`).
//! - [`task`]: task modes `all`, `full`, `dump`, `load`, `load&sync`, `incremental`.
//!
//! Logs (`tracing`): a dump and a load each log their start and end at info (tables, rows,
//! bytes), and each table's start and end at debug (table, rows, bytes); the loader's events
//! name the task and the source, the dumper's carry them from the subtask's span
//! (`subtask{task, source}`). Errors are returned, not logged: the subtask logs them once.
//!
//! Invariants: every chunk's rows commit downstream together with the record that it is
//! loaded; a load is finished only when every planned chunk is; the hand-off location is the
//! snapshot's, and rows newer than it (a `consistency: none` dump, a resumed stream) are
//! covered by safe mode until the recorded exit point.

pub mod config;
pub mod directory;
pub mod dumper;
pub mod encode;
pub mod error;
pub mod extra_args;
pub mod item;
pub mod loader;
pub mod migrate;
pub mod plan;
pub mod progress;
pub mod selection;
pub mod snapshot;
mod tally;
pub mod task;

pub use config::DumpLoadConfig;
pub use directory::{Compression, DumpDirectory, read_directory, write_directory};
pub use dumper::{DumpOptions, ResumePlan, dump};
pub use error::DumpError;
pub use item::{DumpHeader, DumpItem};
pub use loader::{Handoff, LoadOptions, LoadSettings, LoadStage, Loader, OnDuplicate, StoredLoad};
pub use migrate::{dump_to_directory, load_directory, migrate_stream};
pub use plan::ChunkLimits;
pub use progress::{Progress, ProgressStatus};
pub use selection::{DumpSelection, DumpTimeZone};
pub use snapshot::{
    Consistency, Snapshot, SnapshotOptions, current_location, open_snapshot, open_snapshot_locking,
};
pub use task::FullStages;
