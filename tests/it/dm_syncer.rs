//! The `dm-syncer` example as a user runs it, from DM task and source files, killed with
//! SIGKILL at random points many times while the upstream keeps writing rows and DDL (a table
//! without any key included), then run to the end of the binlog: the downstream equals the
//! upstream, no row missing and none duplicated. A configuration error names the key and the file.
//! The shipped sample task and source files (`examples/config/`) run in mode `all` against two
//! servers the runner did not start, and Ctrl-C stops it cleanly; an error is one report.

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

/// Runs the runner on a task file and a source file with these texts, with `RUST_BACKTRACE=1`
/// (an error must be one report even then).
fn run_on_files(task_text: &str, source_text: &str) -> std::process::Output {
    let directory = tempfile::tempdir().expect("temp dir");
    let task = directory.path().join("task.yaml");
    let source = directory.path().join("source.yaml");
    std::fs::write(&task, task_text).expect("write");
    std::fs::write(&source, source_text).expect("write");
    Command::new(syncer_binary())
        .arg("--task")
        .arg(&task)
        .arg("--source")
        .arg(&source)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("runs")
}

/// A source file whose upstream is on a port nothing listens on.
const NOWHERE_SOURCE: &str = "source-id: s\nfrom: {host: 127.0.0.1, port: 1, user: root}\n";

#[test]
fn a_config_error_names_the_key_and_the_file() {
    let output = run_on_files(
        "name: t\ntarget-database: {host: 127.0.0.1, port: 1, user: root}\nmysql-instances:\n  - source-id: s\n    syncer-config-name: missing\n",
        NOWHERE_SOURCE,
    );
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("task.yaml"), "{message}");
    assert!(
        message.contains("`missing` is not defined in `syncers`"),
        "{message}"
    );
    // One report, even with the backtrace asked for.
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        message
            .lines()
            .filter(|line| line.starts_with("error:"))
            .count(),
        1,
        "{message}"
    );
    assert!(message.contains("DM-14006"), "{message}");
    assert!(!message.contains("backtrace"), "{message}");
}

/// The shipped samples (`examples/config/`) with the servers' ports set, in `directory`.
fn samples_for(directory: &Path, upstream: &MariaDb, downstream: &MariaDb) -> (PathBuf, PathBuf) {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config");
    let task = std::fs::read_to_string(samples.join("task.yaml"))
        .expect("sample task")
        .replacen("port: 4000", &format!("port: {}", downstream.port()), 1);
    let source = std::fs::read_to_string(samples.join("source.yaml"))
        .expect("sample source")
        .replacen("port: 3306", &format!("port: {}", upstream.port()), 1);
    let (task_path, source_path) = (directory.join("task.yaml"), directory.join("source.yaml"));
    std::fs::write(&task_path, task).expect("write");
    std::fs::write(&source_path, source).expect("write");
    (task_path, source_path)
}

/// `CHECKSUM TABLE` of each table.
async fn checksums(server: &MariaDb, schema: &str, tables: &[&str]) -> Vec<Option<String>> {
    let mut sums = Vec::new();
    for table in tables {
        let rows = server
            .query(&format!("CHECKSUM TABLE `{schema}`.`{table}`"))
            .await
            .unwrap_or_default();
        sums.push(rows.first().and_then(|row| row.get(1).cloned().flatten()));
    }
    sums
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_runs_the_sample_task_in_mode_all_against_servers_it_did_not_start() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("runner-upstream")),
        MariaDb::start_with(MariaDbOptions::named("runner-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute(
            "CREATE DATABASE store;
             CREATE TABLE store.goods (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2) NOT NULL);
             CREATE TABLE store.stock_moves (id BIGINT AUTO_INCREMENT PRIMARY KEY, goods_id INT NOT NULL, delta INT NOT NULL);
             INSERT INTO store.goods VALUES (1, 'tea', 3.50), (2, 'coffee', 4.20);
             INSERT INTO store.stock_moves (goods_id, delta) SELECT seq % 2 + 1, seq FROM store.seq_1_to_20000;
             CREATE DATABASE other; CREATE TABLE other.ignored (a INT); INSERT INTO other.ignored VALUES (1);",
        )
        .await
        .expect("data");
    let directory = tempfile::tempdir().expect("temp dir");
    let (task, source) = samples_for(directory.path(), &upstream, &downstream);
    // The dump directory (`loaders.dir: ./dumped_data`) goes into the working directory.
    let mut runner = crate::kill_loop::Running(
        Command::new(syncer_binary())
            .arg("--task")
            .arg(&task)
            .arg("--source")
            .arg(&source)
            .current_dir(directory.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the runner starts"),
    );
    // Once loaded, rows the dump cannot have: the sync unit brings them.
    let loaded = dm_testkit::wait_for("the load", Duration::from_secs(60), || async {
        downstream
            .query("SELECT COUNT(*) FROM store_copy.stock_moves")
            .await
            .is_ok_and(|rows| rows[0][0].as_deref() == Some("20000"))
    })
    .await;
    upstream
        .execute("INSERT INTO store.goods VALUES (3, 'cake', 2.95); UPDATE store.goods SET price = 4.50 WHERE id = 2; DELETE FROM store.stock_moves WHERE id <= 10")
        .await
        .expect("live writes");
    let tables = ["goods", "stock_moves"];
    let expected = checksums(&upstream, "store", &tables).await;
    let arrived =
        dm_testkit::wait_for("store_copy equal to store", Duration::from_secs(60), || {
            let expected = expected.clone();
            let downstream = &downstream;
            async move { checksums(downstream, "store_copy", &tables).await == expected }
        })
        .await;
    // Ctrl-C: a stop at the next transaction end.
    let pid = runner.0.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    let started = Instant::now();
    while runner.0.try_wait().expect("wait").is_none()
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut out) = runner.0.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = runner.0.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    loaded
        .and(arrived)
        .unwrap_or_else(|error| panic!("{error}\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    let status = runner.0.try_wait().expect("wait");
    assert!(
        status.is_some_and(|status| status.success()),
        "{status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("20002 rows in"), "{stdout}");
    assert!(stdout.contains("stopped: 12 rows applied"), "{stdout}");
    assert!(stderr.contains("replication continues from"), "{stderr}");
    // The block-allow list kept the other database out.
    let other = downstream
        .query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'other%'")
        .await
        .expect("schemata");
    assert_eq!(other[0][0].as_deref(), Some("0"));
    // `clean-dump-file`: the dump is removed once loaded.
    assert!(!directory.path().join("dumped_data.sample").exists());
}

#[test]
fn a_refused_connection_is_one_report_without_a_backtrace() {
    let output = run_on_files(
        "name: t\ntask-mode: incremental\ntarget-database: {host: 127.0.0.1, port: 1, user: root}\nmysql-instances:\n  - source-id: s\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n",
        NOWHERE_SOURCE,
    );
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("cannot connect to the upstream at 127.0.0.1:1"),
        "{message}"
    );
    assert!(message.contains("source.yaml: from"), "{message}");
    assert!(message.contains("what to do:"), "{message}");
    assert_eq!(message.matches("refused").count(), 1, "{message}");
    assert!(!message.contains("Input/output error"), "{message}");
    assert!(!message.contains("backtrace"), "{message}");
}
