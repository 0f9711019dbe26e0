//! Every key of DM's task and source files (the fields of DM's Go structs `TaskConfig`,
//! `MySQLInstance`, `SyncerConfig`, `ValidatorConfig`, `TableRule`, `BinlogEventRule`,
//! `ExpressionFilter`, `DBConfig`, `Security`, `SourceConfig`, `PurgeConfig`,
//! `CheckerConfig`), each added to a minimal file: it is honoured (the syncer's settings, rules
//! or connection change as the key says), refused naming it, or accepted with a warning naming
//! it. The dump and load keys (`mydumpers`, `loaders`, the inline `mydumper`/`loader`, their
//! `*-config-name` and `*-thread` aliases, `clean-dump-file`) are the dump and load stage's
//! (`dm_dumpload::config`, which reads them from dm-task's `TaskConfig`): they are listed here
//! and walked there. DM users' own files are read in dm-task's `dm_configs` test.

use dm_core::{Flavor, TableRef};
use dm_syncer::{SyncerSettings, sink_options};
use dm_task::config::{CheckingItem, InstanceRules, SourceConfig, TaskConfig, TaskMode};
use dm_task::filter::{DdlEventKind, FilterAction, FilterEvent};
use serde_norway::Value;

/// Every key of DM's task file, as paths (`*` a map entry, `[]` a list entry).
const TASK_KEYS: &[&str] = &[
    "name",
    "task-mode",
    "is-sharding",
    "shard-mode",
    "strict-optimistic-shard-mode",
    "ignore-checking-items",
    "meta-schema",
    "enable-heartbeat",
    "heartbeat-update-interval",
    "heartbeat-report-interval",
    "timezone",
    "case-sensitive",
    "collation_compatible",
    "target-database.host",
    "target-database.port",
    "target-database.user",
    "target-database.password",
    "target-database.max-allowed-packet",
    "target-database.session",
    "target-database.security.ssl-ca",
    "target-database.security.ssl-cert",
    "target-database.security.ssl-key",
    "target-database.security.cert-allowed-cn",
    "target-database.security.ssl-ca-bytes",
    "target-database.security.ssl-key-bytes",
    "target-database.security.ssl-cert-bytes",
    "target-database.security.ssl-ca-base64",
    "target-database.security.ssl-key-base64",
    "target-database.security.ssl-cert-base64",
    "mysql-instances[].source-id",
    "mysql-instances[].meta.binlog-name",
    "mysql-instances[].meta.binlog-pos",
    "mysql-instances[].meta.binlog-gtid",
    "mysql-instances[].filter-rules",
    "mysql-instances[].column-mapping-rules",
    "mysql-instances[].route-rules",
    "mysql-instances[].expression-filters",
    "mysql-instances[].black-white-list",
    "mysql-instances[].block-allow-list",
    "mysql-instances[].mydumper-config-name",
    "mysql-instances[].mydumper",
    "mysql-instances[].mydumper-thread",
    "mysql-instances[].loader-config-name",
    "mysql-instances[].loader",
    "mysql-instances[].loader-thread",
    "mysql-instances[].syncer-config-name",
    "mysql-instances[].syncer",
    "mysql-instances[].syncer-thread",
    "mysql-instances[].validator-config-name",
    "online-ddl",
    "shadow-table-rules",
    "trash-table-rules",
    "online-ddl-scheme",
    "routes.*.schema-pattern",
    "routes.*.table-pattern",
    "routes.*.target-schema",
    "routes.*.target-table",
    "routes.*.extract-table.table-regexp",
    "routes.*.extract-table.target-column",
    "routes.*.extract-schema.schema-regexp",
    "routes.*.extract-schema.target-column",
    "routes.*.extract-source.source-regexp",
    "routes.*.extract-source.target-column",
    "filters.*.schema-pattern",
    "filters.*.table-pattern",
    "filters.*.events",
    "filters.*.sql-pattern",
    "filters.*.action",
    "column-mappings.*",
    "expression-filter.*.schema",
    "expression-filter.*.table",
    "expression-filter.*.insert-value-expr",
    "expression-filter.*.update-old-value-expr",
    "expression-filter.*.update-new-value-expr",
    "expression-filter.*.delete-value-expr",
    "black-white-list.*",
    "block-allow-list.*.do-dbs",
    "block-allow-list.*.ignore-dbs",
    "block-allow-list.*.do-tables",
    "block-allow-list.*.ignore-tables",
    "mydumpers.*",
    "loaders.*",
    "syncers.*.meta-file",
    "syncers.*.worker-count",
    "syncers.*.batch",
    "syncers.*.queue-size",
    "syncers.*.checkpoint-flush-interval",
    "syncers.*.compact",
    "syncers.*.multiple-rows",
    "syncers.*.max-retry",
    "syncers.*.auto-fix-gtid",
    "syncers.*.enable-gtid",
    "syncers.*.disable-detect",
    "syncers.*.safe-mode",
    "syncers.*.safe-mode-duration",
    "syncers.*.enable-ansi-quotes",
    "validators.*.mode",
    "validators.*.worker-count",
    "validators.*.validate-interval",
    "validators.*.check-interval",
    "validators.*.row-error-delay",
    "validators.*.meta-flush-interval",
    "validators.*.batch-query-size",
    "validators.*.max-pending-row-size",
    "validators.*.max-pending-row-count",
    "clean-dump-file",
    "ansi-quotes",
    "remove-meta",
    "experimental.async-checkpoint-flush",
];

/// Every key of DM's source file.
const SOURCE_KEYS: &[&str] = &[
    "enable",
    "enable-gtid",
    "auto-fix-gtid",
    "relay-dir",
    "meta-dir",
    "flavor",
    "charset",
    "enable-relay",
    "relay-binlog-name",
    "relay-binlog-gtid",
    "source-id",
    "from.host",
    "from.port",
    "from.user",
    "from.password",
    "from.max-allowed-packet",
    "from.session",
    "from.security.ssl-ca",
    "from.security.ssl-cert",
    "from.security.ssl-key",
    "from.security.cert-allowed-cn",
    "from.security.ssl-ca-bytes",
    "from.security.ssl-key-bytes",
    "from.security.ssl-cert-bytes",
    "from.security.ssl-ca-base64",
    "from.security.ssl-key-base64",
    "from.security.ssl-cert-base64",
    "purge.interval",
    "purge.expires",
    "purge.remain-space",
    "checker.check-enable",
    "checker.backoff-rollback",
    "checker.backoff-max",
    "checker.check-interval",
    "checker.backoff-min",
    "checker.backoff-jitter",
    "checker.backoff-factor",
    "server-id",
    "tracer",
    "case-sensitive",
    "filters[]",
];

/// The dump and load stage's keys (walked by `dm_dumpload::config`, not here).
const DUMP_AND_LOAD_KEYS: &[&str] = &[
    "mysql-instances[].mydumper-config-name",
    "mysql-instances[].mydumper",
    "mysql-instances[].mydumper-thread",
    "mysql-instances[].loader-config-name",
    "mysql-instances[].loader",
    "mysql-instances[].loader-thread",
    "mydumpers.*",
    "loaders.*",
    "clean-dump-file",
];

const BASE_TASK: &str = "
name: walk
task-mode: incremental
target-database: {host: 127.0.0.1, port: 4000, user: root, password: ''}
mysql-instances:
  - source-id: s1
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
";

const BASE_SOURCE: &str = "
source-id: s1
from: {host: 127.0.0.1, port: 3306, user: root, password: ''}
";

/// A DM ciphertext of `123456` (see the password module's tests).
const ENCRYPTED: &str = "8OHSw7Sllod4aVpLPC0eD0CgX/F6x+A=";

/// What one file's keys become.
struct Loaded {
    task: TaskConfig,
    source: SourceConfig,
    settings: SyncerSettings,
    rules: InstanceRules,
    sink: dm_sink::MySqlSinkOptions,
}

enum Expect {
    /// Accepted, and the probe turns true (it is false for the base files).
    Honoured(fn(&Loaded) -> bool),
    /// Refused: the error names this.
    Refused(&'static str),
    /// Accepted with a warning whose key names this.
    Warned(&'static str),
}

#[derive(Clone, Copy, PartialEq)]
enum File {
    Task,
    Source,
}

struct Case {
    /// The keys of [`TASK_KEYS`] / [`SOURCE_KEYS`] the case covers.
    keys: &'static [&'static str],
    file: File,
    /// `(path, YAML value)` set into the base file (`mysql-instances.0.x`).
    set: &'static [(&'static str, &'static str)],
    expect: Expect,
}

use Expect::{Honoured, Refused, Warned};
use File::{Source, Task};

fn set(document: &mut Value, path: &str, yaml: &str) {
    let value: Value =
        serde_norway::from_str(yaml).unwrap_or_else(|error| panic!("{yaml}: {error}"));
    let segments: Vec<&str> = path.split('.').collect();
    let mut current = document;
    for (depth, segment) in segments.iter().enumerate() {
        let last = depth + 1 == segments.len();
        current = match (segment.parse::<usize>(), current) {
            (Ok(index), Value::Sequence(items)) => &mut items[index],
            (_, node) => {
                if !matches!(node, Value::Mapping(_)) {
                    *node = Value::Mapping(Default::default());
                }
                let Value::Mapping(entries) = node else {
                    unreachable!("made a mapping above")
                };
                let key = Value::String((*segment).to_owned());
                if last {
                    entries.insert(key, value);
                    return;
                }
                entries
                    .entry(key)
                    .or_insert_with(|| Value::Mapping(Default::default()))
            }
        };
    }
}

fn texts(case: &Case) -> (String, String) {
    let mut task: Value = serde_norway::from_str(BASE_TASK).expect("base task");
    let mut source: Value = serde_norway::from_str(BASE_SOURCE).expect("base source");
    for (path, yaml) in case.set {
        let document = if case.file == Task {
            &mut task
        } else {
            &mut source
        };
        set(document, path, yaml);
    }
    (
        serde_norway::to_string(&task).expect("task text"),
        serde_norway::to_string(&source).expect("source text"),
    )
}

fn load(task_text: &str, source_text: &str) -> Result<Loaded, String> {
    let task = TaskConfig::from_yaml(task_text, "task.yaml").map_err(|error| error.to_string())?;
    let source =
        SourceConfig::from_yaml(source_text, "source.yaml").map_err(|error| error.to_string())?;
    let instance = &task.mysql_instances[0];
    let rules = task
        .rules_for_source(instance, &source)
        .map_err(|error| error.to_string())?;
    Ok(Loaded {
        settings: SyncerSettings::from_task_and_source(&task, instance, &source, Flavor::MySql),
        sink: sink_options(&task.target_database),
        rules,
        task,
        source,
    })
}

fn drops_truncate(loaded: &Loaded) -> bool {
    loaded
        .rules
        .event_filter
        .decide(
            "shop",
            "orders",
            Some(FilterEvent::Ddl(DdlEventKind::TruncateTable)),
            None,
        )
        .0
        == FilterAction::Ignore
}

fn routes_orders(loaded: &Loaded) -> bool {
    loaded
        .rules
        .router
        .route(&TableRef::new("shop", "orders"))
        .is_ok_and(|target| target == TableRef::new("copy", "orders_all"))
}

fn expression(loaded: &Loaded, kind: &str) -> bool {
    loaded.rules.expression_filters.len() == 1
        && loaded.rules.expression_filters[0].applies_to(&TableRef::new("shop", "orders"))
        && format!("{:?}", loaded.rules.expression_filters[0]).contains(&format!("{kind}: Some"))
}

fn only_shop(loaded: &Loaded) -> bool {
    loaded.rules.block_allow_list.allows_table("shop", "orders")
        && !loaded
            .rules
            .block_allow_list
            .allows_table("other", "orders")
}

const ROUTE: &str =
    "{schema-pattern: shop, table-pattern: orders, target-schema: copy, target-table: orders_all}";

fn cases() -> Vec<Case> {
    vec![
        // The task as a whole.
        Case {
            keys: &["name"],
            file: Task,
            set: &[("name", "other")],
            expect: Honoured(|l| l.settings.task == "other"),
        },
        Case {
            keys: &["task-mode"],
            file: Task,
            set: &[("task-mode", "full")],
            expect: Honoured(|l| l.task.task_mode == TaskMode::Full),
        },
        Case {
            keys: &["is-sharding"],
            file: Task,
            set: &[("is-sharding", "true")],
            expect: Refused("is-sharding: true"),
        },
        Case {
            keys: &["shard-mode"],
            file: Task,
            set: &[("shard-mode", "pessimistic")],
            expect: Refused("shard-mode: pessimistic"),
        },
        Case {
            keys: &["shard-mode"],
            file: Task,
            set: &[("shard-mode", "optimistic")],
            expect: Refused("shard-mode: optimistic"),
        },
        Case {
            keys: &["strict-optimistic-shard-mode"],
            file: Task,
            set: &[("strict-optimistic-shard-mode", "true")],
            expect: Refused("strict-optimistic-shard-mode"),
        },
        Case {
            keys: &["strict-optimistic-shard-mode"],
            file: Task,
            set: &[
                ("strict-optimistic-shard-mode", "true"),
                ("shard-mode", "optimistic"),
            ],
            expect: Refused("shard-mode: optimistic"),
        },
        Case {
            keys: &["ignore-checking-items"],
            file: Task,
            set: &[("ignore-checking-items", "[binlog_row_image]")],
            expect: Honoured(|l| l.task.ignored_checks().skips(CheckingItem::BinlogRowImage)),
        },
        Case {
            keys: &["ignore-checking-items"],
            file: Task,
            set: &[("ignore-checking-items", "[conn_number]")],
            expect: Warned("conn_number"),
        },
        Case {
            keys: &["ignore-checking-items"],
            file: Task,
            set: &[("ignore-checking-items", "[no_such_check]")],
            expect: Refused("no_such_check"),
        },
        Case {
            keys: &["meta-schema"],
            file: Task,
            set: &[("meta-schema", "walk_meta")],
            expect: Honoured(|l| l.settings.meta_schema == "walk_meta"),
        },
        Case {
            keys: &["enable-heartbeat"],
            file: Task,
            set: &[("enable-heartbeat", "true")],
            expect: Warned("enable-heartbeat"),
        },
        Case {
            keys: &["heartbeat-update-interval"],
            file: Task,
            set: &[("heartbeat-update-interval", "5")],
            expect: Warned("heartbeat-update-interval"),
        },
        Case {
            keys: &["heartbeat-report-interval"],
            file: Task,
            set: &[("heartbeat-report-interval", "30")],
            expect: Warned("heartbeat-report-interval"),
        },
        Case {
            keys: &["timezone"],
            file: Task,
            set: &[("timezone", "'+08:00'")],
            expect: Warned("timezone"),
        },
        Case {
            keys: &["case-sensitive"],
            file: Task,
            set: &[("case-sensitive", "true")],
            expect: Honoured(|l| l.settings.case_sensitive),
        },
        Case {
            keys: &["collation_compatible"],
            file: Task,
            set: &[("collation_compatible", "strict")],
            expect: Refused("collation_compatible: strict"),
        },
        Case {
            keys: &["clean-dump-file"],
            file: Task,
            set: &[("clean-dump-file", "false")],
            expect: Honoured(|l| !l.task.clean_dump_file),
        },
        Case {
            keys: &["ansi-quotes"],
            file: Task,
            set: &[("ansi-quotes", "true")],
            expect: Warned("ansi-quotes"),
        },
        Case {
            keys: &["remove-meta"],
            file: Task,
            set: &[("remove-meta", "true")],
            expect: Refused("remove-meta: true"),
        },
        Case {
            keys: &["experimental.async-checkpoint-flush"],
            file: Task,
            set: &[("experimental.async-checkpoint-flush", "true")],
            expect: Warned("async-checkpoint-flush"),
        },
        // The downstream.
        Case {
            keys: &["target-database.host"],
            file: Task,
            set: &[("target-database.host", "10.9.9.9")],
            expect: Honoured(|l| l.sink.host == "10.9.9.9"),
        },
        Case {
            keys: &["target-database.port"],
            file: Task,
            set: &[("target-database.port", "4001")],
            expect: Honoured(|l| l.sink.port == 4001),
        },
        Case {
            keys: &["target-database.user"],
            file: Task,
            set: &[("target-database.user", "app")],
            expect: Honoured(|l| l.sink.user == "app"),
        },
        Case {
            keys: &["target-database.password"],
            file: Task,
            set: &[("target-database.password", ENCRYPTED)],
            expect: Honoured(|l| l.sink.password == "123456"),
        },
        Case {
            keys: &["target-database.max-allowed-packet"],
            file: Task,
            set: &[("target-database.max-allowed-packet", "67108864")],
            expect: Warned("max-allowed-packet"),
        },
        Case {
            keys: &["target-database.session"],
            file: Task,
            set: &[("target-database.session", "{sql_mode: ANSI_QUOTES}")],
            expect: Honoured(|l| {
                l.sink
                    .session_variables
                    .iter()
                    .any(|(name, _)| name == "sql_mode")
            }),
        },
        Case {
            keys: &["target-database.session"],
            file: Task,
            set: &[("target-database.session", "{tidb_retry_limit: 10}")],
            expect: Warned("tidb_retry_limit"),
        },
        Case {
            keys: &["target-database.session"],
            file: Task,
            set: &[("target-database.session", "{time_zone: '+08:00'}")],
            expect: Warned("time_zone"),
        },
        Case {
            keys: &["target-database.session"],
            file: Task,
            set: &[("target-database.session", "{foreign_key_checks: 1}")],
            expect: Refused("foreign_key_checks"),
        },
        Case {
            keys: &["target-database.security.ssl-ca"],
            file: Task,
            set: &[("target-database.security.ssl-ca", "/ca.pem")],
            expect: Honoured(|l| l.sink.tls.is_some()),
        },
        Case {
            keys: &["target-database.security.ssl-cert"],
            file: Task,
            set: &[("target-database.security.ssl-cert", "/cert.pem")],
            expect: Refused("ssl-cert"),
        },
        Case {
            keys: &["target-database.security.ssl-key"],
            file: Task,
            set: &[("target-database.security.ssl-key", "/key.pem")],
            expect: Refused("ssl-key"),
        },
        Case {
            keys: &["target-database.security.cert-allowed-cn"],
            file: Task,
            set: &[("target-database.security.cert-allowed-cn", "[dm]")],
            expect: Refused("cert-allowed-cn"),
        },
        Case {
            keys: &["target-database.security.ssl-ca-bytes"],
            file: Task,
            set: &[("target-database.security.ssl-ca-bytes", "'-----BEGIN'")],
            expect: Honoured(|l| l.sink.tls.is_some()),
        },
        Case {
            keys: &["target-database.security.ssl-key-bytes"],
            file: Task,
            set: &[("target-database.security.ssl-key-bytes", "'-----BEGIN'")],
            expect: Refused("ssl-key-bytes"),
        },
        Case {
            keys: &["target-database.security.ssl-cert-bytes"],
            file: Task,
            set: &[("target-database.security.ssl-cert-bytes", "'-----BEGIN'")],
            expect: Refused("ssl-cert-bytes"),
        },
        Case {
            keys: &["target-database.security.ssl-ca-base64"],
            file: Task,
            set: &[("target-database.security.ssl-ca-base64", "LS0t")],
            expect: Honoured(|l| l.sink.tls.is_some()),
        },
        Case {
            keys: &["target-database.security.ssl-key-base64"],
            file: Task,
            set: &[("target-database.security.ssl-key-base64", "LS0t")],
            expect: Refused("ssl-key-base64"),
        },
        Case {
            keys: &["target-database.security.ssl-cert-base64"],
            file: Task,
            set: &[("target-database.security.ssl-cert-base64", "LS0t")],
            expect: Refused("ssl-cert-base64"),
        },
        // An instance.
        Case {
            keys: &["mysql-instances[].source-id"],
            file: Task,
            set: &[("mysql-instances.0.source-id", "s2")],
            expect: Honoured(|l| l.settings.source_id == "s2"),
        },
        Case {
            keys: &["mysql-instances[].meta.binlog-name"],
            file: Task,
            set: &[("mysql-instances.0.meta.binlog-name", "mysql-bin.000009")],
            expect: Honoured(|l| {
                l.task.mysql_instances[0]
                    .meta
                    .as_ref()
                    .and_then(|meta| meta.binlog_name.as_deref())
                    == Some("mysql-bin.000009")
            }),
        },
        Case {
            keys: &["mysql-instances[].meta.binlog-pos"],
            file: Task,
            set: &[("mysql-instances.0.meta.binlog-pos", "1234")],
            expect: Honoured(|l| {
                l.task.mysql_instances[0]
                    .meta
                    .as_ref()
                    .and_then(|meta| meta.binlog_pos)
                    == Some(1234)
            }),
        },
        Case {
            keys: &["mysql-instances[].meta.binlog-gtid"],
            file: Task,
            set: &[("mysql-instances.0.meta.binlog-gtid", "'0-1-5'")],
            expect: Honoured(|l| {
                l.task.mysql_instances[0]
                    .meta
                    .as_ref()
                    .and_then(|meta| meta.binlog_gtid.as_deref())
                    == Some("0-1-5")
            }),
        },
        Case {
            keys: &["mysql-instances[].meta.binlog-name"],
            file: Task,
            set: &[("task-mode", "all")],
            expect: Warned("mysql-instances[0].meta"),
        },
        Case {
            keys: &["mysql-instances[].column-mapping-rules"],
            file: Task,
            set: &[("mysql-instances.0.column-mapping-rules", "[cm]")],
            expect: Refused("column-mapping-rules"),
        },
        Case {
            keys: &["column-mappings.*"],
            file: Task,
            set: &[(
                "column-mappings.cm",
                "{schema-pattern: shop, table-pattern: orders, expression: add prefix}",
            )],
            expect: Refused("column-mappings"),
        },
        Case {
            keys: &[
                "mysql-instances[].syncer-config-name",
                "syncers.*.worker-count",
            ],
            file: Task,
            set: &[
                ("syncers.s.worker-count", "3"),
                ("mysql-instances.0.syncer-config-name", "s"),
            ],
            expect: Honoured(|l| l.settings.workers == 3),
        },
        Case {
            keys: &["syncers.*.worker-count"],
            file: Task,
            set: &[
                ("syncers.s.worker-count", "0"),
                ("mysql-instances.0.syncer-config-name", "s"),
            ],
            expect: Refused("worker-count: 0"),
        },
        Case {
            keys: &["mysql-instances[].syncer"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{batch: 7}")],
            expect: Honoured(|l| l.settings.batch == 7),
        },
        Case {
            keys: &["mysql-instances[].syncer-thread"],
            file: Task,
            set: &[("mysql-instances.0.syncer-thread", "5")],
            expect: Honoured(|l| l.settings.workers == 5),
        },
        Case {
            keys: &[
                "mysql-instances[].validator-config-name",
                "validators.*.mode",
            ],
            file: Task,
            set: &[
                ("validators.v.mode", "fast"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Refused("validators.v.mode: fast"),
        },
        // Online DDL.
        Case {
            keys: &["online-ddl"],
            file: Task,
            set: &[("online-ddl", "false")],
            expect: Honoured(|l| !l.rules.online_ddl.is_enabled()),
        },
        Case {
            keys: &["shadow-table-rules"],
            file: Task,
            set: &[("shadow-table-rules", "['^_(.+)_shadow$']")],
            expect: Honoured(|l| l.rules.online_ddl.classify("_orders_shadow").is_some()),
        },
        Case {
            keys: &["trash-table-rules"],
            file: Task,
            set: &[("trash-table-rules", "['^_(.+)_trash$']")],
            expect: Honoured(|l| l.rules.online_ddl.classify("_orders_trash").is_some()),
        },
        Case {
            keys: &["shadow-table-rules", "trash-table-rules"],
            file: Task,
            set: &[
                ("online-ddl", "false"),
                ("trash-table-rules", "['^_(.+)_trash$']"),
            ],
            expect: Warned("trash-table-rules"),
        },
        Case {
            keys: &["online-ddl-scheme"],
            file: Task,
            set: &[("online-ddl", "false"), ("online-ddl-scheme", "gh-ost")],
            expect: Honoured(|l| {
                l.rules.online_ddl.is_enabled()
                    && !l
                        .task
                        .online_ddl_scheme
                        .as_deref()
                        .unwrap_or_default()
                        .is_empty()
            }),
        },
        Case {
            keys: &["online-ddl-scheme"],
            file: Task,
            set: &[("online-ddl-scheme", "pt")],
            expect: Warned("online-ddl-scheme"),
        },
        // Routes.
        Case {
            keys: &[
                "routes.*.schema-pattern",
                "routes.*.table-pattern",
                "routes.*.target-schema",
                "routes.*.target-table",
                "mysql-instances[].route-rules",
            ],
            file: Task,
            set: &[
                ("routes.r", ROUTE),
                ("mysql-instances.0.route-rules", "[r]"),
            ],
            expect: Honoured(routes_orders),
        },
        Case {
            keys: &[
                "routes.*.extract-table.table-regexp",
                "routes.*.extract-table.target-column",
            ],
            file: Task,
            set: &[
                ("routes.r", ROUTE),
                (
                    "routes.r.extract-table",
                    "{table-regexp: '(.*)', target-column: c_table}",
                ),
                ("mysql-instances.0.route-rules", "[r]"),
            ],
            expect: Refused("routes.r.extract-table"),
        },
        Case {
            keys: &[
                "routes.*.extract-schema.schema-regexp",
                "routes.*.extract-schema.target-column",
            ],
            file: Task,
            set: &[
                ("routes.r", ROUTE),
                (
                    "routes.r.extract-schema",
                    "{schema-regexp: '(.*)', target-column: c_schema}",
                ),
                ("mysql-instances.0.route-rules", "[r]"),
            ],
            expect: Refused("routes.r.extract-schema"),
        },
        Case {
            keys: &[
                "routes.*.extract-source.source-regexp",
                "routes.*.extract-source.target-column",
            ],
            file: Task,
            set: &[
                ("routes.r", ROUTE),
                (
                    "routes.r.extract-source",
                    "{source-regexp: '(.*)', target-column: c_source}",
                ),
                ("mysql-instances.0.route-rules", "[r]"),
            ],
            expect: Refused("routes.r.extract-source"),
        },
        // Event filters.
        Case {
            keys: &[
                "filters.*.schema-pattern",
                "filters.*.events",
                "filters.*.action",
                "mysql-instances[].filter-rules",
            ],
            file: Task,
            set: &[
                (
                    "filters.f",
                    "{schema-pattern: shop, events: [truncate table], action: Ignore}",
                ),
                ("mysql-instances.0.filter-rules", "[f]"),
            ],
            expect: Honoured(drops_truncate),
        },
        Case {
            keys: &["filters.*.table-pattern"],
            file: Task,
            set: &[
                (
                    "filters.f",
                    "{schema-pattern: shop, table-pattern: orders, events: [truncate table], action: Ignore}",
                ),
                ("mysql-instances.0.filter-rules", "[f]"),
            ],
            expect: Honoured(|l| {
                drops_truncate(l)
                    && l.rules
                        .event_filter
                        .decide(
                            "shop",
                            "items",
                            Some(FilterEvent::Ddl(DdlEventKind::TruncateTable)),
                            None,
                        )
                        .0
                        == FilterAction::Do
            }),
        },
        Case {
            keys: &["filters.*.sql-pattern"],
            file: Task,
            set: &[
                (
                    "filters.f",
                    "{schema-pattern: shop, sql-pattern: ['^TRUNCATE'], action: Ignore}",
                ),
                ("mysql-instances.0.filter-rules", "[f]"),
            ],
            expect: Honoured(|l| {
                l.rules
                    .event_filter
                    .decide("shop", "orders", None, Some("TRUNCATE TABLE orders"))
                    .0
                    == FilterAction::Ignore
            }),
        },
        // Expression filters.
        Case {
            keys: &[
                "expression-filter.*.schema",
                "expression-filter.*.table",
                "expression-filter.*.insert-value-expr",
                "mysql-instances[].expression-filters",
            ],
            file: Task,
            set: &[
                (
                    "expression-filter.e",
                    "{schema: shop, table: orders, insert-value-expr: 'id > 5'}",
                ),
                ("mysql-instances.0.expression-filters", "[e]"),
            ],
            expect: Honoured(|l| expression(l, "insert")),
        },
        Case {
            keys: &["expression-filter.*.update-old-value-expr"],
            file: Task,
            set: &[
                (
                    "expression-filter.e",
                    "{schema: shop, table: orders, update-old-value-expr: 'id > 5'}",
                ),
                ("mysql-instances.0.expression-filters", "[e]"),
            ],
            expect: Honoured(|l| expression(l, "update_old")),
        },
        Case {
            keys: &["expression-filter.*.update-new-value-expr"],
            file: Task,
            set: &[
                (
                    "expression-filter.e",
                    "{schema: shop, table: orders, update-new-value-expr: 'id > 5'}",
                ),
                ("mysql-instances.0.expression-filters", "[e]"),
            ],
            expect: Honoured(|l| expression(l, "update_new")),
        },
        Case {
            keys: &["expression-filter.*.delete-value-expr"],
            file: Task,
            set: &[
                (
                    "expression-filter.e",
                    "{schema: shop, table: orders, delete-value-expr: 'id > 5'}",
                ),
                ("mysql-instances.0.expression-filters", "[e]"),
            ],
            expect: Honoured(|l| expression(l, "delete")),
        },
        // Block-allow lists.
        Case {
            keys: &[
                "block-allow-list.*.do-dbs",
                "mysql-instances[].block-allow-list",
            ],
            file: Task,
            set: &[
                ("block-allow-list.b", "{do-dbs: [shop]}"),
                ("mysql-instances.0.block-allow-list", "b"),
            ],
            expect: Honoured(only_shop),
        },
        Case {
            keys: &["black-white-list.*", "mysql-instances[].black-white-list"],
            file: Task,
            set: &[
                ("black-white-list.b", "{do-dbs: [shop]}"),
                ("mysql-instances.0.black-white-list", "b"),
            ],
            expect: Honoured(only_shop),
        },
        Case {
            keys: &["black-white-list.*"],
            file: Task,
            set: &[
                ("black-white-list.old", "{do-dbs: [old]}"),
                ("block-allow-list.b", "{do-dbs: [shop]}"),
                ("mysql-instances.0.block-allow-list", "b"),
            ],
            expect: Warned("black-white-list"),
        },
        Case {
            keys: &["block-allow-list.*.ignore-dbs"],
            file: Task,
            set: &[
                ("block-allow-list.b", "{ignore-dbs: [other]}"),
                ("mysql-instances.0.block-allow-list", "b"),
            ],
            expect: Honoured(|l| !l.rules.block_allow_list.allows_table("other", "orders")),
        },
        Case {
            keys: &["block-allow-list.*.do-tables"],
            file: Task,
            set: &[
                (
                    "block-allow-list.b",
                    "{do-tables: [{db-name: shop, tbl-name: orders}]}",
                ),
                ("mysql-instances.0.block-allow-list", "b"),
            ],
            expect: Honoured(|l| !l.rules.block_allow_list.allows_table("shop", "items")),
        },
        Case {
            keys: &["block-allow-list.*.ignore-tables"],
            file: Task,
            set: &[
                (
                    "block-allow-list.b",
                    "{ignore-tables: [{db-name: shop, tbl-name: items}]}",
                ),
                ("mysql-instances.0.block-allow-list", "b"),
            ],
            expect: Honoured(|l| !l.rules.block_allow_list.allows_table("shop", "items")),
        },
        // Syncer options (inline, so that no named entry is needed).
        Case {
            keys: &["syncers.*.batch"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{batch: 9}")],
            expect: Honoured(|l| l.settings.batch == 9),
        },
        Case {
            keys: &["syncers.*.queue-size"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{queue-size: 64}")],
            expect: Honoured(|l| l.settings.queue_size == 64),
        },
        Case {
            keys: &["syncers.*.checkpoint-flush-interval"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{checkpoint-flush-interval: 5}")],
            expect: Honoured(|l| l.settings.checkpoint_interval.as_secs() == 5),
        },
        Case {
            keys: &["syncers.*.compact"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{compact: false}")],
            expect: Honoured(|l| !l.settings.compact),
        },
        Case {
            keys: &["syncers.*.multiple-rows"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{multiple-rows: false}")],
            expect: Honoured(|l| !l.settings.multiple_rows),
        },
        Case {
            keys: &["syncers.*.safe-mode"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{safe-mode: true}")],
            expect: Honoured(|l| l.settings.safe_mode),
        },
        Case {
            keys: &["syncers.*.safe-mode-duration"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{safe-mode-duration: 2m}")],
            expect: Honoured(|l| {
                l.settings.safe_mode_duration == Some(std::time::Duration::from_secs(120))
            }),
        },
        Case {
            keys: &["syncers.*.safe-mode-duration"],
            file: Task,
            set: &[(
                "mysql-instances.0.syncer",
                "{safe-mode-duration: 2 minutes}",
            )],
            expect: Refused("safe-mode-duration"),
        },
        Case {
            keys: &["syncers.*.meta-file"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{meta-file: syncer.meta}")],
            expect: Warned("meta-file"),
        },
        Case {
            keys: &["syncers.*.max-retry"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{max-retry: 100}")],
            expect: Warned("max-retry"),
        },
        Case {
            keys: &["syncers.*.auto-fix-gtid"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{auto-fix-gtid: true}")],
            expect: Warned("auto-fix-gtid"),
        },
        Case {
            keys: &["syncers.*.enable-gtid"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{enable-gtid: true}")],
            expect: Warned("enable-gtid"),
        },
        Case {
            keys: &["syncers.*.disable-detect"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{disable-detect: true}")],
            expect: Warned("disable-detect"),
        },
        Case {
            keys: &["syncers.*.enable-ansi-quotes"],
            file: Task,
            set: &[("mysql-instances.0.syncer", "{enable-ansi-quotes: true}")],
            expect: Warned("enable-ansi-quotes"),
        },
        // Validators: off (`mode: none`), their options have no effect.
        Case {
            keys: &["validators.*.worker-count"],
            file: Task,
            set: &[
                ("validators.v", "{mode: none, worker-count: 8}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("validators.v.worker-count"),
        },
        Case {
            keys: &["validators.*.validate-interval"],
            file: Task,
            set: &[
                ("validators.v", "{validate-interval: 20s}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("validate-interval"),
        },
        Case {
            keys: &["validators.*.check-interval"],
            file: Task,
            set: &[
                ("validators.v", "{check-interval: 10s}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("check-interval"),
        },
        Case {
            keys: &["validators.*.row-error-delay"],
            file: Task,
            set: &[
                ("validators.v", "{row-error-delay: 1h}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("row-error-delay"),
        },
        Case {
            keys: &["validators.*.meta-flush-interval"],
            file: Task,
            set: &[
                ("validators.v", "{meta-flush-interval: 1m}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("meta-flush-interval"),
        },
        Case {
            keys: &["validators.*.batch-query-size"],
            file: Task,
            set: &[
                ("validators.v", "{batch-query-size: 50}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("batch-query-size"),
        },
        Case {
            keys: &["validators.*.max-pending-row-size"],
            file: Task,
            set: &[
                ("validators.v", "{max-pending-row-size: 100m}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("max-pending-row-size"),
        },
        Case {
            keys: &["validators.*.max-pending-row-count"],
            file: Task,
            set: &[
                ("validators.v", "{max-pending-row-count: 1000}"),
                ("mysql-instances.0.validator-config-name", "v"),
            ],
            expect: Warned("max-pending-row-count"),
        },
        // The source file.
        Case {
            keys: &["enable"],
            file: Source,
            set: &[("enable", "false")],
            expect: Refused("enable: false"),
        },
        Case {
            keys: &["enable-gtid"],
            file: Source,
            set: &[("enable-gtid", "true")],
            expect: Honoured(|l| l.source.enable_gtid && l.settings.resume_by_gtid),
        },
        Case {
            keys: &["auto-fix-gtid"],
            file: Source,
            set: &[("auto-fix-gtid", "true")],
            expect: Warned("auto-fix-gtid"),
        },
        Case {
            keys: &["enable-relay"],
            file: Source,
            set: &[("enable-relay", "true")],
            expect: Refused("enable-relay: true"),
        },
        Case {
            keys: &["relay-dir"],
            file: Source,
            set: &[("relay-dir", "./relay_log")],
            expect: Warned("relay-dir"),
        },
        Case {
            keys: &["relay-binlog-name"],
            file: Source,
            set: &[("relay-binlog-name", "mysql-bin.000003")],
            expect: Warned("relay-binlog-name"),
        },
        Case {
            keys: &["relay-binlog-gtid"],
            file: Source,
            set: &[("relay-binlog-gtid", "'0-1-5'")],
            expect: Warned("relay-binlog-gtid"),
        },
        Case {
            keys: &["meta-dir"],
            file: Source,
            set: &[("meta-dir", "./meta")],
            expect: Warned("meta-dir"),
        },
        Case {
            keys: &["charset"],
            file: Source,
            set: &[("charset", "utf8mb4")],
            expect: Warned("charset"),
        },
        Case {
            keys: &["flavor"],
            file: Source,
            set: &[("flavor", "mariadb")],
            expect: Honoured(|l| l.source.flavor.as_deref() == Some("mariadb")),
        },
        Case {
            keys: &["source-id"],
            file: Source,
            set: &[("source-id", "s9")],
            expect: Honoured(|l| l.source.source_id == "s9"),
        },
        Case {
            keys: &["from.host"],
            file: Source,
            set: &[("from.host", "10.8.8.8")],
            expect: Honoured(|l| l.source.from.host == "10.8.8.8"),
        },
        Case {
            keys: &["from.port"],
            file: Source,
            set: &[("from.port", "3307")],
            expect: Honoured(|l| l.source.from.port == 3307),
        },
        Case {
            keys: &["from.user"],
            file: Source,
            set: &[("from.user", "repl")],
            expect: Honoured(|l| l.source.from.user == "repl"),
        },
        Case {
            keys: &["from.password"],
            file: Source,
            set: &[("from.password", ENCRYPTED)],
            expect: Honoured(|l| l.source.from.password == "123456"),
        },
        Case {
            keys: &["from.max-allowed-packet"],
            file: Source,
            set: &[("from.max-allowed-packet", "1024")],
            expect: Warned("from.max-allowed-packet"),
        },
        Case {
            keys: &["from.session"],
            file: Source,
            set: &[("from.session", "{sql_mode: ''}")],
            expect: Warned("from.session"),
        },
        Case {
            keys: &["from.security.ssl-ca"],
            file: Source,
            set: &[("from.security.ssl-ca", "/ca.pem")],
            expect: Honoured(|l| dm_syncer::remote_options(&l.source, &l.task).tls.is_some()),
        },
        Case {
            keys: &["from.security.ssl-cert"],
            file: Source,
            set: &[("from.security.ssl-cert", "/cert.pem")],
            expect: Refused("ssl-cert"),
        },
        Case {
            keys: &["from.security.ssl-key"],
            file: Source,
            set: &[("from.security.ssl-key", "/key.pem")],
            expect: Refused("ssl-key"),
        },
        Case {
            keys: &["from.security.cert-allowed-cn"],
            file: Source,
            set: &[("from.security.cert-allowed-cn", "[dm]")],
            expect: Refused("cert-allowed-cn"),
        },
        Case {
            keys: &["from.security.ssl-ca-bytes"],
            file: Source,
            set: &[("from.security.ssl-ca-bytes", "'-----BEGIN'")],
            expect: Honoured(|l| dm_syncer::remote_options(&l.source, &l.task).tls.is_some()),
        },
        Case {
            keys: &["from.security.ssl-key-bytes"],
            file: Source,
            set: &[("from.security.ssl-key-bytes", "'-----BEGIN'")],
            expect: Refused("ssl-key-bytes"),
        },
        Case {
            keys: &["from.security.ssl-cert-bytes"],
            file: Source,
            set: &[("from.security.ssl-cert-bytes", "'-----BEGIN'")],
            expect: Refused("ssl-cert-bytes"),
        },
        Case {
            keys: &["from.security.ssl-ca-base64"],
            file: Source,
            set: &[("from.security.ssl-ca-base64", "LS0t")],
            expect: Honoured(|l| dm_syncer::remote_options(&l.source, &l.task).tls.is_some()),
        },
        Case {
            keys: &["from.security.ssl-key-base64"],
            file: Source,
            set: &[("from.security.ssl-key-base64", "LS0t")],
            expect: Refused("ssl-key-base64"),
        },
        Case {
            keys: &["from.security.ssl-cert-base64"],
            file: Source,
            set: &[("from.security.ssl-cert-base64", "LS0t")],
            expect: Refused("ssl-cert-base64"),
        },
        Case {
            keys: &["purge.interval"],
            file: Source,
            set: &[("purge.interval", "600")],
            expect: Warned("purge"),
        },
        Case {
            keys: &["purge.expires"],
            file: Source,
            set: &[("purge.expires", "24")],
            expect: Warned("purge"),
        },
        Case {
            keys: &["purge.remain-space"],
            file: Source,
            set: &[("purge.remain-space", "50")],
            expect: Warned("purge"),
        },
        Case {
            keys: &["checker.check-enable"],
            file: Source,
            set: &[("checker.check-enable", "false")],
            expect: Honoured(|l| {
                l.source
                    .checker
                    .as_ref()
                    .is_some_and(|checker| checker.check_enable == Some(false))
            }),
        },
        Case {
            keys: &["checker.backoff-rollback"],
            file: Source,
            set: &[("checker.backoff-rollback", "10m")],
            expect: Honoured(|l| {
                l.source
                    .checker
                    .as_ref()
                    .is_some_and(|checker| checker.backoff_rollback.as_deref() == Some("10m"))
            }),
        },
        Case {
            keys: &["checker.backoff-max"],
            file: Source,
            set: &[("checker.backoff-max", "10m")],
            expect: Honoured(|l| {
                l.source
                    .checker
                    .as_ref()
                    .is_some_and(|checker| checker.backoff_max.as_deref() == Some("10m"))
            }),
        },
        Case {
            keys: &["checker.check-interval"],
            file: Source,
            set: &[("checker.check-interval", "10s")],
            expect: Warned("checker"),
        },
        Case {
            keys: &["checker.backoff-min"],
            file: Source,
            set: &[("checker.backoff-min", "2s")],
            expect: Warned("checker"),
        },
        Case {
            keys: &["checker.backoff-jitter"],
            file: Source,
            set: &[("checker.backoff-jitter", "false")],
            expect: Warned("checker"),
        },
        Case {
            keys: &["checker.backoff-factor"],
            file: Source,
            set: &[("checker.backoff-factor", "1.5")],
            expect: Warned("checker"),
        },
        Case {
            keys: &["server-id"],
            file: Source,
            set: &[("server-id", "4242")],
            expect: Honoured(|l| l.source.server_id == Some(4242)),
        },
        Case {
            keys: &["tracer"],
            file: Source,
            set: &[("tracer", "{enable: true, batch-size: 20}")],
            expect: Warned("tracer"),
        },
        Case {
            keys: &["case-sensitive"],
            file: Source,
            set: &[("case-sensitive", "true")],
            expect: Honoured(|l| l.settings.case_sensitive),
        },
        Case {
            keys: &["filters[]"],
            file: Source,
            set: &[(
                "filters",
                "[{schema-pattern: shop, events: [truncate table], action: Ignore}]",
            )],
            expect: Honoured(drops_truncate),
        },
    ]
}

#[test]
fn every_dm_key_is_honoured_refused_or_warned() {
    let base = load(BASE_TASK, BASE_SOURCE).unwrap_or_else(|error| panic!("base: {error}"));
    assert!(
        base.task.warnings().is_empty(),
        "{:?}",
        base.task.warnings()
    );
    assert!(
        base.source.warnings().is_empty(),
        "{:?}",
        base.source.warnings()
    );
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for case in cases() {
        let (task_text, source_text) = texts(&case);
        let label = format!("{:?} ({:?})", case.keys, case.set);
        for key in case.keys {
            let known = if case.file == Task {
                TASK_KEYS
            } else {
                SOURCE_KEYS
            };
            assert!(
                known.contains(key),
                "{label}: `{key}` is not in the key list"
            );
            covered.insert((case.file == Task, *key));
        }
        match (&case.expect, load(&task_text, &source_text)) {
            (Honoured(probe), Ok(loaded)) => {
                if probe(&base) {
                    failures.push(format!("{label}: the probe already holds without the key"));
                }
                if !probe(&loaded) {
                    failures.push(format!("{label}: accepted but has no effect"));
                }
            }
            (Refused(named), Err(error)) => {
                if !error.contains(named) {
                    failures.push(format!(
                        "{label}: refused without naming `{named}`: {error}"
                    ));
                }
            }
            (Warned(named), Ok(loaded)) => {
                let warnings: Vec<String> = loaded
                    .task
                    .warnings()
                    .into_iter()
                    .chain(loaded.source.warnings())
                    .map(|warning| warning.to_string())
                    .collect();
                if !warnings.iter().any(|warning| {
                    warning
                        .split('`')
                        .nth(1)
                        .is_some_and(|key| key.contains(named))
                }) {
                    failures.push(format!("{label}: no warning names `{named}`: {warnings:?}"));
                }
            }
            (_, Err(error)) => failures.push(format!("{label}: refused: {error}")),
            (Refused(_), Ok(_)) => failures.push(format!("{label}: accepted, should be refused")),
        }
    }
    for key in TASK_KEYS {
        if !DUMP_AND_LOAD_KEYS.contains(key) && !covered.contains(&(true, *key)) {
            failures.push(format!("task key `{key}` is not walked"));
        }
    }
    for key in SOURCE_KEYS {
        if !covered.contains(&(false, *key)) {
            failures.push(format!("source key `{key}` is not walked"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
