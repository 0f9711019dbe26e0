//! The `dm-syncer` example as a user runs it, from DM task and source files, killed with
//! SIGKILL at random points many times while the upstream keeps writing rows and DDL (a table
//! without any key included), then run to the end of the binlog: the downstream equals the
//! upstream, no row missing and none duplicated. A configuration error names the key and the file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas, or_skip};

fn syncer_binary() -> PathBuf {
    crate::example_binary("dm-syncer")
}

/// Kills the child when dropped (a failing test leaves nothing running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_configs(directory: &Path, upstream: &MariaDb, downstream: &MariaDb) -> (PathBuf, PathBuf) {
    let task = directory.join("task.yaml");
    let source = directory.join("source.yaml");
    std::fs::write(
        &task,
        format!(
            "name: bank-sync
task-mode: incremental
target-database:
  host: 127.0.0.1
  port: {}
  user: root
  password: \"\"
block-allow-list:
  only-bank:
    do-dbs: [\"bank\"]
syncers:
  default:
    worker-count: 4
    batch: 20
    checkpoint-flush-interval: 1
mysql-instances:
  - source-id: upstream-1
    block-allow-list: only-bank
    syncer-config-name: default
    meta:
      binlog-name: mysql-bin.000001
      binlog-pos: 4
",
            downstream.port()
        ),
    )
    .expect("task file");
    std::fs::write(
        &source,
        format!(
            "source-id: upstream-1
flavor: mariadb
server-id: 7001
from:
  host: 127.0.0.1
  port: {}
  user: root
  password: \"\"
",
            upstream.port()
        ),
    )
    .expect("source file");
    (task, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_and_duplicates_nothing() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("kill-upstream")),
        MariaDb::start_with(MariaDbOptions::named("kill-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute(
            "CREATE DATABASE bank; USE bank;
             CREATE TABLE ledger (account INT, amount INT);
             CREATE TABLE balances (account INT PRIMARY KEY, total INT);
             INSERT INTO balances SELECT seq, 0 FROM seq_1_to_50;
             CREATE DATABASE other; CREATE TABLE other.ignored (a INT); INSERT INTO other.ignored VALUES (1);",
        )
        .await
        .expect("schema");
    let binary = syncer_binary();
    let directory = tempfile::tempdir().expect("temp dir");
    let (task, source) = write_configs(directory.path(), &upstream, &downstream);

    // The upstream keeps writing while the syncer is killed again and again.
    let writer_server = upstream.url();
    let writer = tokio::spawn(async move {
        use mysql_async::prelude::Queryable;
        let mut connection = mysql_async::Conn::from_url(writer_server)
            .await
            .expect("connect");
        for round in 0..1500u32 {
            let (a, b) = (round % 50 + 1, (round * 7) % 50 + 1);
            connection
                .query_drop(format!(
                    "START TRANSACTION;
                     INSERT INTO bank.ledger (account, amount) VALUES ({a}, 10), ({a}, 10), ({b}, -5);
                     UPDATE bank.balances SET total = total + 15 WHERE account IN ({a}, {b});
                     COMMIT;"
                ))
                .await
                .expect("write");
            if round % 100 == 99 {
                connection
                    .query_drop("DELETE FROM bank.ledger WHERE amount = -5 LIMIT 3")
                    .await
                    .expect("delete");
            }
            // DDL among the writes, so that kills fall in DDL windows too: rows before and
            // after each must decode with their own columns, and no DDL may run twice.
            if round % 150 == 75 {
                connection
                    .query_drop(format!(
                        "ALTER TABLE bank.ledger ADD COLUMN note_{round} INT DEFAULT {round}"
                    ))
                    .await
                    .expect("alter");
            }
        }
    });

    let log_path = directory.path().join("syncer.log");
    let mut kills = 0;
    let mut seed = 0x9e37_79b9_u64;
    for _ in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Running(
            Command::new(&binary)
                .arg("--task")
                .arg(&task)
                .arg("--source")
                .arg(&source)
                .stdout(Stdio::null())
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log_path)
                        .expect("log"),
                )
                .spawn()
                .expect("dm-syncer starts"),
        );
        tokio::time::sleep(Duration::from_millis(300 + seed % 900)).await;
        if child.0.try_wait().expect("status").is_none() {
            kills += 1;
        }
        // SIGKILL: no cleanup of any kind.
        let _ = child.0.kill();
        let _ = child.0.wait();
    }
    writer.await.expect("writer");
    assert!(
        kills >= 8,
        "only {kills} runs were still running when killed; their output:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );

    // Catch up to the end of the binlog, then compare.
    let started = Instant::now();
    let output = Command::new(&binary)
        .arg("--task")
        .arg(&task)
        .arg("--source")
        .arg(&source)
        .arg("--stop-at-end")
        .output()
        .expect("dm-syncer runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("stopped:"), "{summary}");
    let mut left = upstream.connect().await.expect("connect");
    let mut right = downstream.connect().await.expect("connect");
    let difference = compare_schemas(&mut left, &mut right, "bank")
        .await
        .expect("compare");
    assert!(difference.is_none(), "{difference:?}");
    // The block-allow list kept the other schema out.
    let other = downstream
        .query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'other'")
        .await
        .expect("schemata");
    assert_eq!(other[0][0].as_deref(), Some("0"));
}

#[test]
fn a_config_error_names_the_key_and_the_file() {
    let binary = syncer_binary();
    let directory = tempfile::tempdir().expect("temp dir");
    let task = directory.path().join("task.yaml");
    let source = directory.path().join("source.yaml");
    std::fs::write(
        &task,
        "name: t\ntarget-database: {host: 127.0.0.1, port: 1, user: root}\nmysql-instances:\n  - source-id: s\n    syncer-config-name: missing\n",
    )
    .expect("write");
    std::fs::write(
        &source,
        "source-id: s\nfrom: {host: 127.0.0.1, port: 1, user: root}\n",
    )
    .expect("write");
    let output = Command::new(&binary)
        .arg("--task")
        .arg(&task)
        .arg("--source")
        .arg(&source)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("task.yaml"), "{message}");
    assert!(
        message.contains("`missing` is not defined in `syncers`"),
        "{message}"
    );
}
