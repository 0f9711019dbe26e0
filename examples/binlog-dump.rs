//! `binlog-dump`: print a MySQL or MariaDB binlog as readable text or JSON lines, like
//! `mysqlbinlog`, from a live server (as a replica) or from a binlog / relay log file.
//!
//! ```text
//! cargo run --example binlog-dump -- --host 127.0.0.1 --port 3306 --user repl --password secret \
//!     --server-id 9001 --start mysql-bin.000001:4 [--follow] [--format json]
//! cargo run --example binlog-dump -- --host ... --start-gtid '0-1-100'
//! cargo run --example binlog-dump -- --file /var/lib/mysql/mysql-bin.000001 [--follow]
//! ```
//!
//! Without `--follow` it stops at the end of the binlog; with it, it waits for new events
//! (heartbeats are not printed). Errors say what to fix (a purged start, a server-id in use,
//! a missing privilege).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use dm::binlog::{
    BinlogFileReader, EventData, Read, RemoteOptions, RemoteSource, StartPoint, StreamEvent,
    event_type_name,
};
use dm::core::{BinlogPosition, Flavor, GtidSet};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Print a binlog from a server or a file.
#[derive(Debug, Parser)]
#[command(name = "binlog-dump")]
struct Arguments {
    /// Read this binlog or relay log file instead of a server.
    #[arg(long, conflicts_with_all = ["start", "start_gtid"])]
    file: Option<PathBuf>,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 3306)]
    port: u16,
    /// Replication user (REPLICATION SLAVE, REPLICATION CLIENT).
    #[arg(long, default_value = "root")]
    user: String,
    /// Its password.
    #[arg(long, default_value = "", env = "DM_BINLOG_PASSWORD")]
    password: String,
    /// This replica's server id: not used by any other replica of the server.
    #[arg(long, default_value_t = 9001)]
    server_id: u32,
    /// Start at `file:position` (e.g. `mysql-bin.000001:4`).
    #[arg(long)]
    start: Option<String>,
    /// Start after this GTID set (MariaDB `0-1-100`, MySQL `uuid:1-100`).
    #[arg(long, conflicts_with = "start")]
    start_gtid: Option<String>,
    /// Keep waiting for new events at the end.
    #[arg(long)]
    follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    if let Some(path) = &arguments.file {
        return dump_file(path, arguments.follow, arguments.format).await;
    }
    let mut options = RemoteOptions::new(
        &arguments.host,
        arguments.port,
        &arguments.user,
        &arguments.password,
        arguments.server_id,
    );
    options.stop_at_end = !arguments.follow;
    options.annotate_rows = true;
    let start = match (&arguments.start, &arguments.start_gtid) {
        (Some(position), _) => StartPoint::Position(
            BinlogPosition::parse(position).context("--start must be file:position")?,
        ),
        (None, Some(set)) => {
            let flavor = if set.contains(':') {
                Flavor::MySql
            } else {
                Flavor::MariaDb
            };
            StartPoint::Gtid(GtidSet::parse(flavor, set).context("--start-gtid")?)
        }
        (None, None) => bail!("give --start file:position, --start-gtid SET or --file PATH"),
    };
    let mut source = RemoteSource::connect(&options, &start)
        .await
        .with_context(|| format!("replicating from {}", options.address()))?;
    let upstream = source.upstream().clone();
    eprintln!(
        "# {} {} server_id {} ({}), checksum {}",
        upstream.flavor.name(),
        upstream.server_version,
        upstream.server_id,
        upstream.server_uuid,
        if upstream.checksum { "CRC32" } else { "none" }
    );
    while let Some(event) = source.next_event().await? {
        if matches!(event.event.data, EventData::Heartbeat { .. }) {
            continue;
        }
        print_event(&event, arguments.format);
    }
    source.close().await;
    Ok(())
}

async fn dump_file(path: &PathBuf, follow: bool, format: Format) -> anyhow::Result<()> {
    let mut reader = BinlogFileReader::open(path)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = dm::core::BinlogFileName::parse(&name).ok();
    loop {
        match reader.read_next()? {
            Read::Event { offset, event } => {
                let size = u64::from(event.header.event_size);
                let at = |offset| match &file {
                    Some(file) => BinlogPosition::new(file.clone(), offset),
                    None => BinlogPosition::new(
                        dm::core::BinlogFileName::new("file", 0, 6).expect("valid name"),
                        offset,
                    ),
                };
                let stream_event = StreamEvent {
                    position: at(offset),
                    next_position: at(offset + size),
                    raw: Vec::new(),
                    artificial: false,
                    event,
                };
                print_event(&stream_event, format);
            }
            Read::Partial { .. } | Read::End if follow => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Read::Partial { offset, available } => {
                eprintln!("# the file ends inside an event at {offset} ({available} bytes so far)");
                return Ok(());
            }
            Read::End => return Ok(()),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A one-line description and the JSON fields of an event's body.
fn describe(data: &EventData) -> (String, serde_json::Value) {
    use serde_json::json;
    match data {
        EventData::FormatDescription(format) => (
            format!(
                "server {} checksum {}",
                format.server_version, format.checksum
            ),
            json!({"server_version": format.server_version, "checksum": format.checksum}),
        ),
        EventData::Rotate {
            position,
            next_file,
        } => (
            format!("next {next_file}:{position}"),
            json!({"next_file": next_file, "next_position": position}),
        ),
        EventData::Query { schema, sql, .. } => (
            format!("`{schema}`: {}", text(sql)),
            json!({"schema": schema, "sql": text(sql)}),
        ),
        EventData::Xid { xid } => (format!("COMMIT xid={xid}"), json!({"xid": xid})),
        EventData::MySqlGtid { gtid, .. } => (gtid.to_string(), json!({"gtid": gtid.to_string()})),
        EventData::MariaDbGtid { gtid, flags, .. } => (
            format!(
                "{gtid}{}",
                if flags & 1 != 0 { " (standalone)" } else { "" }
            ),
            json!({"gtid": gtid.to_string(), "flags": flags}),
        ),
        EventData::PreviousGtids(set) => (set.to_string(), json!({"gtid_set": set.to_string()})),
        EventData::MariaDbGtidList(list) => {
            let list: Vec<String> = list.iter().map(ToString::to_string).collect();
            (format!("[{}]", list.join(",")), json!({"gtids": list}))
        }
        EventData::BinlogCheckpoint { file } => (file.clone(), json!({"file": file})),
        EventData::AnnotateRows { sql } => (text(sql), json!({"sql": text(sql)})),
        EventData::TableMap(map) => (
            format!(
                "table {} = `{}`.`{}` ({} columns)",
                map.table_id,
                map.schema,
                map.table,
                map.column_types.len()
            ),
            json!({"table_id": map.table_id, "schema": map.schema, "table": map.table,
                   "column_types": map.column_types}),
        ),
        EventData::Rows(rows) => (
            format!(
                "{:?} table {} ({} bytes of row images)",
                rows.kind,
                rows.table_id,
                rows.rows.len()
            ),
            json!({"kind": format!("{:?}", rows.kind), "table_id": rows.table_id,
                   "row_bytes": rows.rows.len()}),
        ),
        EventData::TransactionPayload { events, .. } => (
            format!("{} events", events.len()),
            json!({"events": events.iter().map(|event| describe(&event.data).1).collect::<Vec<_>>()}),
        ),
        EventData::Heartbeat { file } => (file.clone(), json!({"file": file})),
        EventData::Stop => ("server stopped".into(), json!({})),
        EventData::AnonymousGtid | EventData::Undecoded => (String::new(), json!({})),
    }
}

fn print_event(event: &StreamEvent, format: Format) {
    let header = &event.event.header;
    let name = event_type_name(header.event_type);
    let (summary, fields) = describe(&event.event.data);
    match format {
        Format::Text => println!(
            "{}{} end {} {} server {} {}",
            if event.artificial { "# " } else { "" },
            event.position,
            event.next_position.offset,
            name,
            header.server_id,
            summary
        ),
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "position": event.position.to_string(),
                "next_position": event.next_position.to_string(),
                "type": name,
                "server_id": header.server_id,
                "timestamp": header.timestamp,
                "artificial": event.artificial,
                "event": fields,
            })
        ),
    }
}
