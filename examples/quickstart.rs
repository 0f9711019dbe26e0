//! The quickstart demo: the README's first command runs it.
//!
//! The first ten minutes of a new user's day: it starts a local upstream and downstream MariaDB
//! (or uses the servers you name), creates the sample schemas of DM's overview upstream
//! (`user.information`, `user.log`, `store.goods`, `store.orders`, `store.stock_moves`,
//! `log.messages`) with rows, writes a DM task file, and runs it in mode `all`: a consistent
//! dump and the parallel load (with a progress bar), then the syncer from the dump's binlog
//! location. It writes live changes upstream (rows and a DDL) and shows them arrive, and ends
//! with a checksum comparison of every table.
//!
//! ```text
//! cargo run --example quickstart                 # local servers, stopped at the end
//! cargo run --example quickstart -- --hold       # keep them running until Ctrl-C
//! cargo run --example quickstart -- --upstream mysql://root@127.0.0.1:3306 --downstream mysql://root@127.0.0.1:4000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dm::binlog::RemoteOptions;
use dm::core::Flavor;
use dm::dumpload::{DumpLoadConfig, FullStages, Loader, Progress};
use dm::syncer::{SyncerSettings, SyncerStatus, run};
use dm::task::TaskConfig;
use dm_testkit::{MariaDb, MariaDbOptions, SchemaDifference, compare_schemas, sql};
use indicatif::{ProgressBar, ProgressStyle};
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

/// Shows dump, then load progress until aborted.
fn progress_bar(
    dump: Arc<Progress>,
    load: Arc<Progress>,
) -> Result<(ProgressBar, tokio::task::JoinHandle<()>)> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("  {prefix:<5} [{bar:40}] {msg}")?.progress_chars("=> "),
    );
    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        loop {
            let (dumped, loaded) = (dump.status(), load.status());
            let (prefix, status) = if loaded.chunks_done > 0 || dumped.percent >= 100.0 {
                ("load", loaded)
            } else {
                ("dump", dumped)
            };
            shown.set_prefix(prefix);
            shown.set_position((status.percent * 10.0) as u64);
            shown.set_message(format!(
                "{:>5.1}%  {} rows, {:.1} MiB at {:.1} MiB/s, chunks {}/{}, ETA {}",
                status.percent,
                status.rows,
                status.bytes as f64 / 1048576.0,
                status.bytes_per_second as f64 / 1048576.0,
                status.chunks_done,
                status.chunks_total,
                status
                    .eta_seconds
                    .map_or("-".into(), |seconds| format!("{seconds} s"))
            ));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Ok((bar, ticker))
}

#[tokio::main]
async fn main() -> Result<()> {
    let arguments = parse_arguments()?;
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

    // The task file, as a user writes it.
    let work = tempfile::tempdir().context("creating a temp directory for the dump")?;
    let upstream_opts = Opts::from_url(&upstream_url)?;
    let downstream_opts = Opts::from_url(&downstream_url)?;
    let dump_directory = work.path().join("dumped_data");
    let task_text = task_file(&downstream_opts, &dump_directory.display().to_string());
    println!("\nthe task file (DM's format):\n");
    for line in task_text.lines() {
        println!("    {line}");
    }
    let task = TaskConfig::from_yaml(&task_text, "task.yaml")?;
    for warning in task.warnings() {
        println!("  task.yaml: warning: {warning}");
    }
    let instance = &task.mysql_instances[0];
    let rules = task.rules_for(instance)?;
    let config = DumpLoadConfig::from_task(&task, instance)?;
    let version = sql::query_text(&mut upstream, "upstream", "SELECT VERSION()").await?;
    let flavor = if first_value(&version).contains("MariaDB") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };

    // Mode all: dump and load with a progress bar, then the syncer from the hand-off.
    println!("\nrunning the task in mode `all`: dump -> load -> sync");
    let from = dm::task::config::DatabaseConfig {
        host: upstream_opts.ip_or_hostname().to_owned(),
        port: upstream_opts.tcp_port(),
        user: upstream_opts.user().unwrap_or("root").to_owned(),
        password: upstream_opts.pass().unwrap_or("").to_owned(),
        ..Default::default()
    };
    let dump = config.dump_options(&from, flavor);
    let sink = dm::syncer::sink_options(&task.target_database);
    let loader = Loader::new(config.load_options(&task, instance), rules.router.clone())?;
    let (dump_progress, load_progress) = (Arc::new(Progress::new()), Arc::new(Progress::new()));
    let (bar, ticker) = progress_bar(dump_progress.clone(), load_progress.clone())?;
    let started = Instant::now();
    let stages = FullStages {
        config: &config,
        dump,
        filter: &rules.block_allow_list,
        loader: &loader,
        dump_progress,
        load_progress: load_progress.clone(),
        clean_dump_file: task.clean_dump_file,
    };
    let handoff = stages
        .run(task.task_mode)
        .await?
        .context("mode all hands off to the syncer")?;
    ticker.abort();
    let loaded = load_progress.status();
    bar.set_prefix("done");
    bar.set_position(1000);
    let summary = format!(
        "{} rows in {} chunks, dumped and loaded in {:.1} s",
        loaded.rows,
        loaded.chunks_total,
        started.elapsed().as_secs_f64()
    );
    if bar.is_hidden() {
        // Not a terminal: no bar, the summary still.
        println!("  {summary}");
    }
    bar.finish_with_message(summary);
    println!("  replication continues from {}", handoff.location);
    for warning in &handoff.warnings {
        println!("  warning: {warning}");
    }

    let mut remote = RemoteOptions::new(
        upstream_opts.ip_or_hostname(),
        upstream_opts.tcp_port(),
        upstream_opts.user().unwrap_or("root"),
        upstream_opts.pass().unwrap_or(""),
        0,
    );
    // No server id given: one that no replica of the upstream uses, chosen at connect.
    remote.server_id = dm::binlog::ServerIdChoice::Automatic(0);
    remote.heartbeat_period = Duration::from_secs(1);
    let settings = SyncerSettings {
        checkpoint_interval: Duration::from_secs(1),
        safe_mode_until: handoff.safe_mode_until.clone(),
        ..SyncerSettings::from_task(&task, instance, flavor)
    };
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let (status_sender, status) = tokio::sync::watch::channel(SyncerStatus::default());
    let syncer = tokio::spawn(run(
        settings,
        remote,
        handoff.location.clone(),
        sink,
        rules,
        stop,
        status_sender,
    ));

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
        if syncer.is_finished() {
            bail!("the syncer stopped: {:?}", syncer.await);
        }
        if written.elapsed() > Duration::from_secs(30) {
            bail!(
                "the changes did not arrive within 30 s: {:?}",
                *status.borrow()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "  all arrived downstream {} ms after the first write",
        written.elapsed().as_millis()
    );
    let _ = stop_sender.send(true);
    let final_status = syncer.await.context("the syncer task")??;
    println!(
        "  syncer stopped: {} rows and {} DDL applied, checkpoint {}",
        final_status.rows_dispatched,
        final_status.ddls_executed,
        final_status
            .checkpoint
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
        println!("\nservers keep running; connect with the URLs above. Ctrl-C stops them.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    drop(local_servers);
    println!("\ndone; local servers stopped and their files removed.");
    Ok(())
}
