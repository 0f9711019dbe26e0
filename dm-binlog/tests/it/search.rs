//! `find_start_by_time` against a live MariaDB whose transactions carry chosen timestamps
//! (`SET TIMESTAMP`) across three binlog files: the result is the first transaction at or
//! after the time, as `SHOW BINLOG EVENTS` places it.

use dm_binlog::find_start_by_time;
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::remote::options_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_transaction_at_or_after_a_time_is_found() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("time-search")).await);
    // Times after the server's own start-up events.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1_000_000;
    server
        .execute(&format!(
            "SET TIMESTAMP = {base}; CREATE DATABASE a; CREATE TABLE a.t (id INT PRIMARY KEY);
             FLUSH BINARY LOGS;
             SET TIMESTAMP = {}; INSERT INTO a.t VALUES (1); INSERT INTO a.t VALUES (2);
             FLUSH BINARY LOGS;
             SET TIMESTAMP = {}; INSERT INTO a.t VALUES (3);
             SET TIMESTAMP = {}; INSERT INTO a.t VALUES (4);",
            base + 100,
            base + 200,
            base + 250
        ))
        .await
        .expect("writes");
    let gtid_positions = |file: &'static str| {
        let server = &server;
        async move {
            server
                .query(&format!("SHOW BINLOG EVENTS IN '{file}'"))
                .await
                .expect("events")
                .into_iter()
                .filter(|row| row[2].as_deref() == Some("Gtid"))
                .map(|row| format!("{file}:{}", row[1].clone().expect("pos")))
                .collect::<Vec<_>>()
        }
    };
    let first = gtid_positions("mysql-bin.000001").await;
    let second = gtid_positions("mysql-bin.000002").await;
    let third = gtid_positions("mysql-bin.000003").await;
    let options = options_for(&server, 401);
    let find = |time: u64| {
        let options = options.clone();
        async move {
            find_start_by_time(&options, time as u32)
                .await
                .expect("search")
                .map(|position| position.to_string())
        }
    };
    assert_eq!(find(base).await.as_ref(), first.first());
    assert_eq!(find(base + 50).await.as_ref(), second.first());
    assert_eq!(find(base + 100).await.as_ref(), second.first());
    assert_eq!(find(base + 201).await.as_ref(), third.get(1));
    assert_eq!(find(base + 250).await.as_ref(), third.get(1));
    assert_eq!(find(base + 1000).await, None);
}
