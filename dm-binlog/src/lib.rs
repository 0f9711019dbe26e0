//! # dm-binlog: where every byte of incremental replication enters
//!
//! **Status: the event layer and row decoding are built** (framing, header, format description,
//! CRC32 checksums, the control events of both flavours, compressed events, table maps, a file
//! reader that tails files being written, and [`decode_rows`] into `dm_core::Value` for the types
//! MariaDB writes). Still to come: MySQL binary JSON and GEOMETRY values, the replica-protocol
//! `RemoteSource` for both flavours, the relay log, the stream controller and the `binlog-dump`
//! example.
//!
//! ```text
//! upstream MySQL/MariaDB --(replica protocol)--> RemoteSource --+               (to come)
//!                                                               +--> EventStream --> dm-syncer
//! relay directory / binlog file ----> BinlogFileReader ---------+
//!                                          |  frame() -> EventDecoder::decode() -> Event
//! ```
//!
//! Invariants:
//! - decoding never panics: malformed bytes are [`BinlogError::Malformed`] naming `file:offset`;
//! - a damaged event (CRC32 mismatch) is [`BinlogError::ChecksumMismatch`], never decoded;
//! - an event not yet completely written is [`Read::Partial`] ("wait"), not an error.

pub mod bytes;
pub mod controller;
pub mod error;
pub mod event;
pub mod file;
pub mod json;
pub mod location;
pub mod metadata;
pub mod relay;
pub mod remote;
pub mod rows;
pub mod search;
pub mod stream;

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
pub use relay::{PurgeRule, RelayMeta, RelayPosition, RelaySource, RelayWriter, purge};
pub use remote::{RemoteOptions, RemoteSource, UpstreamInfo, list_binary_logs};
pub use rows::{RowImages, decode_rows};
pub use search::find_start_by_time;
pub use stream::{EventStream, StartPoint, StreamEvent};
