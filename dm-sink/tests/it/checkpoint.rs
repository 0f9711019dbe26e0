//! Checkpoint rows committed in the same transaction as a batch: a committed batch moves the
//! worker's row with it, a refused batch leaves both the rows and the checkpoint as they were;
//! the global row round-trips, safe-mode exit point included.

use dm_core::{ApplyMode, Flavor, TableRef};
use dm_sink::checkpoint::location_from_row;
use dm_sink::{CheckpointTables, GlobalCheckpoint, TableCheckpoint, WorkerCheckpoint};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::errors::{insert, items};
use crate::round_trip::sink_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_checkpoint_commits_with_its_batch_or_not_at_all() {
    let downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("sink-checkpoint")).await);
    downstream
        .execute("CREATE DATABASE d; CREATE TABLE d.items (id INT PRIMARY KEY, v INT)")
        .await
        .expect("create");
    let mut sink = sink_for(&downstream);
    let tables = CheckpointTables::new("dm_meta", "shop").expect("tables");
    tables.create(&mut sink).await.expect("create meta");
    tables
        .create(&mut sink)
        .await
        .expect("creating again is harmless");
    let schema = items("items");
    let at = |offset: u64| {
        location_from_row(
            "mysql-bin.000001",
            offset,
            Some("0-1-5"),
            0,
            Flavor::MariaDb,
        )
        .expect("location")
    };
    let checkpoint = |offset| WorkerCheckpoint {
        source: "mysql-01".into(),
        worker: 2,
        workers: 4,
        location: at(offset),
        row: 1,
    };

    sink.apply_changes_with(
        &[insert(&schema, 1), insert(&schema, 2)],
        ApplyMode::Exact,
        &[tables.worker_upsert(&checkpoint(100))],
    )
    .await
    .expect("batch with its checkpoint");
    let workers = tables
        .load_workers(&mut sink, "mysql-01", Flavor::MariaDb)
        .await
        .expect("load");
    assert_eq!(workers, vec![checkpoint(100)]);

    // Refused: neither the rows nor the checkpoint move.
    sink.apply_changes_with(
        &[insert(&schema, 3), insert(&schema, 1)],
        ApplyMode::Exact,
        &[tables.worker_upsert(&checkpoint(200))],
    )
    .await
    .expect_err("duplicate key");
    let workers = tables
        .load_workers(&mut sink, "mysql-01", Flavor::MariaDb)
        .await
        .expect("load");
    assert_eq!(workers, vec![checkpoint(100)]);
    let rows = downstream
        .query("SELECT COUNT(*) FROM d.items")
        .await
        .expect("count");
    assert_eq!(rows[0][0].as_deref(), Some("2"));

    // The global row, with a safe-mode exit point.
    assert_eq!(
        tables
            .load_global(&mut sink, "mysql-01", Flavor::MariaDb)
            .await
            .expect("load"),
        None
    );
    let global = GlobalCheckpoint {
        source: "mysql-01".into(),
        location: at(90),
        safe_mode_exit: Some(at(150)),
        table_info: r#"{"ddl":"it's"}"#.into(),
    };
    // Table rows travel with the global row, in one transaction.
    let table = TableCheckpoint {
        source: "mysql-01".into(),
        table: TableRef::new("d", "it`s"),
        location: at(90),
        table_info: r#"{"columns":[]}"#.into(),
    };
    let other = TableCheckpoint {
        table: TableRef::new("d", "gone"),
        ..table.clone()
    };
    sink.apply_changes_with(
        &[],
        ApplyMode::Exact,
        &[
            tables.global_upsert(&global),
            tables.table_upsert(&table),
            tables.table_upsert(&other),
        ],
    )
    .await
    .expect("global");
    assert_eq!(
        tables
            .load_global(&mut sink, "mysql-01", Flavor::MariaDb)
            .await
            .expect("load"),
        Some(global)
    );
    sink.apply_changes_with(
        &[],
        ApplyMode::Exact,
        &[tables.table_delete("mysql-01", &other.table)],
    )
    .await
    .expect("delete");
    assert_eq!(
        tables
            .load_tables(&mut sink, "mysql-01")
            .await
            .expect("tables"),
        vec![(table.table.clone(), table.table_info.clone())]
    );
}
