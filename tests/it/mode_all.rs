//! Task mode `all` against a live upstream taking writes during the dump: dump, load, then the
//! syncer from the hand-off (safe mode until the exit point) catches up and the downstream
//! equals the upstream. Two ways: dump files with `consistency: none`, and a direct stream
//! interrupted in the middle and resumed from a new snapshot. It runs in the facade's tests:
//! it chains dm-dumpload and dm-syncer, which do not depend on each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dm::binlog::RemoteOptions;
use dm::dumpload::{
    ChunkLimits, Compression, Consistency, DumpLoadConfig, DumpSelection, DumpTimeZone, FullStages,
    Handoff, OnDuplicate, migrate_stream,
};
use dm::sink::MySqlSinkOptions;
use dm::syncer::{SyncerSettings, SyncerStatus, run};
use dm::task::config::{InstanceRules, TaskMode};
use dm::task::filter::BlockAllowList;
use dm_testkit::{MariaDb, or_skip};

use crate::support::{assert_same, chunk_counts, dump_options, loader, progress, server};

const DATA: &str = "CREATE DATABASE shop;
CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40));
INSERT INTO shop.items (v, note) SELECT seq, CONCAT('row ', seq) FROM shop.seq_1_to_30000;
CREATE TABLE shop.events (at_id INT PRIMARY KEY, what VARCHAR(20));
CREATE TABLE shop.notes (n INT, what VARCHAR(20));
INSERT INTO shop.notes VALUES (1, 'static'), (1, 'static');
ANALYZE TABLE shop.items;";

/// Inserts, updates and deletes (one per transaction) until `stop`.
fn writer(upstream: &MariaDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    dm_testkit::workloads::write_until(upstream.opts(), stop, |round| match round % 4 {
        0 => format!("INSERT INTO shop.items (v, note) VALUES ({round}, 'new')"),
        1 => format!(
            "UPDATE shop.items SET v = v + 1, note = 'upd' WHERE id = {}",
            round * 7 % 31_000
        ),
        2 => format!("DELETE FROM shop.items WHERE id = {}", round * 13 % 31_000),
        _ => format!("INSERT INTO shop.events VALUES ({round}, 'tick')"),
    })
}

async fn sync_from(upstream: &MariaDb, downstream: &MariaDb, handoff: Handoff) -> SyncerStatus {
    let mut source = RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", 611);
    source.stop_at_end = true;
    let settings = SyncerSettings {
        workers: 4,
        checkpoint_interval: Duration::from_millis(200),
        safe_mode_until: handoff.safe_mode_until.clone(),
        ..SyncerSettings::new("all", "source-1")
    };
    let sink = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let (status, _) = tokio::sync::watch::channel(SyncerStatus::default());
    run(
        settings,
        source,
        handoff.location,
        sink,
        InstanceRules::default(),
        stop,
        status,
    )
    .await
    .unwrap_or_else(|error| panic!("syncer: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_all_with_writes_during_the_dump_catches_up() {
    let (upstream, downstream) = tokio::join!(server("all-upstream"), server("all-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(DATA).await.expect("data");
    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(&upstream, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let directory = tempfile::tempdir().expect("directory");
    let config = DumpLoadConfig {
        threads: 2,
        limits: ChunkLimits {
            bytes: 64 << 10,
            rows: 1_000_000,
            max_chunks: 1000,
        },
        statement_bytes: 64 << 10,
        consistency: Consistency::None,
        compression: Compression::Gzip,
        pool_size: 2,
        directory: directory.path().join("dumped_data.all"),
        on_duplicate: OnDuplicate::Replace,
        direct: false,
        selection: DumpSelection::default(),
        time_zone: DumpTimeZone::Upstream,
        warnings: Vec::new(),
    };
    let mut dump = dump_options(&upstream, config.threads, config.limits.bytes);
    dump.snapshot.consistency = config.consistency;
    let filter = BlockAllowList::default();
    let loader = loader(&downstream, "all", config.pool_size);
    let stages = FullStages {
        config: &config,
        dump,
        filter: &filter,
        loader: &loader,
        dump_progress: progress(),
        load_progress: progress(),
        clean_dump_file: true,
    };
    let handoff = stages
        .run(TaskMode::All)
        .await
        .expect("dump and load")
        .expect("a hand-off");
    assert!(
        handoff.safe_mode_until.is_some(),
        "consistency none hands over an exit point"
    );
    assert!(
        !config.directory.exists(),
        "clean-dump-file removed the loaded dump"
    );
    // A restarted task does not dump or load again: same hand-off.
    let again = stages
        .run(TaskMode::All)
        .await
        .expect("restart")
        .expect("a hand-off");
    assert_eq!(
        (&again.location, &again.safe_mode_until),
        (&handoff.location, &handoff.safe_mode_until)
    );

    // A DDL on a loaded table: the syncer learns the table from the downstream first.
    upstream
        .execute("ALTER TABLE shop.items ADD COLUMN extra INT NULL DEFAULT 7")
        .await
        .expect("alter");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = writes.await.expect("writer");
    assert!(rounds > 20, "writes ran during the dump ({rounds})");
    sync_from(&upstream, &downstream, handoff).await;
    assert_same(&upstream, &downstream, &["shop"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_stream_resumes_from_a_new_snapshot_in_safe_mode() {
    let (upstream, downstream) =
        tokio::join!(server("resume-upstream"), server("resume-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(DATA).await.expect("data");
    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(&upstream, stop.clone());

    let dump = dump_options(&upstream, 2, 64 << 10);
    let first = {
        let dump = dump.clone();
        let loader = loader(&downstream, "all", 1);
        tokio::spawn(async move {
            migrate_stream(
                &dump,
                &BlockAllowList::default(),
                &loader,
                progress(),
                progress(),
            )
            .await
        })
    };
    let started = Instant::now();
    loop {
        let loaded = crate::support::loaded_chunks(&downstream, "all").await;
        if loaded >= 2 {
            break;
        }
        assert!(
            !first.is_finished(),
            "the first load ended before it was interrupted"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.abort();
    let _ = first.await;
    let (chunks, loaded, _) = chunk_counts(&downstream, "all").await;
    assert!(
        loaded < chunks,
        "interrupted in the middle ({loaded} of {chunks})"
    );

    // More writes between the two snapshots.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loader = loader(&downstream, "all", 2);
    let handoff = migrate_stream(
        &dump,
        &BlockAllowList::default(),
        &loader,
        progress(),
        progress(),
    )
    .await
    .expect("resumed stream");
    let until = handoff
        .safe_mode_until
        .clone()
        .expect("safe mode until the second snapshot");
    assert_eq!(
        handoff.location.compare(&until),
        Some(std::cmp::Ordering::Less),
        "replay starts at the first snapshot, before the second"
    );
    let (chunks_after, loaded_after, _) = chunk_counts(&downstream, "all").await;
    assert_eq!(
        (chunks_after, loaded_after),
        (chunks, chunks),
        "the stored plan was kept"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writes.await.expect("writer");
    sync_from(&upstream, &downstream, handoff).await;
    assert_same(&upstream, &downstream, &["shop"]).await;
}
