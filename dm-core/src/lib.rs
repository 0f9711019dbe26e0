//! # dm-core: the vocabulary every stage shares
//!
//! Positions, GTID sets, locations, table schemas, values, row changes, DDL events, the sink
//! traits ([`Sink`], [`DdlSink`], [`CheckpointStore`], [`SinkFactory`], [`LoadSink`], [`LoadCheckpointStore`], [`LoadSinkFactory`]: how to
//! write a sink is in [`sink`]), the typed [`checkpoint`] values they carry, the
//! [`ShardCoordinator`] seam that decides each DDL when shards merge ([`shard`]; [`NoSharding`]), and the error
//! classes, the [`retry()`] helper with its [`Backoff`], [`Redacted`] for passwords in `Debug`,
//! and [`TlsConfig`], the TLS settings every connector reads ([`tls`]).
//! No I/O and no database client: every other crate depends on this one, and this one on
//! nothing but `thiserror`, `tracing` (the retries it logs) and tokio's clock (the retries'
//! waits; behind features, `serde`, and tokio's `sync` for the test suite).
//!
//! ```text
//!            +-------------------- dm-core (this crate) -------------------+
//!            | Location{BinlogPosition, GtidSet, suffix}  TableSchema  Value |
//!            | RowChange  DdlEvent  ErrorClass/ErrorCode  ErrorReport        |
//!            | Sink DdlSink CheckpointStore SinkFactory LoadSink  checkpoints |
//!            | ShardCoordinator NoSharding ShardHold                          |
//!            +---------------------------------------------------------------+
//!                 ^              ^              ^              ^
//!   dm-binlog (decodes events)   dm-causality   dm-sink, dm-sink-file (implement Sink)   dm-coord
//!                 ^                                                  ^
//!             dm-syncer, dm-dumpload, dm-shardddl  ->  dm-cluster  ->  dm (facade)
//! ```
//!
//! Invariants kept by the types:
//! - a [`BinlogPosition`] only compares with positions of the same file base (`PartialOrd` only);
//! - a [`GtidSet`] is MySQL *or* MariaDB; mixing flavours is an error, and the set order is
//!   inclusion (see [`gtid`] for the semantics of each flavour);
//! - a [`Value`] keeps what the upstream stored: signedness, exact decimals, zero dates, negative
//!   and fractional times, binary bytes;
//! - a [`RowChange`] always has the images its kind needs, as wide as its schema.
//!
//! Error model: parsing and validation return [`CoreError`], which is always definite (the input
//! is wrong) except a row/schema width mismatch, which is a bug of the caller. A stage that
//! drives a trait keeps its implementation's error as an [`ErrorReport`].
//!
//! Feature `testsuite`: [`testsuite`], a recording, scriptable fake of the sink traits and the
//! conformance checks every sink should pass (for tests; never on in a production build).

pub mod checkpoint;
pub mod ddl;
pub mod error;
pub mod gtid;
pub mod location;
pub mod position;
pub mod redact;
pub mod retry;
pub mod row;
pub mod schema;
pub mod shard;
pub mod sink;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod tls;
pub mod value;

pub use checkpoint::{
    DdlRecord, GlobalCheckpoint, SourceCheckpoints, TableCheckpoint, TableSnapshot,
    UpstreamIdentity, WorkerCheckpoint,
};
pub use ddl::{DdlEvent, DdlKind, DdlStatement, DdlTarget};
pub use error::{
    ClassifiedError, CoreError, ErrorClass, ErrorCode, ErrorReport, disk_full,
    is_transient_server_error,
};
pub use gtid::{Flavor, Gtid, GtidSet, MariaDbGtid, MariaDbGtidSet, MySqlGtid, MySqlGtidSet};
pub use location::Location;
pub use position::{BinlogFileName, BinlogPosition};
pub use redact::Redacted;
pub use retry::{Backoff, Retry, retry};
pub use row::{Row, RowChange, RowChangeKind};
pub use schema::{
    ColumnDefinition, ColumnType, IntegerWidth, KeyColumn, KeyDefinition, KeyKind, TableRef,
    TableSchema, quote_identifier,
};
pub use shard::{
    DdlDecision, HoldStage, NoSharding, NoShardingError, ReplayMark, Resolved, ShardCoordinator,
    ShardDdl, ShardHold, ShardResolution,
};
pub use sink::{
    ApplyMode, ChangeBatch, CheckpointStore, ChunkMark, ChunkOutcome, ChunkPiece, ChunkReader,
    DdlCheck, DdlJob, DdlSink, LoadCheckpoint, LoadCheckpointStore, LoadSink, LoadSinkFactory,
    LoadStage, LoadStatus, PlannedChunk, SchemaObject, Sink, SinkFactory, SinkTable, StoredChunk,
};
pub use tls::{ClientIdentity, PemSource, TlsConfig, TlsVerification};
pub use value::{Date, DateTime, Decimal, Time, Timestamp, Value};
