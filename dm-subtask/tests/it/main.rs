//! The subtask against real MariaDB servers (`dm-testkit`, started per test and always
//! stopped): mode `all` with writes during the dump; a pause during the load; a stop now
//! during sync and a restart; an event that stops the task and `binlog skip`; a downstream
//! restart that the auto-resume rides out; a dump directory on a full file system that the
//! auto-resume rides out once space is freed; a stop on an idle upstream; no password in the
//! logs, statuses or errors of a run that works and of runs that fail.

mod disk_full;
mod lifecycle;
mod meta;
mod modes;
mod redaction;
mod tls_files;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dm_subtask::{AutoResume, SubtaskHandle, SubtaskSpec, SubtaskStatus};
use dm_task::{SourceConfig, TaskConfig};
use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas};

/// A task file for `mode` into `downstream`, replicating the schema `shop`; `extra` is
/// appended at the top level (sections such as `mydumpers`).
pub(crate) fn task_file(name: &str, mode: &str, downstream: &MariaDb, extra: &str) -> String {
    format!(
        "name: {name}
task-mode: {mode}
target-database:
  host: 127.0.0.1
  port: {port}
  user: root
  password: \"\"
block-allow-list:
  only-shop:
    do-dbs: [shop]
syncers:
  global:
    worker-count: 3
    batch: 50
    checkpoint-flush-interval: 1
mysql-instances:
  - source-id: upstream-1
    block-allow-list: only-shop
    syncer-config-name: global
    meta:
      binlog-name: mysql-bin.000001
      binlog-pos: 4
{extra}",
        port = downstream.port()
    )
}

/// The source file of `upstream`.
pub(crate) fn source_file(upstream: &MariaDb) -> String {
    format!(
        "source-id: upstream-1
flavor: mariadb
from:
  host: 127.0.0.1
  port: {}
  user: root
  password: \"\"
",
        upstream.port()
    )
}

/// The spec of the task and source files, with a short heartbeat and checkpoint interval and
/// a fast auto-resume.
pub(crate) fn spec(task: &str, source: &str) -> SubtaskSpec {
    let task = TaskConfig::from_yaml(task, "task.yaml").unwrap_or_else(|error| panic!("{error}"));
    let source =
        SourceConfig::from_yaml(source, "source.yaml").unwrap_or_else(|error| panic!("{error}"));
    let mut spec = SubtaskSpec::new(task, source, "task.yaml", "source.yaml")
        .unwrap_or_else(|error| panic!("{error}"));
    spec.remote.heartbeat_period = Duration::from_millis(500);
    spec.syncer.checkpoint_interval = Duration::from_millis(200);
    spec.auto_resume = AutoResume {
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        jitter: false,
        ..AutoResume::default()
    };
    spec
}

/// Two servers for a test.
pub(crate) async fn servers(
    name: &str,
) -> (
    Result<MariaDb, dm_testkit::TestkitError>,
    Result<MariaDb, dm_testkit::TestkitError>,
) {
    tokio::join!(
        MariaDb::start_with(MariaDbOptions::named(&format!("{name}-up"))),
        MariaDb::start_with(MariaDbOptions::named(&format!("{name}-down"))),
    )
}

/// Whether `schema` is equal on both servers.
pub(crate) async fn equal(upstream: &MariaDb, downstream: &MariaDb, schema: &str) -> bool {
    let (Ok(mut left), Ok(mut right)) = (upstream.connect().await, downstream.connect().await)
    else {
        return false;
    };
    matches!(
        compare_schemas(&mut left, &mut right, schema).await,
        Ok(None)
    )
}

/// Waits until `schema` is equal on both servers, or panics with the subtask's status.
pub(crate) async fn wait_equal(
    upstream: &MariaDb,
    downstream: &MariaDb,
    schema: &str,
    subtask: &SubtaskHandle,
) {
    if dm_testkit::wait_for(
        "downstream equal to upstream",
        Duration::from_secs(60),
        || equal(upstream, downstream, schema),
    )
    .await
    .is_err()
    {
        panic!("not equal in time; status: {:#?}", subtask.status());
    }
}

/// Waits until the subtask's status satisfies `condition`, or panics with the status.
pub(crate) async fn wait_status(
    subtask: &SubtaskHandle,
    what: &str,
    condition: impl FnMut(&SubtaskStatus) -> bool,
) -> SubtaskStatus {
    match tokio::time::timeout(Duration::from_secs(60), subtask.wait_for(condition)).await {
        Ok(Ok(status)) => status,
        Ok(Err(error)) => panic!("{what}: {error}; status: {:#?}", subtask.status()),
        Err(_) => panic!("{what}: not in time; status: {:#?}", subtask.status()),
    }
}

/// Writes into `shop.items` (keyed) and `shop.notes` (no key) until `stop`, one transaction
/// of two statements each; returns the rounds written.
pub(crate) fn writer(upstream: &MariaDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    dm_testkit::workloads::write_until(upstream.opts(), stop, |round| {
        let (items, notes) = match round % 3 {
            0 => (
                format!("INSERT INTO shop.items (v, note) VALUES ({round}, 'new')"),
                format!("INSERT INTO shop.notes VALUES ({round}, 'w')"),
            ),
            1 => (
                format!(
                    "UPDATE shop.items SET v = v + 1, note = 'upd' WHERE id = {}",
                    round * 7 % 20_000
                ),
                format!("INSERT INTO shop.notes VALUES ({round}, 'u')"),
            ),
            _ => (
                format!("DELETE FROM shop.items WHERE id = {}", round * 13 % 20_000),
                format!(
                    "DELETE FROM shop.notes WHERE n = {} LIMIT 1",
                    round.saturating_sub(3)
                ),
            ),
        };
        format!("START TRANSACTION; {items}; {notes}; COMMIT")
    })
}

/// `shop.items` (keyed, `rows` rows) and `shop.notes` (no key).
pub(crate) fn shop(rows: u64) -> String {
    format!(
        "CREATE DATABASE shop;
CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40));
INSERT INTO shop.items (v, note) SELECT seq, CONCAT('row ', seq) FROM shop.seq_1_to_{rows};
CREATE TABLE shop.notes (n INT, what VARCHAR(20));
INSERT INTO shop.notes VALUES (1, 'static'), (1, 'static');
ANALYZE TABLE shop.items;"
    )
}
