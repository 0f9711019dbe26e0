//! The `binlog-dump` example as a user runs it (README): against a live MariaDB it prints every
//! binlog event as JSON lines, with the positions `SHOW BINLOG EVENTS` gives and the statements
//! written; a bad start gives an error that says what is wrong.

use std::process::Command;

use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

fn binlog_dump(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "binlog-dump", "--"])
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_dump_prints_a_live_servers_binlog() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("binlog-dump")).await);
    server
        .execute(
            "CREATE DATABASE shop;
             CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20));
             INSERT INTO shop.items VALUES (1, 'tea'), (2, 'coffee');",
        )
        .await
        .expect("write");
    let port = server.port().to_string();
    let output = binlog_dump(&[
        "--port",
        &port,
        "--start",
        "mysql-bin.000001:4",
        "--format",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let real: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["artificial"] == false)
        .collect();
    let shown = server
        .query("SHOW BINLOG EVENTS IN 'mysql-bin.000001'")
        .await
        .expect("events");
    assert_eq!(real.len(), shown.len());
    for (line, row) in real.iter().zip(&shown) {
        assert_eq!(
            line["position"],
            format!("mysql-bin.000001:{}", row[1].clone().expect("pos"))
        );
    }
    assert!(lines.iter().any(|line| line["event"]["sql"]
        == "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20))"));
    assert!(
        lines.iter().any(|line| line["event"]["sql"]
            == "INSERT INTO shop.items VALUES (1, 'tea'), (2, 'coffee')")
    );

    let text = binlog_dump(&["--port", &port, "--start", "mysql-bin.000001:4"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("MARIADB_GTID"), "{text}");

    // --start-time: a date before everything finds the first transaction.
    let first_gtid = shown
        .iter()
        .find(|row| row[2].as_deref() == Some("Gtid"))
        .and_then(|row| row[1].clone())
        .expect("a GTID event");
    let by_time = binlog_dump(&["--port", &port, "--start-time", "2000-01-01 00:00:00"]);
    let message = String::from_utf8_lossy(&by_time.stderr);
    assert!(
        message.contains(&format!("is at mysql-bin.000001:{first_gtid}")),
        "{message}"
    );
    let future = binlog_dump(&["--port", &port, "--start-time", "2100-01-01 00:00:00"]);
    assert!(!future.status.success());

    let purged = binlog_dump(&["--port", &port, "--start", "mysql-bin.000099:4"]);
    assert!(!purged.status.success());
    let message = String::from_utf8_lossy(&purged.stderr);
    assert!(message.contains("mysql-bin.000099"), "{message}");
}
