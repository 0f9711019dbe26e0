//! What a user sees when the downstream refuses: a duplicate key is definite and rolls the whole
//! batch back, a missing table names it, a lock wait is transient, and a downstream that went
//! away is a transient connection error after which the sink reconnects.

use std::sync::Arc;

use dm_core::{
    ApplyMode, BinlogPosition, ClassifiedError, ColumnDefinition, ColumnType, ErrorClass,
    IntegerWidth, KeyColumn, KeyDefinition, KeyKind, Location, Row, RowChange, RowChangeKind, Sink,
    TableRef, TableSchema, Value,
};
use dm_sink::{MySqlSink, MySqlSinkOptions, SinkError};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

pub(crate) fn items(table: &str) -> Arc<TableSchema> {
    let int = |name: &str, nullable| {
        ColumnDefinition::new(
            name,
            ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: false,
            },
            nullable,
        )
    };
    Arc::new(
        TableSchema::new(
            TableRef::new("d", table),
            vec![int("id", false), int("v", true)],
            vec![KeyDefinition {
                name: "PRIMARY".into(),
                kind: KeyKind::Primary,
                columns: vec![KeyColumn {
                    column: 0,
                    prefix_length: None,
                }],
            }],
        )
        .expect("schema"),
    )
}

pub(crate) fn insert(schema: &Arc<TableSchema>, id: i64) -> RowChange {
    RowChange::new(
        schema.clone(),
        RowChangeKind::Insert {
            after: Row(vec![Value::Int(id), Value::Int(id * 10)]),
        },
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("position")),
        0,
    )
    .expect("change")
}

fn update(schema: &Arc<TableSchema>, id: i64, value: i64) -> RowChange {
    RowChange::new(
        schema.clone(),
        RowChangeKind::Update {
            before: Row(vec![Value::Int(id), Value::Int(id * 10)]),
            after: Row(vec![Value::Int(id), Value::Int(value)]),
        },
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("position")),
        0,
    )
    .expect("change")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_roll_back_and_say_why() {
    let mut downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("sink-errors")).await);
    downstream
        .execute("CREATE DATABASE d; CREATE TABLE d.items (id INT PRIMARY KEY, v INT); INSERT INTO d.items VALUES (5, 50)")
        .await
        .expect("create");
    let schema = items("items");
    let mut options = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    options
        .session_variables
        .push(("innodb_lock_wait_timeout".into(), "1".into()));
    let mut sink = MySqlSink::new(options).expect("sink");

    // A duplicate key: definite, and the first insert of the batch is rolled back with it.
    let error = sink
        .apply_changes(&[insert(&schema, 1), insert(&schema, 5)], ApplyMode::Exact)
        .await
        .expect_err("duplicate");
    assert!(
        matches!(error, SinkError::Statement { code: 1062, .. }),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Definite);
    let rows = downstream
        .query("SELECT COUNT(*) FROM d.items")
        .await
        .expect("count");
    assert_eq!(
        rows[0][0].as_deref(),
        Some("1"),
        "the batch was rolled back"
    );
    // The same batch in safe mode goes through.
    sink.apply_changes(
        &[insert(&schema, 1), insert(&schema, 5)],
        ApplyMode::Idempotent,
    )
    .await
    .expect("safe mode");

    // A table that does not exist downstream is named.
    let error = sink
        .apply_changes(&[insert(&items("missing"), 1)], ApplyMode::Exact)
        .await
        .expect_err("missing table");
    assert!(error.to_string().contains("`d`.`missing`"), "{error}");

    // A lock held by another transaction: a transient lock wait timeout.
    let mut holder = downstream.connect().await.expect("connect");
    use mysql_async::prelude::Queryable;
    holder
        .query_drop("START TRANSACTION; SELECT * FROM d.items WHERE id = 5 FOR UPDATE")
        .await
        .expect("lock");
    let error = sink
        .apply_changes(&[update(&schema, 5, 99)], ApplyMode::Exact)
        .await
        .expect_err("lock wait");
    assert!(
        matches!(error, SinkError::Statement { code: 1205, .. }),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Transient);
    holder.query_drop("ROLLBACK").await.expect("release");
    sink.apply_changes(&[update(&schema, 5, 99)], ApplyMode::Exact)
        .await
        .expect("after the lock is released");

    // The downstream goes away: transient; back again: the sink reconnects.
    drop(holder);
    downstream.kill().expect("kill");
    let error = sink
        .apply_changes(&[insert(&schema, 7)], ApplyMode::Exact)
        .await
        .expect_err("downstream down");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    downstream.restart().await.expect("restart");
    sink.apply_changes(&[insert(&schema, 7)], ApplyMode::Exact)
        .await
        .expect("reconnected");
    let rows = downstream
        .query("SELECT id, v FROM d.items ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][1].as_deref(), Some("99"));
}
