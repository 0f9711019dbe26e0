//! # dm-dumpload: consistent full migration
//!
//! Dumps an upstream consistently and loads it in parallel, then hands the binlog location of
//! the snapshot to the syncer:
//!
//! ```text
//! upstream --(consistent snapshot, N connections, chunks by key range)--> dump dir | direct stream
//!         --> loader (parallel, resumable per chunk) --> downstream
//!         --> hand-off Location (+ safe-mode exit point) --> dm-syncer
//! ```
//!
//! Built so far: [`snapshot`], the consistent snapshot over N connections and its location
//! (`consistency: flush` with FLUSH TABLES WITH READ LOCK, or `none` with a safe-mode exit
//! point). Not yet: chunking, the dump format, the loader, task mode `all`.

pub mod error;
pub mod snapshot;

pub use error::DumpError;
pub use snapshot::{Consistency, Snapshot, SnapshotOptions, current_location, open_snapshot};
