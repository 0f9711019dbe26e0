//! # dm-causality: safe parallel apply (not built yet)
//!
//! **Status: planned.** No code yet. The pure, synchronous heart of parallel apply, with no I/O:
//!
//! ```text
//! RowChange stream --> [compactor] --> causality --> N worker queues --> batch planner --> dm-sink
//! ```
//!
//! - causality keys from each change's PK and not-null UKs (before and after image), normalised
//!   as the column collation compares them;
//! - assignment of changes to workers so that changes sharing a key stay on one worker, in order,
//!   with a conflict signal when a change links keys on different workers;
//! - a compactor that merges changes to one row within a window;
//! - batch planning into multi-row INSERT / REPLACE / DELETE units that preserve per-key order.
