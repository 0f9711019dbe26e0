//! A task's `meta`, DM's rule: a binlog name (and position), or a GTID set when the source has
//! `enable-gtid: true`. No server is needed.

use dm_core::Flavor;
use dm_subtask::SubtaskSpec;
use dm_task::config::{SourceConfig, TaskConfig};

fn spec_of(meta: &str, enable_gtid: bool) -> Result<SubtaskSpec, dm_subtask::SubtaskError> {
    let task = TaskConfig::from_yaml(
        &format!(
            "name: meta\ntask-mode: incremental\ntarget-database: {{host: 127.0.0.1, port: 3306, user: root}}\nmysql-instances:\n  - source-id: s1\n    meta: {meta}\n"
        ),
        "task.yaml",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let source = SourceConfig::from_yaml(
        &format!(
            "source-id: s1\nflavor: mariadb\nenable-gtid: {enable_gtid}\nfrom: {{host: 127.0.0.1, port: 3306, user: root}}\n"
        ),
        "source.yaml",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    SubtaskSpec::new(task, source, "task.yaml", "source.yaml")
}

#[tokio::test]
async fn a_meta_with_only_a_gtid_set_starts_there_by_gtid() {
    let spec = spec_of("{binlog-gtid: '0-101-18'}", true).expect("a GTID set alone is a start");
    let start = spec
        .start_location(Flavor::MariaDb)
        .await
        .expect("the meta's start");
    assert_eq!(
        start.gtid_set.map(|set| set.to_string()).as_deref(),
        Some("0-101-18")
    );

    // Without enable-gtid a GTID set alone says nowhere to start (an empty meta is refused
    // when the task file is read).
    let error = spec_of("{binlog-gtid: '0-101-18'}", false).expect_err("no start");
    let message = error.to_string();
    assert!(
        message.contains("binlog-name") && message.contains("enable-gtid: true"),
        "{message}"
    );
    // A name and position still work as before.
    let start = spec_of("{binlog-name: mysql-bin.000003, binlog-pos: 1234}", false)
        .expect("a position")
        .start_location(Flavor::MariaDb)
        .await
        .expect("the meta's start");
    assert_eq!(start.position.to_string(), "mysql-bin.000003:1234");
}
