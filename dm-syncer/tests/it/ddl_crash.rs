//! A DDL's crash window: the syncer is killed at every step of the handling of each DDL (after
//! the drain, after the checkpoint at the DDL's start, after the statement ran downstream, after
//! the checkpoint past it), then restarted. Rows written before each DDL are read again after the
//! restart and must decode with the columns they had; no DDL may run twice; the downstream ends
//! equal to the upstream.
//!
//! Whether a DDL ran twice is read from the downstream's own general log: every statement it
//! executed, counted.

use std::time::Duration;

use dm_syncer::SyncerSettings;
use dm_syncer::syncer::fault::{DdlStep, pause_at};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::replication::{assert_equal, first_event, rules, syncer};

/// Each DDL has rows before and after it, in transactions of their own, so that a restart at
/// the checkpoint before the DDL reads rows written with the old columns.
const HISTORY: &str = "CREATE DATABASE crash; USE crash;
CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10));
INSERT INTO t VALUES (1, 1, 'one');
INSERT INTO t VALUES (2, 2, 'two');
ALTER TABLE t ADD COLUMN c INT DEFAULT 7 AFTER a;
INSERT INTO t VALUES (3, 3, 30, 'three');
UPDATE t SET c = 8 WHERE id = 1;
ALTER TABLE t DROP COLUMN b;
INSERT INTO t VALUES (4, 4, 40);
UPDATE t SET a = a + 100;
ALTER TABLE t MODIFY COLUMN a BIGINT NOT NULL, ADD COLUMN d VARCHAR(5) DEFAULT 'd';
INSERT INTO t VALUES (5, 5000000000, 50, 'five');
CREATE TABLE left_side (id INT PRIMARY KEY, side CHAR(1));
CREATE TABLE right_side (id INT PRIMARY KEY, side CHAR(1));
INSERT INTO left_side VALUES (1, 'L');
INSERT INTO right_side VALUES (1, 'R');
RENAME TABLE left_side TO swap_tmp, right_side TO left_side, swap_tmp TO right_side;
INSERT INTO left_side VALUES (2, 'r');
INSERT INTO right_side VALUES (2, 'l');
DELETE FROM t WHERE id = 2;";

/// The DDL statements of the history, as the downstream's general log shows each of them run.
const DDL_MARKERS: [&str; 6] = [
    "ADD COLUMN c INT",
    "DROP COLUMN b",
    "MODIFY COLUMN a BIGINT",
    "`left_side` TO `crash`.`swap_tmp`",
    "`right_side` TO `crash`.`left_side`",
    "`swap_tmp` TO `crash`.`right_side`",
];

const STEPS: [DdlStep; 4] = [
    DdlStep::AfterDrain,
    DdlStep::AfterStartCheckpoint,
    DdlStep::AfterExecute,
    DdlStep::AfterEndCheckpoint,
];

fn crash_settings() -> SyncerSettings {
    SyncerSettings {
        workers: 2,
        batch: 10,
        queue_size: 64,
        // Long: the only checkpoints are those the DDLs write, so a restart goes back as far
        // as it can.
        checkpoint_interval: Duration::from_secs(3600),
        ..SyncerSettings::new("crash", "mariadb-01")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_ddl_neither_fails_nor_runs_it_twice() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("ddl-crash-upstream")),
        MariaDb::start_with(MariaDbOptions::named("ddl-crash-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(HISTORY).await.expect("history");
    downstream
        .execute("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1")
        .await
        .expect("general log");

    // Kill at each step of the next DDL, over and over: the restart goes back to the last
    // checkpoint, meets the same DDL (or the next one, after the last step) and is killed at the
    // following step, until every step of every DDL event was a crash point.
    let mut crashes = 0;
    let mut step = 0;
    loop {
        let pause = STEPS[step % STEPS.len()];
        let reached = pause_at("crash", "mariadb-01", pause);
        let (run, _stop) = syncer(
            &upstream,
            &downstream,
            901,
            first_event(),
            crash_settings(),
            rules(),
            true,
        );
        let mut task = tokio::spawn(run);
        tokio::select! {
            () = reached.notified() => {
                task.abort();
                let _ = task.await;
                crashes += 1;
                step += 1;
            }
            result = &mut task => {
                // The history's end: no DDL left to pause at.
                let status = result
                    .expect("join")
                    .unwrap_or_else(|error| panic!("syncer after {crashes} crashes: {error}"));
                eprintln!("{crashes} crashes; the last run: {status:?}");
                break;
            }
        }
        assert!(crashes < 200, "the crashes do not make progress");
    }
    // 8 DDL events (the RENAME has three statements) x 4 steps.
    assert!(crashes >= 32, "only {crashes} crashes");
    assert_equal(&upstream, &downstream, "crash").await;

    // Every DDL statement ran downstream exactly once.
    let log = downstream
        .query("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type = 'Query'")
        .await
        .expect("general log");
    for marker in DDL_MARKERS {
        let runs = log
            .iter()
            .filter_map(|row| row.first().cloned().flatten())
            .filter(|statement| {
                statement.contains(marker)
                    && !statement.starts_with("SHOW")
                    && !statement.contains("_syncer_checkpoint")
            })
            .count();
        assert_eq!(runs, 1, "`{marker}` ran {runs} times downstream");
    }
}

/// Runs the syncer of `settings` until it reaches `step` of its next DDL, then kills it.
async fn crash_at(
    upstream: &MariaDb,
    downstream: &MariaDb,
    settings: SyncerSettings,
    step: DdlStep,
) {
    let reached = pause_at(&settings.task, &settings.source_id, step);
    let (run, _stop) = syncer(
        upstream,
        downstream,
        902,
        first_event(),
        settings,
        rules(),
        true,
    );
    let task = tokio::spawn(run);
    tokio::time::timeout(Duration::from_secs(60), reached.notified())
        .await
        .expect("the syncer reaches the step");
    task.abort();
    let _ = task.await;
}

/// How many times the downstream's general log shows a statement containing `marker` run.
async fn runs_of(downstream: &MariaDb, marker: &str) -> usize {
    let log = downstream
        .query("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type = 'Query'")
        .await
        .expect("general log");
    log.iter()
        .filter_map(|row| row.first().cloned().flatten())
        .filter(|statement| {
            statement.contains(marker)
                && !statement.starts_with("SHOW")
                && !statement.contains("_syncer_checkpoint")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_a_crashed_ddl_keeps_its_record() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("ddl-record-upstream")),
        MariaDb::start_with(MariaDbOptions::named("ddl-record-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute(
            "CREATE DATABASE keep; USE keep; CREATE TABLE t (id INT PRIMARY KEY);
             INSERT INTO t VALUES (1);
             ALTER TABLE t ADD COLUMN c INT DEFAULT 3;
             INSERT INTO t VALUES (2, 4);",
        )
        .await
        .expect("history");
    downstream
        .execute("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1")
        .await
        .expect("general log");
    let settings = SyncerSettings {
        task: "record".into(),
        ..crash_settings()
    };
    // Two DDLs before the ALTER: pause at the third one's execution.
    for _ in 0..2 {
        crash_at(
            &upstream,
            &downstream,
            settings.clone(),
            DdlStep::AfterEndCheckpoint,
        )
        .await;
    }
    crash_at(
        &upstream,
        &downstream,
        settings.clone(),
        DdlStep::AfterExecute,
    )
    .await;
    assert_eq!(runs_of(&downstream, "ADD COLUMN c INT").await, 1);
    // A run stopped before it meets the ALTER again writes a checkpoint: the record of the
    // ALTER must survive it.
    let (run, stop) = syncer(
        &upstream,
        &downstream,
        902,
        first_event(),
        settings.clone(),
        rules(),
        false,
    );
    stop.send(true).expect("stop");
    run.await.expect("a stopped run");
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        902,
        first_event(),
        settings,
        rules(),
        true,
    );
    run.await
        .unwrap_or_else(|error| panic!("the restart: {error}"));
    assert_eq!(
        runs_of(&downstream, "ADD COLUMN c INT").await,
        1,
        "the ALTER ran twice"
    );
    assert_equal(&upstream, &downstream, "keep").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_an_exchange_of_partitions_asks_the_user() {
    use dm_binlog::Operator;
    use dm_core::BinlogPosition;
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("ddl-exchange-upstream")),
        MariaDb::start_with(MariaDbOptions::named("ddl-exchange-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute(
            "CREATE DATABASE swap; USE swap;
             CREATE TABLE p (id INT PRIMARY KEY) PARTITION BY RANGE (id)
               (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE);
             CREATE TABLE x (id INT PRIMARY KEY);
             INSERT INTO p VALUES (1), (200); INSERT INTO x VALUES (7);
             ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE x;
             INSERT INTO x VALUES (8);",
        )
        .await
        .expect("history");
    let settings = SyncerSettings {
        task: "exchange".into(),
        ..crash_settings()
    };
    for _ in 0..3 {
        crash_at(
            &upstream,
            &downstream,
            settings.clone(),
            DdlStep::AfterEndCheckpoint,
        )
        .await;
    }
    crash_at(
        &upstream,
        &downstream,
        settings.clone(),
        DdlStep::AfterExecute,
    )
    .await;
    // Running it again would swap the rows back: the syncer cannot tell whether it ran, and
    // says so with the event's position.
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        902,
        first_event(),
        settings.clone(),
        rules(),
        true,
    );
    let error = run.await.expect_err("the user decides");
    let message = error.to_string();
    assert!(message.contains("cannot be told"), "{message}");
    let position = message
        .strip_prefix("at ")
        .and_then(|rest| rest.split(':').take(2).collect::<Vec<_>>().join(":").into())
        .map(|text: String| text.to_owned())
        .expect("the message starts with the position");
    let position = BinlogPosition::parse(&position).expect("a file:position");
    // It did run (the crash came after it): skip it.
    let mut settings = settings;
    settings.operators = vec![(position, Operator::Skip)];
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        902,
        first_event(),
        settings,
        rules(),
        true,
    );
    run.await
        .unwrap_or_else(|error| panic!("after the skip: {error}"));
    assert_equal(&upstream, &downstream, "swap").await;
}
