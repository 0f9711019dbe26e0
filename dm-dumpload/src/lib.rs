//! # dm-dumpload: consistent full migration (not built yet)
//!
//! **Status: planned.** No code yet. Will dump an upstream consistently and load it in parallel:
//!
//! ```text
//! upstream --(consistent snapshot, N connections, chunks by key range)--> dump dir | direct stream
//!         --> loader (parallel, resumable per chunk) --> downstream
//!         --> hand-off Location (+ safe-mode exit point) --> dm-syncer
//! ```
