//! The start checks: before a dump from a file position, is the position one this server wrote?
//!
//! ```text
//! RemoteSource::connect(Position(file:offset)), upstream_identity: the checkpoint's (if any)
//!   @@server_id, @@server_uuid (read at connect)       the server that wrote the position?
//!   SHOW BINARY LOGS                                   is `file` there, is `offset` inside it?
//!   SHOW BINLOG EVENTS IN 'file' FROM offset LIMIT 1   does an event start at `offset`?
//!   -> COM_BINLOG_DUMP, or a definite error that names the file and what to do
//! ```
//!
//! A file position means something only on the server that wrote it. After a failover the new
//! primary (a replica with `log_slave_updates`) has the same transactions under its own file
//! names and offsets, and an old position there is either missing, past a file's end, inside
//! an event, or (by chance) at an unrelated event: a file both servers have, at its start or
//! end (always event boundaries, never asked about), or at an offset where both happen to
//! have an event. The first three are found in the binlog index; the last only by the
//! server's identity: the caller passes the [`UpstreamIdentity`] stored with the checkpoint
//! (the server that wrote the position), and a server of another `server_id`, or of another
//! `server_uuid` when both are known, is refused before its files are looked at
//! ([`identity_change`], pure). Without a stored identity (a checkpoint of an earlier version,
//! or one read through the relay log) only the binlog index is checked. A GTID start needs
//! none of this, identity included: GTIDs are the same on every server of the group, and the
//! server finds the set in its own binlog (or answers 1236, mapped in the parent module).
//!
//! Invariants: a start is never moved: a purged file is [`BinlogError::BinlogPurged`] naming it
//! and the oldest file left (never "start from the oldest", pingcap/tiflow#3506), a position
//! this server did not write is [`BinlogError::UpstreamChanged`]; both definite. The identity
//! check needs no privilege; the binlog index checks need REPLICATION CLIENT (MariaDB 10.5+:
//! BINLOG MONITOR), and without it they are skipped and the dump's own 1236 still reports a
//! missing file.

use dm_core::{BinlogFileName, BinlogPosition, UpstreamIdentity};

use super::connection::Connection;
use crate::error::BinlogError;
use crate::stream::StartPoint;

/// Why a start at `start` may not be read from the server `connected`, given the server that
/// wrote it (`written_by`, stored with the checkpoint): `Some(reason)` for a file position
/// written by a server of another identity ([`UpstreamIdentity::same_server`]); `None` for a
/// GTID start, for an unknown writer, and for the same server.
pub(crate) fn identity_change(
    written_by: Option<&UpstreamIdentity>,
    connected: &UpstreamIdentity,
    start: &StartPoint,
) -> Option<String> {
    let StartPoint::Position(_) = start else {
        return None;
    };
    let written_by = written_by?;
    (!written_by.same_server(connected)).then(|| {
        format!(
            "it is the server with {connected}, and the position was written by the server \
             with {written_by} (a file of that name and an event at that offset here would be \
             there by chance): resume by GTID set (`enable-gtid: true`), or point the task's \
             checkpoint at the matching position on this server"
        )
    })
}

/// Checks that the server `connected` wrote a start at `start`, by the identity stored with
/// it ([`identity_change`]).
pub(crate) fn check_identity(
    address: &str,
    written_by: Option<&UpstreamIdentity>,
    connected: &UpstreamIdentity,
    start: &StartPoint,
) -> Result<(), BinlogError> {
    match identity_change(written_by, connected, start) {
        Some(reason) => Err(BinlogError::UpstreamChanged {
            address: address.to_owned(),
            start: start.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// What the upstream's binlog index says about a start position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The file is there and the offset within it; `check_event` when an event must start at
    /// the offset (not the file's start or end, which always are event boundaries).
    Present {
        /// Whether to ask the server for the event at the offset.
        check_event: bool,
    },
    /// The file is older than the oldest file the server keeps.
    Purged {
        /// The oldest file left.
        oldest: String,
    },
    /// The offset is past the end of the server's file of that name.
    PastEnd {
        /// The file's size on this server.
        size: u64,
    },
    /// The server has no file of that name and never had (newer than its newest, or another
    /// base name).
    NotWritten {
        /// Its oldest file.
        first: String,
        /// Its newest file.
        last: String,
    },
    /// The server lists no files (or none parse): nothing to say.
    Unknown,
}

/// Places `position` among the server's binlog files (`SHOW BINARY LOGS`: name and size,
/// oldest first).
pub(crate) fn locate(files: &[(String, u64)], position: &BinlogPosition) -> Finding {
    let wanted = position.file.to_string();
    if let Some((_, size)) = files.iter().find(|(name, _)| *name == wanted) {
        return if position.offset > *size {
            Finding::PastEnd { size: *size }
        } else {
            Finding::Present {
                check_event: position.offset > 4 && position.offset < *size,
            }
        };
    }
    let (Some((first, _)), Some((last, _))) = (files.first(), files.last()) else {
        return Finding::Unknown;
    };
    let Ok(oldest) = BinlogFileName::parse(first) else {
        return Finding::Unknown;
    };
    if oldest.base() == position.file.base() && position.file.sequence() < oldest.sequence() {
        Finding::Purged {
            oldest: first.clone(),
        }
    } else {
        Finding::NotWritten {
            first: first.clone(),
            last: last.clone(),
        }
    }
}

/// Whether a server error only says that the user may not run the check.
fn not_allowed(error: &BinlogError) -> bool {
    matches!(error, BinlogError::Server { error, .. } if matches!(error.code, 1044 | 1045 | 1142 | 1227))
}

/// Checks that the server wrote `position` (see the module documentation).
pub(crate) async fn check_position(
    connection: &mut Connection,
    address: &str,
    position: &BinlogPosition,
) -> Result<(), BinlogError> {
    let rows = match connection.query("SHOW BINARY LOGS").await {
        Ok(rows) => rows,
        Err(error) if not_allowed(&error) => return Ok(()),
        Err(error) => return Err(error),
    };
    let files: Vec<(String, u64)> = rows
        .into_iter()
        .filter_map(|row| {
            let name = row.first().cloned().flatten()?;
            let size = row.get(1).cloned().flatten()?.parse().ok()?;
            Some((name, size))
        })
        .collect();
    let file = &position.file;
    let changed = |reason: String| BinlogError::UpstreamChanged {
        address: address.to_owned(),
        start: position.to_string(),
        reason,
    };
    match locate(&files, position) {
        Finding::Unknown | Finding::Present { check_event: false } => Ok(()),
        Finding::Purged { oldest } => Err(BinlogError::BinlogPurged {
            address: address.to_owned(),
            start: position.to_string(),
            message: format!(
                "{file} is not among its binlog files any more; the oldest it keeps is {oldest} (SHOW BINARY LOGS)"
            ),
        }),
        Finding::PastEnd { size } => Err(changed(format!(
            "its {file} is {size} bytes long and the position is past its end"
        ))),
        Finding::NotWritten { first, last } => Err(changed(format!(
            "it has no binlog file {file} and never had one (its files run from {first} to {last})"
        ))),
        Finding::Present { check_event: true } => {
            let sql = format!(
                "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT 1",
                file.to_string().replace('\'', "''"),
                position.offset
            );
            match connection.query(&sql).await {
                Ok(_) => Ok(()),
                Err(error) if not_allowed(&error) => Ok(()),
                // 1220: "Wrong offset or I/O error": no event starts there.
                Err(BinlogError::Server { error, .. }) if error.code == 1220 => {
                    Err(changed(format!(
                        "no event starts at offset {} of its {file} ({error})",
                        position.offset
                    )))
                }
                Err(error) => Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, u64)> {
        vec![
            ("mysql-bin.000003".into(), 1000),
            ("mysql-bin.000004".into(), 500),
        ]
    }

    fn at(text: &str) -> BinlogPosition {
        BinlogPosition::parse(text).expect("position")
    }

    #[test]
    fn a_position_start_on_a_server_of_another_identity_is_refused() {
        let old = UpstreamIdentity::from_server_id(1);
        let new = UpstreamIdentity::from_server_id(2);
        let position = StartPoint::Position(at("mysql-bin.000001:4"));
        let reason = identity_change(Some(&old), &new, &position).expect("refused");
        assert!(
            reason.contains("server_id 1")
                && reason.contains("server_id 2")
                && reason.contains("enable-gtid: true"),
            "{reason}"
        );
        let error = check_identity("db:3306", Some(&old), &new, &position).expect_err("refused");
        let BinlogError::UpstreamChanged { start, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(start, "mysql-bin.000001:4");
        assert_eq!(
            dm_core::ClassifiedError::code(&error).to_string(),
            "DM-11014"
        );
        // The same server, an unknown writer, and any GTID start go on.
        assert_eq!(identity_change(Some(&new), &new, &position), None);
        assert_eq!(identity_change(None, &new, &position), None);
        let gtid = StartPoint::Gtid(dm_core::GtidSet::empty(dm_core::Flavor::MariaDb));
        assert_eq!(identity_change(Some(&old), &new, &gtid), None);
        assert!(check_identity("db:3306", Some(&old), &new, &gtid).is_ok());
        // MySQL: a clone that kept the server_id has another server_uuid.
        let uuid = |text: &str| UpstreamIdentity {
            server_id: 1,
            server_uuid: Some(text.into()),
        };
        let original = uuid("3e11fa47-71ca-11e1-9e33-c80aa9429562");
        let clone = uuid("8a94f357-aab4-11df-86ab-c80aa9429562");
        let reason = identity_change(Some(&original), &clone, &position).expect("refused");
        assert!(
            reason.contains("3e11fa47-71ca-11e1-9e33-c80aa9429562")
                && reason.contains("8a94f357-aab4-11df-86ab-c80aa9429562"),
            "{reason}"
        );
        assert_eq!(identity_change(Some(&old), &original, &position), None);
    }

    #[test]
    fn a_position_is_placed_among_the_servers_files() {
        let files = files();
        assert_eq!(
            locate(&files, &at("mysql-bin.000003:4")),
            Finding::Present { check_event: false }
        );
        assert_eq!(
            locate(&files, &at("mysql-bin.000003:1000")),
            Finding::Present { check_event: false }
        );
        assert_eq!(
            locate(&files, &at("mysql-bin.000004:120")),
            Finding::Present { check_event: true }
        );
        assert_eq!(
            locate(&files, &at("mysql-bin.000004:501")),
            Finding::PastEnd { size: 500 }
        );
        assert_eq!(
            locate(&files, &at("mysql-bin.000001:4")),
            Finding::Purged {
                oldest: "mysql-bin.000003".into()
            }
        );
        for unknown in ["mysql-bin.000009:4", "other-bin.000001:4"] {
            assert_eq!(
                locate(&files, &at(unknown)),
                Finding::NotWritten {
                    first: "mysql-bin.000003".into(),
                    last: "mysql-bin.000004".into()
                },
                "{unknown}"
            );
        }
        assert_eq!(locate(&[], &at("mysql-bin.000001:4")), Finding::Unknown);
    }
}
