//! What the kill -9 tests of the standalone replicators (`dm-syncer`, `change-feed`) share: the
//! bank schema, its task and source files, and the workload the upstream writes meanwhile (rows,
//! deletes and DDL, a table without any key included), a child that is always killed, and the
//! loop that starts the example and kills it with SIGKILL at random points.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The upstream's tables: `bank.ledger` has no key, `bank.balances` a primary key;
/// `other.ignored` is for the block-allow list to keep out.
pub(crate) const BANK_SCHEMA: &str = "CREATE DATABASE bank; USE bank;
     CREATE TABLE ledger (account INT, amount INT);
     CREATE TABLE balances (account INT PRIMARY KEY, total INT);
     INSERT INTO balances SELECT seq, 0 FROM seq_1_to_50;
     CREATE DATABASE other; CREATE TABLE other.ignored (a INT); INSERT INTO other.ignored VALUES (1);";

/// Writes `task.yaml` (task `name`, replicating `bank` from the binlog's start with 4 workers,
/// batches of 20 and a checkpoint every second, into the target database on `target_port`) and
/// `source.yaml` (the upstream on `upstream_port`, as replica `server_id`) into `directory`.
pub(crate) fn write_bank_configs(
    directory: &Path,
    name: &str,
    target_port: u16,
    upstream_port: u16,
    server_id: u32,
) -> (PathBuf, PathBuf) {
    let task = directory.join("task.yaml");
    let source = directory.join("source.yaml");
    std::fs::write(
        &task,
        format!(
            "name: {name}
task-mode: incremental
target-database:
  host: 127.0.0.1
  port: {target_port}
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
"
        ),
    )
    .expect("task file");
    std::fs::write(
        &source,
        format!(
            "source-id: upstream-1
flavor: mariadb
server-id: {server_id}
from:
  host: 127.0.0.1
  port: {upstream_port}
  user: root
  password: \"\"
"
        ),
    )
    .expect("source file");
    (task, source)
}

/// Kills the child when dropped (a failing test leaves nothing running).
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `rounds` transactions into the bank tables at `url`, with a few deletes and an
/// `ALTER TABLE bank.ledger ADD COLUMN` every 150 rounds (from round 75), so that kills fall in
/// DDL windows too.
pub(crate) fn write_bank(url: String, rounds: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use mysql_async::prelude::Queryable;
        let mut connection = mysql_async::Conn::from_url(url).await.expect("connect");
        for round in 0..rounds {
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
            // DDL among the writes: rows before and after each must be read with their own
            // columns, and no DDL may run twice.
            if round % 150 == 75 {
                connection
                    .query_drop(format!(
                        "ALTER TABLE bank.ledger ADD COLUMN note_{round} INT DEFAULT {round}"
                    ))
                    .await
                    .expect("alter");
            }
        }
    })
}

/// Starts `command()` 10 times, each killed with SIGKILL after 0.3 to 1.2 s (xorshift of
/// `seed`), its stderr appended to `log`; returns how many runs were still running when killed.
pub(crate) async fn kill_at_random_points(
    mut command: impl FnMut() -> Command,
    seed: u64,
    log: &Path,
) -> usize {
    let mut kills = 0;
    let mut seed = seed;
    for _ in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Running(
            command()
                .stdout(Stdio::null())
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log)
                        .expect("log"),
                )
                .spawn()
                .expect("the example starts"),
        );
        tokio::time::sleep(Duration::from_millis(300 + seed % 900)).await;
        if child.0.try_wait().expect("status").is_none() {
            kills += 1;
        }
        // SIGKILL: no cleanup of any kind.
        let _ = child.0.kill();
        let _ = child.0.wait();
    }
    kills
}
