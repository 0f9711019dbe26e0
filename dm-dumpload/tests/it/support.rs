//! What the dump/load tests share: servers, options, comparisons.

use std::sync::Arc;

use dm_core::Flavor;
use dm_dumpload::{
    ChunkLimits, Consistency, DumpError, DumpLoadConfig, DumpOptions, DumpSelection, DumpTimeZone,
    FullStages, Handoff, LoadOptions, Loader, OnDuplicate, Progress, SnapshotOptions,
};
use dm_sink::MySqlSinkOptions;
use dm_task::config::{DatabaseConfig, TaskConfig};
use dm_task::filter::TableRouter;
use dm_testkit::{MariaDb, MariaDbOptions, TestkitError, compare_schemas};

/// A server that takes rows of 16 MiB (statements of twice that, in hex).
pub async fn server(name: &str) -> Result<MariaDb, TestkitError> {
    MariaDb::start_with(MariaDbOptions::named(name).arg("--max-allowed-packet=96M")).await
}

pub fn dump_options(upstream: &MariaDb, threads: usize, chunk_bytes: u64) -> DumpOptions {
    DumpOptions {
        snapshot: SnapshotOptions {
            host: "127.0.0.1".into(),
            port: upstream.port(),
            user: "root".into(),
            password: String::new(),
            tls: None,
            connections: threads,
            consistency: Consistency::Flush,
            flavor: Flavor::MariaDb,
        },
        limits: ChunkLimits {
            bytes: chunk_bytes,
            rows: 1_000_000,
            max_chunks: 1000,
        },
        statement_bytes: 256 << 10,
        selection: DumpSelection::default(),
        time_zone: DumpTimeZone::Zone("+00:00".into()),
    }
}

/// Plain INSERT: a chunk loaded twice would fail on its primary keys instead of hiding.
pub fn load_options(downstream: &MariaDb, task: &str, pool_size: usize) -> LoadOptions {
    load_options_for_port(downstream.port(), task, pool_size)
}

pub fn loader(downstream: &MariaDb, task: &str, pool_size: usize) -> Loader {
    Loader::new(
        load_options(downstream, task, pool_size),
        TableRouter::new(true, Vec::new()),
    )
    .expect("loader")
}

pub fn progress() -> Arc<Progress> {
    Arc::new(Progress::new())
}

/// Every table of `schemas` equal on both servers (columns and rows).
pub async fn assert_same(upstream: &MariaDb, downstream: &MariaDb, schemas: &[&str]) {
    let mut left = upstream.connect().await.expect("upstream");
    let mut right = downstream.connect().await.expect("downstream");
    for schema in schemas {
        let difference = compare_schemas(&mut left, &mut right, schema)
            .await
            .expect("compare");
        assert_eq!(difference, None, "schema {schema}");
    }
}

/// (chunks, chunks loaded, rows recorded) of a task's load.
pub async fn chunk_counts(downstream: &MariaDb, task: &str) -> (u64, u64, u64) {
    let rows = downstream
        .query(&format!(
            "SELECT COUNT(*), COALESCE(SUM(state = 'loaded'), 0), COALESCE(SUM(row_count), 0) \
             FROM dm_meta.`{task}_load_chunk`"
        ))
        .await
        .expect("chunk counts");
    let number = |index: usize| {
        rows[0][index]
            .as_deref()
            .unwrap_or("0")
            .parse::<u64>()
            .expect("number")
    };
    (number(0), number(1), number(2))
}

/// Load options for a downstream known only by its port (in a child process).
pub fn load_options_for_port(port: u16, task: &str, pool_size: usize) -> LoadOptions {
    LoadOptions {
        sink: MySqlSinkOptions::new("127.0.0.1", port, "root", ""),
        task: task.into(),
        source_id: "source-1".into(),
        meta_schema: "dm_meta".into(),
        pool_size,
        on_duplicate: OnDuplicate::Error,
    }
}

/// Chunks of a task marked loaded; 0 while the meta table does not exist yet.
pub async fn loaded_chunks(downstream: &MariaDb, task: &str) -> u64 {
    match downstream
        .query(&format!(
            "SELECT COUNT(*) FROM dm_meta.`{task}_load_chunk` WHERE state = 'loaded'"
        ))
        .await
    {
        Ok(rows) => rows[0][0].as_deref().unwrap_or("0").parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// A DM task file for `task` from the upstream into `downstream`, dump files under
/// `directory`: `top` adds task-level lines (`timezone: ...`, a `block-allow-list:` section,
/// which the instance then uses), `mydumper` and `loader` the lines of the named sections.
pub fn task_text(
    task: &str,
    downstream: &MariaDb,
    directory: &std::path::Path,
    top: &str,
    mydumper: &[&str],
    loader: &[&str],
) -> String {
    let mut text = format!(
        "name: {task}\ntask-mode: all\n{top}\ntarget-database:\n  host: 127.0.0.1\n  port: {}\n  \
         user: root\n  password: ''\nmysql-instances:\n  - source-id: source-1\n    \
         mydumper-config-name: d\n    loader-config-name: l\n",
        downstream.port()
    );
    if top.contains("block-allow-list:") {
        text.push_str("    block-allow-list: list\n");
    }
    text.push_str("mydumpers:\n  d:\n    threads: 2\n");
    for line in mydumper {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str(&format!(
        "loaders:\n  l:\n    pool-size: 2\n    dir: {}\n",
        directory.join("dumped").display()
    ));
    for line in loader {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// Runs `text`'s task (mode `all`, its first instance) from `upstream` as `user`, the way a
/// worker does: the task file's options, block-allow list and routes. Panics when the task
/// file is refused; returns the options and what the dump and load did.
pub async fn run_task(
    text: &str,
    upstream: &MariaDb,
    user: &str,
) -> (DumpLoadConfig, Result<Option<Handoff>, DumpError>) {
    let task = TaskConfig::from_yaml(text, "task.yaml")
        .unwrap_or_else(|error| panic!("task file refused: {error}\n{text}"));
    let instance = &task.mysql_instances[0];
    let rules = task
        .rules_for(instance)
        .unwrap_or_else(|error| panic!("rules: {error}"));
    let config = DumpLoadConfig::from_task(&task, instance)
        .unwrap_or_else(|error| panic!("options: {error}\n{text}"));
    let from = DatabaseConfig {
        host: "127.0.0.1".into(),
        port: upstream.port(),
        user: user.into(),
        ..DatabaseConfig::default()
    };
    let loader =
        Loader::new(config.load_options(&task, instance), rules.router.clone()).expect("loader");
    let stages = FullStages {
        config: &config,
        dump: config.dump_options(&from, Flavor::MariaDb),
        filter: &rules.block_allow_list,
        loader: &loader,
        dump_progress: progress(),
        load_progress: progress(),
        clean_dump_file: false,
    };
    let result = stages.run(task.task_mode).await;
    (config, result)
}

/// Rows of `sql` on `server`, read in a session whose time zone is `time_zone`.
pub async fn rows_in_zone(
    server: &MariaDb,
    time_zone: &str,
    sql: &str,
) -> Vec<Vec<Option<String>>> {
    let mut connection = server.connect().await.expect("connect");
    dm_testkit::sql::execute(
        &mut connection,
        server.name(),
        &format!("SET time_zone = '{time_zone}'"),
    )
    .await
    .expect("time zone");
    let rows = dm_testkit::sql::query_text(&mut connection, server.name(), sql)
        .await
        .expect("query");
    let _ = connection.disconnect().await;
    rows
}
