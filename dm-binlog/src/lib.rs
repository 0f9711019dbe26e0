//! # dm-binlog: where every byte of incremental replication enters
//!
//! Reads a MySQL or MariaDB binlog exactly: as a replica over the network ([`RemoteSource`]),
//! from a relay log ([`RelaySource`], written by [`RelayWriter`]) or from a file
//! ([`BinlogFileReader`]); keeps the stream's [`dm_core::Location`] across reconnects and
//! operators ([`StreamController`]); decodes row images into `dm_core::Value` ([`decode_rows`]).
//! The crate README shows each in use.
//!
//! ```text
//! upstream --replica protocol--> RemoteSource --+                       +--> RelayWriter --> relay dir
//!                                               +--> StreamController --+
//! relay dir ---------------------> RelaySource -+    (LocationTracker, reconnect, operators)
//!                                                          |
//!                        ControlledEvent { StreamEvent { event, raw, position, next_position }, locations }
//!                                                          |
//!                                         decode_rows(rows, table_map, schema) --> dm-syncer
//! ```
//!
//! Feature `testsuite`: [`testsuite`], a scripted source of decoded events in memory, for tests
//! that run the syncer without a server.
//!
//! Invariants:
//! - decoding never panics: malformed bytes are [`BinlogError::Malformed`] naming `file:offset`;
//!   a damaged event (CRC32 mismatch) is [`BinlogError::ChecksumMismatch`], never decoded;
//! - no length field is trusted before its bytes are there: an event or replication packet
//!   claiming more than MySQL's 1 GiB limit is [`BinlogError::EventTooLarge`], bodies are
//!   buffered as their bytes arrive, and decoded values (rows, JSON, table-map metadata) take
//!   memory in proportion to the bytes they come from (`tests/it/fuzz.rs` measures it);
//! - an event not yet completely written is [`Read::Partial`] ("wait"), not an error;
//! - positions are `u64` file offsets tracked by the stream (files may pass 4 GiB);
//! - across reconnects, no real event is delivered twice and none is skipped; a position only
//!   becomes a checkpoint candidate ([`StreamController::transaction_end`]) between transactions.

pub mod bytes;
pub mod controller;
pub mod error;
pub mod event;
pub mod file;
pub mod json;
pub mod location;
pub mod metadata;
pub mod query_status;
pub mod relay;
pub mod remote;
pub mod rows;
pub mod search;
pub mod stream;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use controller::{
    AnyBinlogSource, AnyEventStream, BinlogSource, ControlledEvent, Operator, Origin,
    ReconnectPolicy, RelayOptions, StreamController,
};
pub use error::BinlogError;
pub use event::{
    Event, EventData, EventDecoder, EventHeader, FormatDescription, Frame, RowsEvent, RowsKind,
    TableMap, event_type_name, frame,
};
pub use file::{BinlogFileReader, Read};
pub use location::{EventLocations, LocationTracker};
pub use metadata::{OptionalMetadata, schema_from_table_map};
pub use query_status::{QueryStatus, sql_mode_text};
pub use relay::{PurgeRule, RelayMeta, RelayPosition, RelaySource, RelayWriter, purge};
pub use remote::{
    AUTOMATIC_SERVER_ID_BASE, AUTOMATIC_SERVER_ID_COUNT, RemoteOptions, RemoteSource,
    ServerIdChoice, UpstreamInfo, choose_server_id, list_binary_logs,
};
pub use rows::{RowImages, decode_rows};
pub use search::{find_start_by_time, parse_start_time};
pub use stream::{EventStream, StartPoint, StreamEvent};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
