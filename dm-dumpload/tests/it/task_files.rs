//! Every task file of DM's integration tests (`../shared/fixtures/dm-tests/*/conf/*task*.yaml`)
//! gives dump and load options for each of its sources, with the placeholders its case's
//! run.sh substitutes filled in the same way. A file the task reader refuses for a feature not
//! built yet (shard merge, extract columns) must not be refused for a dump or load key: its
//! dump and load part, read alone, gives options too.

use std::path::PathBuf;

use serde_norway::{Mapping, Value};

use dm_dumpload::{DumpLoadConfig, DumpTimeZone};
use dm_task::config::TaskConfig;
use dm_testkit::or_skip;

/// The task files under `folder/*/conf/`.
fn task_files(folder: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for case in std::fs::read_dir(folder).expect("the dm-tests folder") {
        let conf = case.expect("an entry").path().join("conf");
        let Ok(entries) = std::fs::read_dir(&conf) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("an entry").path();
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default();
            if name.contains("task") && name.ends_with(".yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The texts run.sh makes of a task file: its placeholders replaced (extend_column runs once
/// with each import mode).
fn substituted(text: &str) -> Vec<String> {
    let text = text
        .replace(
            "binlog-gtid-placeholder-1",
            "3ccc475b-2343-11e7-be21-6c0b84d59f30:0",
        )
        .replace("binlog-name-placeholder-2", "mysql-bin.000001")
        .replace("binlog-pos-placeholder-2", "4");
    if text.contains("import-mode-placeholder") {
        ["sql", "loader"]
            .iter()
            .map(|mode| text.replace("import-mode-placeholder", mode))
            .collect()
    } else {
        vec![text]
    }
}

/// The part of a task file that the dump and load read: the task's name, mode, time zone,
/// case sensitivity, target, block-allow lists, the `mydumpers` / `loaders` sections, and of
/// each instance its source, lists and dump/load keys.
fn dump_load_part(text: &str) -> String {
    const TASK_KEYS: [&str; 11] = [
        "name",
        "task-mode",
        "timezone",
        "case-sensitive",
        "meta-schema",
        "target-database",
        "mysql-instances",
        "mydumpers",
        "loaders",
        "block-allow-list",
        "black-white-list",
    ];
    const INSTANCE_KEYS: [&str; 9] = [
        "source-id",
        "mydumper-config-name",
        "loader-config-name",
        "mydumper-thread",
        "loader-thread",
        "mydumper",
        "loader",
        "block-allow-list",
        "black-white-list",
    ];
    let keep = |mapping: &Mapping, keys: &[&str]| -> Mapping {
        mapping
            .iter()
            .filter(|(key, _)| key.as_str().is_some_and(|key| keys.contains(&key)))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    };
    let task: Value = serde_norway::from_str(text).expect("YAML");
    let Value::Mapping(task) = task else {
        panic!("a task file is a mapping");
    };
    let mut part = keep(&task, &TASK_KEYS);
    if let Some(Value::Sequence(instances)) = part.get_mut("mysql-instances") {
        for instance in instances.iter_mut() {
            if let Value::Mapping(mapping) = instance {
                *mapping = keep(mapping, &INSTANCE_KEYS);
            }
        }
    }
    serde_norway::to_string(&Value::Mapping(part)).expect("YAML")
}

#[test]
fn every_dm_test_task_file_gives_dump_and_load_options() {
    let folder = or_skip!(dm_testkit::shared_fixture("dm-tests"));
    let files = task_files(&folder);
    assert!(files.len() >= 25, "{} task files", files.len());
    let mut failures = Vec::new();
    let mut instances = 0;
    let mut skip_tz_utc = 0;
    let mut refused_elsewhere = 0;
    for file in &files {
        let name = file
            .strip_prefix(&folder)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).expect("a task file");
        for text in substituted(&text) {
            let task = match TaskConfig::from_yaml(&text, &name) {
                Ok(task) => task,
                Err(error) => {
                    let error = error.to_string();
                    if error.contains("mydumper") || error.contains("loader") {
                        failures.push(format!("{name}: the task file: {error}"));
                        continue;
                    }
                    eprintln!(
                        "{name}: refused for a key of another stage; reading its dump and load part: {error}"
                    );
                    refused_elsewhere += 1;
                    match TaskConfig::from_yaml(&dump_load_part(&text), &name) {
                        Ok(task) => task,
                        Err(error) => {
                            failures.push(format!("{name}: its dump and load part: {error}"));
                            continue;
                        }
                    }
                }
            };
            skip_tz_utc += usize::from(text.contains("skip-tz-utc: true"));
            for instance in &task.mysql_instances {
                instances += 1;
                match DumpLoadConfig::from_task(&task, instance) {
                    Ok(config) => {
                        if let Some(zone) = task.timezone.as_deref() {
                            assert_eq!(config.time_zone, DumpTimeZone::Zone(zone.into()), "{name}");
                        }
                    }
                    Err(error) => failures.push(format!(
                        "{name} ({}): dump/load options: {error}",
                        instance.source_id
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} task files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert!(instances >= files.len(), "{instances} instances");
    assert!(
        skip_tz_utc >= 24,
        "{skip_tz_utc} files set skip-tz-utc: true"
    );
    eprintln!(
        "{} task files; {refused_elsewhere} refused for keys of other stages",
        files.len()
    );
}
