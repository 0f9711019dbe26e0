//! Task modes through the subtask: `all` with the upstream writing during the dump ends with
//! the downstream equal to the upstream; a `full` task paused during its load, then resumed,
//! finishes the load without loading a chunk twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dm_subtask::{Stage, Subtask, Unit};
use dm_testkit::or_skip;

use crate::{servers, shop, source_file, spec, task_file, wait_equal, wait_status, writer};

/// A task file for `mode` that dumps with 2 threads and the `dumper` keys, loads with
/// `pool_size` connections, and keeps the dump in `directory`.
fn full_task(
    name: &str,
    mode: &str,
    downstream: &dm_testkit::MariaDb,
    dumper: &str,
    pool_size: usize,
    directory: &std::path::Path,
) -> String {
    let sections = format!(
        "mydumpers:\n  global:\n    threads: 2\n    {dumper}\nloaders:\n  global:\n    pool-size: {pool_size}\n    dir: {}\n",
        directory.join("dump").display()
    );
    task_file(name, mode, downstream, &sections).replace(
        "    syncer-config-name: global\n",
        "    syncer-config-name: global\n    mydumper-config-name: global\n    loader-config-name: global\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_all_with_writes_during_the_dump_ends_equal() {
    let (upstream, downstream) = servers("subtask-all").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(&shop(20_000)).await.expect("data");
    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(&upstream, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let directory = tempfile::tempdir().expect("directory");
    let task = full_task(
        "sub_all",
        "all",
        &downstream,
        // DM's default consistency (`flush`): a snapshot under a short global read lock, so
        // that the keyless table's changes during the dump are neither lost nor doubled.
        "rows: 2000",
        2,
        directory.path(),
    );
    let subtask = Subtask::new(spec(&task, &source_file(&upstream))).spawn();
    // Dump, then load, then sync, while the writer goes on.
    let dumping = wait_status(&subtask, "the dump", |status| {
        status.unit.is_some() && status.stage == Stage::Running
    })
    .await;
    assert_eq!(dumping.unit, Some(Unit::Dump), "{dumping:#?}");
    let syncing = wait_status(&subtask, "the sync unit", |status| {
        status.unit == Some(Unit::Sync)
    })
    .await;
    let load = syncing.load.expect("the load's status");
    assert!(load.progress.chunks_total > 1, "{load:?}");
    assert_eq!(load.progress.chunks_done, load.progress.chunks_total);
    assert!(load.handoff.is_some(), "the hand-off is in the status");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = writes.await.expect("writer");
    assert!(rounds > 10, "the upstream wrote during the migration");

    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    subtask.stop().await.expect("stop");
    let status = subtask.wait().await.expect("the subtask ends");
    assert_eq!(status.stage, Stage::Stopped);
    assert!(status.result.is_none(), "{status:#?}");
    let sync = status.sync.expect("the sync status");
    assert!(sync.rows_dispatched > 0, "{sync:?}");
    assert!(sync.checkpoint.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_during_the_load_then_resume_finishes_the_load() {
    let (upstream, downstream) = servers("subtask-pause").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(&shop(200_000)).await.expect("data");
    let directory = tempfile::tempdir().expect("directory");
    // Many small chunks loaded one at a time, so that the pause falls inside the load.
    let task = full_task(
        "sub_pause",
        "full",
        &downstream,
        "rows: 1000",
        1,
        directory.path(),
    );
    let subtask = Subtask::new(spec(&task, &source_file(&upstream))).spawn();
    let loading = wait_status(&subtask, "the load", |status| {
        status.unit == Some(Unit::Load)
            && status
                .load
                .as_ref()
                .is_some_and(|load| load.progress.chunks_done >= 2)
    })
    .await;
    subtask.pause().await.expect("pause");
    let paused = wait_status(&subtask, "paused", |status| status.stage == Stage::Paused).await;
    let total = loading.load.expect("load").progress.chunks_total;
    let loaded: u64 = downstream
        .query("SELECT COUNT(*) FROM dm_meta.`sub_pause_load_chunk` WHERE state = 'loaded'")
        .await
        .expect("chunks")[0][0]
        .as_deref()
        .and_then(|count| count.parse().ok())
        .expect("a count");
    assert!(
        loaded >= 2 && loaded < total,
        "paused inside the load: {loaded} of {total} chunks loaded"
    );
    assert_eq!(paused.unit, Some(Unit::Load));
    assert!(
        paused
            .result
            .as_ref()
            .is_some_and(|result| result.is_canceled),
        "{paused:#?}"
    );
    // Paused means paused: nothing more is loaded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still: Vec<Vec<Option<String>>> = downstream
        .query("SELECT COUNT(*) FROM dm_meta.`sub_pause_load_chunk` WHERE state = 'loaded'")
        .await
        .expect("chunks");
    assert_eq!(still[0][0].as_deref(), Some(loaded.to_string().as_str()));

    subtask.resume().await.expect("resume");
    let finished = wait_status(&subtask, "finished", |status| {
        status.stage == Stage::Finished
    })
    .await;
    assert!(finished.result.is_none(), "{finished:#?}");
    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    let status = subtask.wait().await.expect("the subtask ends");
    assert_eq!(status.stage, Stage::Finished);
    assert_eq!(status.sync, None, "mode full does not sync");
}
