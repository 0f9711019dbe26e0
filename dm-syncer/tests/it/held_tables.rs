//! Held tables without any server: a scripted binlog replicated into the recording sink with
//! a scripted shard coordinator (`dm_core::testsuite::ScriptedCoordinator`), on paused time. A
//! held table's rows after its DDL wait while every other table goes on; the resolution runs
//! the DDL once and replays the held rows once; a crash while held or while replaying loses
//! and repeats nothing; a task without shard coordination refuses a checkpoint that keeps
//! holds.

use std::time::Duration;

use dm_binlog::testsuite::{BinlogScript, ScriptRow, ScriptTable};
use dm_core::testsuite::{
    CoordinatorScript, Operation, RecordingSinks, ScriptedCoordinator, int_table,
};
use dm_core::{
    BinlogPosition, ClassifiedError, HoldStage, Location, Resolved, RowChange, ShardResolution,
    TableRef, TableSchema, Value,
};
use dm_syncer::{SyncerError, SyncerSettings, SyncerStatus, run_coordinated, run_with};
use dm_task::config::InstanceRules;

fn table(name: &str, columns: &[&str]) -> TableSchema {
    int_table(TableRef::new("shop", name), columns, true)
}

fn settings() -> SyncerSettings {
    SyncerSettings {
        workers: 2,
        batch: 4,
        queue_size: 64,
        checkpoint_interval: Duration::ZERO,
        compact: false,
        ..SyncerSettings::new("held", "script-01")
    }
}

fn start() -> Location {
    Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"))
}

fn insert(table: &ScriptTable, values: &[i32]) -> ScriptRow {
    ScriptRow::Insert(table.clone(), values.iter().copied().map(Some).collect())
}

/// `shop.a` (a shard: its DDL is held) and `shop.b`: 10 rows each, `ALTER TABLE a ADD c`,
/// then 10 more rows each (a's with the new column).
fn script() -> BinlogScript {
    let mut script = BinlogScript::new();
    let a = script.table("shop", "a", &[false, true]);
    let b = script.table("shop", "b", &[false, true]);
    for id in 0..10 {
        script.transaction(&[insert(&a, &[id, id]), insert(&b, &[id, id])]);
    }
    script.ddl("shop", "ALTER TABLE a ADD COLUMN c INT");
    let a_after = script.table("shop", "a", &[false, true, true]);
    for id in 10..20 {
        script.transaction(&[insert(&a_after, &[id, id, -id])]);
        script.transaction(&[insert(&b, &[id, id])]);
    }
    script
}

fn sinks() -> RecordingSinks {
    let sinks = RecordingSinks::new();
    sinks.define_table(table("a", &["id", "v"]));
    sinks.define_table(table("b", &["id", "v"]));
    sinks
}

/// The ids applied to `table`, sorted (rows of different ids may commit on different workers
/// in any order).
fn ids(changes: &[RowChange], table: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = changes
        .iter()
        .filter(|change| change.table().table == table)
        .map(|change| match change.after().map(|row| &row.values()[0]) {
            Some(Value::Int(id)) => *id,
            other => panic!("unexpected image {other:?}"),
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn spawn(
    script: &BinlogScript,
    sinks: &RecordingSinks,
    coordinator: ScriptedCoordinator,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<SyncerStatus, SyncerError>> {
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    tokio::spawn(run_coordinated(
        settings(),
        script.following_source(),
        start(),
        sinks.clone(),
        InstanceRules::default(),
        coordinator,
        stop,
        progress,
    ))
}

/// `shop.a` and `shop.b`: five rows each, then `ddl` (of `a`); the script and `b`'s table.
fn five_rows_then(ddl: &str) -> (BinlogScript, ScriptTable) {
    let mut script = BinlogScript::new();
    let a = script.table("shop", "a", &[false, true]);
    let b = script.table("shop", "b", &[false, true]);
    for id in 0..5 {
        script.transaction(&[insert(&a, &[id, id]), insert(&b, &[id, id])]);
    }
    script.ddl("shop", ddl);
    (script, b)
}

/// The statements the sink ran, in order.
fn statements(sinks: &RecordingSinks) -> Vec<String> {
    sinks
        .ddls()
        .iter()
        .map(|ddl| ddl.statement.sql.clone())
        .collect()
}

/// Waits (on paused time) until `done` holds for what the sinks applied.
async fn wait_until(sinks: &RecordingSinks, what: &str, done: impl Fn(&[RowChange]) -> bool) {
    for _ in 0..2_000 {
        if done(&sinks.applied()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("waited in vain for {what}");
}

/// The resolution of the hold the coordinator was asked about first.
fn resolution(script: &CoordinatorScript) -> ShardResolution {
    let asked = script.asked();
    let ddl = asked.first().expect("the coordinator was asked");
    ShardResolution {
        table: ddl.tables[0].clone(),
        held_at: ddl.location.clone(),
        resolved: Resolved::Execute(vec![0]),
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_table_waits_for_its_resolution_then_its_rows_replay_once() {
    let script = script();
    let sinks = sinks();
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);

    // b goes on; a stops at its DDL.
    wait_until(&sinks, "b's rows", |applied| ids(applied, "b").len() == 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let applied = sinks.applied();
    assert_eq!(ids(&applied, "a"), (0..10).collect::<Vec<_>>());
    assert!(sinks.ddls().is_empty(), "the held DDL did not run");
    let stored = sinks.stored().global.expect("a checkpoint");
    assert_eq!(stored.holds.len(), 1);
    assert_eq!(stored.holds[0].stage, HoldStage::Held);
    assert!(
        stored.location.position <= stored.holds[0].held_at.position,
        "the checkpoint stays before the held DDL"
    );
    assert_eq!(coordination.asked().len(), 1);
    assert_eq!(coordination.asked()[0].statements.len(), 1);

    coordination.resolve(resolution(&coordination)).await;
    wait_until(&sinks, "a's rows", |applied| ids(applied, "a").len() >= 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let applied = sinks.applied();
    assert_eq!(
        ids(&applied, "a"),
        (0..20).collect::<Vec<_>>(),
        "a's rows once each"
    );
    assert_eq!(ids(&applied, "b"), (0..20).collect::<Vec<_>>());
    assert_eq!(sinks.ddls().len(), 1, "the DDL ran once");
    assert!(
        applied
            .iter()
                .filter(|change| change.table().table == "a")
            .filter(|change| {
                matches!(change.after().map(|row| &row.values()[0]), Some(Value::Int(id)) if *id >= 10)
            })
            .all(|change| change.schema().columns().len() == 3),
        "the replayed rows are decoded with the new structure"
    );
    stop_sender.send(true).expect("stop");
    let status = syncer.await.expect("joins").expect("runs");
    assert_eq!(status.tables_held, 0);
    let stored = sinks.stored().global.expect("a checkpoint");
    assert!(
        stored
            .holds
            .iter()
            .all(|hold| hold.stage != HoldStage::Held),
        "no hold left: {:?}",
        stored.holds
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_while_held_and_while_replaying_loses_and_repeats_nothing() {
    let script = script();
    let sinks = sinks();
    sinks.delay(Operation::Batch, Duration::from_millis(5));

    // Run 1: holds a, then crashes (dropped) with batches in flight.
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    wait_until(&sinks, "b's rows", |applied| ids(applied, "b").len() >= 15).await;
    syncer.abort();
    let _ = syncer.await;
    let held = resolution(&coordination);
    assert_eq!(ids(&sinks.applied(), "a"), (0..10).collect::<Vec<_>>());
    assert_eq!(
        sinks.stored().global.expect("a checkpoint").holds[0].stage,
        HoldStage::Held,
        "run 1 crashed while a was held"
    );

    // Run 2: the coordinator knows the hold (restore) and resolves it; the replay crashes:
    // after two more batches every batch hangs.
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    coordination.resolve(held.clone()).await;
    sinks.hang_after(Operation::Batch, 2);
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    tokio::time::sleep(Duration::from_secs(5)).await;
    syncer.abort();
    let _ = syncer.await;
    let replayed = ids(&sinks.applied(), "a").len();
    let stage = sinks.stored().global.expect("a checkpoint").holds[0]
        .stage
        .clone();
    assert!(
        matches!(stage, HoldStage::Replaying { .. }) && replayed > 10 && replayed < 20,
        "run 2 crashed in the middle of the replay ({replayed} rows of a, {stage:?})"
    );
    assert_eq!(
        coordination.restored().first().map(Vec::len),
        Some(1),
        "the hold was given back to the coordinator"
    );

    // Run 3: whatever the stored stage, the hold ends and every row is applied once.
    sinks.clear_script();
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.resolve(held).await;
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    wait_until(&sinks, "every row", |applied| {
        ids(applied, "a").len() >= 20 && ids(applied, "b").len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_sender.send(true).expect("stop");
    syncer.await.expect("joins").expect("runs");
    let applied = sinks.applied();
    assert_eq!(
        ids(&applied, "a"),
        (0..20).collect::<Vec<_>>(),
        "a's rows exactly once"
    );
    assert_eq!(
        ids(&applied, "b"),
        (0..20).collect::<Vec<_>>(),
        "b's rows exactly once"
    );
    assert_eq!(sinks.ddls().len(), 1, "the DDL ran once");
}

#[tokio::test(start_paused = true)]
async fn a_task_without_coordination_refuses_a_checkpoint_with_holds() {
    let script = script();
    let sinks = sinks();
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    wait_until(&sinks, "b's rows", |applied| ids(applied, "b").len() == 20).await;
    stop_sender.send(true).expect("stop");
    syncer.await.expect("joins").expect("runs");

    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let error = run_with(
        settings(),
        script.source(),
        start(),
        sinks.clone(),
        InstanceRules::default(),
        stop,
        progress,
    )
    .await
    .expect_err("holds without a coordinator");
    assert_eq!(error.code().to_string(), "DM-10010", "{error}");
    assert!(error.to_string().contains("shop"), "{error}");
}

/// Against live servers, by GTID: the held table's rows wait in the upstream's binlog, the
/// resolution reopens the replica stream at the held DDL, and the downstream ends equal to the
/// upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_table_replays_from_a_live_upstream_by_gtid() {
    use dm_sink::{CheckpointTables, MetaScope, MySqlSinkOptions, MySqlSinks};
    use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas, or_skip};

    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("held-up")),
        MariaDb::start_with(MariaDbOptions::named("held-down")),
    );
    let (upstream, downstream) = (or_skip!(upstream), or_skip!(downstream));
    let schema = "CREATE DATABASE shop; CREATE TABLE shop.a (id INT PRIMARY KEY, v INT); \
                  CREATE TABLE shop.b (id INT PRIMARY KEY, v INT)";
    upstream.execute(schema).await.expect("upstream tables");
    downstream.execute(schema).await.expect("downstream tables");
    let gtid = upstream
        .query("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid")
        .remove(0)
        .remove(0)
        .expect("a GTID position");
    let (file, offset) = upstream.binlog_position().await.expect("position");
    let start = Location {
        position: BinlogPosition::parse(&format!("{file}:{offset}")).expect("position"),
        gtid_set: Some(std::sync::Arc::new(
            dm_core::GtidSet::parse(dm_core::Flavor::MariaDb, &gtid).expect("gtid set"),
        )),
        suffix: 0,
    };
    upstream
        .execute(
            "USE shop; INSERT INTO shop.a SELECT seq, seq FROM seq_1_to_50; \
             INSERT INTO shop.b SELECT seq, seq FROM seq_1_to_50; \
             ALTER TABLE shop.a ADD COLUMN c INT; \
             INSERT INTO shop.a SELECT seq, seq, -seq FROM seq_51_to_100; \
             UPDATE shop.a SET c = 7 WHERE id % 10 = 0; \
             INSERT INTO shop.b SELECT seq, seq FROM seq_51_to_100",
        )
        .await
        .expect("workload");

    let mut source = dm_binlog::RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", 611);
    source.heartbeat_period = Duration::from_millis(500);
    let settings = SyncerSettings {
        flavor: dm_core::Flavor::MariaDb,
        checkpoint_interval: Duration::from_millis(100),
        ..SyncerSettings::new("held", "mariadb-01")
    };
    let sinks = MySqlSinks::new(
        MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", ""),
        MetaScope {
            tables: CheckpointTables::new("dm_meta", "held").expect("meta"),
            source: "mariadb-01".into(),
            flavor: dm_core::Flavor::MariaDb,
        },
    );
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let syncer = tokio::spawn(run_coordinated(
        settings,
        source,
        start,
        sinks,
        InstanceRules::default(),
        coordinator,
        stop,
        progress,
    ));
    let count = |table: &'static str| {
        let downstream = &downstream;
        async move {
            downstream
                .query(&format!("SELECT COUNT(*) FROM shop.{table}"))
                .await
                .expect("count")[0][0]
                .clone()
                .unwrap_or_default()
        }
    };
    for _ in 0..300 {
        if count("b").await == "100" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("b").await, "100", "b goes on while a is held");
    assert_eq!(count("a").await, "50", "a stops at its DDL");
    let columns = downstream
        .query("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'a'")
        .await
        .expect("columns");
    assert_eq!(
        columns[0][0].as_deref(),
        Some("2"),
        "the held DDL did not run"
    );

    coordination.resolve(resolution(&coordination)).await;
    let mut equal = false;
    for _ in 0..300 {
        let mut left = upstream.connect().await.expect("connect");
        let mut right = downstream.connect().await.expect("connect");
        if compare_schemas(&mut left, &mut right, "shop")
            .await
            .expect("compare")
            .is_none()
        {
            equal = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_sender.send(true).expect("stop");
    let status = syncer.await.expect("joins").expect("runs");
    assert!(equal, "the downstream equals the upstream after the replay");
    assert_eq!(status.tables_held, 0);
}

/// Regression (review): a DDL that ran while the checkpoint was held back, met again after two
/// restarts, still finds its record and does not run again.
#[tokio::test(start_paused = true)]
async fn a_ddl_that_ran_while_the_checkpoint_is_held_back_runs_once_across_restarts() {
    use dm_syncer::syncer::fault::{DdlStep, pause_at};
    let (mut script, b) = five_rows_then("ALTER TABLE a ADD COLUMN c INT");
    for id in 5..10 {
        script.transaction(&[insert(&b, &[id, id])]);
    }
    script.ddl("shop", "ALTER TABLE b ADD COLUMN d INT");
    let b_after = script.table("shop", "b", &[false, true, true]);
    for id in 10..15 {
        script.transaction(&[insert(&b_after, &[id, id, id])]);
    }
    let sinks = sinks();
    let held = || {
        let (coordinator, coordination) = ScriptedCoordinator::new();
        coordination.hold(TableRef::new("shop", "a"));
        (coordinator, coordination)
    };

    // Run 1: a held; the run dies right after b's ALTER ran.
    let reached = pause_at("held", "script-01", DdlStep::AfterExecute);
    let (coordinator, _coordination) = held();
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    reached.notified().await;
    syncer.abort();
    let _ = syncer.await;
    // Runs 2 and 3: a still held, b's ALTER met again each time.
    for _ in 0..2 {
        let (coordinator, _coordination) = held();
        let (_stop_sender, stop) = tokio::sync::watch::channel(false);
        let syncer = spawn(&script, &sinks, coordinator, stop);
        wait_until(&sinks, "b's rows", |applied| ids(applied, "b").len() >= 15).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        syncer.abort();
        let _ = syncer.await;
    }
    let b_ddls = sinks
        .ddls()
        .iter()
        .filter(|ddl| ddl.statement.sql.contains("`b`"))
        .count();
    assert_eq!(b_ddls, 1, "b's ALTER ran once");
    assert_eq!(ids(&sinks.applied(), "b"), (0..15).collect::<Vec<_>>());
}

/// Regression (review): after a Skip resolution and a restart in the middle of the replay, the
/// replayed table's next DDL runs (a record of a later DDL of another table does not say it
/// ran).
#[tokio::test(start_paused = true)]
async fn a_replayed_tables_later_ddl_runs_after_a_restart_mid_replay() {
    let (mut script, _) = five_rows_then("ALTER TABLE a ADD COLUMN c INT");
    let a3 = script.table("shop", "a", &[false, true, true]);
    for id in 5..10 {
        script.transaction(&[insert(&a3, &[id, id, id])]);
    }
    script.ddl("shop", "ALTER TABLE a ADD COLUMN e INT");
    let a4 = script.table("shop", "a", &[false, true, true, true]);
    for id in 10..15 {
        script.transaction(&[insert(&a4, &[id, id, id, id])]);
    }
    script.ddl("shop", "ALTER TABLE b ADD COLUMN d INT");
    let b3 = script.table("shop", "b", &[false, true, true]);
    for id in 5..10 {
        script.transaction(&[insert(&b3, &[id, id, id])]);
    }
    let sinks = sinks();
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    wait_until(&sinks, "b's rows", |applied| ids(applied, "b").len() >= 10).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = coordination.asked();
    let first = asked.first().expect("asked");
    coordination.release(&TableRef::new("shop", "a"));
    sinks.hang_after(Operation::Batch, 1);
    coordination
        .resolve(ShardResolution {
            table: first.tables[0].clone(),
            held_at: first.location.clone(),
            resolved: Resolved::Skip,
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    syncer.abort();
    let _ = syncer.await;

    sinks.clear_script();
    let (coordinator, _coordination) = ScriptedCoordinator::new();
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let syncer = spawn(&script, &sinks, coordinator, stop);
    wait_until(&sinks, "a's rows", |applied| ids(applied, "a").len() >= 15).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_sender.send(true).expect("stop");
    syncer.await.expect("joins").expect("runs");
    let ddls = statements(&sinks);
    assert!(
        ddls.iter()
            .any(|sql| sql.contains("ADD COLUMN `e`") || sql.contains("ADD COLUMN e")),
        "a's second ALTER ran downstream: {ddls:?}"
    );
    assert!(
        !ddls
            .iter()
            .any(|sql| sql.contains("ADD COLUMN `c`") || sql.contains("ADD COLUMN c")),
        "the skipped ALTER did not run: {ddls:?}"
    );
    assert_eq!(ids(&sinks.applied(), "a"), (0..15).collect::<Vec<_>>());
}

/// Regression (review): a held DDL a binlog operator made is met again by the rewind (the
/// operators are set again on every reopen), and the replay runs.
#[tokio::test(start_paused = true)]
async fn a_held_ddl_a_binlog_operator_made_is_met_again_by_the_rewind() {
    use dm_binlog::{Event, Operator};
    let (mut script, b) = five_rows_then("ALTER TABLE a ADD COLUMN x INT");
    let at = script.events().last().expect("ddl").position.clone();
    let a3 = script.table("shop", "a", &[false, true, true]);
    for id in 5..10 {
        script.transaction(&[insert(&a3, &[id, id, id])]);
        script.transaction(&[insert(&b, &[id, id])]);
    }
    let sinks = sinks();
    let mut settings = settings();
    settings.operators = vec![(
        at,
        Operator::Replace(vec![Event::statement(
            "shop",
            "ALTER TABLE a ADD COLUMN c INT /* replaced */",
        )]),
    )];
    let (coordinator, coordination) = ScriptedCoordinator::new();
    coordination.hold(TableRef::new("shop", "a"));
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let syncer = tokio::spawn(run_coordinated(
        settings,
        script.following_source(),
        start(),
        sinks.clone(),
        InstanceRules::default(),
        coordinator,
        stop,
        progress,
    ));
    wait_until(&sinks, "b's rows", |applied| ids(applied, "b").len() >= 10).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    coordination.resolve(resolution(&coordination)).await;
    wait_until(&sinks, "a's rows", |applied| ids(applied, "a").len() >= 10).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_sender.send(true).expect("stop");
    let status = syncer.await.expect("joins").expect("runs");
    assert_eq!(status.tables_held, 0);
    assert_eq!(ids(&sinks.applied(), "a"), (0..10).collect::<Vec<_>>());
    assert_eq!(ids(&sinks.applied(), "b"), (0..10).collect::<Vec<_>>());
    let ddls = statements(&sinks);
    assert_eq!(ddls.len(), 1, "{ddls:?}");
    assert!(
        ddls[0].contains("COLUMN c"),
        "the operator's DDL ran, not the original: {ddls:?}"
    );
}
