//! The `dm-syncer` example as a user runs it, from DM task and source files, killed with
//! SIGKILL at random points many times while the upstream keeps writing rows and DDL (a table
//! without any key included), then run to the end of the binlog: the downstream equals the
//! upstream, no row missing and none duplicated. A configuration error names the key and the file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas, or_skip};

use crate::kill_loop::{BANK_SCHEMA, kill_at_random_points, write_bank, write_bank_configs};

fn syncer_binary() -> PathBuf {
    crate::example_binary("dm-syncer")
}

fn write_configs(directory: &Path, upstream: &MariaDb, downstream: &MariaDb) -> (PathBuf, PathBuf) {
    write_bank_configs(
        directory,
        "bank-sync",
        downstream.port(),
        upstream.port(),
        7001,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_and_duplicates_nothing() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("kill-upstream")),
        MariaDb::start_with(MariaDbOptions::named("kill-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(BANK_SCHEMA).await.expect("schema");
    let binary = syncer_binary();
    let directory = tempfile::tempdir().expect("temp dir");
    let (task, source) = write_configs(directory.path(), &upstream, &downstream);

    // The upstream keeps writing while the syncer is killed again and again.
    let writer = write_bank(upstream.url(), 1500);
    let log_path = directory.path().join("syncer.log");
    let kills = kill_at_random_points(
        || {
            let mut command = Command::new(&binary);
            command
                .arg("--task")
                .arg(&task)
                .arg("--source")
                .arg(&source);
            command
        },
        0x9e37_79b9,
        &log_path,
    )
    .await;
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
