//! The subtask's commands and errors in incremental mode: a stop now while the upstream writes,
//! then a new subtask that loses and repeats nothing (a table without a key included); an
//! event that stops the task pauses it with its code and position, and `binlog skip` lets it
//! go on; a downstream restart is ridden out by the auto-resume, which counts its attempts in
//! the status; a stop on an idle upstream returns at once, not after a heartbeat period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dm_core::{ErrorClass, ErrorCode};
use dm_subtask::{BinlogOperation, Stage, Subtask, SubtaskError, Unit};
use dm_testkit::or_skip;

use crate::{equal, servers, shop, source_file, spec, task_file, wait_equal, wait_status, writer};

/// `shop.items`' row count downstream, or `None` while it cannot be read.
async fn items(server: &dm_testkit::MariaDb) -> Option<u64> {
    server
        .query("SELECT COUNT(*) FROM shop.items")
        .await
        .ok()?
        .first()?
        .first()?
        .as_deref()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_now_while_the_upstream_writes_then_a_restart_loses_and_repeats_nothing() {
    let (upstream, downstream) = servers("subtask-stop-now").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(&shop(20_000)).await.expect("data");
    let task = task_file("sub_stop_now", "incremental", &downstream, "");
    let source = source_file(&upstream);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(&upstream, stop.clone());

    let first = Subtask::new(spec(&task, &source)).spawn();
    wait_status(&first, "rows replicated", |status| {
        status
            .sync
            .as_ref()
            .is_some_and(|sync| sync.rows_dispatched > 25_000)
    })
    .await;
    let asked = Instant::now();
    first.stop_now().await.expect("stop now");
    let stopped = tokio::time::timeout(Duration::from_secs(10), first.wait())
        .await
        .expect("a stop now returns promptly")
        .expect("the subtask ends");
    let took = asked.elapsed();
    assert_eq!(stopped.stage, Stage::Stopped, "{stopped:#?}");
    assert!(took < Duration::from_secs(5), "stop now took {took:?}");
    assert!(stopped.result.is_none(), "{stopped:#?}");
    let checkpoint = stopped
        .sync
        .as_ref()
        .and_then(|sync| sync.checkpoint.clone())
        .expect("a checkpoint was written");

    // The upstream writes on while nothing replicates; then a new subtask takes over. Its task
    // file has no meta: with a checkpoint downstream, an incremental task needs none (as in DM).
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    writes.await.expect("writer");
    let without_meta = task.replace(
        "    meta:\n      binlog-name: mysql-bin.000001\n      binlog-pos: 4\n",
        "",
    );
    assert_ne!(without_meta, task, "the meta was taken out");
    let second = Subtask::new(spec(&without_meta, &source)).spawn();
    wait_equal(&upstream, &downstream, "shop", &second).await;
    // The restart went on from the checkpoint.
    wait_status(&second, "a checkpoint past the first run's", |status| {
        status
            .sync
            .as_ref()
            .and_then(|sync| sync.checkpoint.as_ref())
            .is_some_and(|location| location.position >= checkpoint.position)
    })
    .await;
    second.stop().await.expect("stop");
    assert_eq!(second.wait().await.expect("ends").stage, Stage::Stopped);
    // Still equal after the graceful stop: nothing was applied twice on the way out.
    assert!(equal(&upstream, &downstream, "shop").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_stops_the_task_pauses_it_with_its_code_and_skip_resumes_it() {
    let (upstream, downstream) = servers("subtask-skip").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    // Rows, then a session that switched to statement format: its insert is logged as the
    // statement, which cannot be applied exactly.
    let rows = |ids: &[i32]| {
        let values: Vec<String> = ids.iter().map(|id| format!("({id}, {id})")).collect();
        format!("INSERT INTO t VALUES {}", values.join(", "))
    };
    let workload = [
        "CREATE DATABASE shop; USE shop; CREATE TABLE t (id INT PRIMARY KEY, v INT)".to_owned(),
        rows(&[1, 2]),
        format!(
            "SET SESSION binlog_format = 'STATEMENT'; {}; SET SESSION binlog_format = 'ROW'",
            rows(&[3])
        ),
        rows(&[4]),
    ];
    upstream
        .execute(&workload.join(";\n"))
        .await
        .expect("workload");
    let task = task_file("sub_skip", "incremental", &downstream, "");
    let subtask = Subtask::new(spec(&task, &source_file(&upstream))).spawn();
    let paused = wait_status(&subtask, "paused by the statement", |status| {
        status.stage == Stage::Paused
    })
    .await;
    let error = paused.error().expect("the error is in the status").clone();
    assert_eq!(error.code, ErrorCode(14004), "{error:#?}");
    assert_eq!(error.class, ErrorClass::Definite);
    assert_eq!(error.unit, Unit::Sync);
    assert!(
        error.message.contains("INSERT INTO t VALUES (3, 3)"),
        "{error:#?}"
    );
    assert!(!error.workaround.is_empty());
    let position = error.position.clone().expect("the event's position");
    assert!(
        error.message.starts_with(&format!("at {position}")),
        "{error:#?}"
    );
    assert_eq!(
        paused.auto_resume.attempts, 0,
        "a definite error is not resumed by itself"
    );
    let json = paused.to_query_status();
    assert_eq!(
        json["subTaskStatus"][0]["result"]["errors"][0]["ErrCode"],
        14004
    );
    // It stays paused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(subtask.status().stage, Stage::Paused);
    let rows = downstream
        .query("SELECT id FROM shop.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "nothing after the statement: {rows:?}");

    // The user copies the row by hand and skips the statement at the error's position.
    downstream
        .execute("INSERT INTO shop.t VALUES (3, 3)")
        .await
        .expect("copy by hand");
    subtask
        .binlog(BinlogOperation::Skip, None)
        .await
        .expect("skip");
    dm_testkit::wait_for(
        "the rows after the statement",
        Duration::from_secs(30),
        || async {
            downstream
                .query("SELECT COUNT(*) FROM shop.t")
                .await
                .is_ok_and(|rows| rows[0][0].as_deref() == Some("4"))
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}; status: {:#?}", subtask.status()));
    let running = subtask.status();
    assert_eq!(running.stage, Stage::Running, "{running:#?}");
    assert!(running.result.is_none());
    assert_eq!(running.operators, [format!("skip at {position}")]);
    subtask.stop().await.expect("stop");
    subtask.wait().await.expect("ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_without_an_error_position_is_refused() {
    let (upstream, downstream) = servers("subtask-no-position").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(&shop(10)).await.expect("data");
    let task = task_file("sub_no_position", "incremental", &downstream, "");
    let subtask = Subtask::new(spec(&task, &source_file(&upstream))).spawn();
    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    let refused = subtask.binlog(BinlogOperation::Skip, None).await;
    assert!(
        matches!(refused, Err(SubtaskError::NoErrorPosition { .. })),
        "{refused:?}"
    );
    subtask.stop().await.expect("stop");
    subtask.wait().await.expect("ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_restart_is_auto_resumed_with_the_attempts_in_the_status() {
    let (upstream, downstream) = servers("subtask-restart").await;
    let upstream = or_skip!(upstream);
    let mut downstream = or_skip!(downstream);
    upstream.execute(&shop(1000)).await.expect("data");
    let task = task_file("sub_restart", "incremental", &downstream, "");
    let mut spec = spec(&task, &source_file(&upstream));
    // A short in-place retry, so that the auto-resume takes over within the test.
    spec.syncer.retry_transient_for = Some(Duration::from_secs(1));
    let subtask = Subtask::new(spec).spawn();
    dm_testkit::wait_for("the first rows", Duration::from_secs(30), || async {
        items(&downstream).await == Some(1000)
    })
    .await
    .expect("caught up");

    downstream.kill().expect("kill");
    upstream
        .execute("INSERT INTO shop.items (v, note) SELECT seq, 'while down' FROM shop.seq_1_to_500")
        .await
        .expect("write while down");
    let resuming = wait_status(&subtask, "an automatic resume", |status| {
        status.auto_resume.attempts >= 2
    })
    .await;
    let last = resuming
        .auto_resume
        .last_error
        .clone()
        .expect("the transient error is in the status");
    assert_eq!(last.class, ErrorClass::Transient, "{last:#?}");
    downstream.restart().await.expect("restart");
    dm_testkit::wait_for(
        "the rows written while down",
        Duration::from_secs(60),
        || async { items(&downstream).await == Some(1500) },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}; status: {:#?}", subtask.status()));
    let running = wait_status(&subtask, "running again", |status| {
        status.stage == Stage::Running && status.result.is_none()
    })
    .await;
    assert!(
        running.auto_resume.attempts >= 2 && running.auto_resume.total_attempts >= 2,
        "{:#?}",
        running.auto_resume
    );
    let json = running.to_query_status();
    assert!(json["subTaskStatus"][0]["autoResume"]["attempts"].as_u64() >= Some(2));
    upstream
        .execute("INSERT INTO shop.items (v, note) VALUES (1, 'last')")
        .await
        .expect("write");
    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    subtask.stop().await.expect("stop");
    assert_eq!(subtask.wait().await.expect("ends").stage, Stage::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_an_idle_upstream_returns_well_under_the_heartbeat_period() {
    let (upstream, downstream) = servers("subtask-idle").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(&shop(100)).await.expect("data");
    let task = task_file("sub_idle", "incremental", &downstream, "");
    let mut spec = spec(&task, &source_file(&upstream));
    spec.remote.heartbeat_period = Duration::from_secs(30);
    let subtask = Subtask::new(spec).spawn();
    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    // Idle: nothing more is written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    subtask.stop().await.expect("stop");
    let status = tokio::time::timeout(Duration::from_secs(10), subtask.wait())
        .await
        .expect("the stop returns before the next heartbeat")
        .expect("ends");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "the stop took {took:?}");
    assert_eq!(status.stage, Stage::Stopped);
    assert!(
        status.sync.and_then(|sync| sync.checkpoint).is_some(),
        "the checkpoint was written"
    );
}
