//! What every event source yields, and the trait they share.
//!
//! ```text
//! RemoteSource (replica protocol) --+
//!                                   +--> EventStream::next_event -> StreamEvent { event, raw, position, next_position }
//! RelaySource (relay directory)  ---+
//! ```
//!
//! Invariants of every [`EventStream`]:
//! - events come in upstream order, each exactly once per stream;
//! - `position` is where the event starts in the upstream binlog and `next_position` where the
//!   next one starts (file offsets are `u64`: they are tracked, not taken from the 32-bit header);
//! - an artificial event (one the server made up: the first fake ROTATE, heartbeats, the format
//!   description sent again when a stream starts mid-file, MariaDB's GTID_LIST for a GTID start)
//!   has `position == next_position` and is not in any binlog file.

use std::future::Future;

use dm_core::{BinlogPosition, GtidSet};

use crate::error::BinlogError;
use crate::event::Event;

/// Where a stream starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// At a file and offset (4 = the start of the file).
    Position(BinlogPosition),
    /// After every transaction of a GTID set (the transactions already applied).
    Gtid(GtidSet),
}

impl std::fmt::Display for StartPoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartPoint::Position(position) => write!(formatter, "{position}"),
            StartPoint::Gtid(set) => write!(formatter, "GTID set '{set}'"),
        }
    }
}

/// One event of a stream, with its place in the upstream binlog.
#[derive(Clone, Debug)]
pub struct StreamEvent {
    /// The decoded event.
    pub event: Event,
    /// Its bytes exactly as the upstream wrote them, header to checksum.
    pub raw: Vec<u8>,
    /// Where it starts.
    pub position: BinlogPosition,
    /// Where the next event starts (after a ROTATE: the start of the next file).
    pub next_position: BinlogPosition,
    /// Made up by the server, not in the binlog file.
    pub artificial: bool,
}

/// A source of binlog events in order.
pub trait EventStream {
    /// The next event; `None` when the stream ended (a non-blocking stream reached the end of the
    /// binlog, or a file source ran out of files).
    fn next_event(
        &mut self,
    ) -> impl Future<Output = Result<Option<StreamEvent>, BinlogError>> + Send;
}
