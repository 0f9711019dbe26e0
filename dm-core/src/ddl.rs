//! DDL events: one upstream statement split into one statement per object.
//!
//! The upstream may write `DROP TABLE a, b` or `RENAME TABLE a TO b, c TO d`; the syncer tracks,
//! filters, routes and coordinates DDL object by object, so a [`DdlEvent`] keeps the original text
//! and its [`DdlStatement`]s, each about one target and with SQL that applies to that target
//! alone (an `ALTER TABLE` keeps all its clauses: they act on one table). Unqualified table names
//! in a statement's SQL resolve against the event's `current_schema`, as upstream.

use std::fmt;

use crate::location::Location;
use crate::schema::{TableRef, quote_identifier};

/// What a DDL statement acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DdlTarget {
    /// A database (`CREATE DATABASE`, `DROP DATABASE`, `ALTER DATABASE`).
    Schema(String),
    /// A table or view.
    Table(TableRef),
}

impl fmt::Display for DdlTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DdlTarget::Schema(schema) => formatter.write_str(&quote_identifier(schema)),
            DdlTarget::Table(table) => table.fmt(formatter),
        }
    }
}

/// The kind of a single-target DDL statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DdlKind {
    /// `CREATE DATABASE`.
    CreateSchema,
    /// `DROP DATABASE`.
    DropSchema,
    /// `ALTER DATABASE` (charset, collation).
    AlterSchema,
    /// `CREATE TABLE` (also `CREATE TABLE ... LIKE`).
    CreateTable,
    /// `DROP TABLE`.
    DropTable,
    /// `ALTER TABLE` (all its clauses; a rename among other clauses stays an `AlterTable`).
    AlterTable,
    /// `RENAME TABLE` / `ALTER TABLE ... RENAME TO`.
    RenameTable {
        /// The new name.
        to: TableRef,
    },
    /// `TRUNCATE TABLE`.
    TruncateTable,
    /// `CREATE [UNIQUE] INDEX`.
    CreateIndex,
    /// `DROP INDEX`.
    DropIndex,
    /// `CREATE VIEW` / `ALTER VIEW`.
    CreateView,
    /// `DROP VIEW`.
    DropView,
}

/// One DDL statement about one target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DdlStatement {
    /// What it does.
    pub kind: DdlKind,
    /// What it acts on (for a rename: the old name).
    pub target: DdlTarget,
    /// SQL that performs exactly this statement.
    pub sql: String,
}

/// One upstream DDL, split per target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdlEvent {
    /// The text as the upstream executed it.
    pub original_sql: String,
    /// The database selected in the upstream session (empty when none).
    pub current_schema: String,
    /// One statement per target, in execution order.
    pub statements: Vec<DdlStatement>,
    /// Where the DDL's Query event ends in the upstream binlog.
    pub location: Location,
}
