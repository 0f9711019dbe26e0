//! DM's own task and source files from its integration tests (`../shared/fixtures/dm-tests`):
//! every one reads, strictly, and every instance's rules build. DM users' files keep working.

use std::path::{Path, PathBuf};

use dm_syncer::config::{SourceConfig, TaskConfig};
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

#[test]
fn every_dm_task_and_source_file_reads() {
    let directory = or_skip!(shared_fixture("dm-tests"));
    let mut files = Vec::new();
    yaml_files(&directory, &mut files);
    files.sort();
    let (mut tasks, mut sources) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).expect("read");
        // Templates whose values DM's test scripts fill in with sed are not configs yet.
        if text.contains("placeholder") {
            continue;
        }
        let shown = path
            .strip_prefix(&directory)
            .unwrap_or(path)
            .display()
            .to_string();
        if name.contains("task") {
            tasks += 1;
            if let Err(error) = TaskConfig::from_yaml(&text, &shown) {
                failures.push(error.to_string());
            }
        } else if name.starts_with("source") {
            sources += 1;
            if let Err(error) = SourceConfig::from_yaml(&text, &shown) {
                failures.push(error.to_string());
            }
        }
    }
    assert!(
        tasks >= 20 && sources >= 20,
        "{tasks} tasks, {sources} sources"
    );
    assert!(
        failures.is_empty(),
        "{} of {} files fail:\n{}",
        failures.len(),
        tasks + sources,
        failures.join("\n")
    );
}
