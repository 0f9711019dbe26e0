//! The end-to-end benchmark harness (`benches/e2e.rs`, README "Performance") runs through at a
//! tenth of its data: every tool's result is checked against the upstream by CHECKSUM TABLE
//! inside the harness (a difference fails the run), and the report names every comparison.
//! The numbers themselves are not asserted (a debug build on a shared machine); the harness
//! measures them when run with `scripts/bench.sh`.

use std::process::Command;

/// Builds the bench target `name` (dev profile) and returns its executable.
fn bench_binary(name: &str) -> std::path::PathBuf {
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bench", name, "--message-format=json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo builds");
    assert!(output.status.success(), "building the {name} bench");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == name)
        .find_map(|message| message["executable"].as_str().map(std::path::PathBuf::from))
        .expect("cargo names the bench executable")
}

#[test]
fn the_benchmark_harness_runs_every_comparison_and_every_copy_is_equal() {
    for (binary, variable) in [
        ("mariadbd", "DM_TEST_MARIADBD"),
        ("sysbench", "DM_TEST_SYSBENCH"),
        ("mydumper", "DM_TEST_MYDUMPER"),
        ("myloader", "DM_TEST_MYLOADER"),
    ] {
        if let Err(error) = dm_testkit::process::find_binary(binary, variable) {
            if dm_testkit::is_ci() {
                panic!("{binary} is needed (scripts/setup.sh installs it): {error}");
            }
            dm_testkit::announce_skip(&error);
            return;
        }
    }
    let report = tempfile::NamedTempFile::new().expect("a temp file");
    let output = Command::new(bench_binary("e2e"))
        .args(["--bench", "--quick", "--output"])
        .arg(report.path())
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the harness failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = std::fs::read_to_string(report.path()).expect("the report");
    for expected in [
        "| full | dump+load 8x10000 | ours, direct stream | 80000 |",
        "| full | dump+load 8x10000 | ours, files | 80000 |",
        "| full | dump+load 8x10000 | mydumper + myloader | 80000 |",
        "oltp_write_only (40000 row changes) | ours, DM defaults",
        "oltp_write_only (40000 row changes) | MariaDB replica, serial",
        "oltp_insert (20000 row changes) | downstream raw capacity",
        "oltp_update_non_index",
        "4 threads aggressive",
        "| memory | oltp_write_only, 20000 trx (2x the backlog above) | ours, 4 workers, batch 1000 | 78",
    ] {
        assert!(
            table.contains(expected),
            "`{expected}` missing from:\n{table}"
        );
    }
}
