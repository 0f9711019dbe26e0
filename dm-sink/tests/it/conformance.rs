//! `MySqlSinks` against `dm_core::testsuite`'s conformance checks on a live MariaDB: a batch and
//! its worker checkpoint row commit together and each worker keeps its own; the typed global
//! checkpoint (tables, DDL record, safe-mode exit) saves and loads back through DM's tables.
//! (The DDL check is for sinks that answer from their own records; this one compares
//! definitions, which `ddl_crash` in dm-syncer tests against the general log.)

use dm_core::Flavor;
use dm_core::testsuite::{batch_commits_with_its_checkpoint, global_checkpoint_round_trips};
use dm_sink::{CheckpointTables, MetaScope, MySqlSinkOptions, MySqlSinks};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

fn sinks(downstream: &MariaDb, task: &str) -> MySqlSinks {
    MySqlSinks::new(
        MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", ""),
        MetaScope {
            tables: CheckpointTables::new("dm_meta", task).expect("tables"),
            source: "suite-source".into(),
            flavor: Flavor::MariaDb,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_sinks_pass_the_conformance_checks() {
    let downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("sink-conformance")).await);
    downstream
        .execute("CREATE DATABASE suite; CREATE TABLE suite.items (id INT PRIMARY KEY, v INT)")
        .await
        .expect("create");
    batch_commits_with_its_checkpoint(&mut sinks(&downstream, "batches")).await;
    let rows = downstream
        .query("SELECT COUNT(*) FROM suite.items")
        .await
        .expect("count");
    assert_eq!(
        rows[0][0].as_deref(),
        Some("5"),
        "the batches' rows are there (four, and one a replay wrote)"
    );
    global_checkpoint_round_trips(&mut sinks(&downstream, "globals")).await;
}
