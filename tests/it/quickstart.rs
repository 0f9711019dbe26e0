//! The README's first command: the quickstart demo runs a task in mode `all` (dump, load, sync)
//! between two local MariaDB servers, writes live changes (rows and a DDL) and ends with every
//! table equal by checksum.

use std::process::Command;

#[test]
fn the_quickstart_migrates_and_ends_with_every_table_equal() {
    if let Err(error) = dm_testkit::process::find_binary("mariadbd", "DM_TEST_MARIADBD") {
        if dm_testkit::is_ci() {
            panic!("mariadbd is needed: {error}");
        }
        dm_testkit::announce_skip(&error);
        return;
    }
    let output = Command::new(crate::example_binary("quickstart"))
        .output()
        .expect("the quickstart runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quickstart failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "running the task in mode `all`",
        "60012 rows in",
        "all arrived downstream",
        "1 DDL applied",
        "every table is equal",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing from:\n{stdout}"
        );
    }
}
