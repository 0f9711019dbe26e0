//! `binlog-dump`: print a MySQL or MariaDB binlog as readable text or JSON lines, like
//! `mysqlbinlog`, from a live server (as a replica) or from a binlog / relay log file.
//!
//! ```text
//! cargo run --example binlog-dump -- --host 127.0.0.1 --port 3306 --user repl --password secret \
//!     --server-id 9001 --start mysql-bin.000001:4 [--follow] [--format json]
//! cargo run --example binlog-dump -- --host ... --start-gtid '0-1-100'
//! cargo run --example binlog-dump -- --host ... --start-time '2026-11-24 08:00:00'
//! cargo run --example binlog-dump -- --file /var/lib/mysql/mysql-bin.000001 [--follow]
//! cargo run --example binlog-dump -- --relay-dir ./relay --start mysql-bin.000001:4 [--follow]
//! ```
//!
//! Without `--follow` it stops at the end of the binlog; with it, it waits for new events
//! (heartbeats are not printed). Errors say what to fix (a purged start, a server-id in use,
//! a missing privilege).

#[path = "shared/logging.rs"]
mod logging;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use std::collections::HashMap;

use dm::binlog::{
    BinlogFileReader, EventData, EventStream, Read, RelaySource, RemoteOptions, RemoteSource,
    StartPoint, StreamEvent, TableMap, decode_rows, event_type_name, find_start_by_time,
    schema_from_table_map,
};
use dm::core::{BinlogPosition, Flavor, GtidSet, Value};

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
    #[arg(long, conflicts_with_all = ["start", "start_gtid", "relay_dir"])]
    file: Option<PathBuf>,
    /// Read this relay directory (DM layout) from `--start` instead of a server.
    #[arg(long, requires = "start")]
    relay_dir: Option<PathBuf>,
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
    /// Start at the first transaction at or after this time: unix seconds or
    /// `YYYY-MM-DD HH:MM:SS` (UTC), found by a binary search over the server's binlog files.
    #[arg(long, conflicts_with_all = ["start", "start_gtid"])]
    start_time: Option<String>,
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
    logging::init();
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
    options.require_row_format = false;
    options.require_full_row_image = false;
    let mut arguments_start: Option<String> = None;
    if let Some(root) = &arguments.relay_dir {
        let start = BinlogPosition::parse(arguments.start.as_deref().unwrap_or_default())
            .context("--start must be file:position")?;
        let mut source = RelaySource::open(root, &start, arguments.follow)?;
        let mut printer = Printer::new(arguments.format);
        while let Some(event) = source.next_event().await? {
            printer.print(&event);
        }
        return Ok(());
    }
    if let Some(time) = &arguments.start_time {
        let seconds = dm::binlog::parse_start_time(time).with_context(|| {
            format!("--start-time `{time}` is not unix seconds nor YYYY-MM-DD HH:MM:SS")
        })?;
        match find_start_by_time(&options, seconds).await? {
            Some(position) => {
                eprintln!("# the first transaction at or after {time} is at {position}");
                arguments_start = Some(position.to_string());
            }
            None => bail!("no transaction in the server's binlog is at or after {time}"),
        }
    }
    let start = match (
        arguments_start.as_ref().or(arguments.start.as_ref()),
        &arguments.start_gtid,
    ) {
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
        (None, None) => bail!(
            "give --start file:position, --start-gtid SET, --start-time TIME, --file PATH or --relay-dir DIR"
        ),
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
    let mut printer = Printer::new(arguments.format);
    while let Some(event) = source.next_event().await? {
        if matches!(event.event.data, EventData::Heartbeat { .. }) {
            continue;
        }
        printer.print(&event);
    }
    source.close().await;
    Ok(())
}

async fn dump_file(path: &PathBuf, follow: bool, format: Format) -> anyhow::Result<()> {
    let mut reader = BinlogFileReader::open(path)?;
    let mut printer = Printer::new(format);
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
                printer.print(&stream_event);
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

/// Prints events, decoding row values with the schema each table map describes (column names,
/// signedness and charsets when the server writes `binlog_row_metadata=FULL`; otherwise
/// `@1`, `@2`, ..., signed integers and text as bytes).
struct Printer {
    format: Format,
    table_maps: HashMap<u64, TableMap>,
}

impl Printer {
    fn new(format: Format) -> Self {
        Printer {
            format,
            table_maps: HashMap::new(),
        }
    }

    fn print(&mut self, event: &StreamEvent) {
        let header = &event.event.header;
        let name = event_type_name(header.event_type);
        let (summary, mut fields) = describe(&event.event.data);
        let rows = self.rows(&event.event.data);
        match self.format {
            Format::Text => {
                println!(
                    "{}{} end {} {} server {} {}",
                    if event.artificial { "# " } else { "" },
                    event.position,
                    event.next_position.offset,
                    name,
                    header.server_id,
                    summary
                );
                for (before, after) in &rows {
                    if let Some(before) = before {
                        println!("    before: {}", row_text(before));
                    }
                    if let Some(after) = after {
                        println!("    after:  {}", row_text(after));
                    }
                }
            }
            Format::Json => {
                if !rows.is_empty() {
                    fields["rows"] = serde_json::json!(
                        rows.iter()
                            .map(|(before, after)| serde_json::json!({
                                "before": before.as_ref().map(row_json),
                                "after": after.as_ref().map(row_json),
                            }))
                            .collect::<Vec<_>>()
                    );
                }
                println!(
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
                );
            }
        }
    }

    /// Row images as (column name, value) pairs; a row that cannot be decoded is reported.
    fn rows(&mut self, data: &EventData) -> Vec<(Option<NamedRow>, Option<NamedRow>)> {
        match data {
            EventData::TableMap(map) => {
                self.table_maps.insert(map.table_id, map.clone());
                Vec::new()
            }
            EventData::Rows(rows) => {
                let Some(map) = self.table_maps.get(&rows.table_id) else {
                    eprintln!("# rows of table {} without its table map", rows.table_id);
                    return Vec::new();
                };
                let decoded = schema_from_table_map(map)
                    .and_then(|schema| Ok((decode_rows(rows, map, &schema)?, schema)));
                match decoded {
                    Ok((images, schema)) => {
                        let name = |row: dm::core::Row| -> NamedRow {
                            schema
                                .columns()
                                .iter()
                                .map(|column| column.name.clone())
                                .zip(row.0)
                                .collect()
                        };
                        images
                            .into_iter()
                            .map(|(before, after)| (before.map(name), after.map(name)))
                            .collect()
                    }
                    Err(error) => {
                        eprintln!("# {error}");
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }
}

type NamedRow = Vec<(String, Value)>;

fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Int(number) => number.to_string(),
        Value::UInt(number) => number.to_string(),
        Value::Float(number) => number.to_string(),
        Value::Double(number) => number.to_string(),
        Value::Decimal(decimal) => decimal.to_string(),
        Value::Date(date) => format!("'{date}'"),
        Value::DateTime(datetime) => format!("'{datetime}'"),
        Value::Time(time) => format!("'{time}'"),
        Value::Timestamp(timestamp) => {
            format!(
                "FROM_UNIXTIME({}.{:06})",
                timestamp.seconds, timestamp.microsecond
            )
        }
        Value::Year(year) => format!("{year:04}"),
        Value::Text(text) | Value::Json(text) => format!("{text:?}"),
        Value::Bytes(bytes) | Value::Geometry(bytes) => hex(bytes),
        Value::Uuid(bytes) | Value::Inet6(bytes) => hex(bytes),
        Value::Bit(bits) => format!("b'{bits:b}'"),
        Value::Enum(index) => format!("enum #{index}"),
        Value::Set(mask) => format!("set {mask:#b}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("x'{digits}'")
}

fn row_text(row: &NamedRow) -> String {
    row.iter()
        .map(|(name, value)| format!("{name}={}", value_text(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn row_json(row: &NamedRow) -> serde_json::Value {
    serde_json::Value::Object(
        row.iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value_text(value))))
            .collect(),
    )
}
