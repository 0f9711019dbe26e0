//! The walk over every key of DM's `mydumpers` and `loaders` sections, the instance's inline
//! forms and aliases, and every `extra-args` option: each is honoured (it changes the dump or
//! load options), refused with its name, or accepted and named in a warning.

use super::*;
use dm_core::TableRef;

/// A task with `instance` lines under its one instance, and the given sections.
fn task_with(instance: &str, mydumper: Option<&str>, loader: Option<&str>) -> String {
    let mut text = String::from(
        "name: shop\ntask-mode: all\ntarget-database:\n  host: 127.0.0.1\n  port: 4000\n  user: root\n  password: ''\n\
         mysql-instances:\n  - source-id: s1\n",
    );
    if mydumper.is_some() {
        text.push_str("    mydumper-config-name: d\n");
    }
    if loader.is_some() {
        text.push_str("    loader-config-name: l\n");
    }
    for line in instance.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    if let Some(body) = mydumper {
        text.push_str("mydumpers:\n  d:\n");
        push_body(&mut text, body);
    }
    if let Some(body) = loader {
        text.push_str("loaders:\n  l:\n");
        push_body(&mut text, body);
    }
    text
}

fn push_body(text: &mut String, body: &str) {
    if body.is_empty() {
        text.push_str("    {}\n");
    }
    for line in body.lines() {
        text.push_str(&format!("    {line}\n"));
    }
}

fn parse(text: &str) -> Result<DumpLoadConfig, DumpError> {
    let task = TaskConfig::from_yaml(text, "task.yaml")
        .unwrap_or_else(|error| panic!("TaskConfig refuses\n{text}\n{error}"));
    DumpLoadConfig::from_task(&task, &task.mysql_instances[0])
}

fn options(text: &str) -> DumpLoadConfig {
    parse(text).unwrap_or_else(|error| panic!("{text}\n{error}"))
}

/// What a key does.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The options change.
    Honoured,
    /// Accepted; its value means what the default means (nothing changes, nothing warned).
    Default,
    /// Accepted with no effect: the options do not change, a warning names the key.
    Warned,
    /// Refused: the error names the key.
    Refused,
}

/// Where a key goes.
#[derive(Debug, Clone, Copy)]
enum At {
    Mydumper,
    Loader,
    Instance,
}

/// Every key of the sections, with a value that shows what it does. `key` is the name the
/// error or warning must carry.
const KEYS: &[(At, &str, &str, Expect)] = &[
    (At::Mydumper, "threads", "threads: 8", Expect::Honoured),
    (At::Mydumper, "threads", "threads: 0", Expect::Default),
    (
        At::Mydumper,
        "chunk-filesize",
        "chunk-filesize: 16",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "chunk-filesize",
        "chunk-filesize: 2GiB",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "chunk-filesize",
        "chunk-filesize: 0",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "chunk-filesize",
        "chunk-filesize: lots",
        Expect::Refused,
    ),
    (At::Mydumper, "rows", "rows: 1000", Expect::Honoured),
    (At::Mydumper, "rows", "rows: 0", Expect::Default),
    (
        At::Mydumper,
        "statement-size",
        "statement-size: 100",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "statement-size",
        "statement-size: 0",
        Expect::Default,
    ),
    (
        At::Mydumper,
        "where",
        "where: \"id > 10\"",
        Expect::Honoured,
    ),
    (At::Mydumper, "where", "where: \"\"", Expect::Default),
    (
        At::Mydumper,
        "skip-tz-utc",
        "skip-tz-utc: false",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "skip-tz-utc",
        "skip-tz-utc: true",
        Expect::Default,
    ),
    (
        At::Mydumper,
        "extra-args",
        "extra-args: \"-r 10\"",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "extra-args",
        "extra-args: \"\"",
        Expect::Default,
    ),
    (
        At::Mydumper,
        "extra-args",
        "extra-args: \"--tidb-mem\"",
        Expect::Refused,
    ),
    (
        At::Mydumper,
        "compression",
        "compression: gzip",
        Expect::Honoured,
    ),
    (
        At::Mydumper,
        "mydumper-path",
        "mydumper-path: ./bin/mydumper",
        Expect::Warned,
    ),
    (At::Mydumper, "thread", "thread: 8", Expect::Refused),
    (At::Loader, "pool-size", "pool-size: 4", Expect::Honoured),
    (At::Loader, "pool-size", "pool-size: 0", Expect::Default),
    (At::Loader, "dir", "dir: /data/dump", Expect::Honoured),
    (
        At::Loader,
        "import-mode",
        "import-mode: logical",
        Expect::Default,
    ),
    (
        At::Loader,
        "import-mode",
        "import-mode: sql",
        Expect::Default,
    ),
    (
        At::Loader,
        "import-mode",
        "import-mode: loader",
        Expect::Default,
    ),
    (
        At::Loader,
        "physical",
        "import-mode: physical",
        Expect::Refused,
    ),
    (
        At::Loader,
        "import-into",
        "import-mode: import-into",
        Expect::Refused,
    ),
    (
        At::Loader,
        "on-duplicate",
        "on-duplicate: error",
        Expect::Honoured,
    ),
    (
        At::Loader,
        "on-duplicate-logical",
        "on-duplicate-logical: ignore",
        Expect::Honoured,
    ),
    (
        At::Loader,
        "on-duplicate-logical",
        "on-duplicate-logical: overwrite",
        Expect::Refused,
    ),
    (At::Loader, "direct", "direct: true", Expect::Honoured),
    (
        At::Loader,
        "on-duplicate-physical",
        "on-duplicate-physical: manual",
        Expect::Warned,
    ),
    (
        At::Loader,
        "on-duplicate-physical",
        "on-duplicate-physical: drop",
        Expect::Refused,
    ),
    (
        At::Loader,
        "sorting-dir-physical",
        "sorting-dir-physical: /tmp/sort",
        Expect::Warned,
    ),
    (
        At::Loader,
        "disk-quota-physical",
        "disk-quota-physical: 10GiB",
        Expect::Warned,
    ),
    (
        At::Loader,
        "checksum-physical",
        "checksum-physical: off",
        Expect::Warned,
    ),
    (
        At::Loader,
        "checksum-physical",
        "checksum-physical: always",
        Expect::Refused,
    ),
    (At::Loader, "analyze", "analyze: required", Expect::Warned),
    (
        At::Loader,
        "range-concurrency",
        "range-concurrency: 4",
        Expect::Warned,
    ),
    (
        At::Loader,
        "compress-kv-pairs",
        "compress-kv-pairs: gzip",
        Expect::Warned,
    ),
    (
        At::Loader,
        "pd-addr",
        "pd-addr: 127.0.0.1:2379",
        Expect::Warned,
    ),
    (At::Loader, "pool_size", "pool_size: 4", Expect::Refused),
    (
        At::Instance,
        "mydumper-thread",
        "mydumper-thread: 8",
        Expect::Honoured,
    ),
    (
        At::Instance,
        "mydumper-thread",
        "mydumper-thread: 0",
        Expect::Default,
    ),
    (
        At::Instance,
        "loader-thread",
        "loader-thread: 8",
        Expect::Honoured,
    ),
    (
        At::Instance,
        "loader-thread",
        "loader-thread: 0",
        Expect::Default,
    ),
];

/// Every `extra-args` option, as the walk gives it.
const EXTRA_ARGS: &[(&str, &str, Expect)] = &[
    ("-B", "-B shop", Expect::Honoured),
    ("--database", "--database=shop,crm", Expect::Honoured),
    ("-T", "-T shop.items", Expect::Honoured),
    (
        "--tables-list",
        "--tables-list shop.items",
        Expect::Honoured,
    ),
    ("-t", "-t 2", Expect::Honoured),
    ("--threads", "--threads 2", Expect::Honoured),
    ("-F", "-F 1GiB", Expect::Honoured),
    ("--filesize", "--filesize 8", Expect::Honoured),
    ("-s", "-s 4000", Expect::Honoured),
    ("--statement-size", "--statement-size=100", Expect::Honoured),
    ("-r", "-r 5000", Expect::Honoured),
    ("--rows", "--rows 5000", Expect::Honoured),
    ("--where", "--where 'id > 10'", Expect::Honoured),
    ("--consistency", "--consistency lock", Expect::Honoured),
    ("--consistency", "--consistency none", Expect::Honoured),
    ("--consistency", "--consistency flush", Expect::Default),
    ("--consistency", "--consistency auto", Expect::Default),
    ("--consistency", "--consistency snapshot", Expect::Refused),
    ("--no-locks", "--no-locks", Expect::Honoured),
    (
        "--no-locks",
        "--no-locks --consistency lock",
        Expect::Refused,
    ),
    ("-W", "-W", Expect::Honoured),
    ("--no-views", "--no-views=false", Expect::Default),
    ("--escape-backslash", "--escape-backslash", Expect::Warned),
    (
        "--escape-backslash",
        "--escape-backslash=false",
        Expect::Refused,
    ),
    (
        "--transactional-consistency",
        "--transactional-consistency",
        Expect::Warned,
    ),
    (
        "--snapshot",
        "--snapshot 434000000000000000",
        Expect::Refused,
    ),
    ("--filter", "-f 'shop.*'", Expect::Refused),
    ("--ca", "--ca /etc/ca.pem", Expect::Refused),
    ("--cert", "--cert /etc/cert.pem", Expect::Refused),
    ("--key", "--key /etc/key.pem", Expect::Refused),
    ("--params", "--params a=b", Expect::Refused),
    ("-o", "-o /tmp", Expect::Refused),
];

/// The walk's verdict on one key: compares with the options of a task without it.
fn check(what: &str, key: &str, text: &str, baseline: &DumpLoadConfig, expect: Expect) {
    let parsed = parse(text);
    let named = |line: &String| line.contains(key);
    match (expect, parsed) {
        (Expect::Refused, Err(error)) => {
            let error = error.to_string();
            assert!(
                error.contains(key),
                "{what}: the error `{error}` names {key}"
            );
        }
        (Expect::Refused, Ok(read)) => panic!("{what}: accepted as {read:?}"),
        (_, Err(error)) => panic!("{what}: refused: {error}"),
        (Expect::Honoured, Ok(read)) => {
            let mut unwarned = read.clone();
            unwarned.warnings = baseline.warnings.clone();
            assert_ne!(&unwarned, baseline, "{what}: changes nothing");
        }
        (Expect::Default, Ok(read)) => {
            assert_eq!(&read, baseline, "{what}: means the default");
        }
        (Expect::Warned, Ok(read)) => {
            assert!(
                read.warnings().iter().any(named),
                "{what}: no warning names {key}: {:?}",
                read.warnings()
            );
            let mut unwarned = read.clone();
            unwarned.warnings = baseline.warnings.clone();
            assert_eq!(&unwarned, baseline, "{what}: has no effect");
        }
    }
}

#[test]
fn every_section_key_is_honoured_refused_or_warned() {
    let baseline = options(&task_with("", Some(""), Some("")));
    assert!(baseline.warnings().is_empty());
    for (at, key, line, expect) in KEYS {
        let text = match at {
            At::Mydumper => task_with("", Some(line), Some("")),
            At::Loader => task_with("", Some(""), Some(line)),
            At::Instance => task_with(line, Some(""), Some("")),
        };
        check(&format!("{at:?} `{line}`"), key, &text, &baseline, *expect);
    }
    // The inline forms, without named sections.
    let inline_baseline = options(&task_with("", None, None));
    assert_eq!(inline_baseline, baseline);
    for (line, expect) in [
        ("mydumper:\n  threads: 8", Expect::Honoured),
        (
            "mydumper:\n  skip-tz-utc: true\n  extra-args: ''",
            Expect::Default,
        ),
        ("mydumper:\n  mydumper-path: ./mydumper", Expect::Warned),
        ("mydumper:\n  thread: 8", Expect::Refused),
        ("loader:\n  pool-size: 2", Expect::Honoured),
        ("loader:\n  pd-addr: 127.0.0.1:2379", Expect::Warned),
        ("loader:\n  import-mode: physical", Expect::Refused),
        ("mydumper-thread: 8", Expect::Honoured),
        ("loader-thread: 8", Expect::Honoured),
    ] {
        let key = line
            .lines()
            .last()
            .and_then(|last| last.trim().split(':').next())
            .unwrap_or_default();
        let key = if key == "import-mode" {
            "physical"
        } else {
            key
        };
        check(
            &format!("inline `{line}`"),
            key,
            &task_with(line, None, None),
            &inline_baseline,
            expect,
        );
    }
}

#[test]
fn every_extra_arg_is_honoured_refused_or_warned() {
    let baseline = options(&task_with("", Some(""), Some("")));
    for (option, arguments, expect) in EXTRA_ARGS {
        let text = task_with("", Some(&format!("extra-args: \"{arguments}\"")), Some(""));
        check(
            &format!("extra-args `{arguments}`"),
            option,
            &text,
            &baseline,
            *expect,
        );
    }
}

/// Section fields named in serde's list of expected keys for an unknown one.
fn declared_keys(section: At) -> Vec<String> {
    let text = match section {
        At::Mydumper => task_with("", Some("no-such-key: 1"), Some("")),
        _ => task_with("", Some(""), Some("no-such-key: 1")),
    };
    let error = parse(&text).expect_err("an unknown key").to_string();
    let (_, expected) = error.split_once("expected one of").expect(&error);
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_walk_covers_every_declared_key() {
    for at in [At::Mydumper, At::Loader] {
        let declared = declared_keys(at);
        assert!(declared.len() >= 8, "{declared:?}");
        for key in declared {
            let walked = KEYS.iter().any(|(section, _, line, _)| {
                matches!(
                    (section, at),
                    (At::Mydumper, At::Mydumper) | (At::Loader, At::Loader)
                ) && line.starts_with(&format!("{key}:"))
            });
            assert!(walked, "{at:?} key `{key}` is not walked");
        }
    }
}

#[test]
fn dm_sections_are_read_with_defaults_and_aliases() {
    let read = options(&task_with(
        "",
        Some(
            "threads: 8\nchunk-filesize: 16\nextra-args: \"--consistency none\"\ncompression: gzip",
        ),
        Some("pool-size: 4\ndir: /tmp/dump\non-duplicate-logical: error"),
    ));
    assert_eq!(read.threads, 8);
    assert_eq!(read.limits.bytes, 16 << 20);
    assert_eq!(read.consistency, Consistency::None);
    assert_eq!(read.compression, Compression::Gzip);
    assert_eq!(read.pool_size, 4);
    assert_eq!(read.directory, std::path::PathBuf::from("/tmp/dump.shop"));
    assert_eq!(read.on_duplicate, OnDuplicate::Error);
    let defaults = options(&task_with("", None, None));
    assert_eq!(defaults.threads, 4);
    assert_eq!(defaults.limits.bytes, 64 << 20);
    assert_eq!(defaults.limits.rows, 200_000);
    assert_eq!(defaults.statement_bytes, 1_000_000);
    assert_eq!(defaults.pool_size, 16);
    assert_eq!(defaults.consistency, Consistency::Flush);
    assert_eq!(defaults.time_zone, DumpTimeZone::Upstream);
    assert_eq!(defaults.selection, DumpSelection::default());
    assert_eq!(
        defaults.directory,
        std::path::PathBuf::from("./dumped_data.shop")
    );
}

#[test]
fn threads_of_zero_mean_dm_defaults_and_aliases_take_precedence() {
    let read = options(&task_with(
        "mydumper-thread: 0\nloader-thread: 0",
        Some("threads: 0"),
        Some("pool-size: 0"),
    ));
    assert_eq!((read.threads, read.pool_size), (4, 16));
    let read = options(&task_with(
        "mydumper-thread: 6\nloader-thread: 3",
        Some("threads: 2"),
        Some("pool-size: 5"),
    ));
    assert_eq!((read.threads, read.pool_size), (6, 3));
    assert!(
        read.warnings()
            .iter()
            .any(|line| line.contains("threads: 2 has no effect"))
    );
    assert!(
        read.warnings()
            .iter()
            .any(|line| line.contains("pool-size: 5 has no effect"))
    );
    let read = options(&task_with(
        "mydumper-thread: 6",
        Some("threads: 2\nextra-args: \"-t 9\""),
        Some(""),
    ));
    assert_eq!(read.threads, 9, "extra-args -t wins, as in DM");
}

#[test]
fn extra_args_reach_the_dump_options() {
    let read = options(&task_with(
        "",
        Some(
            "where: \"id > 1\"\nrows: 10\nextra-args: \"-B shop -T shop.items --where 'id > 10' -r 5000 -s 4000 -F 1MiB --no-locks -W\"",
        ),
        Some(""),
    ));
    let dump = read.dump_options(
        &DatabaseConfig {
            host: "db".into(),
            port: 3306,
            user: "root".into(),
            ..DatabaseConfig::default()
        },
        Flavor::MySql,
    );
    assert_eq!(
        dump.selection,
        DumpSelection {
            databases: Some(vec!["shop".into()]),
            tables: Some(vec![TableRef::new("shop", "items")]),
            case_sensitive: false,
            where_condition: Some("id > 10".into()),
            views: false,
        }
    );
    assert_eq!(dump.limits.rows, 5000);
    assert_eq!(dump.limits.bytes, 1 << 20);
    assert_eq!(dump.statement_bytes, 4000);
    assert_eq!(dump.snapshot.consistency, Consistency::None);
    // The replaced keys are named.
    for replaced in [
        "where: `id > 1`",
        "rows: 10",
        "-T replaces the block-allow list",
    ] {
        assert!(
            read.warnings().iter().any(|line| line.contains(replaced)),
            "{replaced}: {:?}",
            read.warnings()
        );
    }
}

#[test]
fn time_zone_follows_skip_tz_utc_then_the_task_timezone() {
    let with_zone = |zone: &str, mydumper: &str| {
        let text = task_with("", Some(mydumper), Some("")).replacen(
            "task-mode: all\n",
            &format!("task-mode: all\ntimezone: \"{zone}\"\n"),
            1,
        );
        parse(&text)
    };
    let zone = |zone: &str| DumpTimeZone::Zone(zone.into());
    assert_eq!(
        with_zone("+04:00", "skip-tz-utc: true").unwrap().time_zone,
        zone("+04:00")
    );
    assert_eq!(with_zone("+04:00", "").unwrap().time_zone, zone("+04:00"));
    assert_eq!(
        with_zone("+04:00", "skip-tz-utc: false").unwrap().time_zone,
        zone("+00:00")
    );
    assert_eq!(
        with_zone("", "skip-tz-utc: true").unwrap().time_zone,
        DumpTimeZone::Upstream
    );
    assert_eq!(
        with_zone("Asia/Shanghai", "").unwrap().time_zone,
        zone("Asia/Shanghai")
    );
}

#[test]
fn an_instance_names_a_section_or_sets_it_inline_not_both() {
    // TaskConfig refuses such a file first (as DM does); the options refuse it too.
    let mut task = TaskConfig::from_yaml(&task_with("", Some("threads: 3"), Some("")), "task.yaml")
        .expect("task");
    task.mysql_instances[0].mydumper = Some(serde_norway::from_str("threads: 9").expect("yaml"));
    let error = DumpLoadConfig::from_task(&task, &task.mysql_instances[0])
        .expect_err("both")
        .to_string();
    assert!(error.contains("mydumper-config-name"), "{error}");
}

#[test]
fn file_sizes_read_like_dm() {
    assert_eq!(file_size_bytes("64"), Some(64 << 20));
    assert_eq!(file_size_bytes("64MiB"), Some(64 << 20));
    assert_eq!(file_size_bytes("512k"), Some(512 << 10));
    assert_eq!(file_size_bytes("1GB"), Some(1 << 30));
    assert_eq!(file_size_bytes("0"), Some(u64::MAX), "0: no size limit");
    assert_eq!(file_size_bytes("99999999999999999"), None, "overflow");
    assert_eq!(file_size_bytes("1.5G"), None);
    assert_eq!(file_size_bytes("lots"), None);
}
