//! Integration tests of the facade package `dm`: the crates used together, on real data.

mod bench;
mod binlog_dump;
mod change_feed;
mod dm_syncer;
mod gtid_fixtures;
mod kill_loop;
mod mode_all;
mod quickstart;
mod sysbench;

/// dm-dumpload's test support (servers, dump and load options, comparisons), shared by path
/// rather than copied: `mode_all` chains dump, load and sync, so it runs here, above both
/// dm-dumpload and dm-syncer, which do not depend on each other. Not every helper is used here.
#[allow(dead_code)]
#[path = "../../dm-dumpload/tests/it/support.rs"]
mod support;

/// Builds the example `name` once (a no-op when it is up to date) and returns its path.
fn example_binary(name: &str) -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo builds");
    assert!(status.success(), "building the {name} example");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug/examples").join(name)
}
