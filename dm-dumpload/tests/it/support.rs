//! What the dump/load tests share: servers, options, comparisons.

use std::sync::Arc;

use dm_core::Flavor;
use dm_dumpload::{
    ChunkLimits, Consistency, DumpOptions, LoadOptions, Loader, OnDuplicate, Progress,
    SnapshotOptions,
};
use dm_sink::MySqlSinkOptions;
use dm_syncer::filter::TableRouter;
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
