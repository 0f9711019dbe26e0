//! # dm-sink: the MySQL-compatible downstream
//!
//! [`MySqlSink`] implements [`dm_core::Sink`] for TiDB, MySQL and MariaDB downstreams: it turns
//! batches of row changes into multi-row statements (exact, or idempotent in safe mode), applies
//! each batch in one transaction, and classes the downstream's errors by MySQL error number.
//!
//! ```text
//! dm-syncer --(batch of RowChange, mode)--> MySqlSink --plan (statement.rs, literal.rs)--> SQL
//!                                               |  START TRANSACTION; ...; COMMIT
//!                                               v
//!                                          downstream (identity keys read by introspect.rs)
//! ```
//!
//! Invariants:
//! - a batch is all or nothing: `Ok` means committed downstream, `Err` means rolled back;
//! - no value can break a statement: text is escaped, bytes are hex, identifiers are quoted;
//! - rows are addressed by the **downstream** table's primary key or not-null unique key, and by
//!   every comparable column (one row at a time, `LIMIT 1`) when it has neither;
//! - the order of changes is kept: only consecutive changes of one table, layout and statement
//!   kind share a multi-row statement, and MySQL applies a multi-row statement row by row.

pub mod checkpoint;
pub mod error;
pub mod introspect;
pub mod literal;
pub mod mysql;
pub mod statement;

pub use checkpoint::{CheckpointTables, GlobalCheckpoint, TableCheckpoint, WorkerCheckpoint};
pub use error::SinkError;
pub use introspect::load_table_schema;
pub use mysql::{DEFAULT_SQL_MODE, MySqlSink, MySqlSinkOptions};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
