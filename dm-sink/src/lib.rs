//! # dm-sink: the MySQL-compatible downstream
//!
//! [`MySqlSink`] implements `dm_core`'s sink traits for TiDB, MySQL and MariaDB downstreams: it
//! turns batches of row changes into multi-row statements (exact, or idempotent in safe mode),
//! applies each batch in one transaction with its worker checkpoint row ([`dm_core::Sink`]),
//! keeps the task's checkpoints in DM's meta tables ([`checkpoint`], `dm_core::CheckpointStore`),
//! runs DDL exactly once ([`ddl`], `dm_core::DdlSink`), serves a full load: the loader's meta
//! tables, the databases, tables and views it creates, chunks with their mark ([`load`],
//! `dm_core::LoadSink`, `dm_core::LoadCheckpointStore`), and classes the downstream's errors by
//! MySQL error number. [`MySqlSinks`] opens the syncer's sinks of one task and source
//! ([`factory`]), [`MySqlLoadSinks`] the loader's ([`load`]).
//!
//! ```text
//! dm-syncer --(ChangeBatch + WorkerCheckpoint)--> MySqlSink --plan (statement.rs, dm-mysql literal)--> SQL
//!                                                     |  START TRANSACTION; ...; worker row; COMMIT
//!           --(DdlJob)--> ddl.rs: SHOW CREATE before, the statement, SHOW CREATE after a crash
//!           --(GlobalCheckpoint)--> checkpoint.rs: global row + table rows, one transaction
//! dm-dumpload --(SchemaObject, LoadStatus, PlannedChunk, ChunkMark + statements)--> load.rs:
//!                                      CREATE ... IF NOT EXISTS, <task>_load_status / _load_chunk
//!                                                     v
//!                                          downstream (identity keys: the batch's table
//!                                          definitions, read by dm-mysql catalog)
//! ```
//!
//! Literals and catalog reads are `dm-mysql`'s (the dumper reads the upstream with them too);
//! [`literal`], [`introspect`] and [`load_table_schema`] re-export them under their old paths.
//!
//! Invariants:
//! - a batch is all or nothing: `Ok` means committed downstream, `Err` means rolled back;
//! - no value can break a statement: text is escaped, bytes are hex, identifiers are quoted;
//! - rows are addressed by the **downstream** table's primary key or not-null unique key, and by
//!   every comparable column (one row at a time, `LIMIT 1`) when it has neither;
//! - the order of changes is kept: only consecutive changes of one table, layout and statement
//!   kind share a multi-row statement, and MySQL applies a multi-row statement row by row.

pub mod checkpoint;
pub mod ddl;
pub mod error;
pub mod factory;
pub mod load;
pub mod mysql;
pub mod statement;

pub use dm_mysql::literal;

/// A downstream table's structure, read by [`dm_mysql::catalog`], and its errors as the sink's.
pub mod introspect {
    use dm_core::TableRef;
    use dm_mysql::MySqlError;
    pub use dm_mysql::catalog::load_table_schema;

    use crate::error::SinkError;

    /// A failed read of a downstream table's structure as the sink's error: the server's
    /// refusal or a broken connection as a statement or connection error, a table this program
    /// cannot represent as a schema error. The error names the table itself.
    pub(crate) fn introspection_error(_table: &TableRef, error: MySqlError) -> SinkError {
        match error {
            MySqlError::Client { what, source } => crate::mysql::client_error(&what, "", source),
            MySqlError::UnsupportedTable { table, reason } => SinkError::Schema { table, reason },
        }
    }
}

pub use checkpoint::{CheckpointTables, GlobalRow, TableRow, WorkerCheckpoint};
pub use error::SinkError;
pub use factory::{MetaScope, MySqlSinks};
pub use introspect::load_table_schema;
pub use load::{LoadScope, MySqlLoadSinks};
pub use mysql::{DEFAULT_SQL_MODE, MySqlSink, MySqlSinkOptions, ssl_options, tls_connect_error};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
