//! Sysbench's 8 tables of 100 000 rows plus every type: a load killed with SIGKILL in the
//! middle resumes and loads every chunk exactly once (the loader inserts with plain INSERT, so
//! a chunk loaded twice would fail on its keys); checksums equal. The same dataset through the
//! direct stream.

use std::process::Command;
use std::time::{Duration, Instant};

use dm_dumpload::{Compression, dump_to_directory, load_directory, migrate_stream};
use dm_task::filter::BlockAllowList;
use dm_testkit::or_skip;
use dm_testkit::workloads::{EVERY_TYPE_SCHEMA, EVERY_TYPE_WRITES, Sysbench};

use crate::support::{assert_same, chunk_counts, dump_options, loader, progress, server};

const TASK: &str = "killed";

/// Run by the test below in a child process (and killed there); does nothing otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child half of load_killed_with_sigkill_resumes_each_chunk_once"]
async fn load_child() {
    let (Ok(port), Ok(directory)) = (
        std::env::var("DM_TEST_LOAD_CHILD_PORT"),
        std::env::var("DM_TEST_LOAD_CHILD_DIRECTORY"),
    ) else {
        return;
    };
    let port: u16 = port.parse().expect("port");
    let mut options = crate::support::load_options_for_port(port, TASK, 2);
    options.pool_size = 2;
    let loader =
        dm_dumpload::Loader::new(options, dm_task::filter::TableRouter::new(true, Vec::new()))
            .expect("loader");
    load_directory(&loader, 2, std::path::Path::new(&directory), progress())
        .await
        .expect("child load");
}

/// Kills the child load when dropped (a failing test leaves nothing running).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sysbench_prepare(port: u16) {
    let workload = Sysbench {
        workload: "oltp_write_only",
        tables: 8,
        table_size: 100_000,
    };
    if let Err(error) = workload.run(port, "prepare", &["--threads=2"]) {
        panic!("{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_killed_with_sigkill_resumes_each_chunk_once() {
    let (upstream, downstream) = tokio::join!(server("kill-upstream"), server("kill-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute("CREATE DATABASE sbtest")
        .await
        .expect("database");
    sysbench_prepare(upstream.port());
    upstream.execute(EVERY_TYPE_SCHEMA).await.expect("schema");
    upstream.execute(EVERY_TYPE_WRITES).await.expect("writes");
    upstream.execute("ANALYZE TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4, sbtest.sbtest5, sbtest.sbtest6, sbtest.sbtest7, sbtest.sbtest8").await.expect("analyze");
    let filter = BlockAllowList::default();
    let options = dump_options(&upstream, 2, 4 << 20);
    let directory = tempfile::tempdir().expect("directory");
    let dumped = dump_to_directory(
        &options,
        &filter,
        directory.path(),
        Compression::None,
        progress(),
    )
    .await
    .expect("dump");
    let chunks = dumped.header.chunk_count();
    assert!(chunks >= 24, "{chunks} chunks");
    let rows: u64 = dumped.files.iter().flatten().map(|file| file.rows).sum();
    assert!(rows >= 800_000, "{rows} rows dumped");

    let mut child = Killed(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["resume::load_child", "--exact", "--ignored", "--nocapture"])
            .env("DM_TEST_LOAD_CHILD_PORT", downstream.port().to_string())
            .env("DM_TEST_LOAD_CHILD_DIRECTORY", directory.path())
            .spawn()
            .expect("child"),
    );
    let started = Instant::now();
    let loaded_at_kill = loop {
        let loaded = crate::support::loaded_chunks(&downstream, TASK).await;
        if loaded >= 4 {
            break loaded;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("the child load ended before it was killed: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child load makes no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.0.kill().expect("SIGKILL");
    child.0.wait().expect("reaped");
    let (_, loaded_after_kill, _) = chunk_counts(&downstream, TASK).await;
    assert!(
        loaded_at_kill < chunks && loaded_after_kill < chunks,
        "killed in the middle"
    );

    let resumed = loader(&downstream, TASK, 2);
    let handoff = load_directory(&resumed, 2, directory.path(), progress())
        .await
        .expect("resumed load");
    assert_eq!(handoff.location, dumped.header.location);
    let (total, loaded, recorded_rows) = chunk_counts(&downstream, TASK).await;
    assert_eq!((total, loaded, recorded_rows), (chunks, chunks, rows));
    assert_same(&upstream, &downstream, &["sbtest", "d"]).await;

    // The same dataset through the direct stream.
    for schema in ["sbtest", "d", "dm_meta"] {
        downstream
            .execute(&format!("DROP DATABASE {schema}"))
            .await
            .expect("drop");
    }
    let stream_loader = loader(&downstream, "stream", 2);
    migrate_stream(&options, &filter, &stream_loader, progress(), progress())
        .await
        .expect("stream");
    assert_same(&upstream, &downstream, &["sbtest", "d"]).await;
}
