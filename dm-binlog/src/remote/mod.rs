//! `RemoteSource`: read the binlog from a live MySQL or MariaDB server as a replica.
//!
//! ```text
//! connect [+ SSL request, TLS handshake: `tls`]
//!   login (mysql_native_password | caching_sha2_password, fast or full | sha256_password
//!          | client_ed25519, MariaDB's ed25519: `connection`)
//!   SELECT @@server_id, @@global.binlog_checksum, ...      flavour, checksum, server id check
//!   MySQL: SELECT @@global.server_uuid (an error: none)     the upstream's identity
//!   SELECT @@global.binlog_format, binlog_row_image        ROW and FULL, or refused (skippable)
//!   SHOW BINARY LOGS [, SHOW BINLOG EVENTS FROM offset]    a position start: did this server
//!                                                          write it? (`start_check`: its
//!                                                          identity against the checkpoint's,
//!                                                          then its binlog index)
//!   SHOW SLAVE HOSTS                                       another replica with our server-id?
//!                                                          (fixed: refused; automatic: replaced)
//!   SET @master_binlog_checksum, @master_heartbeat_period
//!   MariaDB: SET @mariadb_slave_capability=4 [, @slave_connect_state, @slave_gtid_strict_mode=1]
//!   MySQL:   SET @slave_uuid / @replica_uuid
//!   COM_REGISTER_SLAVE, COM_BINLOG_DUMP | COM_BINLOG_DUMP_GTID
//! then: 00 <event> ...   -> StreamEvent (decoded, raw bytes, start and next position)
//! ```
//!
//! Invariants:
//! - the checksum of every event is verified (the decoder knows the stream's checksum before
//!   the first event, so the first fake ROTATE's name never keeps 4 CRC bytes, mysql_async#189);
//! - positions are tracked as `u64`: an event's end is its header's 32-bit `log_pos` widened
//!   next to the previous end, so files past 4 GiB keep exact offsets;
//! - with [`RemoteOptions::tls`] set, the connection is TLS or nothing: a server without TLS, a
//!   certificate the CA does not sign or (verify-identity) that does not name the host is
//!   [`BinlogError::Tls`] (definite); a password never crosses a plain socket in clear;
//! - a start is never moved: a start the upstream no longer has is
//!   [`BinlogError::BinlogPurged`] (definite; names the file, or the GTID set, and for a file the
//!   oldest one left), a file position this server did not write (the primary was replaced:
//!   another identity than [`RemoteOptions::upstream_identity`], or a position its binlog index
//!   does not have) is [`BinlogError::UpstreamChanged`] (definite), a GTID start with
//!   transactions the server never wrote (a replica promoted before it caught up) is
//!   [`BinlogError::GtidsNotOnUpstream`] (definite); a network
//!   failure [`BinlogError::Network`] (transient), a server-id used by another replica
//!   [`BinlogError::ServerIdInUse`] (definite for a fixed id; an automatic one is replaced, see
//!   [`server_id`]), a binlog that is not ROW with FULL images
//!   [`BinlogError::BinlogFormatNotRow`] (definite; each of the two checks can be turned off).

mod connection;
mod row_format;
pub mod server_id;
mod start_check;
mod tls;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dm_core::{BinlogFileName, BinlogPosition, Flavor, GtidSet, TlsConfig, UpstreamIdentity};

use crate::error::BinlogError;
use crate::event::{ARTIFICIAL, EventData, EventDecoder, event_type};
use crate::stream::{EventStream, StartPoint, StreamEvent};
use connection::{Connection, Login};
pub use server_id::{
    AUTOMATIC_SERVER_ID_BASE, AUTOMATIC_SERVER_ID_COUNT, ServerIdChoice, choose_server_id,
};
/// The identity check of a position start, for the scripted source's opens.
#[cfg(feature = "testsuite")]
pub(crate) use start_check::check_identity;
pub use wire::ServerError;

/// How to reach the upstream and how to replicate from it. Its `Debug` shows the password as
/// `"***"` ([`dm_core::Redacted`]).
#[derive(Clone)]
pub struct RemoteOptions {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Replication user (needs REPLICATION SLAVE; REPLICATION CLIENT for the checks).
    pub user: String,
    /// Its password.
    pub password: String,
    /// TLS to the upstream (DM's `from.security`): `None` connects in plain TCP. Shared: the
    /// options are cloned for every reconnect, and kept small inside `AnyBinlogSource`.
    pub tls: Option<Arc<TlsConfig>>,
    /// This replica's server id: unique among the upstream's replicas and not the upstream's
    /// own. A fixed one is refused when taken; an automatic one is replaced (and the
    /// [`crate::BinlogSource`] implementation stores the replacement here).
    pub server_id: ServerIdChoice,
    /// How often the upstream sends a heartbeat when it has no events.
    pub heartbeat_period: Duration,
    /// How long to wait for any packet before calling the connection dead; defaults to three
    /// heartbeat periods.
    pub read_timeout: Option<Duration>,
    /// How long to wait for the TCP connection and the login.
    pub connect_timeout: Duration,
    /// End the stream (`next_event` returns `None`) at the end of the binlog instead of waiting.
    pub stop_at_end: bool,
    /// MariaDB: ask for ANNOTATE_ROWS events (the statement behind row events).
    pub annotate_rows: bool,
    /// The name this replica registers with (`SHOW SLAVE HOSTS`' Host column). It identifies
    /// this replica across its reconnects; unique per process by default.
    pub replica_name: String,
    /// Refuse an upstream whose `binlog_format` is not ROW (on by default: a replica of row
    /// images cannot apply statements exactly). DM's precheck item `binlog_format`; off for
    /// tools that only read the binlog, whatever its format.
    pub require_row_format: bool,
    /// Refuse an upstream whose `binlog_row_image` is not FULL (on by default: partial images
    /// cannot identify and complete rows). DM's precheck item `binlog_row_image`.
    pub require_full_row_image: bool,
    /// The upstream server that wrote the file positions this source opens at, when known:
    /// the caller sets the one stored with the checkpoint, and a position start on a server of
    /// another identity is refused ([`BinlogError::UpstreamChanged`]; a GTID start never is).
    /// Each open ([`crate::BinlogSource::open`]) replaces it with the server's own, since a
    /// reopen starts at a position that server wrote. `None`: not checked.
    pub upstream_identity: Option<UpstreamIdentity>,
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RemoteOptions {
            host,
            port,
            user,
            password,
            tls,
            server_id,
            heartbeat_period,
            read_timeout,
            connect_timeout,
            stop_at_end,
            annotate_rows,
            replica_name,
            require_row_format,
            require_full_row_image,
            upstream_identity,
        } = self;
        formatter
            .debug_struct("RemoteOptions")
            .field("host", host)
            .field("port", port)
            .field("user", user)
            .field("password", &dm_core::Redacted(password))
            .field("tls", tls)
            .field("server_id", server_id)
            .field("heartbeat_period", heartbeat_period)
            .field("read_timeout", read_timeout)
            .field("connect_timeout", connect_timeout)
            .field("stop_at_end", stop_at_end)
            .field("annotate_rows", annotate_rows)
            .field("replica_name", replica_name)
            .field("require_row_format", require_row_format)
            .field("require_full_row_image", require_full_row_image)
            .field("upstream_identity", upstream_identity)
            .finish()
    }
}

static REPLICA_COUNTER: AtomicU64 = AtomicU64::new(0);

impl RemoteOptions {
    /// Options with defaults: 30 s heartbeats, 10 s connect timeout, follow the binlog, require
    /// ROW / FULL; `server_id` is fixed (set [`RemoteOptions::server_id`] to
    /// [`ServerIdChoice::Automatic`] to have one chosen).
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: impl Into<String>,
        server_id: u32,
    ) -> Self {
        RemoteOptions {
            host: host.into(),
            port,
            user: user.into(),
            password: password.into(),
            tls: None,
            server_id: ServerIdChoice::Fixed(server_id),
            heartbeat_period: Duration::from_secs(30),
            read_timeout: None,
            connect_timeout: Duration::from_secs(10),
            stop_at_end: false,
            annotate_rows: false,
            replica_name: format!(
                "dm-binlog-{}-{}",
                std::process::id(),
                REPLICA_COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            require_row_format: true,
            require_full_row_image: true,
            upstream_identity: None,
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn open_connection(&self) -> Result<Connection, BinlogError> {
        Connection::open(Login {
            host: &self.host,
            port: self.port,
            user: &self.user,
            password: &self.password,
            tls: self.tls.as_deref(),
            connect_timeout: self.connect_timeout,
            read_timeout: self.effective_read_timeout(),
        })
        .await
    }

    fn effective_read_timeout(&self) -> Duration {
        self.read_timeout
            .unwrap_or_else(|| self.heartbeat_period.saturating_mul(3) + Duration::from_secs(1))
    }
}

/// What the upstream told about itself at connect time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamInfo {
    /// MySQL or MariaDB.
    pub flavor: Flavor,
    /// `SELECT VERSION()`, as the handshake sent it.
    pub server_version: String,
    /// The upstream's `server_id`.
    pub server_id: u32,
    /// MySQL's `server_uuid`; for MariaDB, which has none, a stable name made from the server id
    /// (used to name relay sub-directories).
    pub server_uuid: String,
    /// Whether events carry CRC32 checksums.
    pub checksum: bool,
    /// The connection id of the dump connection (what `KILL` takes).
    pub connection_id: u32,
}

/// A replication connection streaming events.
#[derive(Debug)]
pub struct RemoteSource {
    connection: Connection,
    decoder: EventDecoder,
    info: UpstreamInfo,
    /// The current file and where the next event starts in it.
    file: BinlogFileName,
    next_offset: u64,
    payload: Vec<u8>,
    stop_at_end: bool,
    ended: bool,
    /// The server id this stream registered with (an automatic one may differ from the
    /// options' when it was taken).
    server_id: ServerIdChoice,
    /// The start asked for (a position or a GTID set), named by the errors the dump answers.
    start: String,
    /// The upstream's identity (`@@server_id`, MySQL's `@@server_uuid`): what a checkpoint of
    /// a position read from this stream is stored with.
    identity: UpstreamIdentity,
}

impl RemoteSource {
    /// Connects, checks, and starts streaming at `start`.
    pub async fn connect(
        options: &RemoteOptions,
        start: &StartPoint,
    ) -> Result<RemoteSource, BinlogError> {
        let address = options.address();
        let unsupported = |reason: String| BinlogError::Unsupported {
            address: address.clone(),
            reason,
        };
        if options.server_id == ServerIdChoice::Fixed(0) {
            return Err(unsupported(
                "server-id 0 cannot replicate: choose a server-id above 0".into(),
            ));
        }
        let mut connection = options.open_connection().await?;
        let handshake = connection.handshake().clone();
        let flavor = if handshake.is_mariadb() {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        let rows = connection
            .query("SELECT @@global.server_id, @@global.binlog_checksum, @@global.log_bin")
            .await?;
        let row = rows.first().cloned().unwrap_or_default();
        let text = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
        let upstream_server_id: u32 = text(0)
            .parse()
            .map_err(|_| unsupported(format!("the upstream reports server_id {:?}", text(0))))?;
        let checksum = match text(1).to_ascii_uppercase().as_str() {
            "CRC32" => true,
            "NONE" | "" => false,
            other => {
                return Err(unsupported(format!(
                    "binlog_checksum {other} is not supported (NONE or CRC32)"
                )));
            }
        };
        if text(2) != "1" {
            return Err(unsupported(
                "the upstream does not write a binlog (log_bin is OFF): start it with --log-bin and binlog_format=ROW".into(),
            ));
        }
        row_format::check(
            &mut connection,
            &address,
            options.require_row_format,
            options.require_full_row_image,
        )
        .await?;
        // MariaDB has no server_uuid; a MySQL-compatible server without one (MySQL 5.5, some
        // proxies) answers an error, and is known by its server id alone.
        let own_uuid = match flavor {
            Flavor::MySql => match connection.query("SELECT @@global.server_uuid").await {
                Ok(rows) => rows
                    .first()
                    .and_then(|row| row.first().cloned().flatten())
                    .filter(|uuid| !uuid.is_empty()),
                Err(BinlogError::Server { .. }) => None,
                Err(error) => return Err(error),
            },
            Flavor::MariaDb => None,
        };
        let identity = UpstreamIdentity {
            server_id: upstream_server_id,
            server_uuid: own_uuid.clone(),
        };
        start_check::check_identity(
            &address,
            options.upstream_identity.as_ref(),
            &identity,
            start,
        )?;
        if let StartPoint::Position(position) = start {
            start_check::check_position(&mut connection, &address, position).await?;
        }
        let server_uuid = match own_uuid {
            Some(uuid) => uuid,
            None if flavor == Flavor::MariaDb => mariadb_server_uuid(upstream_server_id),
            None => String::new(),
        };
        let replicas = server_id::registered_replicas(&mut connection).await?;
        let choice = server_id::resolve(options, upstream_server_id, replicas.as_deref())?;
        let replica_server_id = choice.id();

        connection
            .execute("SET @master_binlog_checksum = @@global.binlog_checksum")
            .await?;
        let heartbeat = options
            .heartbeat_period
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64;
        connection
            .execute(&format!("SET @master_heartbeat_period = {heartbeat}"))
            .await?;
        match flavor {
            Flavor::MariaDb => {
                // Capability 4 (MARIA_SLAVE_CAPABILITY_GTID): send GTID events, GTID_LIST and
                // the other MariaDB events instead of replacing them with dummy queries.
                connection
                    .execute("SET @mariadb_slave_capability = 4")
                    .await?;
                if let StartPoint::Gtid(set) = start {
                    if set.flavor() != Flavor::MariaDb {
                        return Err(unsupported(format!(
                            "the upstream is MariaDB but the start GTID set '{set}' is MySQL's"
                        )));
                    }
                    connection
                        .execute(&format!("SET @slave_connect_state = '{set}'"))
                        .await?;
                    connection
                        .execute("SET @slave_gtid_strict_mode = 1")
                        .await?;
                    connection
                        .execute("SET @slave_gtid_ignore_duplicates = 0")
                        .await?;
                }
            }
            Flavor::MySql => {
                let uuid = replica_uuid(&options.replica_name);
                // Both names: MySQL 8.0.26+ reads @replica_uuid, older ones @slave_uuid.
                connection
                    .execute(&format!(
                        "SET @slave_uuid = '{uuid}', @replica_uuid = '{uuid}'"
                    ))
                    .await?;
            }
        }
        connection
            .command(
                "COM_REGISTER_SLAVE",
                &wire::register_replica_command(
                    replica_server_id,
                    &options.replica_name,
                    options.port,
                ),
            )
            .await?;

        let mut flags = 0;
        if options.stop_at_end {
            flags |= wire::DUMP_NON_BLOCK;
        }
        if options.annotate_rows && flavor == Flavor::MariaDb {
            flags |= wire::DUMP_SEND_ANNOTATE_ROWS;
        }
        let (command, file, offset) = match (start, flavor) {
            (StartPoint::Position(position), _) => {
                let name = position.file.to_string();
                let command = match u32::try_from(position.offset) {
                    Ok(offset) => {
                        wire::binlog_dump_command(replica_server_id, &name, offset, flags)
                    }
                    Err(_) if flavor == Flavor::MySql => wire::binlog_dump_gtid_command(
                        replica_server_id,
                        &name,
                        position.offset,
                        None,
                        flags,
                    )
                    .map_err(unsupported)?,
                    Err(_) => {
                        return Err(unsupported(format!(
                            "MariaDB cannot start a dump at offset {} (past 4 GiB); start from a GTID set instead",
                            position.offset
                        )));
                    }
                };
                (command, position.file.clone(), position.offset)
            }
            (StartPoint::Gtid(_), Flavor::MariaDb) => (
                wire::binlog_dump_command(replica_server_id, "", 4, flags),
                placeholder_file()?,
                4,
            ),
            (StartPoint::Gtid(set), Flavor::MySql) => {
                let GtidSet::MySql(mysql_set) = set else {
                    return Err(unsupported(format!(
                        "the upstream is MySQL but the start GTID set '{set}' is MariaDB's"
                    )));
                };
                (
                    wire::binlog_dump_gtid_command(
                        replica_server_id,
                        "",
                        4,
                        Some(mysql_set),
                        flags,
                    )
                    .map_err(unsupported)?,
                    placeholder_file()?,
                    4,
                )
            }
        };
        // The dump answers with events (or an error) and never with an OK: send without
        // reading; the first packet is read by `next_event`.
        connection.start_command(&command).await?;
        Ok(RemoteSource {
            decoder: EventDecoder::for_stream(file.to_string(), checksum),
            info: UpstreamInfo {
                flavor,
                // MariaDB prefixes its version with "5.5.5-" for old clients.
                server_version: handshake
                    .server_version
                    .strip_prefix("5.5.5-")
                    .unwrap_or(&handshake.server_version)
                    .to_owned(),
                server_id: upstream_server_id,
                server_uuid,
                checksum,
                connection_id: handshake.connection_id,
            },
            connection,
            file,
            next_offset: offset,
            payload: Vec::with_capacity(64 * 1024),
            stop_at_end: options.stop_at_end,
            ended: false,
            server_id: choice,
            start: start.to_string(),
            identity,
        })
    }

    /// The server id this stream registered with: the options' one, or for an automatic id
    /// that was taken (or not chosen yet), its replacement.
    pub fn server_id(&self) -> ServerIdChoice {
        self.server_id
    }

    /// What the upstream is.
    pub fn upstream(&self) -> &UpstreamInfo {
        &self.info
    }

    /// Which server this stream reads: the server that wrote the positions it yields, stored
    /// with a checkpoint so that a later start by position can check it
    /// ([`RemoteOptions::upstream_identity`]). Unlike [`UpstreamInfo::server_uuid`], a server
    /// without a `server_uuid` (MariaDB) has none here.
    pub fn upstream_identity(&self) -> &UpstreamIdentity {
        &self.identity
    }

    /// Where the next event starts, as far as the stream knows.
    pub fn next_position(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.next_offset)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        self.connection.quit().await;
    }

    /// The next event, or `None` at the end of the binlog when `stop_at_end` is set.
    pub async fn next_event(&mut self) -> Result<Option<StreamEvent>, BinlogError> {
        if self.ended {
            return Ok(None);
        }
        let mut payload = std::mem::take(&mut self.payload);
        let result = self.read_event(&mut payload).await;
        self.payload = payload;
        result
    }

    async fn read_event(
        &mut self,
        payload: &mut Vec<u8>,
    ) -> Result<Option<StreamEvent>, BinlogError> {
        self.connection.read_packet(payload).await?;
        match wire::packet_kind(payload) {
            wire::PacketKind::Ok => {}
            wire::PacketKind::Eof if self.stop_at_end => {
                self.ended = true;
                return Ok(None);
            }
            wire::PacketKind::Eof => {
                // A blocking dump only ends when the server stops it (KILL, shutdown).
                return Err(BinlogError::Network {
                    address: self.connection.address().to_owned(),
                    reason: "the server ended the binlog dump (its dump thread was killed or is shutting down)".into(),
                });
            }
            wire::PacketKind::Error => return Err(self.dump_error(payload)),
            wire::PacketKind::Other => {
                return Err(BinlogError::Unsupported {
                    address: self.connection.address().to_owned(),
                    reason: format!(
                        "unexpected packet starting with {:#04x} in the binlog stream",
                        payload.first().copied().unwrap_or_default()
                    ),
                });
            }
        }
        let raw = payload[1..].to_vec();
        let event = self.decoder.decode(&raw, self.next_offset)?;
        let size = raw.len() as u64;
        let header = event.header;
        let artificial = header.flags & ARTIFICIAL != 0
            || header.log_position == 0
            || header.event_type == event_type::HEARTBEAT;
        let (position, next_position) = if artificial {
            if let EventData::Rotate {
                position,
                next_file,
            } = &event.data
            {
                self.switch_file(next_file, *position)?;
            }
            let here = self.next_position();
            (here.clone(), here)
        } else {
            let end = widen(header.log_position, self.next_offset + size);
            let start = BinlogPosition::new(self.file.clone(), end.saturating_sub(size));
            self.next_offset = end;
            if let EventData::Rotate {
                position,
                next_file,
            } = &event.data
            {
                self.switch_file(next_file, *position)?;
            }
            (start, self.next_position())
        };
        Ok(Some(StreamEvent {
            event,
            raw,
            position,
            next_position,
            artificial,
        }))
    }

    fn switch_file(&mut self, next_file: &str, position: u64) -> Result<(), BinlogError> {
        self.file = BinlogFileName::parse(next_file).map_err(|error| BinlogError::Malformed {
            position: self.next_position().to_string(),
            event_type: "Rotate".into(),
            reason: error.to_string(),
        })?;
        self.next_offset = position;
        self.decoder.set_file(next_file);
        Ok(())
    }

    fn dump_error(&self, payload: &[u8]) -> BinlogError {
        let address = self.connection.address().to_owned();
        match wire::parse_error(payload) {
            Ok(error) => {
                let message = error.message.to_ascii_lowercase();
                if error.code == 1236 && message.contains("same server_uuid/server_id") {
                    // Another replica registered with our id (or our replica UUID) and the
                    // upstream ended this dump in its favour.
                    BinlogError::ServerIdInUse {
                        address,
                        server_id: self.server_id.id(),
                        holder: format!(
                            "a replica that connected after this one ({})",
                            error.message
                        ),
                        automatic: self.server_id.is_automatic(),
                    }
                } else if error.code == 1236
                    && (message.contains("purged")
                        || message.contains("could not find first log file")
                        || message.contains("could not find gtid state"))
                {
                    BinlogError::BinlogPurged {
                        address,
                        start: self.start.clone(),
                        message: error.message,
                    }
                } else if error.code == 1236
                    && (message.contains("not in the master's binlog")
                        || message.contains("is missing the gtid")
                        || message.contains("more gtids than the"))
                {
                    // The set names a transaction this server never wrote. MariaDB (GTID strict
                    // mode): ER_GTID_POSITION_NOT_FOUND_IN_BINLOG[2],
                    // ER_GTID_START_FROM_BINLOG_HOLE; MySQL: ER_SLAVE_HAS_MORE_GTIDS_THAN_MASTER.
                    BinlogError::GtidsNotOnUpstream {
                        address,
                        start: self.start.clone(),
                        message: error.message,
                    }
                } else {
                    BinlogError::Server {
                        address,
                        during: "the binlog dump".into(),
                        error,
                    }
                }
            }
            Err(reason) => BinlogError::Unsupported {
                address,
                reason: format!("unreadable error packet in the binlog stream: {reason}"),
            },
        }
    }
}

impl EventStream for RemoteSource {
    async fn next_event(&mut self) -> Result<Option<StreamEvent>, BinlogError> {
        RemoteSource::next_event(self).await
    }
}

/// The upstream's binlog files and their sizes (`SHOW BINARY LOGS`), oldest first.
pub async fn list_binary_logs(options: &RemoteOptions) -> Result<Vec<(String, u64)>, BinlogError> {
    let mut connection = options.open_connection().await?;
    let rows = connection.query("SHOW BINARY LOGS").await?;
    connection.quit().await;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let name = row.first().cloned().flatten()?;
            let size = row.get(1).cloned().flatten()?.parse().ok()?;
            Some((name, size))
        })
        .collect())
}

/// The u64 whose low 32 bits are `log_position`, nearest to `expected`.
fn widen(log_position: u32, expected: u64) -> u64 {
    let high = expected & !0xffff_ffff;
    let candidate = high | u64::from(log_position);
    let window = 1u64 << 31;
    if candidate + window < expected {
        candidate + (1 << 32)
    } else if candidate > expected + window && candidate >= 1 << 32 {
        candidate - (1 << 32)
    } else {
        candidate
    }
}

/// The file name used until the server's fake ROTATE names the real one (GTID starts).
fn placeholder_file() -> Result<BinlogFileName, BinlogError> {
    BinlogFileName::new("unknown", 0, 6).map_err(|error| BinlogError::Malformed {
        position: "start".into(),
        event_type: "-".into(),
        reason: error.to_string(),
    })
}

/// MariaDB has no server_uuid; name it by its server id in UUID form, stable across restarts.
fn mariadb_server_uuid(server_id: u32) -> String {
    format!("00000000-0000-0000-0000-{server_id:012x}")
}

/// A UUID made from the replica name, for MySQL's `@replica_uuid` (identifies the replica
/// across reconnects; a second connection with the same one replaces the first).
fn replica_uuid(name: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(name.as_bytes());
    let hex: String = digest
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let options = RemoteOptions::new("db", 3306, "repl", "s3cr3t-Pa55", 7);
        let shown = format!("{options:?} {options:#?}");
        assert!(!shown.contains("s3cr3t-Pa55"), "{shown}");
        assert!(
            shown.contains("password: \"***\"") && shown.contains("\"repl\""),
            "{shown}"
        );
    }

    #[test]
    fn log_positions_widen_past_four_gibibytes() {
        assert_eq!(widen(1000, 900), 1000);
        // 4 GiB + 100: the header wrapped.
        assert_eq!(widen(100, (1 << 32) + 50), (1 << 32) + 100);
        assert_eq!(widen(100, (1 << 32) - 50), (1 << 32) + 100);
        assert_eq!(
            widen(u32::MAX - 10, (1 << 32) + 5),
            u64::from(u32::MAX - 10)
        );
    }

    #[test]
    fn replica_uuids_are_stable_and_well_formed() {
        let uuid = replica_uuid("dm-binlog-1-0");
        assert_eq!(uuid, replica_uuid("dm-binlog-1-0"));
        assert_ne!(uuid, replica_uuid("dm-binlog-1-1"));
        assert!(dm_core::gtid::ServerUuid::parse(&uuid).is_some());
    }
}
