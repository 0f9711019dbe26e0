//! DM's own integration cases (`../shared/fixtures/dm-tests`, see its README) replayed through
//! the syncer. For each case the upstream servers run the case's steps in DM's order
//! (`cases.json`: global settings and SQL files, statement by statement as `mysql --force`
//! would, every failure checked against the failures the fixture lists for MariaDB 10.11);
//! then one syncer per `mysql-instances` entry follows its source's binlog from the start under
//! the case's own task file, and the downstream must hold what DM's test checks: the tables of
//! the case's sync-diff config equal upstream, or the counts its README gives.
//!
//! Replaying from the first binlog event gives the same downstream as DM's dump, load and sync
//! here: every case starts from a fresh server, so its whole history is in the binlog.
//! Cases that merge shards (shard DDL coordination) and those that need gh-ost or TiDB are not
//! replayed yet.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dm_binlog::RemoteOptions;
use dm_core::{BinlogPosition, Location, TableRef};
use dm_sink::MySqlSinkOptions;
use dm_syncer::{SyncerSettings, SyncerStatus, run};
use dm_task::config::{FilterConfig, TaskConfig, TaskMode};
use dm_testkit::{MariaDb, MariaDbOptions, compare_tables, or_skip, shared_fixture};
use mysql_async::prelude::Queryable;

/// One statement of a SQL file, with the line it starts on.
#[derive(Debug)]
struct Statement {
    line: usize,
    text: String,
}

/// Splits a file as the `mysql` client does: `;` (or the `DELIMITER` in force) outside quotes
/// and comments ends a statement.
fn split_statements(text: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut delimiter = ";".to_owned();
    let mut current = String::new();
    let mut start_line = 1;
    let mut line = 1;
    let characters: Vec<char> = text.chars().collect();
    let mut index = 0;
    let mut quote: Option<char> = None;
    let mut at_line_start = true;
    while index < characters.len() {
        let character = characters[index];
        if quote.is_none() && at_line_start {
            // A DELIMITER command takes its whole line.
            let rest: String = characters[index..]
                .iter()
                .take_while(|c| **c != '\n')
                .collect();
            let trimmed = rest.trim();
            if trimmed.len() > 10 && trimmed[..10].eq_ignore_ascii_case("delimiter ") {
                delimiter = trimmed[10..].trim().to_owned();
                index += rest.chars().count();
                continue;
            }
        }
        at_line_start = false;
        if current.trim().is_empty() {
            start_line = line;
        }
        match quote {
            Some(open) => {
                current.push(character);
                if character == '\\' && open != '`' {
                    if let Some(next) = characters.get(index + 1) {
                        current.push(*next);
                        line += usize::from(*next == '\n');
                        index += 1;
                    }
                } else if character == open {
                    quote = None;
                }
            }
            None => {
                let rest: String = characters[index..]
                    .iter()
                    .take(delimiter.chars().count())
                    .collect();
                if rest == delimiter {
                    if !current.trim().is_empty() {
                        statements.push(Statement {
                            line: start_line,
                            text: current.trim().to_owned(),
                        });
                    }
                    current.clear();
                    index += delimiter.chars().count();
                    continue;
                }
                let next = characters.get(index + 1).copied();
                if character == '-' && next == Some('-') || character == '#' {
                    // A comment to the end of the line, left out as the client leaves it out.
                    while index < characters.len() && characters[index] != '\n' {
                        index += 1;
                    }
                    continue;
                }
                if matches!(character, '\'' | '"' | '`') {
                    quote = Some(character);
                }
                current.push(character);
            }
        }
        if character == '\n' {
            line += 1;
            at_line_start = true;
        }
        index += 1;
    }
    if !current.trim().is_empty() {
        statements.push(Statement {
            line: start_line,
            text: current.trim().to_owned(),
        });
    }
    statements
}

/// The servers of a case.
struct Servers {
    sources: Vec<MariaDb>,
    downstream: MariaDb,
}

impl Servers {
    fn on(&self, name: &str) -> &MariaDb {
        match name {
            "source1" => &self.sources[0],
            "source2" => &self.sources[1],
            _ => &self.downstream,
        }
    }
}

/// Runs `statements` on one session of `server` like `mysql --force`: returns (line, code) of
/// each failure.
async fn run_statements(server: &MariaDb, statements: &[Statement]) -> Vec<(usize, u16)> {
    let mut connection = server.connect().await.expect("connect");
    let mut failures = Vec::new();
    for statement in statements {
        if let Err(error) = connection.query_drop(&statement.text).await {
            match error {
                mysql_async::Error::Server(server_error) => {
                    failures.push((statement.line, server_error.code));
                }
                other => panic!("line {}: {other}", statement.line),
            }
        }
    }
    failures
}

/// A scenario of `cases.json`.
struct Scenario {
    case: PathBuf,
    task: TaskConfig,
    diff: Option<PathBuf>,
    steps: Vec<serde_json::Value>,
    sources: usize,
}

fn scenario(root: &Path, case: &str, name: &str) -> Scenario {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("cases.json")).expect("index"))
            .expect("cases.json");
    let entry = &index["cases"][case];
    let scenario = entry["scenarios"]
        .as_array()
        .and_then(|scenarios| scenarios.iter().find(|scenario| scenario["name"] == name))
        .unwrap_or_else(|| panic!("{case}/{name} is not in cases.json"));
    let directory = root.join(case);
    let task_file = scenario["task"][0].as_str().expect("task");
    let task_path = directory.join(task_file);
    // Values DM's run.sh substitutes; this harness starts at the binlog's beginning anyway.
    let text = std::fs::read_to_string(&task_path)
        .expect("task file")
        .replace("binlog-gtid-placeholder-1", "0-1-0")
        .replace("binlog-name-placeholder-2", "mysql-bin.000001")
        .replace("binlog-pos-placeholder-2", "4");
    let task = TaskConfig::from_yaml(&text, &task_path.display().to_string())
        .unwrap_or_else(|error| panic!("{error}"));
    Scenario {
        diff: scenario["diff"].as_str().map(|diff| directory.join(diff)),
        steps: scenario["steps"].as_array().cloned().unwrap_or_default(),
        sources: entry["sources"].as_array().map_or(1, Vec::len),
        case: directory,
        task,
    }
}

/// Starts the servers, runs `setup` (statements for a source, the binlog off) and the steps,
/// then every instance's syncer to the end of its binlog.
///
/// In task mode `all`, DM dumps each source as its prepare files left it and replicates the rest.
/// Here the syncers replay the prepare files instead (a first pass, run when the prepare steps
/// are done), then the rest (a second pass, from their checkpoints). A prepare file's `DROP
/// DATABASE IF EXISTS` only cleans its upstream before the case, and a dump never replays it;
/// replayed from one source, it would drop what another source's replay brought. So the first
/// pass of a mode-`all` case ignores `drop database` (an extra event filter rule).
async fn replay(
    scenario: &Scenario,
    name: &str,
    setup: &[(usize, String)],
) -> Option<(Servers, Vec<SyncerStatus>)> {
    let mut starting = Vec::new();
    for index in 1..=scenario.sources {
        starting.push(MariaDb::start_with(
            MariaDbOptions::named(&format!("{name}-source{index}"))
                .arg("--lower-case-table-names=0")
                .arg("--character-set-server=utf8mb4")
                .arg("--collation-server=utf8mb4_general_ci"),
        ));
    }
    let mut sources = Vec::new();
    for server in starting {
        match server.await {
            Ok(server) => sources.push(server),
            Err(error) => {
                dm_testkit::announce_skip(&error);
                assert!(!dm_testkit::is_ci(), "{error}");
                return None;
            }
        }
    }
    let downstream = MariaDb::start_with(
        MariaDbOptions::named(&format!("{name}-downstream")).arg("--lower-case-table-names=0"),
    )
    .await
    .expect("downstream");
    let servers = Servers {
        sources,
        downstream,
    };
    for (source, sql) in setup {
        let statements = split_statements(&format!("SET sql_log_bin = 0; {sql}"));
        let failures = run_statements(&servers.sources[*source], &statements).await;
        assert!(failures.is_empty(), "setup: {failures:?}");
    }
    let last_prepare = scenario.steps.iter().rposition(|step| {
        step["file"]
            .as_str()
            .is_some_and(|file| file.contains("prepare"))
    });
    let two_passes = scenario.task.task_mode == TaskMode::All && last_prepare.is_some();
    for (index, step) in scenario.steps.iter().enumerate() {
        let on = step["on"].as_str().expect("on");
        let (statements, label) = match (step["sql"].as_str(), step["file"].as_str()) {
            (Some(sql), _) => (split_statements(sql), sql.to_owned()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(scenario.case.join(file)).expect("SQL file");
                (split_statements(&text), file.to_owned())
            }
            _ => panic!("a step without sql or file: {step}"),
        };
        let failures = run_statements(servers.on(on), &statements).await;
        let expected: Vec<(usize, u16)> = step["mariadb_10_11_failures"]
            .as_array()
            .map(|failures| {
                failures
                    .iter()
                    .map(|failure| {
                        (
                            failure["line"].as_u64().unwrap_or_default() as usize,
                            failure["code"].as_u64().unwrap_or_default() as u16,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            failures, expected,
            "{label} on {on}: failures (line, code) differ from the fixture's"
        );
        if two_passes && Some(index) == last_prepare {
            let mut prepare = scenario.task.clone();
            prepare.filters.insert(
                "harness-prepare-pass".into(),
                FilterConfig {
                    schema_pattern: "*".into(),
                    table_pattern: None,
                    events: vec!["drop database".into()],
                    sql_pattern: Vec::new(),
                    action: "Ignore".into(),
                },
            );
            for instance in &mut prepare.mysql_instances {
                instance.filter_rules.push("harness-prepare-pass".into());
            }
            sync_all(&prepare, &servers).await;
        }
    }
    let statuses = sync_all(&scenario.task, &servers).await;
    Some((servers, statuses))
}

/// Runs every instance's syncer of `task` to the end of its source's binlog (from its
/// checkpoint, or the start).
async fn sync_all(task: &TaskConfig, servers: &Servers) -> Vec<SyncerStatus> {
    let mut statuses = Vec::new();
    for (index, instance) in task.mysql_instances.iter().enumerate() {
        let upstream = &servers.sources[index];
        let rules = task.rules_for(instance).expect("rules");
        let syncer = task.syncer_for(instance);
        let mut source =
            RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", 530 + index as u32);
        source.stop_at_end = true;
        let start =
            Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));
        let sink = MySqlSinkOptions::new("127.0.0.1", servers.downstream.port(), "root", "");
        let settings = SyncerSettings {
            meta_schema: task.meta_schema.clone(),
            workers: syncer.worker_count.clamp(1, 16),
            batch: syncer.batch.max(1),
            checkpoint_interval: Duration::from_millis(200),
            safe_mode: syncer.safe_mode,
            case_sensitive: task.case_sensitive,
            ..SyncerSettings::new(&task.name, &instance.source_id)
        };
        let (_stop, stop) = tokio::sync::watch::channel(false);
        let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
        let status = run(settings, source, start, sink, rules, stop, progress)
            .await
            .unwrap_or_else(|error| panic!("syncer of {}: {error}", instance.source_id));
        statuses.push(status);
    }
    statuses
}

/// `*` and `?` as in sync-diff-inspector's table patterns.
fn glob(pattern: &str, name: &str) -> bool {
    let pattern = regex::escape(pattern)
        .replace("\\*", ".*")
        .replace("\\?", ".");
    regex::Regex::new(&format!("^{pattern}$")).is_ok_and(|regex| regex.is_match(name))
}

async fn tables(server: &MariaDb) -> Vec<TableRef> {
    server
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
             WHERE TABLE_TYPE = 'BASE TABLE'
               AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
        )
        .await
        .expect("tables")
        .into_iter()
        .map(|row| {
            TableRef::new(
                row[0].clone().unwrap_or_default(),
                row[1].clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The sync-diff check: every table matching `target-check-tables` equals its upstream table.
async fn diff(scenario: &Scenario, servers: &Servers) {
    let Some(path) = &scenario.diff else {
        return;
    };
    let config = std::fs::read_to_string(path).expect("diff config");
    let patterns: Vec<String> = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("target-check-tables"))
        .and_then(|rest| serde_json::from_str(rest.trim_start_matches([' ', '=']).trim()).ok())
        .expect("target-check-tables");
    let matches = |table: &TableRef| {
        patterns.iter().any(|pattern| {
            let (schema, name) = pattern.split_once('.').unwrap_or((pattern, "*"));
            glob(schema, &table.schema) && glob(name, &table.table)
        })
    };
    // Each upstream table the task replicates, with its routed name downstream.
    let mut pairs: Vec<(usize, TableRef, TableRef)> = Vec::new();
    for (index, source) in servers.sources.iter().enumerate() {
        let rules = scenario
            .task
            .rules_for(&scenario.task.mysql_instances[index])
            .expect("rules");
        for table in tables(source).await {
            if !rules
                .block_allow_list
                .allows_table(&table.schema, &table.table)
            {
                continue;
            }
            let target = rules.router.route(&table).expect("route");
            if matches(&target) {
                pairs.push((index, table, target));
            }
        }
    }
    for table in tables(&servers.downstream).await {
        assert!(
            !matches(&table) || pairs.iter().any(|(_, _, target)| *target == table),
            "{table} is downstream but no upstream table of the case goes there"
        );
    }
    for (index, table, target) in &pairs {
        let mut left = servers.sources[*index].connect().await.expect("connect");
        let mut right = servers.downstream.connect().await.expect("connect");
        // Compare TIMESTAMP values in UTC on both sides, as sync-diff-inspector does.
        for connection in [&mut left, &mut right] {
            connection
                .query_drop("SET time_zone = '+00:00'")
                .await
                .expect("time zone");
        }
        let difference = compare_tables(&mut left, table, &mut right, target)
            .await
            .expect("compare");
        assert!(difference.is_none(), "{}: {difference:?}", path.display());
    }
    assert!(!pairs.is_empty(), "{}: no table compared", path.display());
}

async fn count(server: &MariaDb, sql: &str) -> String {
    server
        .query(sql)
        .await
        .expect(sql)
        .into_iter()
        .flatten()
        .map(|value| value.unwrap_or_else(|| "NULL".into()))
        .collect::<Vec<_>>()
        .join(",")
}

macro_rules! replayed {
    ($case:literal, $scenario:literal) => {
        replayed!($case, $scenario, &[])
    };
    ($case:literal, $scenario:literal, $setup:expr) => {{
        let root = or_skip!(shared_fixture("dm-tests"));
        let scenario = scenario(&root, $case, $scenario);
        match replay(&scenario, $case, $setup).await {
            Some((servers, statuses)) => (scenario, servers, statuses),
            None => return,
        }
    }};
}

/// The time zones DM's `sql_mode` case uses, loaded into `mysql.time_zone*` as
/// `mariadb-tzinfo-to-sql` writes them.
fn time_zones(zones: &[&str]) -> String {
    let mut sql = String::from("USE mysql;\n");
    for zone in zones {
        let output = std::process::Command::new("mariadb-tzinfo-to-sql")
            .arg(format!("/usr/share/zoneinfo/{zone}"))
            .arg(zone)
            .output()
            .expect("mariadb-tzinfo-to-sql (package mariadb-client)");
        assert!(output.status.success(), "mariadb-tzinfo-to-sql {zone}");
        sql.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_expression_filter_case_with_updates_generated_columns_and_now() {
    let (_, servers, statuses) = replayed!("expression_filter", "complex");
    let downstream = &servers.downstream;
    // DM's run.sh: t2 has 6 rows, none to skip (a filter that lost its column does not apply,
    // and applies again once the column is back, generated).
    assert_eq!(
        count(downstream, "SELECT COUNT(*) FROM expr_filter.t2").await,
        "6"
    );
    assert_eq!(
        count(
            downstream,
            "SELECT COUNT(*) FROM expr_filter.t2 WHERE should_skip = 0"
        )
        .await,
        "6"
    );
    // NOW() filters the future row; the Pythagorean triple is filtered.
    assert_eq!(
        count(downstream, "SELECT COUNT(*) FROM expr_filter.t3").await,
        "1"
    );
    assert_eq!(
        count(downstream, "SELECT COUNT(*) FROM expr_filter.t4").await,
        "1"
    );
    // Updates: old value, new value, and both (AND).
    assert_eq!(
        count(downstream, "SELECT COUNT(*) FROM expr_filter.t5").await,
        "4"
    );
    assert_eq!(
        count(
            downstream,
            "SELECT COUNT(*) FROM expr_filter.t5 WHERE should_skip = 1"
        )
        .await,
        "0"
    );
    // A latin1 table with non-ASCII text.
    assert_eq!(
        count(downstream, "SELECT COUNT(*) FROM expr_filter.t6").await,
        "2"
    );
    assert_eq!(
        count(
            downstream,
            "SELECT COUNT(*) FROM expr_filter.t6
             WHERE name = 'Müller…' AND msg = 'Müller…' AND name2 = 'Müller…'"
        )
        .await,
        "2"
    );
    // tiflow issue 7774: only update-new-value-expr given.
    assert_eq!(
        count(downstream, "SELECT s FROM expr_filter.t7 WHERE a = 1").await,
        "2"
    );
    // 6 inserts and 4 updates were filtered.
    let status = &statuses[0];
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
    let (_, servers, statuses) = replayed!("expression_filter", "all-types");
    let table = "SELECT COUNT(*) FROM expr_filter.t1";
    assert_eq!(count(&servers.sources[0], table).await, "60");
    // One row of each pair is filtered, by a rule on its column's type.
    let kept = count(
        &servers.downstream,
        "SELECT GROUP_CONCAT(id ORDER BY id) FROM expr_filter.t1 WHERE should_skip = 1",
    )
    .await;
    assert_eq!(kept, "NULL", "rows that should have been filtered: {kept}");
    assert_eq!(count(&servers.downstream, table).await, "30");
    assert_eq!(statuses[0].rows_filtered, 30, "{:?}", statuses[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_binlog_parse_case() {
    let (scenario, servers, _) = replayed!("binlog_parse", "main");
    diff(&scenario, &servers).await;
    assert_eq!(
        count(&servers.downstream, "SELECT COUNT(*) FROM binlog_parse.t1").await,
        "6"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_gbk_case() {
    let (scenario, servers, _) = replayed!("gbk", "main");
    diff(&scenario, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_checkpoint_transaction_case() {
    let (scenario, servers, _) = replayed!("checkpoint_transaction", "main");
    diff(&scenario, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_drop_column_with_index_case() {
    let (scenario, servers, _) = replayed!("drop_column_with_index", "main");
    diff(&scenario, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_mariadb_source_case() {
    let (_, servers, _) = replayed!("mariadb_source", "main");
    let rows = count(
        &servers.downstream,
        "SELECT GROUP_CONCAT(CONCAT_WS(':', id, name, note) ORDER BY id) FROM mariadb_source.t1",
    )
    .await;
    assert!(
        rows.contains("2:beta_updated:updated") && rows.contains("3:gamma"),
        "{rows}"
    );
    assert_eq!(
        count(
            &servers.downstream,
            "SELECT COUNT(*) FROM mariadb_source.t1"
        )
        .await,
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_foreign_key_case() {
    let (_, servers, _) = replayed!("foreign_key", "main");
    // The expected divergence of DM's case: the upstream's cascades are not in the row binlog
    // and the downstream (foreign_key_checks=0, as DM) does not repeat them. DM loads the
    // prepared data from a dump (upstream 4 rows, downstream 5); replayed from the binlog's
    // start, the prepare file's cascades are missing too: its 5 inserted rows stay, plus the
    // increment's 2.
    assert_eq!(
        count(&servers.sources[0], "SELECT COUNT(*) FROM foreign_key.t2").await,
        "4"
    );
    assert_eq!(
        count(&servers.downstream, "SELECT COUNT(*) FROM foreign_key.t2").await,
        "7"
    );
    // Tables without cascades are equal.
    for table in ["t1", "t3", "t5", "t6", "t10"] {
        let sql = format!("SELECT COUNT(*), SUM(id) FROM foreign_key.{table}");
        assert_eq!(
            count(&servers.downstream, &sql).await,
            count(&servers.sources[0], &sql).await,
            "{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_all_mode_case() {
    let (scenario, servers, _) = replayed!("all_mode", "main");
    diff(&scenario, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_incremental_mode_case() {
    let (scenario, servers, _) = replayed!("incremental_mode", "main");
    diff(&scenario, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_only_dml_case() {
    let (scenario, servers, _) = replayed!("only_dml", "main");
    diff(&scenario, &servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_case_sensitive_case() {
    let (scenario, servers, _) = replayed!("case_sensitive", "main");
    diff(&scenario, &servers).await;
    // The route renames Upper_DB.Do_Table (DM's script then truncates it upstream, inline).
    assert_eq!(
        count(
            &servers.downstream,
            "SELECT COUNT(*) FROM UPPER_DB_ROUTE.do_table_route"
        )
        .await,
        "5"
    );
    let names = count(
        &servers.downstream,
        "SELECT GROUP_CONCAT(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME)) FROM information_schema.TABLES
         WHERE TABLE_SCHEMA LIKE 'Upper_Db_IGNORE%' OR TABLE_NAME LIKE 'Do_table_ignore%'",
    )
    .await;
    assert_eq!(names, "NULL", "ignored names replicated: {names}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_sql_mode_case() {
    let zones = time_zones(&["Asia/Shanghai", "America/Phoenix"]);
    let (scenario, servers, _) = replayed!("sql_mode", "main", &[(0, zones.clone()), (1, zones)]);
    diff(&scenario, &servers).await;
}
