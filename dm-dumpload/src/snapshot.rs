//! A consistent snapshot of the upstream over several connections, and the binlog location it
//! corresponds to: where the syncer starts after the load.
//!
//! ```text
//! consistency flush:  lock connection: FLUSH TABLES WITH READ LOCK
//!                     each of N:       START TRANSACTION WITH CONSISTENT SNAPSHOT
//!                     lock connection: SHOW MASTER STATUS, GTID set  -> location
//!                                      UNLOCK TABLES                 (writes resume)
//! consistency lock:   the same with LOCK TABLES <dumped tables> READ (needs LOCK TABLES, not
//!                     RELOAD; writes to other tables go on)
//! consistency none:   location before the N transactions start, exit point after: the
//!                     syncer runs in safe mode from the one to the other
//! ```
//!
//! Invariant: with `flush`, every connection sees exactly the transactions before `location`
//! (writes are blocked while the snapshots start and the position is read). With `none`, each
//! connection sees everything before `location` and nothing after `exit_point`.

use dm_core::{BinlogPosition, Flavor, GtidSet, Location, TableRef};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::error::{DumpError, server_error};

/// How the snapshot is made consistent (DM's `--consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// FLUSH TABLES WITH READ LOCK while the snapshots start (DM's `flush`, and `auto`).
    Flush,
    /// LOCK TABLES ... READ on the dumped tables while the snapshots start (DM's `lock`): for
    /// users with LOCK TABLES but not RELOAD.
    Lock,
    /// No lock: the location is read before the snapshots start and an exit point after
    /// (for servers where FTWRL is not allowed).
    None,
}

impl Consistency {
    /// Reads DM's value: `auto` and `flush` lock, `none` does not; `snapshot` (TiDB only) is
    /// refused.
    pub fn parse(text: &str) -> Result<Self, DumpError> {
        match text.to_ascii_lowercase().as_str() {
            "auto" | "flush" => Ok(Consistency::Flush),
            "lock" => Ok(Consistency::Lock),
            "none" => Ok(Consistency::None),
            "snapshot" => Err(DumpError::Config(
                "consistency `snapshot` is not supported: it reads a TiDB snapshot at a TSO, which \
                 dumpling refuses for MySQL and MariaDB too; use `flush` (or `auto`), `lock`, or \
                 `none` (no lock; the syncer runs in safe mode until the recorded exit point)"
                    .into(),
            )),
            other => Err(DumpError::Config(format!(
                "consistency `{other}` is not supported: use `flush` (or `auto`), `lock` or `none`"
            ))),
        }
    }
}

/// Where and how to take the snapshot. Its `Debug` shows the password as `"***"`
/// ([`dm_core::Redacted`]).
#[derive(Clone)]
pub struct SnapshotOptions {
    /// Upstream host.
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// User: SELECT, RELOAD (for `flush`), REPLICATION CLIENT (to read the position).
    pub user: String,
    /// Password.
    pub password: String,
    /// TLS to the upstream (the source's `from.security`); `None`: plain TCP.
    pub tls: Option<dm_core::TlsConfig>,
    /// Connections that read in parallel, all in the same snapshot.
    pub connections: usize,
    /// How to make it consistent.
    pub consistency: Consistency,
    /// The upstream's flavour (which GTID variable to read).
    pub flavor: Flavor,
}

impl std::fmt::Debug for SnapshotOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let SnapshotOptions {
            host,
            port,
            user,
            password,
            tls,
            connections,
            consistency,
            flavor,
        } = self;
        formatter
            .debug_struct("SnapshotOptions")
            .field("host", host)
            .field("port", port)
            .field("user", user)
            .field("password", &dm_core::Redacted(password))
            .field("tls", tls)
            .field("connections", connections)
            .field("consistency", consistency)
            .field("flavor", flavor)
            .finish()
    }
}

/// Open snapshot transactions and the location they correspond to.
pub struct Snapshot {
    /// One open `REPEATABLE READ` transaction each, all seeing the same data with `flush`.
    pub connections: Vec<Conn>,
    /// The binlog location of the snapshot (file/position and the GTID set).
    pub location: Location,
    /// With `none`: the location after every snapshot started; the syncer runs in safe mode
    /// until it.
    pub exit_point: Option<Location>,
}

/// A privilege missing (1044, 1142, 1227).
fn denied(error: &DumpError) -> Option<String> {
    match error {
        DumpError::Server {
            code: 1044 | 1142 | 1227,
            message,
            ..
        } => Some(message.clone()),
        _ => None,
    }
}

pub(crate) async fn connect(options: &SnapshotOptions) -> Result<Conn, DumpError> {
    let address = format!("{}:{}", options.host, options.port);
    let mut builder = OptsBuilder::default()
        .ip_or_hostname(options.host.clone())
        .tcp_port(options.port)
        .user(Some(options.user.clone()))
        .pass(Some(options.password.clone()))
        .prefer_socket(false);
    if let Some(tls) = &options.tls {
        // The same TLS options as the downstream's (dm-sink): the CA only, the name checked.
        let ssl = dm_sink::ssl_options(tls).map_err(|reason| DumpError::Tls {
            address: address.clone(),
            reason,
        })?;
        builder = builder.ssl_opts(ssl);
    }
    let mut connection = match Conn::new(builder).await {
        Ok(connection) => connection,
        Err(error) => {
            if let Some(reason) = options
                .tls
                .as_ref()
                .and_then(|tls| dm_sink::tls_connect_error(tls, &error))
            {
                return Err(DumpError::Tls { address, reason });
            }
            return Err(server_error("connect", error));
        }
    };
    // Table definitions (TIMESTAMP defaults) are read in UTC, as the loader runs them; readers
    // then switch to the dump's time zone (TIMESTAMP values are read as instants). A slow
    // loader must not make the server drop a connection that waits to send the next rows.
    execute(
        &mut connection,
        "SET SESSION time_zone = '+00:00', SESSION net_write_timeout = 3600, \
         SESSION net_read_timeout = 3600",
    )
    .await?;
    Ok(connection)
}

async fn execute(connection: &mut Conn, statement: &str) -> Result<(), DumpError> {
    connection
        .query_drop(statement)
        .await
        .map_err(|error| server_error(statement, error))
}

/// The binlog location now: `SHOW MASTER STATUS` and the flavour's executed GTID set.
pub async fn current_location(
    connection: &mut Conn,
    flavor: Flavor,
) -> Result<Location, DumpError> {
    let statement = "SHOW MASTER STATUS";
    let row: Option<(String, u64)> = match connection
        .query_first::<mysql_async::Row, _>(statement)
        .await
    {
        Ok(row) => row.and_then(|row| Some((row.get(0)?, row.get(1)?))),
        Err(error) => {
            let error = server_error(statement, error);
            return Err(match denied(&error) {
                Some(message) => DumpError::Privilege {
                    privilege: "REPLICATION CLIENT (BINLOG MONITOR on MariaDB)",
                    statement: statement.into(),
                    message,
                    advice: "grant it to the task's upstream user",
                },
                None => error,
            });
        }
    };
    let (file, offset) = row.ok_or_else(|| {
        DumpError::Unexpected(
            "SHOW MASTER STATUS is empty: the upstream has no binary log; start it with log_bin and binlog_format=ROW".into(),
        )
    })?;
    let position = BinlogPosition::parse(&format!("{file}:{offset}"))
        .map_err(|error| DumpError::Unexpected(format!("SHOW MASTER STATUS: {error}")))?;
    let variable = match flavor {
        Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
        Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
    };
    let text: Option<String> = connection
        .query_first(variable)
        .await
        .map_err(|error| server_error(variable, error))?;
    let text: String = text.unwrap_or_default().split_whitespace().collect();
    let gtid_set = GtidSet::parse(flavor, &text)
        .map_err(|error| DumpError::Unexpected(format!("{variable}: {error}")))?;
    let mut location = Location::from_position(position);
    location.gtid_set = Some(std::sync::Arc::new(gtid_set));
    Ok(location)
}

async fn start_snapshots(connections: &mut [Conn]) -> Result<(), DumpError> {
    for connection in connections {
        execute(
            connection,
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        )
        .await?;
        execute(connection, "START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
    }
    Ok(())
}

/// Opens `options.connections` snapshot transactions and reads their location (with
/// `Consistency::Lock`, nothing is locked: use [`open_snapshot_locking`]).
pub async fn open_snapshot(options: &SnapshotOptions) -> Result<Snapshot, DumpError> {
    open_snapshot_locking(options, &[]).await
}

/// Opens `options.connections` snapshot transactions and reads their location; with
/// `Consistency::Lock`, `tables` are locked while the snapshots start.
pub async fn open_snapshot_locking(
    options: &SnapshotOptions,
    tables: &[TableRef],
) -> Result<Snapshot, DumpError> {
    let mut connections = Vec::with_capacity(options.connections.max(1));
    for _ in 0..options.connections.max(1) {
        connections.push(connect(options).await?);
    }
    let mut control = connect(options).await?;
    let lock = match options.consistency {
        Consistency::Flush => Some((
            "FLUSH TABLES WITH READ LOCK".to_owned(),
            "RELOAD (for FLUSH TABLES WITH READ LOCK)",
            "grant RELOAD to the upstream user, or set `--consistency lock` (needs LOCK TABLES) or `--consistency none` in the task's mydumpers extra-args (with none the syncer runs in safe mode until the recorded exit point)",
        )),
        Consistency::Lock if !tables.is_empty() => {
            let names: Vec<String> = tables
                .iter()
                .map(|table| format!("{} READ", table.quoted()))
                .collect();
            Some((
                format!("LOCK TABLES {}", names.join(", ")),
                "LOCK TABLES (and SELECT) on the dumped databases",
                "grant them to the upstream user, or set `--consistency none` in the task's mydumpers extra-args (the syncer then runs in safe mode until the recorded exit point)",
            ))
        }
        // Nothing to lock: no table can change under the snapshot.
        Consistency::Lock => None,
        Consistency::None => {
            let location = current_location(&mut control, options.flavor).await?;
            start_snapshots(&mut connections).await?;
            let exit_point = current_location(&mut control, options.flavor).await?;
            return Ok(Snapshot {
                connections,
                location,
                exit_point: Some(exit_point),
            });
        }
    };
    if let Some((statement, privilege, advice)) = &lock
        && let Err(error) = execute(&mut control, statement).await
    {
        return Err(match denied(&error) {
            Some(message) => DumpError::Privilege {
                privilege,
                statement: statement.chars().take(200).collect(),
                message,
                advice,
            },
            None => error,
        });
    }
    let started = start_snapshots(&mut connections).await;
    let location = match started {
        Ok(()) => current_location(&mut control, options.flavor).await,
        Err(error) => Err(error),
    };
    // Writes resume whatever happened.
    let unlocked = match lock {
        Some(_) => execute(&mut control, "UNLOCK TABLES").await,
        None => Ok(()),
    };
    let location = location?;
    unlocked?;
    Ok(Snapshot {
        connections,
        location,
        exit_point: None,
    })
}
