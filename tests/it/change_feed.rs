//! The `change-feed` example as a user runs it, from DM task and source files, killed with
//! SIGKILL at random points many times while the upstream keeps writing rows and DDL (a table
//! without any key included), then run to the end of the binlog. Its feed then holds every
//! upstream change exactly once (no two change lines with one binlog position and row index),
//! in commit order per row (each change's before image is the row as the earlier lines left
//! it), and replaying it gives the upstream's final tables; each DDL statement is in it once.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dm_testkit::{MariaDb, MariaDbOptions, or_skip};
use serde_json::Value as Json;

use crate::kill_loop::{BANK_SCHEMA, kill_at_random_points, write_bank, write_bank_configs};

fn command(binary: &Path, task: &Path, source: &Path, feed: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("--task")
        .arg(task)
        .arg("--source")
        .arg(source)
        .arg("--feed")
        .arg(feed);
    command
}

fn integer(image: &Json, column: &str) -> i64 {
    image
        .get(column)
        .and_then(Json::as_i64)
        .unwrap_or_else(|| panic!("{image} has no integer `{column}`"))
}

/// The rows of `sql`'s two integer columns.
async fn pairs(upstream: &MariaDb, sql: &str) -> Vec<(i64, i64)> {
    let mut rows: Vec<(i64, i64)> = upstream
        .query(sql)
        .await
        .expect("query")
        .into_iter()
        .map(|row| {
            let number = |index: usize| -> i64 {
                row[index]
                    .as_deref()
                    .and_then(|text| text.parse().ok())
                    .expect("a number")
            };
            (number(0), number(1))
        })
        .collect();
    rows.sort_unstable();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_loop_writes_each_change_once_in_commit_order() {
    let upstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("feed-upstream")).await);
    upstream.execute(BANK_SCHEMA).await.expect("schema");
    let binary = crate::example_binary("change-feed");
    let directory = tempfile::tempdir().expect("temp dir");
    // The task's target database is not used by the change feed (DM requires the key).
    let (task, source) =
        write_bank_configs(directory.path(), "bank-feed", 1, upstream.port(), 7101);
    let feed = directory.path().join("changes.jsonl");

    // The upstream keeps writing while the feed's writer is killed again and again.
    let writer = write_bank(upstream.url(), 1200);
    let log_path = directory.path().join("feed.log");
    let kills = kill_at_random_points(
        || command(&binary, &task, &source, &feed),
        0x51ed_2701,
        &log_path,
    )
    .await;
    writer.await.expect("writer");
    assert!(
        kills >= 8,
        "only {kills} runs were still running when killed; their output:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );

    // Catch up to the end of the binlog.
    let started = Instant::now();
    let output = command(&binary, &task, &source, &feed)
        .arg("--stop-at-end")
        .output()
        .expect("change-feed runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("stopped:"), "{summary}");

    // Replay the feed.
    let text = std::fs::read_to_string(&feed).expect("feed");
    assert!(text.ends_with('\n'), "the feed ends with a complete line");
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut balances: BTreeMap<i64, i64> = BTreeMap::new();
    let mut ledger: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    let mut ddls: Vec<String> = Vec::new();
    let mut changes = 0;
    for (number, line) in text.lines().enumerate() {
        let line: Json = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("line {}: {error}: {line}", number + 1));
        let op = line["op"].as_str().expect("op");
        match op {
            "insert" | "update" | "delete" => {}
            "ddl" => {
                ddls.push(line["sql"].as_str().expect("sql").to_owned());
                continue;
            }
            "commit" | "checkpoint" | "catalog" => continue,
            other => panic!("line {}: unknown op {other}", number + 1),
        }
        changes += 1;
        let position = line["position"].as_str().expect("position").to_owned();
        let row = line["row"].as_u64().expect("row");
        assert!(
            seen.insert((position.clone(), row)),
            "line {}: the change at {position} row {row} is in the feed twice",
            number + 1
        );
        assert_eq!(line["table"]["schema"], "bank", "line {}", number + 1);
        let (before, after) = (&line["before"], &line["after"]);
        match line["table"]["table"].as_str().expect("table") {
            "balances" => {
                if !before.is_null() {
                    let account = integer(before, "account");
                    assert_eq!(
                        balances.remove(&account),
                        Some(integer(before, "total")),
                        "line {}: the before image is the row as the earlier lines left it",
                        number + 1
                    );
                }
                if !after.is_null() {
                    let account = integer(after, "account");
                    assert!(
                        balances.insert(account, integer(after, "total")).is_none(),
                        "line {}: account {account} inserted twice",
                        number + 1
                    );
                }
            }
            "ledger" => {
                if !before.is_null() {
                    let key = (integer(before, "account"), integer(before, "amount"));
                    let count = ledger.get_mut(&key).unwrap_or_else(|| {
                        panic!("line {}: deletes {key:?}, which is not there", number + 1)
                    });
                    *count -= 1;
                    if *count == 0 {
                        ledger.remove(&key);
                    }
                }
                if !after.is_null() {
                    *ledger
                        .entry((integer(after, "account"), integer(after, "amount")))
                        .or_default() += 1;
                }
            }
            other => panic!("line {}: a change of table {other}", number + 1),
        }
    }
    assert!(changes > 3000, "{changes} changes");
    let expected_balances = pairs(&upstream, "SELECT account, total FROM bank.balances").await;
    assert_eq!(
        balances.into_iter().collect::<Vec<_>>(),
        expected_balances,
        "the feed replays to the upstream's balances"
    );
    let expected_ledger = pairs(&upstream, "SELECT account, amount FROM bank.ledger").await;
    let mut replayed: Vec<(i64, i64)> = ledger
        .into_iter()
        .flat_map(|(row, count)| std::iter::repeat_n(row, count))
        .collect();
    replayed.sort_unstable();
    assert_eq!(
        replayed, expected_ledger,
        "the feed replays to the upstream's ledger"
    );
    // Each statement once: the schema's, the two tables', and every ALTER.
    let alters: Vec<&String> = ddls
        .iter()
        .filter(|sql| sql.contains("ADD COLUMN"))
        .collect();
    assert_eq!(alters.len(), 8, "{ddls:#?}");
    let unique: HashSet<&String> = ddls.iter().collect();
    assert_eq!(unique.len(), ddls.len(), "a DDL statement twice: {ddls:#?}");
    assert!(
        ddls.iter().any(|sql| sql.contains("CREATE TABLE")),
        "{ddls:#?}"
    );
}
