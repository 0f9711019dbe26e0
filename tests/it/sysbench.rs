//! Sysbench's own workloads (`oltp_write_only`, then `oltp_read_write`, 4 threads) on a live
//! upstream MariaDB, replicated by the syncer to an empty downstream: every sbtest table equal by
//! checksum after catch-up.

use std::time::Duration;

use dm::binlog::RemoteOptions;
use dm::core::{BinlogPosition, Location};
use dm::sink::MySqlSinkOptions;
use dm::syncer::{SyncerSettings, SyncerStatus, run};
use dm::task::InstanceRules;
use dm_testkit::workloads::Sysbench;
use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas, or_skip};

fn sysbench(port: u16, workload: &str, phase: &str, extra: &[&str]) {
    let workload = Sysbench {
        workload,
        tables: 4,
        table_size: 2000,
    };
    if let Err(error) = workload.run(port, phase, extra) {
        panic!("{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_workloads_replicate_with_equal_checksums() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("sysbench-upstream")),
        MariaDb::start_with(MariaDbOptions::named("sysbench-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute("CREATE DATABASE sbtest")
        .await
        .expect("database");
    sysbench(
        upstream.port(),
        "oltp_write_only",
        "prepare",
        &["--threads=2"],
    );
    sysbench(
        upstream.port(),
        "oltp_write_only",
        "run",
        &["--threads=4", "--time=4"],
    );
    sysbench(
        upstream.port(),
        "oltp_read_write",
        "run",
        &["--threads=4", "--time=4"],
    );

    let mut source = RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", 801);
    source.stop_at_end = true;
    let start =
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));
    let settings = SyncerSettings {
        workers: 8,
        checkpoint_interval: Duration::from_secs(1),
        ..SyncerSettings::new("sysbench", "up")
    };
    let rules = InstanceRules::default();
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let status = run(
        settings,
        source,
        start,
        MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", ""),
        rules,
        stop,
        progress,
    )
    .await
    .expect("syncer");
    assert!(status.rows_dispatched > 10_000, "{status:?}");
    let mut left = upstream.connect().await.expect("connect");
    let mut right = downstream.connect().await.expect("connect");
    let difference = compare_schemas(&mut left, &mut right, "sbtest")
        .await
        .expect("compare");
    assert!(difference.is_none(), "{difference:?}");
}
