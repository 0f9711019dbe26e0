//! The binlog crate's error type. Every decoding failure names the position of the event.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode, is_transient_server_error};

/// Errors of dm-binlog.
#[derive(Debug, thiserror::Error)]
pub enum BinlogError {
    /// A file does not start with the binlog magic number.
    #[error("{path} is not a binlog file: it does not start with the magic bytes fe 62 69 6e")]
    NotABinlog {
        /// The file.
        path: String,
    },
    /// An event's CRC32 does not match its bytes.
    #[error(
        "event at {position} ({event_type}) fails its checksum: stored {stored:08x}, computed {computed:08x}"
    )]
    ChecksumMismatch {
        /// Where the event starts (`file:offset`).
        position: String,
        /// The event type's name.
        event_type: String,
        /// The checksum in the event.
        stored: u32,
        /// The checksum of its bytes.
        computed: u32,
    },
    /// An event's bytes do not follow its format.
    #[error("malformed {event_type} event at {position}: {reason}")]
    Malformed {
        /// Where the event starts (`file:offset`).
        position: String,
        /// The event type's name.
        event_type: String,
        /// What is wrong.
        reason: String,
    },
    /// An event (or a replication packet) claims more bytes than MySQL's own limit: no event is
    /// larger than `max_allowed_packet`, at most 1 GiB. The claim comes from a damaged or
    /// hostile length field; nothing is allocated for it.
    #[error(
        "{what} at {position} claims {size} bytes, more than the {limit}-byte limit of a MySQL event (max_allowed_packet)"
    )]
    EventTooLarge {
        /// `file:offset`, or the upstream's `host:port`.
        position: String,
        /// What claims it: `QUERY event`, `a packet from the upstream`.
        what: String,
        /// The length claimed.
        size: u64,
        /// The limit ([`crate::event::MAXIMUM_EVENT_SIZE`]).
        limit: u64,
    },
    /// A row image cannot be decoded with the table's map and tracked schema.
    #[error("cannot decode a row of {table}: {reason}")]
    UndecodableRow {
        /// The table, `schema.table`.
        table: String,
        /// What failed (names the column).
        reason: String,
    },
    /// The network to the upstream failed (connect, read, write or a read timeout).
    #[error("connection to the upstream {address} failed: {reason}")]
    Network {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The upstream answered with an error.
    #[error("the upstream {address} answered {during} with {error}")]
    Server {
        /// `host:port`.
        address: String,
        /// The request (`login`, the query, `COM_BINLOG_DUMP`...).
        during: String,
        /// The server's error.
        error: crate::remote::ServerError,
    },
    /// The binlog to start from is gone from the upstream.
    #[error(
        "the upstream {address} no longer has the binlog at {start} (purged, or never written): {message}"
    )]
    BinlogPurged {
        /// `host:port`.
        address: String,
        /// The requested start (position or GTID set).
        start: String,
        /// The server's message.
        message: String,
    },
    /// The stream broke inside a transaction and reopened (by GTID set) on another server: the
    /// part of the transaction already delivered cannot be matched by position on the new
    /// server, so the controller neither drops nor repeats it: the reader restarts from its
    /// checkpoint, as after a crash (the syncer writes idempotently for a while after a start).
    #[error(
        "the upstream changed while a transaction was being read: the stream reopened at {at} on the server with {current}, and the part of the transaction already delivered came from the server with {previous}; restart from the checkpoint"
    )]
    UpstreamChangedMidTransaction {
        /// The transaction end the stream reopened at.
        at: String,
        /// The server the delivered part came from.
        previous: String,
        /// The server the stream reopened on.
        current: String,
    },
    /// A file position this upstream did not write: the file is not one it has, the offset is
    /// past its end or inside an event. The source's primary was replaced (a failover to a
    /// replica, which has the same transactions under other file names and offsets) or its
    /// binlog was reset; a file position means nothing on another server.
    #[error(
        "the upstream {address} did not write the binlog position {start} to resume from (was the source's primary replaced, or its binlog reset?): {reason}"
    )]
    UpstreamChanged {
        /// `host:port`.
        address: String,
        /// The position (`file:offset`).
        start: String,
        /// What the upstream has instead.
        reason: String,
    },
    /// A GTID start names transactions the upstream never wrote: after a failover, the new
    /// primary lacks transactions the old one wrote and the task already applied.
    #[error(
        "the upstream {address} has not written every transaction of the {start} to resume from (a replica promoted before it caught up?): {message}"
    )]
    GtidsNotOnUpstream {
        /// `host:port`.
        address: String,
        /// The GTID set.
        start: String,
        /// The server's message.
        message: String,
    },
    /// Another replica (or the upstream itself) uses this replica's server id. Definite for an
    /// id the user set; transient for one chosen automatically, which the reconnect replaces.
    #[error(
        "server-id {server_id} is already used by {holder} on the upstream {address}{}",
        if *automatic { " (the id was chosen automatically: the reconnect chooses another)" } else { "" }
    )]
    ServerIdInUse {
        /// `host:port`.
        address: String,
        /// The id.
        server_id: u32,
        /// Who uses it.
        holder: String,
        /// Whether the id was chosen automatically ([`crate::ServerIdChoice::Automatic`]).
        automatic: bool,
    },
    /// The upstream does not write full row images (`binlog_format=ROW`,
    /// `binlog_row_image=FULL`), so its changes cannot be replicated exactly.
    #[error(
        "the upstream {address} writes its binlog with {variable}={value}, and replication needs {variable}={required}: run SET GLOBAL {variable} = {required} on the upstream and set {variable} = {required} in its my.cnf so that a restart keeps it; sessions already open keep writing {value} until they reconnect"
    )]
    BinlogFormatNotRow {
        /// `host:port`.
        address: String,
        /// `binlog_format` or `binlog_row_image`.
        variable: String,
        /// What the upstream has (`STATEMENT`, `MIXED`, `MINIMAL`, `NOBLOB`, `FULL_NODUP`).
        value: String,
        /// What replication needs (`ROW`, `FULL`).
        required: String,
    },
    /// The upstream sent something this client does not understand, or asked for something it
    /// does not support.
    #[error("replication from {address} is not possible: {reason}")]
    Unsupported {
        /// `host:port`.
        address: String,
        /// What and why.
        reason: String,
    },
    /// TLS to the upstream cannot be set up: a certificate or key file that cannot be read or
    /// used, a server without TLS, or a server certificate the checks refuse (the reason
    /// names the CA).
    #[error("TLS to the upstream {address} failed: {reason}")]
    Tls {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The relay directory's file system is full (ENOSPC) or its user's disk quota is used up
    /// (EDQUOT). The writer has cut its files back to the last complete transaction (no torn
    /// event, no half transaction), so the stream resumes from [`crate::RelayWriter::start_point`]
    /// once space is freed.
    #[error(
        "{what} in the relay directory {directory}: writing {file} needs at least {needed} more bytes, {available} bytes are free"
    )]
    DiskFull {
        /// The relay directory (its root).
        directory: String,
        /// The file being written.
        file: String,
        /// `no space left on the file system` or `the disk quota is used up`.
        what: &'static str,
        /// Bytes that did not fit: the write that failed and what the cut removed.
        needed: u64,
        /// Bytes free for this user on the file system after the cut.
        available: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading a file failed.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ClassifiedError for BinlogError {
    fn class(&self) -> ErrorClass {
        match self {
            BinlogError::Io { .. }
            | BinlogError::Network { .. }
            | BinlogError::UpstreamChangedMidTransaction { .. } => ErrorClass::Transient,
            // Transient so that the relay goes on by itself, with backoff, once space is freed
            // (DM pauses the relay for the user; the files are consistent either way).
            BinlogError::DiskFull { .. } => ErrorClass::Transient,
            BinlogError::Server { error, .. } if is_transient_server_error(error.code) => {
                ErrorClass::Transient
            }
            BinlogError::ServerIdInUse {
                automatic: true, ..
            } => ErrorClass::Transient,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            BinlogError::NotABinlog { .. } => 11001,
            BinlogError::ChecksumMismatch { .. } => 11002,
            BinlogError::Malformed { .. } => 11003,
            BinlogError::Io { .. } => 11004,
            BinlogError::UndecodableRow { .. } => 11005,
            BinlogError::Network { .. } => 11006,
            BinlogError::Server { .. } => 11007,
            BinlogError::BinlogPurged { .. } => 11008,
            BinlogError::UpstreamChanged { .. } => 11014,
            BinlogError::GtidsNotOnUpstream { .. } => 11015,
            BinlogError::UpstreamChangedMidTransaction { .. } => 11016,
            BinlogError::ServerIdInUse { .. } => 11009,
            BinlogError::Unsupported { .. } => 11010,
            BinlogError::BinlogFormatNotRow { .. } => 11011,
            BinlogError::Tls { .. } => 11020,
            BinlogError::EventTooLarge { .. } => 11012,
            BinlogError::DiskFull { .. } => 11030,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            BinlogError::NotABinlog { .. } => "point the reader at a binlog or relay log file",
            BinlogError::ChecksumMismatch { .. } => {
                "the binlog is damaged at this position: re-fetch it from the upstream (purge the relay log from here) or skip the event with the binlog operator"
            }
            BinlogError::EventTooLarge { .. } => {
                "the length field is damaged: re-fetch the binlog from the upstream from this position (purge the relay log from here), or check the network path to the upstream"
            }
            BinlogError::Malformed { .. } => {
                "report the event bytes (mysqlbinlog --hexdump at this position) with the server version"
            }
            BinlogError::Io { .. } => {
                "check that the file exists and is readable; reads are retried"
            }
            BinlogError::DiskFull { .. } => {
                "free space in the relay directory (purge relay files no reader needs, remove other files on its file system) or move it to a larger file system; the relay resumes from relay.meta with backoff once the space is there"
            }
            BinlogError::Network { .. } => {
                "check that the upstream is running and reachable; the stream reconnects with backoff and resumes where it stopped"
            }
            BinlogError::UpstreamChangedMidTransaction { .. } => {
                "none: the subtask resumes by itself from its checkpoint's GTID set on the new server (auto-resume), writing idempotently for a while; a standalone reader starts again from its checkpoint"
            }
            BinlogError::Server { error, .. } => match error.code {
                1045 => "check the user and password in the source configuration",
                1227 | 1044 | 1142 => {
                    "grant the replication user REPLICATION SLAVE and REPLICATION CLIENT (MariaDB 10.5+: also BINLOG MONITOR, REPLICATION MASTER ADMIN)"
                }
                _ => "see the server's message; transient errors are retried",
            },
            BinlogError::BinlogPurged { .. } => {
                "restart the task from a full dump (task-mode all), or from a position or GTID set the upstream still has (SHOW BINARY LOGS); keep binlogs longer with expire_logs_days / binlog_expire_logs_seconds, or enable the relay log"
            }
            BinlogError::UpstreamChanged { .. } => {
                "a file position means something only on the server that wrote it. If the task's checkpoint has a GTID set (its binlog_gtid column is not NULL: the task ran with `enable-gtid: true`), set `enable-gtid: true` in source.yaml and it resumes from that set on the new primary. Otherwise stop the task, find the matching position on the new primary (SHOW BINLOG EVENTS), then UPDATE <meta-schema>.<task>_syncer_checkpoint SET binlog_name = ..., binlog_pos = ..., table_info = JSON_REMOVE(table_info, '$.upstream') WHERE id = '<source-id>' AND is_global = 1, DELETE FROM <meta-schema>.<task>_worker_checkpoint WHERE source = '<source-id>', and start it with `syncers.safe-mode: true` until it passes the old position (rows the workers applied past the checkpoint are written again); or drop both tables and start from task `meta` the same way, or from a full dump"
            }
            BinlogError::GtidsNotOnUpstream { .. } => {
                "the downstream has transactions the upstream lacks: let the new primary catch up (apply the old primary's missing binlog to it) and resume, or rebuild the downstream from a full dump of the new primary"
            }
            BinlogError::ServerIdInUse {
                automatic: false, ..
            } => {
                "give this source a server-id that no other replica of the upstream and not the upstream itself uses (source.yaml `server-id`), or remove `server-id` to have one chosen automatically"
            }
            BinlogError::ServerIdInUse {
                automatic: true, ..
            } => "none needed: the stream reconnects with another automatically chosen server-id",
            BinlogError::BinlogFormatNotRow { .. } => {
                "on the upstream run SET GLOBAL binlog_format = ROW and SET GLOBAL binlog_row_image = FULL, put both in its my.cnf, and reconnect its clients (sessions keep their format until they reconnect); changes written before in another format cannot be replicated exactly: start the task from a full dump taken after the change"
            }
            BinlogError::Unsupported { .. } => "see the reason; it names what to change",
            BinlogError::Tls { .. } => {
                "check the source's security section (ssl-ca, ssl-cert, ssl-key, ssl-mode) against the server's certificate: it must be signed by the CA and, with ssl-mode verify-identity (the default), name the host connected to; the server needs TLS on"
            }
            BinlogError::UndecodableRow { .. } => {
                "check that the tracked schema matches the upstream table and binlog_row_image=FULL; report types not decoded yet"
            }
        }
    }
}
