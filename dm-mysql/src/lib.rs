//! # dm-mysql: what every stage that talks to a MySQL-compatible server shares
//!
//! The upstream (MySQL, MariaDB) and the downstream (TiDB, MySQL, MariaDB) speak one protocol
//! and one SQL dialect. What both sides need of it lives here, so that the dumper reads the
//! upstream without borrowing from the sink, and the sink writes the downstream without knowing
//! the dumper:
//! - [`literal`]: exact SQL literals for every `dm_core::Value`, string and hex literals, quoted
//!   identifiers and table names (pure, no I/O);
//! - [`catalog`]: a table's structure read from `information_schema` over a `mysql_async`
//!   connection, as a `dm_core::TableSchema` ([`load_table_schema`]).
//!
//! ```text
//!                          dm-core (Value, TableRef, TableSchema)
//!                             ^
//!                          dm-mysql: literal (SQL text), catalog (information_schema reads)
//!                          ^       ^
//!   upstream --dm-dumpload dumper  dm-sink MySqlSink, dm-dumpload loader, dm-syncer DDL--> downstream
//!              (SELECT, INSERT files, table structure)  (statements, meta rows, downstream keys)
//! ```
//!
//! Invariants:
//! - no value or name can break the statement it is written into: text is escaped, bytes are
//!   hex, identifiers are quoted with their backticks doubled; the session must not set
//!   `NO_BACKSLASH_ESCAPES`, and TIMESTAMP literals are UTC (the session's `time_zone` is
//!   `'+00:00'`);
//! - a literal reads back as the same value: shortest round-trip floating point, DECIMAL's own
//!   digits, full fractional seconds;
//! - a table's keys come primary first, and a key only counts when every part is a column, so a
//!   key read here can always address a row.
//!
//! Error model: literals cannot fail. A catalog read fails with [`MySqlError`] (codes
//! DM-20001..20099): `Client` when the server refused the query or the connection broke (its
//! class follows the MySQL error number: lock waits, deadlocks and lost connections are
//! transient, missing privileges definite), `UnsupportedTable` (definite) when the server
//! describes a table this program cannot represent. The stages that call it wrap it in their own
//! error, with their own context. A table that does not exist is `Ok(None)`, not an error.

pub mod catalog;
pub mod error;
pub mod literal;

pub use catalog::load_table_schema;
pub use error::MySqlError;

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
