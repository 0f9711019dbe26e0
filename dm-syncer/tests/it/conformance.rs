//! DM's own integration cases (`../shared/fixtures/dm-tests`, see its README) replayed through
//! the syncer: the upstream runs the case's SQL files in DM's order, the syncer follows the
//! binlog from its start under the case's own task file, and the downstream must hold what
//! DM's test script checks.

use std::path::Path;
use std::time::Duration;

use dm_binlog::RemoteOptions;
use dm_core::{BinlogPosition, Flavor, Location};
use dm_sink::MySqlSinkOptions;
use dm_syncer::config::TaskConfig;
use dm_syncer::{SyncerSettings, SyncerStatus, run};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip, shared_fixture};

/// Runs `files` (relative to the case) on a fresh upstream, then the syncer under `task` to the
/// end of the binlog; returns both servers and the final status.
async fn replay(
    case: &Path,
    task: &str,
    files: &[&str],
    name: &str,
) -> Option<(MariaDb, MariaDb, SyncerStatus)> {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named(&format!("{name}-upstream"))),
        MariaDb::start_with(MariaDbOptions::named(&format!("{name}-downstream"))),
    );
    let upstream = match upstream {
        Ok(server) => server,
        Err(error) => {
            dm_testkit::announce_skip(&error);
            assert!(!dm_testkit::is_ci(), "{error}");
            return None;
        }
    };
    let downstream = downstream.expect("downstream");
    let task_path = case.join(task);
    let text = std::fs::read_to_string(&task_path).expect("task file");
    let task = TaskConfig::from_yaml(&text, &task_path.display().to_string())
        .unwrap_or_else(|error| panic!("{error}"));
    let instance = task.mysql_instances.first().expect("an instance");
    let rules = task.rules_for(instance).expect("rules");
    for file in files {
        let sql = std::fs::read_to_string(case.join(file)).expect("SQL file");
        upstream
            .execute(&sql)
            .await
            .unwrap_or_else(|error| panic!("{file}: {error}"));
    }
    let mut source = RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", 521);
    source.stop_at_end = true;
    let start =
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));
    let sink = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    let settings = SyncerSettings {
        task: task.name.clone(),
        source_id: instance.source_id.clone(),
        meta_schema: task.meta_schema.clone(),
        workers: 4,
        batch: 100,
        queue_size: 256,
        flavor: Flavor::MariaDb,
        checkpoint_interval: Duration::from_millis(200),
        safe_mode: false,
        case_sensitive: task.case_sensitive,
        metrics: None,
        upstream: None,
        operators: Vec::new(),
        safe_mode_until: None,
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let status = run(settings, source, start, sink, rules, stop, progress)
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    Some((upstream, downstream, status))
}

fn one(rows: Vec<Vec<Option<String>>>) -> String {
    rows.into_iter()
        .flatten()
        .map(|value| value.unwrap_or_else(|| "NULL".into()))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_expression_filter_case_with_updates_generated_columns_and_now() {
    let case = or_skip!(shared_fixture("dm-tests/expression_filter"));
    let Some((_upstream, downstream, status)) = replay(
        &case,
        "conf/dm-task2.yaml",
        &["data/db1.prepare2.sql", "data/db1.increment2.sql"],
        "expression-complex",
    )
    .await
    else {
        return;
    };
    let query = |sql: &'static str| {
        let downstream = &downstream;
        async move { one(downstream.query(sql).await.expect(sql)) }
    };
    // DM's run.sh: t2 has 6 rows, none to skip (a filter that lost its column does not apply,
    // and applies again once the column is back, generated).
    assert_eq!(query("SELECT COUNT(*) FROM expr_filter.t2").await, "6");
    assert_eq!(
        query("SELECT COUNT(*) FROM expr_filter.t2 WHERE should_skip = 0").await,
        "6"
    );
    // NOW() filters the future row; the Pythagorean triple is filtered.
    assert_eq!(query("SELECT COUNT(*) FROM expr_filter.t3").await, "1");
    assert_eq!(query("SELECT COUNT(*) FROM expr_filter.t4").await, "1");
    // Updates: old value, new value, and both (AND).
    assert_eq!(query("SELECT COUNT(*) FROM expr_filter.t5").await, "4");
    assert_eq!(
        query("SELECT COUNT(*) FROM expr_filter.t5 WHERE should_skip = 1").await,
        "0"
    );
    // A latin1 table with non-ASCII text.
    assert_eq!(query("SELECT COUNT(*) FROM expr_filter.t6").await, "2");
    assert_eq!(
        query(
            "SELECT COUNT(*) FROM expr_filter.t6
             WHERE name = 'Müller…' AND msg = 'Müller…' AND name2 = 'Müller…'"
        )
        .await,
        "2"
    );
    // tiflow issue 7774: only update-new-value-expr given.
    assert_eq!(query("SELECT s FROM expr_filter.t7 WHERE a = 1").await, "2");
    // 6 inserts and 4 updates were filtered.
    assert_eq!(status.rows_filtered, 10, "{status:?}");
    assert!(
        status
            .warnings
            .iter()
            .any(|warning| warning.contains("even_c") && warning.contains("`c`")),
        "{:?}",
        status.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_expression_filter_case_on_every_column_type() {
    let case = or_skip!(shared_fixture("dm-tests/expression_filter"));
    let Some((upstream, downstream, status)) = replay(
        &case,
        "conf/dm-task.yaml",
        &["data/db1.prepare.sql", "data/db1.increment.sql"],
        "expression-types",
    )
    .await
    else {
        return;
    };
    let count = "SELECT COUNT(*) FROM expr_filter.t1";
    assert_eq!(one(upstream.query(count).await.expect("upstream")), "60");
    // One row of each pair is filtered, by a rule on its column's type.
    let kept = one(downstream
        .query("SELECT GROUP_CONCAT(id ORDER BY id) FROM expr_filter.t1 WHERE should_skip = 1")
        .await
        .expect("downstream"));
    assert_eq!(kept, "NULL", "rows that should have been filtered: {kept}");
    assert_eq!(
        one(downstream.query(count).await.expect("downstream")),
        "30"
    );
    assert_eq!(status.rows_filtered, 30, "{status:?}");
}
