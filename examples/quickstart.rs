//! The quickstart demo: the README's first command runs it.
//!
//! Today it shows what exists: it starts a local upstream and downstream MariaDB (or uses the
//! servers you name), creates the sample schemas of DM's overview upstream (`user.information`,
//! `user.log`, `store.goods`, `store.orders`, `log.messages`) with rows, reads the upstream's
//! binlog location into the `dm-core` vocabulary, and compares both servers table by table. The
//! migration itself (dump, load, sync) grows into this demo as its crates are built.
//!
//! ```text
//! cargo run --example quickstart                 # local servers, stopped at the end
//! cargo run --example quickstart -- --hold       # keep them running until Ctrl-C
//! cargo run --example quickstart -- --upstream mysql://root@127.0.0.1:3306 --downstream mysql://root@127.0.0.1:4000
//! ```

use anyhow::{Context, Result, bail};
use dm::core::{BinlogFileName, BinlogPosition, Flavor, GtidSet, Location};
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
CREATE TABLE IF NOT EXISTS log.messages (id INT PRIMARY KEY, name VARCHAR(20));
INSERT IGNORE INTO user.information VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');
INSERT IGNORE INTO user.log VALUES (1, 'alice signed in'), (2, 'bob signed in');
INSERT IGNORE INTO store.goods VALUES (1, 'tea', 3.50), (2, 'coffee', 4.20), (3, 'cake', 2.95);
INSERT IGNORE INTO store.orders VALUES (18446744073709551615, 1, 2, '2026-11-23 09:15:00.125'), (1, 3, 1, '2026-11-23 09:16:30.000');
INSERT IGNORE INTO log.messages VALUES (1, 'hello'), (2, 'world');
";

/// The tables the demo creates, for the report.
const SAMPLE_TABLES: [(&str, &str); 5] = [
    ("user", "information"),
    ("user", "log"),
    ("store", "goods"),
    ("store", "orders"),
    ("log", "messages"),
];

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
    for (schema, table) in SAMPLE_TABLES {
        let count = sql::query_text(
            &mut upstream,
            "upstream",
            &format!("SELECT COUNT(*) FROM `{schema}`.`{table}`"),
        )
        .await?;
        let rows = count
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .unwrap_or_default();
        println!("  {:<18} {rows} rows", format!("{schema}.{table}"));
    }

    println!("\nthe upstream's binlog location, in dm-core's vocabulary:");
    let status = sql::query_text(&mut upstream, "upstream", "SHOW MASTER STATUS").await?;
    let Some(row) = status.first() else {
        bail!("SHOW MASTER STATUS returned nothing: the upstream needs log-bin enabled");
    };
    let file = row.first().cloned().flatten().unwrap_or_default();
    let offset: u64 = row
        .get(1)
        .cloned()
        .flatten()
        .unwrap_or_default()
        .parse()
        .context("SHOW MASTER STATUS returned a non-numeric position")?;
    let first_value = |rows: Vec<Vec<Option<String>>>| {
        rows.first()
            .and_then(|row| row.first().cloned().flatten())
            .unwrap_or_default()
    };
    let version =
        first_value(sql::query_text(&mut upstream, "upstream", "SELECT VERSION()").await?);
    let (flavor, gtid_variable) = if version.contains("MariaDB") {
        (Flavor::MariaDb, "@@gtid_binlog_pos")
    } else {
        (Flavor::MySql, "@@gtid_executed")
    };
    let gtid_text = first_value(
        sql::query_text(
            &mut upstream,
            "upstream",
            &format!("SELECT {gtid_variable}"),
        )
        .await?,
    );
    let location = Location {
        position: BinlogPosition::new(BinlogFileName::parse(&file)?, offset),
        gtid_set: Some(std::sync::Arc::new(GtidSet::parse(flavor, &gtid_text)?)),
        suffix: 0,
    };
    println!("  {location}");
    println!(
        "  (server {version}: file base `{}`, sequence {}, {flavor} GTID set from {gtid_variable})",
        location.position.file.base(),
        location.position.file.sequence(),
    );

    println!("\ncomparing upstream and downstream, schema by schema:");
    for schema in ["user", "store", "log"] {
        match compare_schemas(&mut upstream, &mut downstream, schema).await? {
            None => println!("  {schema:<6} equal"),
            Some(SchemaDifference::MissingTable { table, .. }) => {
                println!("  {schema:<6} not migrated yet: {table} is not downstream")
            }
            Some(difference) => println!("  {schema:<6} {difference}"),
        }
    }
    println!(
        "\nthe downstream is still empty: the migration (dump -> load -> sync) is not built yet;\n\
         this demo grows into it as dm-dumpload and dm-syncer land (see ARCHITECTURE.md)."
    );

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
