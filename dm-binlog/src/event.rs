//! Binlog events: framing, the common header, checksums, and decoding of each event's body.
//!
//! ```text
//! bytes --frame (header.event_size)--> one event --EventDecoder::decode--> Event { header, data }
//!                                          |  the FORMAT_DESCRIPTION event sets the header length,
//!                                          |  the post-header lengths and whether events carry CRC32
//! ```
//!
//! Every event starts with a 19-byte header (timestamp, type, server id, size, end position,
//! flags). [`EventDecoder`] keeps the format learned from the last FORMAT_DESCRIPTION event and
//! verifies each event's CRC32 when the format says events carry one. Decoding never panics: bytes
//! that do not follow the format are [`BinlogError::Malformed`], naming the event's position.
//! Lengths are bounds, not allocations: [`frame`] refuses an event larger than
//! [`MAXIMUM_EVENT_SIZE`], a compressed part inflates only as far as its claim (at most 1 GiB)
//! and its real data go, and a zstd frame's window is lowered to the content it claims.
//!
//! Decoded here: format description, rotate, query, xid, stop, heartbeat, MySQL GTID / tagged GTID / anonymous
//! GTID / PREVIOUS_GTIDS (untagged and 8.3+ tagged), MariaDB GTID / GTID_LIST / BINLOG_CHECKPOINT /
//! ANNOTATE_ROWS and the compressed query and rows events (inflated: consumers see a plain QUERY
//! or rows event), table map (types, metadata, null bitmap; optional metadata kept raw) and the
//! framing of rows events (table id, flags, column bitmaps; the row images are kept raw for the
//! value decoder). Other types are recognised by name and kept undecoded.

use dm_core::{MariaDbGtid, MySqlGtid, MySqlGtidSet};

use crate::bytes::ByteReader;
use crate::error::BinlogError;

/// The length of the v4 event header.
pub const HEADER_LENGTH: usize = 19;
/// The largest event MySQL and MariaDB write or send: `max_allowed_packet` (and
/// `slave_max_allowed_packet`) are at most 1 GiB. A header that claims more is damaged; readers
/// refuse it ([`crate::BinlogError::EventTooLarge`]) instead of waiting for, or allocating, its
/// bytes.
pub const MAXIMUM_EVENT_SIZE: u64 = 1 << 30;
/// The header flag a server sets on a binlog's format description while the file is open.
pub const BINLOG_IN_USE: u8 = 0x01;
/// Header flag: the server made this event up (fake ROTATE, ...); it is not in the binlog file.
pub const ARTIFICIAL: u16 = 0x20;
/// The four magic bytes at the start of every binlog file.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Event type codes (MySQL 0-42, MariaDB 160-171).
pub mod event_type {
    #![allow(missing_docs)]
    pub const START_V3: u8 = 1;
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const INTVAR: u8 = 5;
    pub const RAND: u8 = 13;
    pub const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub const ROWS_QUERY: u8 = 29;
    pub const WRITE_ROWS_V2: u8 = 30;
    pub const UPDATE_ROWS_V2: u8 = 31;
    pub const DELETE_ROWS_V2: u8 = 32;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const GTID_TAGGED: u8 = 42;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 168;
    pub const MARIADB_WRITE_ROWS_COMPRESSED: u8 = 169;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED: u8 = 170;
    pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 171;
}

/// The largest a compressed part may claim to inflate to (MariaDB's max_allowed_packet ceiling):
/// a larger claim is malformed, not an allocation.
const MAXIMUM_INFLATED: usize = 1 << 30;
/// Capacity reserved before inflating; more is allocated only as real data arrives.
const INITIAL_INFLATE_CAPACITY: usize = 1 << 20;

/// Inflates a MariaDB compressed part: `[0x80 | n][original length, n bytes, big-endian][zlib]`.
fn inflate(data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let (&header, rest) = data.split_first().ok_or("the compressed part is empty")?;
    if header & 0x80 == 0 {
        return Err(format!(
            "compressed-part header {header:#04x} lacks the 0x80 marker"
        ));
    }
    let width = usize::from(header & 0x07);
    if !(1..=4).contains(&width) {
        return Err(format!(
            "compressed-part length takes {width} bytes, not 1 to 4"
        ));
    }
    let length_bytes = rest
        .get(..width)
        .ok_or("the compressed part ends in its length")?;
    let length = length_bytes
        .iter()
        .fold(0usize, |value, byte| (value << 8) | usize::from(*byte));
    if length > MAXIMUM_INFLATED {
        return Err(format!("the compressed part claims {length} bytes"));
    }
    // Grow as the data really inflates: a damaged header must not make us allocate its claim.
    let mut inflated = Vec::with_capacity(length.min(INITIAL_INFLATE_CAPACITY));
    flate2::read::ZlibDecoder::new(&rest[width..])
        .take(length as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| format!("the compressed part does not inflate: {error}"))?;
    if inflated.len() != length {
        return Err(format!(
            "the compressed part inflates to {} bytes, its header says {length}",
            inflated.len()
        ));
    }
    Ok(inflated)
}

/// The name of an event type, as MySQL and MariaDB document it.
pub fn event_type_name(code: u8) -> &'static str {
    match code {
        0 => "UNKNOWN",
        1 => "START_V3",
        2 => "QUERY",
        3 => "STOP",
        4 => "ROTATE",
        5 => "INTVAR",
        6 => "LOAD",
        7 => "SLAVE",
        8 => "CREATE_FILE",
        9 => "APPEND_BLOCK",
        10 => "EXEC_LOAD",
        11 => "DELETE_FILE",
        12 => "NEW_LOAD",
        13 => "RAND",
        14 => "USER_VAR",
        15 => "FORMAT_DESCRIPTION",
        16 => "XID",
        17 => "BEGIN_LOAD_QUERY",
        18 => "EXECUTE_LOAD_QUERY",
        19 => "TABLE_MAP",
        20 => "PRE_GA_WRITE_ROWS",
        21 => "PRE_GA_UPDATE_ROWS",
        22 => "PRE_GA_DELETE_ROWS",
        23 => "WRITE_ROWS_V1",
        24 => "UPDATE_ROWS_V1",
        25 => "DELETE_ROWS_V1",
        26 => "INCIDENT",
        27 => "HEARTBEAT",
        28 => "IGNORABLE",
        29 => "ROWS_QUERY",
        30 => "WRITE_ROWS_V2",
        31 => "UPDATE_ROWS_V2",
        32 => "DELETE_ROWS_V2",
        33 => "GTID",
        34 => "ANONYMOUS_GTID",
        35 => "PREVIOUS_GTIDS",
        36 => "TRANSACTION_CONTEXT",
        37 => "VIEW_CHANGE",
        38 => "XA_PREPARE",
        39 => "PARTIAL_UPDATE_ROWS",
        40 => "TRANSACTION_PAYLOAD",
        41 => "HEARTBEAT_V2",
        42 => "GTID_TAGGED",
        160 => "ANNOTATE_ROWS",
        161 => "BINLOG_CHECKPOINT",
        162 => "MARIADB_GTID",
        163 => "GTID_LIST",
        164 => "START_ENCRYPTION",
        165 => "QUERY_COMPRESSED",
        166 => "WRITE_ROWS_COMPRESSED_V1",
        167 => "UPDATE_ROWS_COMPRESSED_V1",
        168 => "DELETE_ROWS_COMPRESSED_V1",
        169 => "WRITE_ROWS_COMPRESSED",
        170 => "UPDATE_ROWS_COMPRESSED",
        171 => "DELETE_ROWS_COMPRESSED",
        _ => "UNRECOGNISED",
    }
}

/// The common header of every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// Seconds since the epoch when the statement started.
    pub timestamp: u32,
    /// The type code (see [`event_type`]).
    pub event_type: u8,
    /// The server that wrote the event.
    pub server_id: u32,
    /// The event's whole size, header and checksum included.
    pub event_size: u32,
    /// The position just after the event in the server's binlog (0 in some relay/fake events).
    pub log_position: u32,
    /// Event flags.
    pub flags: u16,
}

impl EventHeader {
    /// Parses the 19-byte header; `None` if fewer bytes are given.
    pub fn parse(bytes: &[u8]) -> Option<EventHeader> {
        let mut reader = ByteReader::new(bytes.get(..HEADER_LENGTH)?);
        Some(EventHeader {
            timestamp: reader.u32("timestamp").ok()?,
            event_type: reader.u8("type").ok()?,
            server_id: reader.u32("server id").ok()?,
            event_size: reader.u32("event size").ok()?,
            log_position: reader.u32("log position").ok()?,
            flags: reader.u16("flags").ok()?,
        })
    }
}

/// How much of the next event a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The whole event: its first `length` bytes.
    Complete {
        /// The event's size.
        length: usize,
    },
    /// Not yet the whole event: wait for more bytes (a file still being written, a packet split).
    Partial,
}

/// Finds the next event at the start of `buffer`. An event size below the header length or
/// above [`MAXIMUM_EVENT_SIZE`] is malformed (returned as the reason): a caller never waits for
/// the bytes of an impossible event.
pub fn frame(buffer: &[u8]) -> Result<Frame, String> {
    let Some(header) = EventHeader::parse(buffer) else {
        return Ok(Frame::Partial);
    };
    let length = header.event_size as usize;
    if length < HEADER_LENGTH {
        return Err(format!(
            "event size {length} is smaller than the {HEADER_LENGTH}-byte header"
        ));
    }
    if u64::from(header.event_size) > MAXIMUM_EVENT_SIZE {
        return Err(format!(
            "event size {length} is more than the {MAXIMUM_EVENT_SIZE}-byte limit of a MySQL event"
        ));
    }
    Ok(if buffer.len() >= length {
        Frame::Complete { length }
    } else {
        Frame::Partial
    })
}

/// What a FORMAT_DESCRIPTION event says about the events after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatDescription {
    /// Binlog format version (4).
    pub binlog_version: u16,
    /// The server's version string, such as `10.11.19-MariaDB-log`.
    pub server_version: String,
    /// When the binlog was created (0 for all but the first binlog after start-up).
    pub create_timestamp: u32,
    /// Header length of the events (19).
    pub header_length: u8,
    /// Post-header length per event type (index: type - 1).
    pub post_header_lengths: Vec<u8>,
    /// Whether events carry a CRC32 checksum.
    pub checksum: bool,
}

impl FormatDescription {
    /// The format assumed before any FORMAT_DESCRIPTION event (v4, no checksum).
    pub fn assumed() -> Self {
        FormatDescription {
            binlog_version: 4,
            server_version: String::new(),
            create_timestamp: 0,
            header_length: HEADER_LENGTH as u8,
            post_header_lengths: Vec::new(),
            checksum: false,
        }
    }

    /// The post-header length of an event type, if the format lists it.
    pub fn post_header_length(&self, event_type: u8) -> Option<u8> {
        self.post_header_lengths
            .get(usize::from(event_type).checked_sub(1)?)
            .copied()
    }

    /// Whether this is a MariaDB server.
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }
}

/// Whether a server of this version writes the checksum-algorithm byte in its format
/// description (MySQL 5.6.1 and later; every MariaDB that writes GTIDs).
fn writes_checksum_algorithm(server_version: &str) -> bool {
    let numbers: Vec<u32> = server_version
        .split(|character: char| !character.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .take(3)
        .filter_map(|part| part.parse().ok())
        .collect();
    match numbers.as_slice() {
        [major, minor, patch, ..] => (*major, *minor, *patch) >= (5, 6, 1),
        [major, minor] => (*major, *minor) > (5, 6),
        _ => false,
    }
}

/// A table map: which table a table id means in the rows events that follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMap {
    /// The id rows events refer to.
    pub table_id: u64,
    /// The database.
    pub schema: String,
    /// The table.
    pub table: String,
    /// The binlog type code of each column.
    pub column_types: Vec<u8>,
    /// The per-type metadata block (lengths, precision, ...), raw.
    pub column_metadata: Vec<u8>,
    /// Bit `i` set: column `i` is nullable.
    pub null_bitmap: Vec<u8>,
    /// Optional metadata (signedness, column names, charsets...) when
    /// `binlog_row_metadata` is not `NO_LOG`, raw type-length-value records.
    pub optional_metadata: Vec<u8>,
}

/// Which kind of row change a rows event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsKind {
    /// WRITE_ROWS: after images.
    Write,
    /// UPDATE_ROWS (and PARTIAL_UPDATE_ROWS): before and after images.
    Update,
    /// DELETE_ROWS: before images.
    Delete,
}

/// A rows event, framed: which table, which columns, and the row images still encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowsEvent {
    /// Insert, update or delete.
    pub kind: RowsKind,
    /// The table map this refers to.
    pub table_id: u64,
    /// Rows event flags (bit 0: end of statement).
    pub flags: u16,
    /// Number of columns in the table.
    pub column_count: u64,
    /// Columns present in the before image (updates, deletes) or the after image (writes).
    pub columns_present: Vec<u8>,
    /// Columns present in the after image of an update.
    pub columns_present_after: Option<Vec<u8>>,
    /// The row images, encoded.
    pub rows: Vec<u8>,
    /// A MySQL PARTIAL_UPDATE_ROWS event: each after image starts with value options, and
    /// JSON columns may hold diffs against the before image instead of values.
    pub partial_json: bool,
}

/// The decoded body of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    /// FORMAT_DESCRIPTION.
    FormatDescription(FormatDescription),
    /// ROTATE: the next events are in `next_file` from `position`.
    Rotate {
        /// Where to continue in the next file.
        position: u64,
        /// The next file's name.
        next_file: String,
    },
    /// QUERY: a statement (DDL, or BEGIN/COMMIT around row events).
    Query {
        /// The connection that ran it.
        thread_id: u32,
        /// Seconds it took.
        execution_time: u32,
        /// The error code it ended with on the server (0).
        error_code: u16,
        /// The current database.
        schema: String,
        /// The statement, as bytes in the connection's character set.
        sql: Vec<u8>,
        /// Status variables (sql_mode, charset, time zone...), raw.
        status_variables: Vec<u8>,
    },
    /// XID: the commit of a transaction.
    Xid {
        /// The transaction id.
        xid: u64,
    },
    /// MySQL GTID: the next transaction's GTID.
    MySqlGtid {
        /// The GTID.
        gtid: MySqlGtid,
        /// Logical clock: the last transaction this one depends on (5.7+).
        last_committed: Option<i64>,
        /// Logical clock: this transaction's sequence number (5.7+).
        sequence_number: Option<i64>,
    },
    /// MySQL ANONYMOUS_GTID: a transaction without a GTID.
    AnonymousGtid,
    /// MySQL PREVIOUS_GTIDS: the GTIDs of all earlier binlog files.
    PreviousGtids(MySqlGtidSet),
    /// MariaDB GTID: the next event group's GTID.
    MariaDbGtid {
        /// The GTID (server id from the header).
        gtid: MariaDbGtid,
        /// FL_* flags: 1 standalone (no BEGIN, e.g. DDL), 2 group commit id, 4 transactional,
        /// 8 allow parallel, 32 DDL, 64/128 XA.
        flags: u8,
        /// The group-commit id, when flag 2 is set.
        commit_id: Option<u64>,
    },
    /// MariaDB GTID_LIST: the binlog state at the start of a file.
    MariaDbGtidList(Vec<MariaDbGtid>),
    /// MariaDB BINLOG_CHECKPOINT.
    BinlogCheckpoint {
        /// The binlog file needed for crash recovery.
        file: String,
    },
    /// MariaDB ANNOTATE_ROWS: the statement that produced the following rows events.
    AnnotateRows {
        /// The statement text.
        sql: Vec<u8>,
    },
    /// TABLE_MAP.
    TableMap(TableMap),
    /// WRITE/UPDATE/DELETE_ROWS (v1, v2, partial update).
    Rows(RowsEvent),
    /// TRANSACTION_PAYLOAD (MySQL 8.0.20+ `binlog_transaction_compression`): a whole
    /// transaction's events, decompressed and decoded.
    TransactionPayload {
        /// The compression: 0 zstd, 255 none.
        compression: u8,
        /// The events of the transaction, in order.
        events: Vec<Event>,
    },
    /// HEARTBEAT: the source is alive; no new events.
    Heartbeat {
        /// The source's current binlog file.
        file: String,
    },
    /// STOP: the server shut down.
    Stop,
    /// A known type that is not decoded here (named by [`event_type_name`]).
    Undecoded,
}

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The header.
    pub header: EventHeader,
    /// The body.
    pub data: EventData,
}

impl Event {
    /// A Query event that runs `sql` with `schema` as the session's database: what `binlog
    /// replace` and `binlog inject` put into the stream (DM's operators take SQL statements).
    pub fn statement(schema: &str, sql: &str) -> Event {
        Event {
            header: EventHeader {
                timestamp: 0,
                event_type: event_type::QUERY,
                server_id: 0,
                event_size: 0,
                log_position: 0,
                flags: 0,
            },
            data: EventData::Query {
                thread_id: 0,
                execution_time: 0,
                error_code: 0,
                schema: schema.to_owned(),
                sql: sql.as_bytes().to_vec(),
                status_variables: Vec::new(),
            },
        }
    }
}

/// Decodes events in stream order, remembering the format and the table maps' ids.
#[derive(Clone, Debug)]
pub struct EventDecoder {
    format: FormatDescription,
    /// Name used in error positions (`file:offset`).
    file: String,
}

impl EventDecoder {
    /// A decoder for events of `file` (used in error messages).
    pub fn new(file: impl Into<String>) -> Self {
        EventDecoder {
            format: FormatDescription::assumed(),
            file: file.into(),
        }
    }

    /// A decoder for a replication stream whose events carry a CRC32 checksum from the first
    /// one on (`checksum`), before any format description arrived: the server sends a fake
    /// ROTATE first, and its file name must not keep the 4 checksum bytes.
    pub fn for_stream(file: impl Into<String>, checksum: bool) -> Self {
        let mut decoder = EventDecoder::new(file);
        decoder.format.checksum = checksum;
        decoder
    }

    /// The format in force.
    pub fn format(&self) -> &FormatDescription {
        &self.format
    }

    /// Renames the file used in error positions (after a rotate).
    pub fn set_file(&mut self, file: impl Into<String>) {
        self.file = file.into();
    }

    /// Decodes one whole event (`bytes` is exactly the event, as [`frame`] delimits it) that
    /// starts at `offset` in the file.
    pub fn decode(&mut self, bytes: &[u8], offset: u64) -> Result<Event, BinlogError> {
        let position = || format!("{}:{offset}", self.file);
        let header = EventHeader::parse(bytes).ok_or_else(|| BinlogError::Malformed {
            position: position(),
            event_type: "?".into(),
            reason: format!("{} bytes are fewer than the event header", bytes.len()),
        })?;
        let name = event_type_name(header.event_type);
        let malformed = |reason: String| BinlogError::Malformed {
            position: position(),
            event_type: name.into(),
            reason,
        };
        if header.event_size as usize != bytes.len() {
            return Err(malformed(format!(
                "the header says {} bytes, {} were given",
                header.event_size,
                bytes.len()
            )));
        }
        if header.event_type == event_type::FORMAT_DESCRIPTION {
            let format = self.decode_format(bytes).map_err(malformed)?;
            if format.checksum {
                self.verify(bytes, name, &position)?;
            }
            self.format = format.clone();
            return Ok(Event {
                header,
                data: EventData::FormatDescription(format),
            });
        }
        let mut body_end = bytes.len();
        if self.format.checksum {
            self.verify(bytes, name, &position)?;
            body_end -= 4;
        }
        let header_length = usize::from(self.format.header_length).max(HEADER_LENGTH);
        let body = bytes
            .get(header_length..body_end)
            .ok_or_else(|| malformed("the event is shorter than its header and checksum".into()))?;
        let data = self.decode_body(&header, body).map_err(malformed)?;
        Ok(Event { header, data })
    }

    fn verify(
        &self,
        bytes: &[u8],
        name: &str,
        position: &dyn Fn() -> String,
    ) -> Result<(), BinlogError> {
        let split = bytes
            .len()
            .checked_sub(4)
            .ok_or_else(|| BinlogError::Malformed {
                position: position(),
                event_type: name.into(),
                reason: "too short for a checksum".into(),
            })?;
        let (content, stored) = bytes.split_at(split);
        let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        let computed = if content.get(4) == Some(&event_type::FORMAT_DESCRIPTION)
            && content
                .get(17)
                .is_some_and(|flags| flags & BINLOG_IN_USE != 0)
        {
            // The server sets and clears "binlog in use" in place while the file is open; the
            // format description's checksum is computed with the flag clear.
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&content[..17]);
            hasher.update(&[content[17] & !BINLOG_IN_USE]);
            hasher.update(&content[18..]);
            hasher.finalize()
        } else {
            crc32fast::hash(content)
        };
        if stored != computed {
            return Err(BinlogError::ChecksumMismatch {
                position: position(),
                event_type: name.into(),
                stored,
                computed,
            });
        }
        Ok(())
    }

    fn decode_format(&self, bytes: &[u8]) -> Result<FormatDescription, String> {
        let mut reader = ByteReader::new(bytes.get(HEADER_LENGTH..).unwrap_or_default());
        let binlog_version = reader.u16("binlog version")?;
        let server_version = reader.take(50, "server version")?;
        let server_version = String::from_utf8_lossy(
            server_version
                .split(|byte| *byte == 0)
                .next()
                .unwrap_or_default(),
        )
        .into_owned();
        let create_timestamp = reader.u32("create timestamp")?;
        let header_length = reader.u8("header length")?;
        if usize::from(header_length) < HEADER_LENGTH {
            return Err(format!(
                "header length {header_length} is below {HEADER_LENGTH}"
            ));
        }
        let rest = reader.rest();
        let (post_header_lengths, checksum) = if writes_checksum_algorithm(&server_version) {
            // ... post-header lengths, then the checksum algorithm (1 byte), then 4 checksum bytes.
            let split = rest
                .len()
                .checked_sub(5)
                .ok_or("no room for the checksum algorithm")?;
            let algorithm = rest[split];
            if algorithm > 1 && algorithm != 0xff {
                return Err(format!("unknown checksum algorithm {algorithm}"));
            }
            (rest[..split].to_vec(), algorithm == 1)
        } else {
            (rest.to_vec(), false)
        };
        Ok(FormatDescription {
            binlog_version,
            server_version,
            create_timestamp,
            header_length,
            post_header_lengths,
            checksum,
        })
    }

    fn table_id_width(&self, event_type: u8) -> usize {
        match self.format.post_header_length(event_type) {
            Some(6) => 4,
            _ => 6,
        }
    }

    fn decode_body(&self, header: &EventHeader, body: &[u8]) -> Result<EventData, String> {
        use event_type as t;
        let mut reader = ByteReader::new(body);
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Ok(match header.event_type {
            t::ROTATE => {
                let position = reader.u64("position")?;
                EventData::Rotate {
                    position,
                    next_file: text(reader.rest()),
                }
            }
            t::QUERY | t::MARIADB_QUERY_COMPRESSED => {
                let thread_id = reader.u32("thread id")?;
                let execution_time = reader.u32("execution time")?;
                let schema_length = reader.u8("schema length")?;
                let error_code = reader.u16("error code")?;
                let status_length = match self.format.post_header_length(header.event_type) {
                    Some(length) if length < 13 => 0,
                    _ => reader.u16("status variables length")?,
                };
                let status_variables = reader
                    .take(usize::from(status_length), "status variables")?
                    .to_vec();
                let schema = text(reader.take(usize::from(schema_length), "schema")?);
                reader.take(1, "schema terminator")?;
                let sql = if header.event_type == t::MARIADB_QUERY_COMPRESSED {
                    inflate(reader.rest())?
                } else {
                    reader.rest().to_vec()
                };
                EventData::Query {
                    thread_id,
                    execution_time,
                    error_code,
                    schema,
                    sql,
                    status_variables,
                }
            }
            t::XID => EventData::Xid {
                xid: reader.u64("xid")?,
            },
            t::STOP => EventData::Stop,
            t::HEARTBEAT => EventData::Heartbeat {
                file: text(reader.rest()),
            },
            t::GTID | t::ANONYMOUS_GTID => {
                let _flags = reader.u8("flags")?;
                let source = reader.take(16, "source uuid")?;
                let transaction = reader.u64("transaction number")?;
                let (last_committed, sequence_number) =
                    if reader.remaining() >= 17 && reader.u8("logical clock type")? == 2 {
                        (
                            Some(reader.u64("last committed")? as i64),
                            Some(reader.u64("sequence number")? as i64),
                        )
                    } else {
                        (None, None)
                    };
                if header.event_type == t::ANONYMOUS_GTID {
                    EventData::AnonymousGtid
                } else {
                    let mut uuid = [0u8; 16];
                    uuid.copy_from_slice(source);
                    EventData::MySqlGtid {
                        gtid: MySqlGtid {
                            source: dm_core::gtid::ServerUuid(uuid),
                            tag: String::new(),
                            transaction,
                        },
                        last_committed,
                        sequence_number,
                    }
                }
            }
            t::PREVIOUS_GTIDS => EventData::PreviousGtids(decode_previous_gtids(&mut reader)?),
            t::GTID_TAGGED => decode_tagged_gtid(&mut reader)?,
            t::MARIADB_GTID => {
                let sequence = reader.u64("sequence")?;
                let domain = reader.u32("domain")?;
                let flags = reader.u8("flags")?;
                let commit_id = if flags & 2 != 0 {
                    Some(reader.u64("commit id")?)
                } else {
                    None
                };
                EventData::MariaDbGtid {
                    gtid: MariaDbGtid {
                        domain,
                        server_id: header.server_id,
                        sequence,
                    },
                    flags,
                    commit_id,
                }
            }
            t::MARIADB_GTID_LIST => {
                let count = reader.u32("count")? & 0x0fff_ffff;
                let mut gtids = Vec::with_capacity(count.min(4096) as usize);
                for _ in 0..count {
                    let domain = reader.u32("domain")?;
                    let server_id = reader.u32("server id")?;
                    let sequence = reader.u64("sequence")?;
                    gtids.push(MariaDbGtid {
                        domain,
                        server_id,
                        sequence,
                    });
                }
                EventData::MariaDbGtidList(gtids)
            }
            t::MARIADB_BINLOG_CHECKPOINT => {
                let length = reader.u32("file name length")?;
                EventData::BinlogCheckpoint {
                    file: text(reader.take(length as usize, "file name")?),
                }
            }
            t::MARIADB_ANNOTATE_ROWS => EventData::AnnotateRows {
                sql: reader.rest().to_vec(),
            },
            t::TABLE_MAP => EventData::TableMap(self.decode_table_map(&mut reader)?),
            t::TRANSACTION_PAYLOAD => self.decode_transaction_payload(&mut reader)?,
            t::WRITE_ROWS_V1
            | t::WRITE_ROWS_V2
            | t::MARIADB_WRITE_ROWS_COMPRESSED_V1
            | t::MARIADB_WRITE_ROWS_COMPRESSED => EventData::Rows(self.decode_rows(
                header.event_type,
                RowsKind::Write,
                &mut reader,
            )?),
            t::UPDATE_ROWS_V1
            | t::UPDATE_ROWS_V2
            | t::PARTIAL_UPDATE_ROWS
            | t::MARIADB_UPDATE_ROWS_COMPRESSED_V1
            | t::MARIADB_UPDATE_ROWS_COMPRESSED => EventData::Rows(self.decode_rows(
                header.event_type,
                RowsKind::Update,
                &mut reader,
            )?),
            t::DELETE_ROWS_V1
            | t::DELETE_ROWS_V2
            | t::MARIADB_DELETE_ROWS_COMPRESSED_V1
            | t::MARIADB_DELETE_ROWS_COMPRESSED => EventData::Rows(self.decode_rows(
                header.event_type,
                RowsKind::Delete,
                &mut reader,
            )?),
            _ => EventData::Undecoded,
        })
    }

    /// The payload header is (type, length, value) fields ended by a 0 type: 1 payload size,
    /// 2 compression type, 3 uncompressed size. Then the payload: the events, compressed.
    fn decode_transaction_payload(&self, reader: &mut ByteReader<'_>) -> Result<EventData, String> {
        let mut payload_size = None;
        let mut compression = 0u8;
        let mut uncompressed_size = None;
        loop {
            let field = reader.length_encoded("payload header field")?;
            if field == 0 {
                break;
            }
            let length = reader.length_encoded("payload header field length")?;
            let value_bytes = reader.take(
                usize::try_from(length).unwrap_or(usize::MAX),
                "payload header value",
            )?;
            let value = ByteReader::new(value_bytes).length_encoded("payload header value")?;
            match field {
                1 => payload_size = Some(value),
                2 => {
                    compression =
                        u8::try_from(value).map_err(|_| format!("compression type {value}"))?
                }
                3 => uncompressed_size = Some(value),
                _ => {}
            }
        }
        let payload = match payload_size {
            Some(size) => reader.take(usize::try_from(size).unwrap_or(usize::MAX), "payload")?,
            None => reader.rest(),
        };
        let expected = uncompressed_size.unwrap_or(0);
        if expected > MAXIMUM_INFLATED as u64 {
            return Err(format!("the payload claims {expected} uncompressed bytes"));
        }
        let events_bytes = match compression {
            0 => {
                use std::io::Read as _;
                // The decoder reserves the frame's window up front: a window larger than the
                // claimed content is lowered to it, so a damaged header reserves nothing more.
                let (payload, window) = bounded_zstd_window(payload, expected)?;
                let mut decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
                    &payload[..],
                    window,
                )
                .map_err(|error| format!("the payload is not a zstd frame: {error}"))?;
                let mut inflated =
                    Vec::with_capacity((expected as usize).min(INITIAL_INFLATE_CAPACITY));
                (&mut decoder)
                    .take(expected + 1)
                    .read_to_end(&mut inflated)
                    .map_err(|error| format!("the payload does not decompress: {error}"))?;
                inflated
            }
            255 => payload.to_vec(),
            other => return Err(format!("unknown payload compression type {other}")),
        };
        if uncompressed_size.is_some_and(|size| size != events_bytes.len() as u64) {
            return Err(format!(
                "the payload decompresses to {} bytes, its header says {expected}",
                events_bytes.len()
            ));
        }
        // The events inside are complete events of the same format but without checksums: the
        // payload event's own checksum covers them.
        let mut inner = self.clone();
        inner.format.checksum = false;
        let mut events = Vec::new();
        let mut offset = 0usize;
        while offset < events_bytes.len() {
            let rest = &events_bytes[offset..];
            let length = match frame(rest)? {
                Frame::Complete { length } => length,
                Frame::Partial => {
                    return Err(format!("the payload ends inside an event at byte {offset}"));
                }
            };
            let event = inner
                .decode(&rest[..length], offset as u64)
                .map_err(|error| format!("inside the payload: {error}"))?;
            events.push(event);
            offset += length;
        }
        Ok(EventData::TransactionPayload {
            compression,
            events,
        })
    }

    fn decode_table_map(&self, reader: &mut ByteReader<'_>) -> Result<TableMap, String> {
        let table_id = reader.uint(self.table_id_width(event_type::TABLE_MAP), "table id")?;
        let _flags = reader.u16("flags")?;
        let schema_length = reader.u8("schema length")?;
        let schema = String::from_utf8_lossy(reader.take(usize::from(schema_length), "schema")?)
            .into_owned();
        reader.take(1, "schema terminator")?;
        let table_length = reader.u8("table length")?;
        let table =
            String::from_utf8_lossy(reader.take(usize::from(table_length), "table")?).into_owned();
        reader.take(1, "table terminator")?;
        let column_count = reader.length_encoded("column count")?;
        let column_count = usize::try_from(column_count)
            .ok()
            .filter(|count| *count <= 4096)
            .ok_or_else(|| format!("column count {column_count} exceeds 4096"))?;
        let column_types = reader.take(column_count, "column types")?.to_vec();
        let metadata_length = reader.length_encoded("metadata length")?;
        let column_metadata = reader
            .take(
                usize::try_from(metadata_length).unwrap_or(usize::MAX),
                "column metadata",
            )?
            .to_vec();
        let null_bitmap = reader
            .take(column_count.div_ceil(8), "null bitmap")?
            .to_vec();
        Ok(TableMap {
            table_id,
            schema,
            table,
            column_types,
            column_metadata,
            null_bitmap,
            optional_metadata: reader.rest().to_vec(),
        })
    }

    fn decode_rows(
        &self,
        code: u8,
        kind: RowsKind,
        reader: &mut ByteReader<'_>,
    ) -> Result<RowsEvent, String> {
        let table_id = reader.uint(self.table_id_width(code), "table id")?;
        let flags = reader.u16("flags")?;
        let version_two = matches!(
            code,
            event_type::WRITE_ROWS_V2
                | event_type::UPDATE_ROWS_V2
                | event_type::DELETE_ROWS_V2
                | event_type::PARTIAL_UPDATE_ROWS
                | event_type::MARIADB_WRITE_ROWS_COMPRESSED
                | event_type::MARIADB_UPDATE_ROWS_COMPRESSED
                | event_type::MARIADB_DELETE_ROWS_COMPRESSED
        );
        let compressed = (event_type::MARIADB_WRITE_ROWS_COMPRESSED_V1
            ..=event_type::MARIADB_DELETE_ROWS_COMPRESSED)
            .contains(&code);
        if version_two {
            let extra_length = reader.u16("extra data length")?;
            reader.take(usize::from(extra_length).saturating_sub(2), "extra data")?;
        }
        let column_count = reader.length_encoded("column count")?;
        let bitmap_length = usize::try_from(column_count)
            .ok()
            .filter(|count| *count <= 4096)
            .ok_or_else(|| format!("column count {column_count} exceeds 4096"))?
            .div_ceil(8);
        let columns_present = reader.take(bitmap_length, "present columns")?.to_vec();
        let columns_present_after = if kind == RowsKind::Update {
            Some(
                reader
                    .take(bitmap_length, "present columns after")?
                    .to_vec(),
            )
        } else {
            None
        };
        Ok(RowsEvent {
            kind,
            table_id,
            flags,
            column_count,
            columns_present,
            columns_present_after,
            partial_json: code == event_type::PARTIAL_UPDATE_ROWS,
            rows: if compressed {
                inflate(reader.rest())?
            } else {
                reader.rest().to_vec()
            },
        })
    }
}

/// The zstd frame magic number.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The largest window a zstd decoder accepts by default (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`, 2^27:
/// compression level 22's window); zstd's own tools refuse larger frames unless told.
const MAXIMUM_ZSTD_WINDOW: u64 = 1 << 27;

/// A zstd frame whose window never exceeds what its content needs. A decoder only looks back
/// over bytes it already produced, so a frame whose content is at most `content` bytes decodes
/// the same with a window of `content` bytes; MySQL compresses without telling zstd the size, so
/// its frames declare the compression level's window (2 MiB at the default level 3, 128 MiB at
/// level 22) whatever the transaction's size. The window descriptor of a copy of the frame is
/// lowered to the smallest window that holds `content` bytes; a single-segment frame (whose
/// window is its declared content size) must declare no more than `content`. Returns the frame
/// and the window to allow.
fn bounded_zstd_window(
    payload: &[u8],
    content: u64,
) -> Result<(std::borrow::Cow<'_, [u8]>, u64), String> {
    use std::borrow::Cow;
    // 1 KiB: the smallest window a frame can declare.
    let needed = content.max(1 << 10);
    let Some((magic, rest)) = payload.split_first_chunk::<4>() else {
        return Ok((Cow::Borrowed(payload), needed.min(MAXIMUM_ZSTD_WINDOW)));
    };
    let Some(&descriptor) = rest.first() else {
        return Ok((Cow::Borrowed(payload), needed.min(MAXIMUM_ZSTD_WINDOW)));
    };
    if *magic != ZSTD_MAGIC {
        // Not a zstd frame: the decoder says so.
        return Ok((Cow::Borrowed(payload), needed.min(MAXIMUM_ZSTD_WINDOW)));
    }
    let single_segment = descriptor & 0x20 != 0;
    if single_segment {
        // The window is the declared content size, which the decoder checks against `needed`.
        return Ok((Cow::Borrowed(payload), needed.min(MAXIMUM_ZSTD_WINDOW)));
    }
    let Some(&window_descriptor) = rest.get(1) else {
        return Ok((Cow::Borrowed(payload), needed.min(MAXIMUM_ZSTD_WINDOW)));
    };
    let window_of = |descriptor: u8| {
        let base = 1u64 << (10 + u32::from(descriptor >> 3));
        base + (base / 8) * u64::from(descriptor & 7)
    };
    let declared = window_of(window_descriptor);
    if declared > MAXIMUM_ZSTD_WINDOW {
        return Err(format!(
            "the payload's zstd window is {declared} bytes, more than zstd's {MAXIMUM_ZSTD_WINDOW}-byte limit"
        ));
    }
    let Some(lowered) = (0..=u8::MAX).find(|candidate| window_of(*candidate) >= needed) else {
        return Ok((Cow::Borrowed(payload), declared));
    };
    if window_of(lowered) >= declared {
        return Ok((Cow::Borrowed(payload), declared));
    }
    let mut frame = payload.to_vec();
    frame[5] = lowered;
    Ok((Cow::Owned(frame), window_of(lowered)))
}

/// GTID_TAGGED (MySQL 8.3+): a message of MySQL's serialization format: format version, message
/// size, last non-ignorable field id, then fields by id: 0 flags, 1 source uuid (16 varints),
/// 2 transaction number, 3 tag, 4 last committed, 5 sequence number (signed ones zig-zag),
/// then timestamps and versions, which are not needed here.
fn decode_tagged_gtid(reader: &mut ByteReader<'_>) -> Result<EventData, String> {
    let _format_version = reader.serialized_varint("format version")?;
    let _message_size = reader.serialized_varint("message size")?;
    let _last_non_ignorable = reader.serialized_varint("last non-ignorable field")?;
    let mut uuid = None;
    let mut transaction = None;
    let mut tag = String::new();
    let mut last_committed = None;
    let mut sequence_number = None;
    while reader.remaining() > 0 {
        match reader.serialized_varint("field id")? {
            0 => {
                reader.serialized_varint("flags")?;
            }
            1 => {
                let mut bytes = [0u8; 16];
                for byte in &mut bytes {
                    let value = reader.serialized_varint("source uuid byte")?;
                    *byte = u8::try_from(value)
                        .map_err(|_| format!("uuid byte {value} exceeds 255"))?;
                }
                uuid = Some(bytes);
            }
            2 => {
                let value = reader.serialized_signed("transaction number")?;
                transaction = Some(
                    u64::try_from(value)
                        .map_err(|_| format!("transaction number {value} is negative"))?,
                );
            }
            3 => {
                let length = reader.serialized_varint("tag length")?;
                let bytes = reader.take(usize::try_from(length).unwrap_or(usize::MAX), "tag")?;
                tag = String::from_utf8_lossy(bytes).to_ascii_lowercase();
            }
            4 => last_committed = Some(reader.serialized_signed("last committed")?),
            5 => sequence_number = Some(reader.serialized_signed("sequence number")?),
            // Later fields (timestamps, lengths, versions) are not needed: stop here.
            _ => break,
        }
    }
    let (Some(uuid), Some(transaction)) = (uuid, transaction) else {
        return Err("the tagged GTID has no source uuid or transaction number".into());
    };
    Ok(EventData::MySqlGtid {
        gtid: MySqlGtid {
            source: dm_core::gtid::ServerUuid(uuid),
            tag,
            transaction,
        },
        last_committed,
        sequence_number,
    })
}

/// PREVIOUS_GTIDS: untagged (count as u64) or MySQL 8.3+ tagged (format byte, 6-byte count,
/// format byte; a tag per entry).
fn decode_previous_gtids(reader: &mut ByteReader<'_>) -> Result<MySqlGtidSet, String> {
    let head = reader.take(8, "source count")?;
    let tagged = head[0] == 1 && head[7] == 1;
    let count = if tagged {
        head[1..7]
            .iter()
            .rev()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
    } else {
        u64::from_le_bytes([
            head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
        ])
    };
    let mut text = Vec::new();
    for _ in 0..count {
        let source = reader.take(16, "source uuid")?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(source);
        let tag = if tagged {
            let length = reader.serialized_varint("tag length")?;
            let bytes = reader.take(usize::try_from(length).unwrap_or(usize::MAX), "tag")?;
            String::from_utf8_lossy(bytes).into_owned()
        } else {
            String::new()
        };
        let intervals = reader.u64("interval count")?;
        let mut part = dm_core::gtid::ServerUuid(uuid).to_string();
        if !tag.is_empty() {
            part.push(':');
            part.push_str(&tag);
        }
        for _ in 0..intervals {
            let start = reader.u64("interval start")?;
            let end = reader.u64("interval end")?;
            if end <= start {
                return Err(format!("interval {start}..{end} is empty or reversed"));
            }
            part.push_str(&format!(":{start}-{}", end - 1));
        }
        if intervals > 0 {
            text.push(part);
        }
    }
    MySqlGtidSet::parse(&text.join(",")).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_sizes_above_mysql_limit_are_malformed_not_awaited() {
        let mut header = [0u8; HEADER_LENGTH];
        header[4] = event_type::QUERY;
        header[9..13].copy_from_slice(&((1u32 << 30) + 1).to_le_bytes());
        let reason = frame(&header).expect_err("too large");
        assert!(reason.contains("limit"), "{reason}");
        header[9..13].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert_eq!(frame(&header), Ok(Frame::Partial));
    }

    #[test]
    fn zstd_windows_shrink_to_the_content_claimed() {
        // Magic, a descriptor without single segment, a 2^27 (128 MiB) window, then anything.
        let frame_bytes = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, 1, 2, 3];
        let (lowered, window) = bounded_zstd_window(&frame_bytes, 500).expect("bounded");
        assert_eq!(window, 1 << 10);
        assert_eq!(lowered[5], 0);
        assert_eq!(&lowered[6..], &frame_bytes[6..]);
        // A window that already fits is left alone; one past zstd's limit is refused.
        let (kept, window) = bounded_zstd_window(&frame_bytes, 1 << 27).expect("bounded");
        assert_eq!((&kept[..], window), (&frame_bytes[..], 1 << 27));
        let mut huge = frame_bytes;
        huge[5] = 18 << 3;
        assert!(bounded_zstd_window(&huge, 500).is_err());
        // Single segment: the window is the declared content size, which the decoder bounds.
        let single = [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0xff];
        let (same, window) = bounded_zstd_window(&single, 500).expect("bounded");
        assert_eq!((&same[..], window), (&single[..], 1 << 10));
    }
}
