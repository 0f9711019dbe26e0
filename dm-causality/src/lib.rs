//! # dm-causality: safe parallel apply, compaction and batching
//!
//! The pure, synchronous heart of the syncer's DML path: no I/O, deterministic, allocation-free per
//! change once warmed up.
//!
//! ```text
//! RowChange (binlog order)
//!    |  TableKeys::causality_keys      keys = the unique values the change touches (hashed)
//!    v
//! Compactor (optional)                 merges changes of one row within a window
//!    v
//! CausalityDetector::route             worker for each change; Conflict when it links two workers
//!    v
//! N worker queues --> BatchPlanner     contiguous runs -> multi-row units for dm-sink
//!    |
//!    '--> acknowledge(worker, sequence) once applied downstream: frees the keys
//! ```
//!
//! Guarantees, each proven by the property tests in `tests/it` over random change sequences on a
//! table with a primary key and a second unique key (so unique values move between rows):
//! - every interleaving of the worker queues that respects the routing and the conflict waits
//!   gives the table serial application gives, and never hits a duplicate key on the way;
//! - compacted changes give the table the original changes give;
//! - planned units, each applied as one statement, give the same table too.
//!
//! See the crate README for what is measured and how keys normalise values.

pub mod causality;
pub mod compactor;
pub mod error;
pub mod keys;
pub mod normalize;
pub mod planner;

pub use causality::{CausalityDetector, Conflict, Routing};
pub use compactor::{Compactor, PendingChange};
pub use error::CausalityError;
pub use keys::{ImageIdentities, TableKeys};
pub use normalize::Comparison;
pub use planner::{BatchPlanner, BatchUnit, UnitKind};
