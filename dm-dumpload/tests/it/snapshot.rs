//! The snapshot against a live MariaDB taking writes: every connection of a `flush` snapshot
//! sees exactly the rows of the transactions before its location (counted in the binlog), and a
//! `none` snapshot sees at least the rows before its location and at most those before its exit
//! point. A user without RELOAD is told to grant it or use `consistency: none`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dm_core::{Flavor, Location};
use dm_dumpload::{Consistency, SnapshotOptions, open_snapshot, open_snapshot_locking};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};
use mysql_async::prelude::Queryable;

fn options(server: &MariaDb, user: &str, consistency: Consistency) -> SnapshotOptions {
    SnapshotOptions {
        host: "127.0.0.1".into(),
        port: server.port(),
        user: user.into(),
        password: String::new(),
        tls: None,
        connections: 4,
        consistency,
        flavor: Flavor::MariaDb,
    }
}

/// Rows inserted by the transactions that end at or before `location` (one row per event).
async fn rows_before(server: &MariaDb, location: &Location) -> u64 {
    let events = server
        .query(&format!(
            "SHOW BINLOG EVENTS IN '{}'",
            location.position.file.to_string().replace('\'', "")
        ))
        .await
        .expect("events");
    events
        .iter()
        .filter(|event| {
            event[2].as_deref() == Some("Write_rows_v1")
                && event[4]
                    .as_deref()
                    .and_then(|end| end.parse::<u64>().ok())
                    .is_some_and(|end| end <= location.position.offset)
        })
        .count() as u64
}

/// Starts a writer inserting one row per transaction until the flag is set.
fn writer(server: &MariaDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let opts = server.opts();
    tokio::spawn(async move {
        let mut connection = mysql_async::Conn::new(opts).await.expect("connect");
        let mut written = 0;
        while !stop.load(Ordering::Relaxed) {
            connection
                .query_drop("INSERT INTO shop.t (v) VALUES (1)")
                .await
                .expect("insert");
            written += 1;
        }
        written
    })
}

async fn counts(snapshot: &mut dm_dumpload::Snapshot) -> Vec<u64> {
    let mut counts = Vec::new();
    for connection in &mut snapshot.connections {
        // Twice: a snapshot does not move while the writer goes on.
        let first: Option<u64> = connection
            .query_first("SELECT COUNT(*) FROM shop.t")
            .await
            .expect("count");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second: Option<u64> = connection
            .query_first("SELECT COUNT(*) FROM shop.t")
            .await
            .expect("count");
        assert_eq!(first, second, "the snapshot moved");
        counts.push(first.unwrap_or_default());
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_match_their_binlog_location_while_the_upstream_writes() {
    let upstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("snapshot-upstream")).await);
    upstream
        .execute(
            "CREATE DATABASE shop; CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
        )
        .await
        .expect("schema");
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(&upstream, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut flush = open_snapshot(&options(&upstream, "root", Consistency::Flush))
        .await
        .expect("flush snapshot");
    assert!(flush.exit_point.is_none());
    let expected = rows_before(&upstream, &flush.location).await;
    let seen = counts(&mut flush).await;
    assert!(expected > 0, "the writer had written before the snapshot");
    assert!(
        seen.iter().all(|count| *count == expected),
        "every connection sees exactly the {expected} rows before {}: {seen:?}",
        flush.location.position
    );
    assert!(flush.location.gtid_set.is_some());

    let mut none = open_snapshot(&options(&upstream, "root", Consistency::None))
        .await
        .expect("none snapshot");
    let exit_point = none.exit_point.clone().expect("exit point");
    let low = rows_before(&upstream, &none.location).await;
    let high = rows_before(&upstream, &exit_point).await;
    for count in counts(&mut none).await {
        assert!(
            (low..=high).contains(&count),
            "{count} rows outside [{low}, {high}]"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let written = writing.await.expect("writer");
    assert!(written > expected, "the writer went on after the snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_privileges_are_named_with_what_to_do() {
    let upstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("privilege-upstream")).await);
    upstream
        .execute(
            "CREATE USER dumper@'%'; GRANT SELECT ON *.* TO dumper@'%';
             CREATE DATABASE shop; CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
        )
        .await
        .expect("user");
    let error = open_snapshot(&options(&upstream, "dumper", Consistency::Flush))
        .await
        .err()
        .expect("no RELOAD");
    let message = error.to_string();
    assert!(
        message.contains("RELOAD") && message.contains("--consistency none"),
        "{message}"
    );
    let error = open_snapshot(&options(&upstream, "dumper", Consistency::None))
        .await
        .err()
        .expect("no BINLOG MONITOR");
    assert!(error.to_string().contains("REPLICATION CLIENT"), "{error}");
    upstream
        .execute("GRANT BINLOG MONITOR ON *.* TO dumper@'%'")
        .await
        .expect("grant");
    let snapshot = open_snapshot(&options(&upstream, "dumper", Consistency::None))
        .await
        .expect("with BINLOG MONITOR");
    assert!(snapshot.exit_point.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_consistency_needs_lock_tables_not_reload() {
    let upstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("lock-upstream")).await);
    upstream
        .execute(
            "CREATE USER locker@'%'; GRANT SELECT, BINLOG MONITOR ON *.* TO locker@'%';
             CREATE DATABASE shop; CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
        )
        .await
        .expect("user");
    let tables = [dm_core::TableRef::new("shop", "t")];
    let error = open_snapshot_locking(&options(&upstream, "locker", Consistency::Lock), &tables)
        .await
        .err()
        .expect("no LOCK TABLES");
    let message = error.to_string();
    assert!(
        message.contains("LOCK TABLES") && message.contains("--consistency none"),
        "{message}"
    );
    upstream
        .execute("GRANT LOCK TABLES ON shop.* TO locker@'%'")
        .await
        .expect("grant");
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(&upstream, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut locked =
        open_snapshot_locking(&options(&upstream, "locker", Consistency::Lock), &tables)
            .await
            .expect("lock snapshot without RELOAD");
    assert!(locked.exit_point.is_none());
    let expected = rows_before(&upstream, &locked.location).await;
    let seen = counts(&mut locked).await;
    assert!(expected > 0);
    assert!(
        seen.iter().all(|count| *count == expected),
        "every connection sees exactly the {expected} rows before {}: {seen:?}",
        locked.location.position
    );
    stop.store(true, Ordering::Relaxed);
    writing.await.expect("writer");
}
