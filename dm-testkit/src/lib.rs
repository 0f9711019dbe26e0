//! # dm-testkit: real servers for tests
//!
//! Test support for the dm crates (a dev-dependency, never a dependency of a library): isolated
//! `mariadbd` and `etcd` processes on loopback, SQL helpers, and a data comparison of two servers.
//!
//! ```text
//! test --start--> MariaDb (temp datadir from a template, free port, own socket, server-id, ROW binlog)
//!      --start--> EtcdCluster (1 or N members, temp data dirs, free client/peer ports)
//!      --start--> ReplicationPair (a MariaDB primary and its GTID replica; promote() for failover)
//!      --new----> TmpfsMount (a size-limited tmpfs on a temp dir, for disk-full tests; root only)
//!      --new----> NetworkNamespace (own netns + veth; partition / heal / throttle; root only)
//!      --use----> url() / connect() / execute() / query() / compare_schemas()
//!      --drop---> SIGKILL by PID, reap, remove the temp dir (a watchdog does it if the test dies)
//! ```
//!
//! Invariants:
//! - every process a test starts is stopped when its handle drops, on panic too, and a watchdog
//!   stops it if the test process is killed; its temp directory is removed;
//! - a [`TmpfsMount`] is unmounted when its handle drops, on panic too; a [`NetworkNamespace`]
//!   and its veth are deleted likewise;
//! - servers listen on 127.0.0.1 only, or on the address of a namespace the test made;
//! - a missing binary is [`TestkitError::MissingBinary`], missing shared fixtures
//!   [`TestkitError::MissingFixture`], a mount without root [`TestkitError::NotPermitted`]: with
//!   [`or_skip!`] the test is skipped with a loud message, except when `CI=true`, where it fails.
//!
//! ```no_run
//! # async fn example() {
//! use dm_testkit::{MariaDb, or_skip};
//! let upstream = or_skip!(MariaDb::start().await);
//! upstream.execute("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY)").await.unwrap();
//! # }
//! ```

pub mod containers;
pub mod error;
pub mod etcd;
pub mod fake_mysql;
pub mod fixtures;
pub mod fuzz;
pub mod mariadb;
pub mod mount;
pub mod netns;
pub mod pair;
pub mod process;
pub mod sql;
pub mod tls;
pub mod workloads;

use std::future::Future;
use std::time::{Duration, Instant};

pub use error::TestkitError;
pub use etcd::{Etcd, EtcdCluster, EtcdTiming};
pub use fake_mysql::{FakeMySqlScript, FakeMySqlSource};
pub use fixtures::shared_fixture;
pub use mariadb::{MariaDb, MariaDbOptions};
pub use mount::TmpfsMount;
pub use netns::NetworkNamespace;
pub use pair::ReplicationPair;
pub use process::process_alive;
pub use sql::{SchemaDifference, TableChecksum, compare_schemas, compare_tables};
pub use tls::TestCertificates;

/// Whether the tests run in CI (`CI=true` or `CI=1`), where a missing server binary fails.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// What a test does when starting a server failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipDecision {
    /// A binary or fixture is missing outside CI: skip the test with a loud message.
    Skip,
    /// Anything else, or any failure in CI: fail the test.
    Fail,
}

/// Decides between skipping and failing; see [`or_skip!`].
pub fn skip_decision(error: &TestkitError, in_ci: bool) -> SkipDecision {
    if error.is_missing_prerequisite() && !in_ci {
        SkipDecision::Skip
    } else {
        SkipDecision::Fail
    }
}

/// Prints the loud skip message.
pub fn announce_skip(error: &TestkitError) {
    eprintln!(
        "\n************************************************************\n\
         SKIPPED: {error}\n\
         (this test needs a real server or the shared fixtures; with CI=true it fails instead)\n\
         ************************************************************\n"
    );
}

/// Unwraps a server start (or a fixture lookup), or skips the test (returns from it) when the
/// server binary or fixture is missing, or panics: on any other error, and on a missing binary or
/// fixture when `CI=true`.
#[macro_export]
macro_rules! or_skip {
    ($start:expr) => {
        match $start {
            Ok(server) => server,
            Err(error) => match $crate::skip_decision(&error, $crate::is_ci()) {
                $crate::SkipDecision::Skip => {
                    $crate::announce_skip(&error);
                    return;
                }
                $crate::SkipDecision::Fail => panic!("test prerequisite failed: {error}"),
            },
        }
    };
}

/// Polls `condition` every 50 ms until it returns true, or fails after `timeout` with an error
/// naming `what`.
pub async fn wait_for<Condition, Check>(
    what: &str,
    timeout: Duration,
    mut condition: Condition,
) -> Result<(), TestkitError>
where
    Condition: FnMut() -> Check,
    Check: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(TestkitError::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_skip_outside_ci_and_fail_in_ci() {
        let missing = TestkitError::MissingBinary {
            binary: "mariadbd".into(),
            hint: "install it".into(),
        };
        assert_eq!(skip_decision(&missing, false), SkipDecision::Skip);
        assert_eq!(skip_decision(&missing, true), SkipDecision::Fail);
        let other = TestkitError::Timeout {
            what: "x".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(skip_decision(&other, false), SkipDecision::Fail);
    }

    #[tokio::test]
    async fn wait_for_names_what_it_waited_for() {
        let error = wait_for("the moon", Duration::from_millis(120), || async { false })
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "timed out after 120ms waiting for the moon"
        );
        let mut calls = 0;
        wait_for("three calls", Duration::from_secs(5), || {
            calls += 1;
            let done = calls >= 3;
            async move { done }
        })
        .await
        .unwrap();
        assert_eq!(calls, 3);
    }
}
