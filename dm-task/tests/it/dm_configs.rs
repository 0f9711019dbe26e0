//! DM users' files: DM's own task and source files from its integration tests
//! (`../shared/fixtures/dm-tests`), DM's template and a `dmctl config export` output (our own
//! equivalents in `data/`). Every one reads as DM reads it; what it asks that is not built here
//! is refused naming the key, and what has no effect is named in a warning. The walk over every
//! key of DM's task and source files, which checks that each honoured key reaches the syncer's
//! settings, is dm-syncer's `config_keys` test.

use std::path::{Path, PathBuf};

use dm_core::TableRef;
use dm_task::config::{SourceConfig, TaskConfig};
use dm_testkit::{or_skip, shared_fixture};

fn yaml_files(directory: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml")
        {
            out.push(path);
        }
    }
}

/// The values DM's run.sh writes over the placeholders of a case's files (see the fixture's
/// README): a MySQL GTID `<server uuid>:0`, the first binlog file, position 4, and the import
/// mode the case runs with (it runs once with `sql`, once with `loader`).
pub(crate) fn substitute_placeholders(text: &str, import_mode: &str) -> String {
    text.replace(
        "binlog-gtid-placeholder-1",
        "3ccc475b-2343-11e7-be21-6c0b84d59f30:0",
    )
    .replace(
        "binlog-gtid-placeholder",
        "3ccc475b-2343-11e7-be21-6c0b84d59f30:0",
    )
    .replace("binlog-name-placeholder-2", "mysql-bin.000001")
    .replace("binlog-name-placeholder", "mysql-bin.000001")
    .replace("binlog-pos-placeholder-2", "4")
    .replace("import-mode-placeholder", import_mode)
}

/// Every refusal of a file names a key that the file's text holds.
fn refusals_name_keys_of(text: &str, keys: &[String], shown: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for key in keys {
        // `shard-mode: optimistic` -> `shard-mode`; `routes.r.extract-table` -> `extract-table`.
        let leaf = key
            .split(':')
            .next()
            .unwrap_or_default()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .trim();
        if !text.contains(leaf) {
            failures.push(format!("{shown}: refusal `{key}` names no key of the file"));
        }
    }
    failures
}

#[test]
fn every_dm_task_and_source_file_reads() {
    let directory = or_skip!(shared_fixture("dm-tests"));
    let mut files = Vec::new();
    yaml_files(&directory, &mut files);
    files.sort();
    let (mut tasks, mut sources, mut runnable) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let original = std::fs::read_to_string(path).expect("read");
        let shown = path
            .strip_prefix(&directory)
            .unwrap_or(path)
            .display()
            .to_string();
        // run.sh runs a case whose file has an import-mode placeholder once per mode.
        let import_modes: &[&str] = if original.contains("import-mode-placeholder") {
            &["sql", "loader"]
        } else {
            &["sql"]
        };
        for import_mode in import_modes {
            let text = substitute_placeholders(&original, import_mode);
            assert!(
                !text.contains("placeholder"),
                "{shown}: a placeholder is left"
            );
            // Every YAML file of the fixture is a source (`source1.yaml`) or a task (any other
            // name: `dm-task.yaml`, `double-source-optimistic.yaml`...).
            let (refusals, warnings) = if !name.starts_with("source") {
                tasks += 1;
                match TaskConfig::parse(&text, &shown) {
                    Err(error) => {
                        failures.push(error.to_string());
                        continue;
                    }
                    Ok(task) => {
                        // A file that `parse` reads either runs or is refused naming its keys.
                        match (
                            TaskConfig::from_yaml(&text, &shown),
                            task.refusals().is_empty(),
                        ) {
                            (Ok(_), true) => runnable += 1,
                            (Err(error), false) => {
                                for refusal in task.refusals() {
                                    assert!(
                                        error.reason.contains(&refusal.key),
                                        "{error} does not name {}",
                                        refusal.key
                                    );
                                }
                            }
                            (result, _) => failures.push(format!(
                                "{shown}: from_yaml and refusals disagree: {result:?}"
                            )),
                        }
                        for instance in &task.mysql_instances {
                            if let Err(error) = task.rules_for(instance) {
                                failures.push(format!("{shown}: {error}"));
                            }
                        }
                        (
                            task.refusals()
                                .into_iter()
                                .map(|refusal| refusal.key)
                                .collect::<Vec<_>>(),
                            task.warnings()
                                .into_iter()
                                .map(|warning| warning.key)
                                .collect::<Vec<_>>(),
                        )
                    }
                }
            } else {
                sources += 1;
                match SourceConfig::parse(&text, &shown) {
                    Err(error) => {
                        failures.push(error.to_string());
                        continue;
                    }
                    Ok(source) => {
                        if source.refusals().is_empty() {
                            runnable += 1;
                            SourceConfig::from_yaml(&text, &shown)
                                .unwrap_or_else(|error| panic!("{error}"));
                        } else {
                            assert!(SourceConfig::from_yaml(&text, &shown).is_err());
                        }
                        (
                            source
                                .refusals()
                                .into_iter()
                                .map(|refusal| refusal.key)
                                .collect(),
                            source
                                .warnings()
                                .into_iter()
                                .map(|warning| warning.key)
                                .collect(),
                        )
                    }
                }
            };
            failures.extend(refusals_name_keys_of(&text, &refusals, &shown));
            failures.extend(refusals_name_keys_of(&text, &warnings, &shown));
            if *import_mode == "sql" {
                report.push(format!(
                    "{shown}: refused {refusals:?}, warned {warnings:?}"
                ));
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        tasks >= 20 && sources >= 20,
        "{tasks} tasks, {sources} sources"
    );
    assert!(runnable >= 20, "only {runnable} files run as they are");
    assert!(
        failures.is_empty(),
        "{} of {} files fail:\n{}",
        failures.len(),
        tasks + sources,
        failures.join("\n")
    );
}

fn data(name: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{name}: {error}"));
    (text, path.display().to_string())
}

#[test]
fn dm_template_task_reads_and_its_shard_mode_is_refused() {
    let (text, file) = data("dm-template-task.yaml");
    let task = TaskConfig::parse(&text, &file).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(task.mysql_instances.len(), 2);
    // The template is a shard-merge task (`is-sharding: true`): refused, naming the key.
    let error = TaskConfig::from_yaml(&text, &file).expect_err("shard merge");
    assert!(error.reason.contains("`is-sharding: true`"), "{error}");
    assert_eq!(
        task.refusals()
            .into_iter()
            .map(|refusal| refusal.key)
            .collect::<Vec<_>>(),
        ["is-sharding: true"]
    );
    // Everything else of it builds: routes, filters, block-allow list, both instances.
    for instance in &task.mysql_instances {
        let rules = task.rules_for(instance).expect("rules");
        assert_eq!(
            rules
                .router
                .route(&TableRef::new("test_1", "t_2"))
                .expect("route"),
            TableRef::new("test", "t")
        );
    }
    let warned: Vec<String> = task
        .warnings()
        .into_iter()
        .map(|warning| warning.key)
        .collect();
    assert!(
        warned.contains(&"mysql-instances[0].meta".to_owned()),
        "{warned:?}"
    );
    // Without shard merge it runs.
    let single = text.replace("is-sharding: true", "is-sharding: false");
    TaskConfig::from_yaml(&single, &file).unwrap_or_else(|error| panic!("{error}"));

    let (text, file) = data("dm-template-source.yaml");
    let source = SourceConfig::from_yaml(&text, &file).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(source.from.password, "123456", "dmctl-encrypted password");
    assert_eq!(source.server_id, Some(4101));
}

#[test]
fn dmctl_config_export_output_reads_and_runs() {
    let (text, file) = data("config-export-task.yaml");
    let task = TaskConfig::from_yaml(&text, &file).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(task.name, "orders");
    assert!(
        task.online_ddl,
        "export leaves online-ddl out: DM's default"
    );
    assert_eq!(
        task.target_database.password, "123456",
        "export encrypts the password"
    );
    let warnings = task.warnings();
    assert!(warnings.is_empty(), "export's defaults warn: {warnings:?}");
    let instance = &task.mysql_instances[0];
    assert_eq!(instance.mydumper_config_name.as_deref(), Some("dump-01"));
    assert_eq!(
        instance.black_white_list, None,
        "empty names read as absent"
    );
    let syncer = task.syncer_for(instance);
    assert_eq!((syncer.worker_count, syncer.batch), (16, 100));
    assert_eq!(
        syncer.multiple_rows,
        Some(true),
        "export writes multiple-rows as multipleRows"
    );
    let rules = task.rules_for(instance).expect("rules");
    assert!(rules.block_allow_list.allows_table("shop", "orders"));
    assert!(!rules.block_allow_list.allows_table("other", "orders"));
    assert_eq!(
        rules
            .router
            .route(&TableRef::new("shop", "orders"))
            .expect("route"),
        TableRef::new("shop_copy", "orders")
    );

    let (text, file) = data("config-export-source.yaml");
    let source = SourceConfig::from_yaml(&text, &file).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(source.from.password, "upstream-secret");
    assert!(
        source
            .warnings()
            .iter()
            .all(|warning| warning.key == "checker"),
        "{:?}",
        source.warnings()
    );
    let rules = task.rules_for_source(instance, &source).expect("rules");
    assert_eq!(
        rules
            .event_filter
            .decide(
                "shop",
                "orders",
                Some(dm_task::filter::FilterEvent::Delete),
                None
            )
            .0,
        dm_task::filter::FilterAction::Ignore,
        "the source's filter applies"
    );
}
