//! Checkpoint rows committed in the same transaction as a batch: a committed batch moves the
//! worker's row with it, a refused batch leaves both the rows and the checkpoint as they were;
//! the global row round-trips, safe-mode exit point included.

use dm_core::{ApplyMode, Flavor, TableRef};
use dm_sink::checkpoint::location_from_row;
use dm_sink::{CheckpointTables, GlobalRow, TableRow, WorkerCheckpoint};
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
        replayed: None,
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
    let global = GlobalRow {
        source: "mysql-01".into(),
        location: at(90),
        safe_mode_exit: Some(at(150)),
        table_info: r#"{"ddl":"it's"}"#.into(),
    };
    // Table rows travel with the global row, in one transaction.
    let table = TableRow {
        source: "mysql-01".into(),
        table: TableRef::new("d", "it`s"),
        location: at(90),
        table_info: r#"{"columns":[]}"#.into(),
    };
    let other = TableRow {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_an_earlier_version_are_brought_up_to_date() {
    let downstream =
        or_skip!(MariaDb::start_with(MariaDbOptions::named("sink-checkpoint-upgrade")).await);
    // The tables as the first version created them: 32-bit row indexes, table names compared
    // without case.
    downstream
        .execute(
            "CREATE DATABASE dm_meta;
             CREATE TABLE dm_meta.shop_syncer_checkpoint (id VARCHAR(32) NOT NULL, cp_schema VARCHAR(128) NOT NULL, cp_table VARCHAR(128) NOT NULL, \
              binlog_name VARCHAR(128), binlog_pos BIGINT UNSIGNED, binlog_gtid TEXT, \
              exit_safe_binlog_name VARCHAR(128) DEFAULT '', exit_safe_binlog_pos BIGINT UNSIGNED DEFAULT 0, \
              exit_safe_binlog_gtid TEXT, table_info LONGTEXT, is_global BOOLEAN, \
              create_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
              update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
              UNIQUE KEY uk_id_schema_table (id, cp_schema, cp_table));
             CREATE TABLE dm_meta.shop_worker_checkpoint (source VARCHAR(32) NOT NULL, worker INT UNSIGNED NOT NULL, workers INT UNSIGNED NOT NULL, \
              binlog_name VARCHAR(128) NOT NULL, binlog_pos BIGINT UNSIGNED NOT NULL, binlog_gtid TEXT, \
              suffix INT UNSIGNED NOT NULL DEFAULT 0, row_index INT UNSIGNED NOT NULL DEFAULT 0, \
              update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
              PRIMARY KEY (source, worker));",
        )
        .await
        .expect("old tables");
    let mut sink = sink_for(&downstream);
    let tables = CheckpointTables::new("dm_meta", "shop").expect("tables");
    tables.create(&mut sink).await.expect("upgrade");
    let at = location_from_row("mysql-bin.000001", 4, None, 0, Flavor::MariaDb).expect("at");
    // A row index of an event deep inside a transaction payload.
    let worker = WorkerCheckpoint {
        source: "mysql-01".into(),
        worker: 0,
        workers: 1,
        location: at.clone(),
        row: (7 << 32) | 3,
        replayed: None,
    };
    // Two tables whose names differ only in case.
    let upper = TableRow {
        source: "mysql-01".into(),
        table: TableRef::new("d", "T"),
        location: at,
        table_info: "upper".into(),
    };
    let lower = TableRow {
        table: TableRef::new("d", "t"),
        table_info: "lower".into(),
        ..upper.clone()
    };
    sink.apply_changes_with(
        &[],
        ApplyMode::Exact,
        &[
            tables.worker_upsert(&worker),
            tables.table_upsert(&upper),
            tables.table_upsert(&lower),
        ],
    )
    .await
    .expect("rows");
    let workers = tables
        .load_workers(&mut sink, "mysql-01", Flavor::MariaDb)
        .await
        .expect("workers");
    assert_eq!(workers, vec![worker]);
    assert_eq!(
        tables
            .load_tables(&mut sink, "mysql-01")
            .await
            .expect("tables")
            .len(),
        2,
        "`T` and `t` are two rows"
    );
}
