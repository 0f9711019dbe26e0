//! A MariaDB replication pair for failover tests: a primary and a replica of it by GTID.
//!
//! ```text
//! primary (log-bin, log-slave-updates, gtid-strict-mode)
//!    | CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos; START SLAVE
//!    v
//! replica (same options, another server id: it logs what it applies, under the primary's
//!          GTIDs and its own file names and offsets)
//! --promote()--> STOP SLAVE; RESET SLAVE ALL: the replica is the new primary
//! ```
//!
//! Both servers are [`MariaDb`] handles: dropped, they are killed and their files removed.

use std::time::Duration;

use crate::error::TestkitError;
use crate::mariadb::{MariaDb, MariaDbOptions};

/// How long [`ReplicationPair::wait_caught_up`] waits by default.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// A primary and its replica.
#[derive(Debug)]
pub struct ReplicationPair {
    /// The primary.
    pub primary: MariaDb,
    /// The replica, replicating from the primary by GTID until [`ReplicationPair::promote`].
    pub replica: MariaDb,
}

/// The options both servers of a pair start with.
fn pair_options(name: String) -> MariaDbOptions {
    MariaDbOptions::named(&name)
        .arg("--log-slave-updates=ON")
        .arg("--gtid-strict-mode=ON")
}

impl ReplicationPair {
    /// Starts both servers and the replication (`name` prefixes their names).
    pub async fn start(name: &str) -> Result<ReplicationPair, TestkitError> {
        ReplicationPair::start_with(name, None).await
    }

    /// Starts both servers, runs `prepare_replica` (SQL) on the replica before replication
    /// starts (to give it binlog events of its own, as a replica with a history has), then
    /// starts the replication.
    pub async fn start_with(
        name: &str,
        prepare_replica: Option<&str>,
    ) -> Result<ReplicationPair, TestkitError> {
        let (primary, replica) = tokio::join!(
            MariaDb::start_with(pair_options(format!("{name}-primary"))),
            MariaDb::start_with(pair_options(format!("{name}-replica"))),
        );
        let (primary, replica) = (primary?, replica?);
        if let Some(sql) = prepare_replica {
            replica.execute(sql).await?;
        }
        replica
            .execute(&format!(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, \
                 MASTER_USER = 'root', MASTER_PASSWORD = '', MASTER_USE_GTID = slave_pos, \
                 MASTER_CONNECT_RETRY = 1; START SLAVE",
                primary.port()
            ))
            .await?;
        Ok(ReplicationPair { primary, replica })
    }

    /// Waits until the replica applied everything the primary logged so far
    /// (`MASTER_GTID_WAIT` with the primary's `gtid_binlog_pos`).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), TestkitError> {
        let position = gtid_binlog_pos(&self.primary).await?;
        let answer = self
            .replica
            .query(&format!(
                "SELECT MASTER_GTID_WAIT('{position}', {})",
                timeout.as_secs_f64()
            ))
            .await?;
        match answer
            .first()
            .and_then(|row| row.first())
            .cloned()
            .flatten()
        {
            Some(result) if result == "0" => Ok(()),
            _ => Err(TestkitError::Timeout {
                what: format!(
                    "replica {} to reach the primary's GTID position {position}",
                    self.replica.name()
                ),
                after: timeout,
            }),
        }
    }

    /// Makes the replica a primary: stops and forgets its replication.
    pub async fn promote(&self) -> Result<(), TestkitError> {
        self.replica.execute("STOP SLAVE; RESET SLAVE ALL").await
    }
}

/// A server's `@@gtid_binlog_pos` (the last GTID it logged per domain).
pub async fn gtid_binlog_pos(server: &MariaDb) -> Result<String, TestkitError> {
    Ok(server
        .query("SELECT @@GLOBAL.gtid_binlog_pos")
        .await?
        .first()
        .and_then(|row| row.first())
        .cloned()
        .flatten()
        .unwrap_or_default())
}
