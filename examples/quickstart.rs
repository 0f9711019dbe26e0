//! The quickstart demo: the README's first command runs it.
//!
//! The first ten minutes of a new user's day: it starts a local upstream and downstream MariaDB
//! (or uses the servers you name), creates the sample schemas of DM's overview upstream
//! (`user.information`, `user.log`, `store.goods`, `store.orders`, `store.stock_moves`,
//! `log.messages`) with rows, writes a DM task file and source file, and runs them in mode
//! `all` through a `dm_subtask::Subtask`: a consistent dump and the parallel load (with a
//! progress bar), then the syncer from the dump's binlog location. It writes live changes
//! upstream (rows and a DDL), shows them arrive, stops the subtask, and ends with a checksum
//! comparison of every table. With `--hold` the servers keep running, and it prints their
//! addresses and the command that runs the samples of `examples/config/` against them.
//!
//! ```text
//! cargo run --example quickstart                 # local servers, stopped at the end
//! cargo run --example quickstart -- --hold       # keep them running until Ctrl-C (bash scripts/demo.sh --hold)
//! cargo run --example quickstart -- --upstream mysql://root@127.0.0.1:3306 --downstream mysql://root@127.0.0.1:4000
//! ```

#[path = "shared/bar.rs"]
mod bar;
#[path = "shared/logging.rs"]
mod logging;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dm::subtask::{Stage, Subtask, SubtaskSpec, SubtaskStatus, Unit};
use dm::task::{SourceConfig, TaskConfig};
use dm_testkit::{MariaDb, MariaDbOptions, SchemaDifference, compare_schemas, sql};
use mysql_async::{Conn, Opts};

/// The sample schemas of DM's overview, with a few rows each.
const SAMPLE_SCHEMAS: &str = "
CREATE DATABASE IF NOT EXISTS user;
CREATE DATABASE IF NOT EXISTS store;
CREATE DATABASE IF NOT EXISTS log;
CREATE TABLE IF NOT EXISTS user.information (id INT PRIMARY KEY, name VARCHAR(20));
CREATE TABLE IF NOT EXISTS user.log (id INT PRIMARY KEY, name VARCHAR(20));
CREATE TABLE IF NOT EXISTS store.goods (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2) NOT NULL);
CREATE TABLE IF NOT EXISTS store.orders (id BIGINT UNSIGNED PRIMARY KEY, goods_id INT NOT NULL, quantity INT NOT NULL, ordered_at DATETIME(3) NOT NULL);
CREATE TABLE IF NOT EXISTS store.stock_moves (id BIGINT AUTO_INCREMENT PRIMARY KEY, goods_id INT NOT NULL, delta INT NOT NULL, note VARCHAR(60));
CREATE TABLE IF NOT EXISTS log.messages (id INT PRIMARY KEY, name VARCHAR(20));
INSERT IGNORE INTO user.information VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');
INSERT IGNORE INTO user.log VALUES (1, 'alice signed in'), (2, 'bob signed in');
INSERT IGNORE INTO store.goods VALUES (1, 'tea', 3.50), (2, 'coffee', 4.20), (3, 'cake', 2.95);
INSERT IGNORE INTO store.orders VALUES (18446744073709551615, 1, 2, '2026-11-23 09:15:00.125'), (1, 3, 1, '2026-11-23 09:16:30.000');
INSERT IGNORE INTO log.messages VALUES (1, 'hello'), (2, 'world');
";

/// The tables the demo creates, for the report.
const SAMPLE_TABLES: [(&str, &str); 6] = [
    ("user", "information"),
    ("user", "log"),
    ("store", "goods"),
    ("store", "orders"),
    ("store", "stock_moves"),
    ("log", "messages"),
];

/// Rows the demo adds to `store.stock_moves`, so that the dump has something to chew on.
const STOCK_MOVES: u64 = 60_000;

/// The task file a user would write (DM's format), with the servers filled in.
fn task_file(downstream: &Opts, dump_directory: &str) -> String {
    format!(
        "name: quickstart
task-mode: all
meta-schema: dm_meta
target-database:
  host: {host}
  port: {port}
  user: {user}
  password: \"{password}\"
block-allow-list:
  sample:
    do-dbs: [user, store, log]
mydumpers:
  global:
    threads: 2
    chunk-filesize: 1
loaders:
  global:
    pool-size: 4
    dir: {dump_directory}
mysql-instances:
  - source-id: mysql-replica-01
    block-allow-list: sample
    mydumper-config-name: global
    loader-config-name: global
",
        host = downstream.ip_or_hostname(),
        port = downstream.tcp_port(),
        user = downstream.user().unwrap_or("root"),
        password = downstream.pass().unwrap_or(""),
    )
}

struct Arguments {
    upstream: Option<String>,
    downstream: Option<String>,
    hold: bool,
}

fn parse_arguments() -> Result<Arguments> {
    let mut arguments = Arguments {
        upstream: None,
        downstream: None,
        hold: false,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--upstream" => {
                arguments.upstream = Some(words.next().context("--upstream needs a URL")?)
            }
            "--downstream" => {
                arguments.downstream = Some(words.next().context("--downstream needs a URL")?)
            }
            "--hold" => arguments.hold = true,
            "--help" | "-h" => {
                println!(
                    "usage: quickstart [--upstream mysql://USER[:PASSWORD]@HOST:PORT] [--downstream URL] [--hold]\n\
                     Without URLs, starts a local upstream and downstream MariaDB in temp directories."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`; run with --help"),
        }
    }
    if arguments.upstream.is_some() != arguments.downstream.is_some() {
        bail!("give both --upstream and --downstream, or neither to start local servers");
    }
    Ok(arguments)
}

async fn connect(url: &str, role: &str) -> Result<Conn> {
    let opts =
        Opts::from_url(url).with_context(|| format!("the {role} URL `{url}` is not valid"))?;
    Conn::new(opts)
        .await
        .with_context(|| format!("cannot connect to the {role} at {url}"))
}

fn first_value(rows: &[Vec<Option<String>>]) -> String {
    rows.first()
        .and_then(|row| row.first().cloned().flatten())
        .unwrap_or_default()
}

/// The subtask's stage, unit and error, for a message.
fn describe(status: &SubtaskStatus) -> String {
    let unit = status.unit.map_or("none", Unit::name);
    match status.error() {
        Some(error) => format!(
            "stage {}, unit {unit}: {} ({}; {})",
            status.stage.name(),
            error.message,
            error.code,
            error.workaround
        ),
        None => format!("stage {}, unit {unit}", status.stage.name()),
    }
}

/// The source file a user would write (DM's format) for the upstream at `upstream`.
fn source_file(upstream: &Opts) -> String {
    format!(
        "source-id: mysql-replica-01
from:
  host: {host}
  port: {port}
  user: {user}
  password: \"{password}\"
",
        host = upstream.ip_or_hostname(),
        port = upstream.tcp_port(),
        user = upstream.user().unwrap_or("root"),
        password = upstream.pass().unwrap_or(""),
    )
}

/// The samples in `examples/config/` with the ports of the running servers, written into
/// `directory`; returns the paths of the task and source files.
fn point_samples_at(
    directory: &std::path::Path,
    upstream_port: u16,
    downstream_port: u16,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config");
    let mut written = Vec::new();
    for (name, from, to) in [
        ("task.yaml", "port: 4000", downstream_port),
        ("source.yaml", "port: 3306", upstream_port),
    ] {
        let text = std::fs::read_to_string(samples.join(name))
            .with_context(|| format!("reading the sample {name}"))?;
        let path = directory.join(name);
        std::fs::write(&path, text.replacen(from, &format!("port: {to}"), 1))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok((written[0].clone(), written[1].clone()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let arguments = parse_arguments()?;
    logging::init();
    // Local servers live as long as these handles; dropping them stops the servers.
    let mut local_servers = Vec::new();
    let (upstream_url, downstream_url) = match (&arguments.upstream, &arguments.downstream) {
        (Some(upstream), Some(downstream)) => (upstream.clone(), downstream.clone()),
        _ => {
            println!("starting a local upstream and downstream MariaDB on 127.0.0.1 ...");
            let (upstream, downstream) = tokio::join!(
                MariaDb::start_with(MariaDbOptions::named("upstream")),
                MariaDb::start_with(MariaDbOptions::named("downstream")),
            );
            let upstream = upstream.context("starting the upstream MariaDB")?;
            let downstream = downstream.context("starting the downstream MariaDB")?;
            for (role, server) in [("upstream", &upstream), ("downstream", &downstream)] {
                println!(
                    "  {role:<10} {}  server-id {}  data in {}",
                    server.url(),
                    server.server_id(),
                    server.directory().display()
                );
            }
            let urls = (upstream.url(), downstream.url());
            local_servers.push(upstream);
            local_servers.push(downstream);
            urls
        }
    };

    let mut upstream = connect(&upstream_url, "upstream").await?;
    let mut downstream = connect(&downstream_url, "downstream").await?;

    println!("\ncreating the sample schemas upstream ...");
    sql::execute(&mut upstream, "upstream", SAMPLE_SCHEMAS).await?;
    let mut batch = Vec::new();
    for index in 0..STOCK_MOVES {
        batch.push(format!(
            "({}, {}, 'move {index}')",
            index % 3 + 1,
            (index % 7) as i64 - 3
        ));
        if batch.len() == 2000 {
            let insert = format!(
                "INSERT INTO store.stock_moves (goods_id, delta, note) VALUES {}",
                batch.join(",")
            );
            sql::execute(&mut upstream, "upstream", &insert).await?;
            batch.clear();
        }
    }
    sql::execute(&mut upstream, "upstream", "ANALYZE TABLE store.stock_moves").await?;
    for (schema, table) in SAMPLE_TABLES {
        let count = sql::query_text(
            &mut upstream,
            "upstream",
            &format!("SELECT COUNT(*) FROM `{schema}`.`{table}`"),
        )
        .await?;
        println!(
            "  {:<18} {} rows",
            format!("{schema}.{table}"),
            first_value(&count)
        );
    }

    // The task and source files, as a user writes them.
    let work = tempfile::tempdir().context("creating a temp directory for the dump")?;
    let upstream_opts = Opts::from_url(&upstream_url)?;
    let downstream_opts = Opts::from_url(&downstream_url)?;
    let dump_directory = work.path().join("dumped_data");
    let task_text = task_file(&downstream_opts, &dump_directory.display().to_string());
    let source_text = source_file(&upstream_opts);
    println!("\nthe task file (DM's format):\n");
    for line in task_text.lines() {
        println!("    {line}");
    }
    println!("\nthe source file (DM's format):\n");
    for line in source_text.lines() {
        println!("    {line}");
    }
    let task = TaskConfig::from_yaml(&task_text, "task.yaml")?;
    let source = SourceConfig::from_yaml(&source_text, "source.yaml")?;
    let mut spec = SubtaskSpec::new(task, source, "task.yaml", "source.yaml")?;
    for warning in &spec.warnings {
        println!("  warning: {warning}");
    }
    spec.syncer.checkpoint_interval = Duration::from_secs(1);
    spec.remote.heartbeat_period = Duration::from_secs(1);

    // Mode all: the subtask dumps and loads (a progress bar), then syncs from the hand-off.
    println!("\nrunning the task in mode `all`: dump -> load -> sync");
    let subtask = Subtask::new(spec).spawn();
    let bar = bar::FullProgressBar::new();
    let reached = bar.follow(&subtask).await;
    if reached.unit != Some(Unit::Sync) {
        bar.abandon();
        bail!(
            "the task did not reach the sync unit: {}",
            describe(&reached)
        );
    }
    bar.finish(&reached);
    if let Some(location) = reached.load.as_ref().and_then(|load| load.handoff.as_ref()) {
        println!("  replication continues from {location}");
    }
    for warning in reached.load.iter().flat_map(|load| &load.warnings) {
        println!("  warning: {warning}");
    }

    println!("\nwriting live changes upstream ...");
    let changes = [
        "INSERT INTO store.orders VALUES (2, 2, 5, '2026-11-24 10:00:00.000')",
        "UPDATE store.goods SET price = 4.50 WHERE name = 'coffee'",
        "INSERT INTO user.information VALUES (4, 'dave')",
        "DELETE FROM user.log WHERE id = 1",
        "ALTER TABLE log.messages ADD COLUMN sent_at DATETIME NULL",
        "INSERT INTO log.messages VALUES (3, 'migrated', '2026-11-24 10:00:01')",
    ];
    let written = Instant::now();
    for change in changes {
        sql::execute(&mut upstream, "upstream", change).await?;
        println!("  {change}");
    }
    let last = "SELECT COUNT(*) FROM log.messages WHERE id = 3";
    loop {
        let arrived = sql::query_text(&mut downstream, "downstream", last).await;
        if arrived.ok().is_some_and(|rows| first_value(&rows) == "1") {
            break;
        }
        let status = subtask.status();
        let needs_the_user = status
            .error()
            .is_some_and(|error| error.class != dm::core::ErrorClass::Transient);
        if matches!(status.stage, Stage::Stopped | Stage::Finished) || needs_the_user {
            bail!("the subtask is not running: {}", describe(&status));
        }
        if written.elapsed() > Duration::from_secs(30) {
            bail!(
                "the changes did not arrive within 30 s: {}",
                describe(&status)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "  all arrived downstream {} ms after the first write",
        written.elapsed().as_millis()
    );
    subtask.stop().await?;
    let final_status = subtask.wait().await?;
    let sync = final_status.sync.unwrap_or_default();
    println!(
        "  syncer stopped: {} rows and {} DDL applied, checkpoint {}",
        sync.rows_dispatched,
        sync.ddls_executed,
        sync.checkpoint
            .as_ref()
            .map_or_else(|| "-".to_owned(), |location| location.position.to_string())
    );

    println!("\ncomparing upstream and downstream by checksum, table by table:");
    let mut all_equal = true;
    for schema in ["user", "store", "log"] {
        match compare_schemas(&mut upstream, &mut downstream, schema).await? {
            None => println!("  {schema:<6} equal"),
            Some(SchemaDifference::MissingTable { table, .. }) => {
                all_equal = false;
                println!("  {schema:<6} {table} is missing on one side")
            }
            Some(difference) => {
                all_equal = false;
                println!("  {schema:<6} {difference}")
            }
        }
    }
    if !all_equal {
        bail!("the downstream differs from the upstream (see above)");
    }
    println!("\nevery table is equal: the migration is done and replication keeps it so.");

    if arguments.hold && !local_servers.is_empty() {
        println!("\nservers keep running until Ctrl-C:");
        println!(
            "  upstream   127.0.0.1:{}  (user root, no password)",
            upstream_opts.tcp_port()
        );
        println!(
            "  downstream 127.0.0.1:{}  (user root, no password)",
            downstream_opts.tcp_port()
        );
        let (task, source) = point_samples_at(
            work.path(),
            upstream_opts.tcp_port(),
            downstream_opts.tcp_port(),
        )?;
        println!(
            "\nthe sample task and source files (examples/config/) with these ports set, for the\n\
             standalone runner (it copies `store` into `store_copy`, then replicates):\n\
             \n  cargo run --example dm-syncer -- --task {} --source {}\n\
             \n(or set `port:` in examples/config/source.yaml to {} and in task.yaml to {})",
            task.display(),
            source.display(),
            upstream_opts.tcp_port(),
            downstream_opts.tcp_port()
        );
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    drop(local_servers);
    println!("\ndone; local servers stopped and their files removed.");
    Ok(())
}
