//! The event loop without any server: a scripted binlog (`dm_binlog::testsuite`) replicated
//! into the recording sink (`dm_core::testsuite`), on tokio's paused time. A DDL runs only once
//! every worker drained; the byte budget bounds what is dispatched and not committed; a
//! syncer crashed mid-stream and restarted from what the sink stored applies every change
//! exactly once, tables without keys included; a stop on an idle stream returns without
//! waiting for another event, and a stop `Now` in the middle of the stream (and of a
//! transaction) leaves checkpoints from which a restart applies every change once.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use dm_binlog::testsuite::{BinlogScript, ScriptRow, ScriptTable, ScriptedSource};
use dm_core::testsuite::{Operation, Recorded, RecordingSinks, int_table};
use dm_core::{BinlogPosition, Location, RowChange, RowChangeKind, TableRef, TableSchema, Value};
use dm_syncer::{SyncerError, SyncerSettings, SyncerStatus, run_with};
use dm_task::config::InstanceRules;

/// `shop.<table>`: `id INT` (the primary key when `keyed`) and `v INT NULL`.
fn table(name: &str, keyed: bool) -> TableSchema {
    int_table(TableRef::new("shop", name), &["id", "v"], keyed)
}

fn settings(workers: usize) -> SyncerSettings {
    SyncerSettings {
        workers,
        batch: 4,
        queue_size: 64,
        // Every transaction end may write the global checkpoint.
        checkpoint_interval: Duration::ZERO,
        // One change per row change, so that counts are exact.
        compact: false,
        ..SyncerSettings::new("serverless", "script-01")
    }
}

fn start() -> Location {
    Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"))
}

/// Runs the syncer over `source` into `sinks` until the script ends.
async fn sync(
    source: ScriptedSource,
    sinks: &RecordingSinks,
    settings: SyncerSettings,
) -> Result<SyncerStatus, SyncerError> {
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    run_with(
        settings,
        source,
        start(),
        sinks.clone(),
        InstanceRules::default(),
        stop,
        progress,
    )
    .await
}

/// A row's values (`None`: NULL).
type Image = Vec<Option<i64>>;

/// A change's images: before, after.
type Images = (Option<Image>, Option<Image>);

/// The values of an image.
fn values(row: &dm_core::Row) -> Vec<Option<i64>> {
    row.values()
        .iter()
        .map(|value| match value {
            Value::Int(value) => Some(*value),
            Value::Null => None,
            other => panic!("unexpected value {other:?}"),
        })
        .collect()
}

/// Applies `changes` to a model of the downstream: keyed tables by `id`, keyless ones as a
/// bag of rows. A change that does not fit (a duplicate key, a missing row) panics.
fn model(changes: &[RowChange]) -> BTreeMap<String, BTreeMap<Vec<Option<i64>>, usize>> {
    let mut tables: BTreeMap<String, BTreeMap<Vec<Option<i64>>, usize>> = BTreeMap::new();
    for change in changes {
        let rows = tables.entry(change.table().table.clone()).or_default();
        let keyed = change.schema().row_identity_key().is_some();
        let remove = |rows: &mut BTreeMap<Vec<Option<i64>>, usize>, row: Vec<Option<i64>>| {
            let count = rows
                .get_mut(&row)
                .unwrap_or_else(|| panic!("{change:?} removes a row that is not there"));
            *count -= 1;
            if *count == 0 {
                rows.remove(&row);
            }
        };
        if let Some(before) = change.before() {
            remove(rows, values(before));
        }
        if let Some(after) = change.after() {
            let row = values(after);
            if keyed {
                assert!(
                    !rows.keys().any(|known| known[0] == row[0]),
                    "{change:?} inserts a key that is there"
                );
            }
            *rows.entry(row).or_default() += 1;
        }
    }
    tables
}

/// What the script's changes are, in binlog order (its own model of them).
fn scripted_changes(
    script: &BinlogScript,
    tables: &HashMap<String, TableSchema>,
) -> Vec<RowChange> {
    // Decode the script's own rows events with the tables' structures.
    let mut maps = HashMap::new();
    let mut changes = Vec::new();
    for event in script.events() {
        match &event.event.data {
            dm_binlog::EventData::TableMap(map) => {
                maps.insert(map.table_id, map.clone());
            }
            dm_binlog::EventData::Rows(rows) => {
                let map = &maps[&rows.table_id];
                let schema = std::sync::Arc::new(tables[&map.table].clone());
                for images in dm_binlog::decode_rows(rows, map, &schema).expect("decodes") {
                    let kind = match images {
                        (None, Some(after)) => RowChangeKind::Insert { after },
                        (Some(before), Some(after)) => RowChangeKind::Update { before, after },
                        (Some(before), None) => RowChangeKind::Delete { before },
                        (None, None) => continue,
                    };
                    changes.push(
                        RowChange::new(
                            schema.clone(),
                            kind,
                            Location::from_position(event.position.clone()),
                            0,
                        )
                        .expect("change"),
                    );
                }
            }
            _ => {}
        }
    }
    changes
}

fn insert(table: &ScriptTable, id: i32, v: i32) -> ScriptRow {
    ScriptRow::Insert(table.clone(), vec![Some(id), Some(v)])
}

#[tokio::test(start_paused = true)]
async fn a_ddl_runs_only_once_every_worker_drained() {
    let mut script = BinlogScript::new();
    let before_ddl = script.table("shop", "t", &[false, true]);
    for id in 0..40 {
        script.transaction(&[insert(&before_ddl, id, id)]);
    }
    script.ddl("shop", "ALTER TABLE t ADD COLUMN c INT");
    let ddl_position = script.events().last().expect("ddl").position.clone();
    let after_ddl = script.table("shop", "t", &[false, true, true]);
    for id in 40..60 {
        script.transaction(&[ScriptRow::Insert(
            after_ddl.clone(),
            vec![Some(id), Some(id), Some(-id)],
        )]);
    }
    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    // Slow batches: without the barrier, the DDL would overtake them.
    sinks.delay(Operation::Batch, Duration::from_millis(50));
    let status = sync(script.source(), &sinks, settings(4))
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    assert_eq!(status.ddls_executed, 1);
    assert_eq!(status.rows_dispatched, 60);

    let events = sinks.events();
    let ddl_at = events
        .iter()
        .position(|event| matches!(event, Recorded::Ddl(_)))
        .expect("the DDL ran");
    let started_before = events[..ddl_at]
        .iter()
        .filter(|event| matches!(event, Recorded::BatchStarted { .. }))
        .count();
    let committed_before: Vec<&RowChange> = events[..ddl_at]
        .iter()
        .filter_map(|event| match event {
            Recorded::Batch { changes, .. } => Some(changes),
            _ => None,
        })
        .flatten()
        .collect();
    let batches_before = events[..ddl_at]
        .iter()
        .filter(|event| matches!(event, Recorded::Batch { .. }))
        .count();
    assert_eq!(
        started_before, batches_before,
        "no batch was being applied when the DDL ran"
    );
    assert_eq!(
        committed_before.len(),
        40,
        "every change before the DDL was committed before it ran"
    );
    assert!(
        committed_before
            .iter()
            .all(|change| change.location().position < ddl_position),
        "nothing after the DDL was applied before it"
    );
    // The checkpoint before the DDL records it; one after passes it.
    let saved_before = events[..ddl_at].iter().rev().find_map(|event| match event {
        Recorded::Saved(checkpoint) => Some(checkpoint),
        _ => None,
    });
    assert_eq!(
        saved_before
            .and_then(|checkpoint| checkpoint.ddl.as_ref())
            .map(|record| &record.position),
        Some(&ddl_position),
        "the DDL's record was saved before it ran"
    );
    assert!(
        events[ddl_at..].iter().any(|event| matches!(
            event,
            Recorded::Saved(checkpoint) if checkpoint.ddl.is_none() && checkpoint.location.position > ddl_position
        )),
        "a checkpoint past the DDL was saved"
    );
    // The rows after it carry the new column.
    let after: Vec<RowChange> = sinks
        .applied()
        .into_iter()
        .filter(|change| change.location().position > ddl_position)
        .collect();
    assert_eq!(after.len(), 20);
    assert!(
        after
            .iter()
            .all(|change| change.schema().columns().len() == 3)
    );
}

#[tokio::test(start_paused = true)]
async fn the_byte_budget_bounds_the_bytes_in_flight() {
    let mut script = BinlogScript::new();
    let t = script.table("shop", "t", &[false, true]);
    for id in 0..200 {
        script.transaction(&[insert(&t, id, id)]);
    }
    let change_bytes = {
        let sinks = RecordingSinks::new();
        sinks.define_table(table("t", true));
        let mut one = BinlogScript::new();
        let t = one.table("shop", "t", &[false, true]);
        one.transaction(&[insert(&t, 1, 1)]);
        sync(one.source(), &sinks, settings(1))
            .await
            .expect("one row");
        sinks.peak_in_flight_bytes()
    };
    assert!(change_bytes > 0);
    let budget = change_bytes * 3;
    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    sinks.delay(Operation::Batch, Duration::from_millis(20));
    let status = sync(
        script.source(),
        &sinks,
        SyncerSettings {
            max_in_flight_bytes: budget as usize,
            // Room for every change in the queues: only the budget holds them back.
            queue_size: 1024,
            batch: 100,
            ..settings(2)
        },
    )
    .await
    .unwrap_or_else(|error| panic!("syncer: {error}"));
    assert_eq!(sinks.applied().len(), 200, "everything arrives");
    assert!(
        status.peak_in_flight_bytes <= budget,
        "dispatched and not committed: {} bytes, budget {budget}",
        status.peak_in_flight_bytes
    );
    assert!(
        sinks.peak_in_flight_bytes() <= budget,
        "being applied at once: {} bytes, budget {budget}",
        sinks.peak_in_flight_bytes()
    );
    assert!(
        status.peak_in_flight_bytes >= change_bytes * 2,
        "the budget was used ({} bytes)",
        status.peak_in_flight_bytes
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_after_a_crash_mid_stream_applies_every_change_once() {
    let mut script = BinlogScript::new();
    let t = script.table("shop", "t", &[false, true]);
    let log = script.table("shop", "log", &[false, true]);
    for round in 0..60 {
        let id = round % 20;
        let rows = if round < 20 {
            vec![insert(&t, id, 0), insert(&log, id, 0)]
        } else if round < 40 {
            vec![
                ScriptRow::Update(
                    t.clone(),
                    vec![Some(id), Some(0)],
                    vec![Some(id), Some(round)],
                ),
                // A keyless table: a duplicate row, then one copy removed.
                insert(&log, id, 0),
            ]
        } else {
            vec![
                ScriptRow::Delete(t.clone(), vec![Some(id), Some(id + 20)]),
                ScriptRow::Delete(log.clone(), vec![Some(id), Some(0)]),
            ]
        };
        script.transaction(&rows);
    }
    let tables: HashMap<String, TableSchema> = [
        ("t".to_owned(), table("t", true)),
        ("log".to_owned(), table("log", false)),
    ]
    .into();
    let expected = scripted_changes(&script, &tables);
    assert_eq!(expected.len(), 120);

    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    sinks.define_table(table("log", false));
    sinks.delay(Operation::Batch, Duration::from_millis(5));
    // The crash: after 9 batches, every batch hangs (uncommitted); then the syncer is dropped.
    sinks.hang_after(Operation::Batch, 9);
    let crashed = tokio::time::timeout(
        Duration::from_secs(30),
        sync(script.source(), &sinks, settings(3)),
    )
    .await;
    assert!(crashed.is_err(), "the first run hangs at the crash point");
    let before_restart = sinks.applied().len();
    assert!(
        before_restart > 0 && before_restart < expected.len(),
        "the crash fell mid-stream ({before_restart} changes applied)"
    );
    let stored = sinks.stored();
    assert!(stored.global.is_some() && !stored.workers.is_empty());

    sinks.clear_script();
    let status = sync(script.source(), &sinks, settings(3))
        .await
        .unwrap_or_else(|error| panic!("restart: {error}"));
    assert!(
        status.rows_already_applied > 0,
        "the restart re-read changes a worker had committed and dropped them"
    );
    let applied = sinks.applied();
    assert_eq!(
        applied.len(),
        expected.len(),
        "every change applied once: {} applied, {} in the binlog",
        applied.len(),
        expected.len()
    );
    assert_eq!(model(&applied), model(&expected));
    // Per row, the order of the binlog.
    let per_row = |changes: &[RowChange]| {
        let mut rows: BTreeMap<(String, Option<i64>), Vec<Images>> = BTreeMap::new();
        for change in changes {
            let id = values(change.after().or(change.before()).expect("an image"))[0];
            rows.entry((change.table().table.clone(), id))
                .or_default()
                .push((change.before().map(values), change.after().map(values)));
        }
        rows
    };
    assert_eq!(per_row(&applied), per_row(&expected));
}

/// The syncer over `script` followed as an idle upstream (no event after the last, ever) into
/// `sinks`, spawned, stopped through `stop`.
fn spawn_following(
    script: &BinlogScript,
    sinks: &RecordingSinks,
    settings: SyncerSettings,
    stop: impl Into<dm_syncer::StopSignal>,
) -> tokio::task::JoinHandle<Result<SyncerStatus, SyncerError>> {
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    tokio::spawn(run_with(
        settings,
        script.following_source(),
        start(),
        sinks.clone(),
        InstanceRules::default(),
        stop.into(),
        progress,
    ))
}

#[tokio::test(start_paused = true)]
async fn a_stop_on_an_idle_stream_returns_without_waiting_for_an_event() {
    let mut script = BinlogScript::new();
    let t = script.table("shop", "t", &[false, true]);
    for id in 0..10 {
        script.transaction(&[insert(&t, id, id)]);
    }
    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn_following(&script, &sinks, settings(2), stop);
    // Every row applied: the syncer now waits at a transaction end for an event that never
    // comes (no heartbeat either).
    while sinks.applied().len() < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = tokio::time::Instant::now();
    stop_sender.send(true).expect("stop");
    let status = tokio::time::timeout(Duration::from_secs(1), syncer)
        .await
        .expect("the stop does not wait for another event")
        .expect("task")
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    assert!(asked.elapsed() < Duration::from_millis(100));
    assert_eq!(status.rows_dispatched, 10);
    assert_eq!(
        sinks.stored().global.map(|global| global.location.position),
        Some(script.end()),
        "the checkpoint is at the last transaction's end"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_now_mid_stream_leaves_checkpoints_a_restart_repeats_nothing_from() {
    use dm_syncer::StopRequest;
    let mut script = BinlogScript::new();
    let t = script.table("shop", "t", &[false, true]);
    let log = script.table("shop", "log", &[false, true]);
    // Transactions of several rows, so that a stop now can fall inside one.
    for round in 0..80 {
        script.transaction(&[
            insert(&t, round, round),
            insert(&log, round % 7, 1),
            insert(&log, round % 5, 2),
        ]);
    }
    let tables: HashMap<String, TableSchema> = [
        ("t".to_owned(), table("t", true)),
        ("log".to_owned(), table("log", false)),
    ]
    .into();
    let expected = scripted_changes(&script, &tables);
    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    sinks.define_table(table("log", false));
    sinks.delay(Operation::Batch, Duration::from_millis(20));
    let (stop_sender, stop) = tokio::sync::watch::channel(StopRequest::Continue);
    let syncer = spawn_following(&script, &sinks, settings(3), stop);
    while sinks.applied().len() < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_sender.send_replace(StopRequest::Now);
    tokio::time::timeout(Duration::from_secs(1), syncer)
        .await
        .expect("a stop now returns after the batches in flight")
        .expect("task")
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    let stopped = sinks.applied().len();
    assert!(
        stopped < expected.len(),
        "stopped before the end ({stopped} of {} applied)",
        expected.len()
    );
    let events = sinks.events();
    let last_batch = events
        .iter()
        .rposition(|event| matches!(event, Recorded::Batch { .. }))
        .expect("batches");
    assert!(
        events[last_batch..]
            .iter()
            .any(|event| matches!(event, Recorded::Saved(_))),
        "the global checkpoint was written after the last batch"
    );
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Recorded::BatchStarted { .. }))
            || events
                .iter()
                .filter(|event| matches!(event, Recorded::BatchStarted { .. }))
                .count()
                == events
                    .iter()
                    .filter(|event| matches!(event, Recorded::Batch { .. }))
                    .count(),
        "every batch begun was finished"
    );

    let status = sync(script.source(), &sinks, settings(3))
        .await
        .unwrap_or_else(|error| panic!("restart: {error}"));
    let applied = sinks.applied();
    assert_eq!(
        applied.len(),
        expected.len(),
        "every change applied once ({} before the stop, {} already applied at the restart)",
        stopped,
        status.rows_already_applied
    );
    assert_eq!(model(&applied), model(&expected));
}

#[tokio::test(start_paused = true)]
async fn ddl_events_a_binlog_operator_made_at_one_position_each_run_once() {
    use dm_binlog::{Event, Operator};
    let mut script = BinlogScript::new();
    let t = script.table("shop", "t", &[false, true]);
    script.transaction(&[insert(&t, 1, 1)]);
    script.ddl("shop", "ALTER TABLE t ADD COLUMN c INT");
    let replaced = script.events().last().expect("ddl").position.clone();
    script.ddl("shop", "ALTER TABLE t ADD COLUMN d INT");
    let injected_at = script.events().last().expect("ddl").position.clone();
    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    let mut settings = settings(2);
    settings.operators = vec![
        // One DDL replaced by two: both run.
        (
            replaced,
            Operator::Replace(vec![
                Event::statement("shop", "ALTER TABLE t ADD COLUMN c1 INT"),
                Event::statement("shop", "ALTER TABLE t ADD COLUMN c2 INT"),
            ]),
        ),
        // One injected before another: both run, the injected first.
        (
            injected_at,
            Operator::Inject(vec![Event::statement(
                "shop",
                "ALTER TABLE t ADD COLUMN before_d INT",
            )]),
        ),
    ];
    let status = sync(script.source(), &sinks, settings)
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    let ran: Vec<String> = sinks
        .events()
        .iter()
        .filter_map(|event| match event {
            Recorded::Ddl(job) => Some(job.statement.sql.clone()),
            _ => None,
        })
        .collect();
    let columns: Vec<&str> = ["c1", "c2", "before_d", "d"].to_vec();
    assert_eq!(ran.len(), 4, "{ran:?}");
    for (sql, column) in ran.iter().zip(columns) {
        assert!(
            sql.ends_with(&format!("ADD COLUMN {column} INT")),
            "{ran:?}"
        );
    }
    assert_eq!(status.ddls_executed, 4);
}

/// A batch the sink refuses for good ends the run with the sink's own error (its code and
/// message), not with the dispatcher's "worker stopped", whichever of the two notices first.
#[tokio::test(start_paused = true)]
async fn a_batch_refused_for_good_ends_the_run_with_the_sinks_error() {
    use dm_core::ClassifiedError;
    let mut script = BinlogScript::new();
    let t = script.table("shop", "t", &[false, true]);
    for id in 0..200 {
        script.transaction(&[insert(&t, id, id)]);
    }
    let sinks = RecordingSinks::new();
    sinks.define_table(table("t", true));
    sinks.fail_next(
        Operation::Batch,
        dm_core::ErrorClass::Definite,
        "the downstream refused the batch",
    );
    let error = sync(script.source(), &sinks, settings(1))
        .await
        .expect_err("a refused batch stops the run");
    assert_eq!(error.code(), dm_core::ErrorCode(10900), "{error}");
    assert!(error.to_string().contains("refused the batch"), "{error}");
}
