//! The feed's lines: what a consumer reads, and what the sink reads back at start.
//!
//! ```text
//! {"op":"insert"|"update"|"delete", "table":{"schema","table"}, "position":"mysql-bin.000001:1234",
//!  "gtid":"0-1-5"|null, "row":0, "commit_ts":1700000000, "before":{..}|null, "after":{..}|null}
//! {"op":"ddl", "table":{..}|null, "schema":"..", "kind":"alter_table", "sql":"..", "position", "gtid", "statement":0}
//! {"op":"commit", "changes":N, "worker":{"source","worker","workers","location","row","replayed"?}|null}
//! {"op":"checkpoint", "source", "location", "upstream"?, "safe_mode_exit", "schema_charsets",
//!  "ddl", "earlier_ddls"?, "holds"?, "tables"}   (upstream? when known; the others? only when
//!                                                  there are shard DDL holds)
//! {"op":"catalog", "tables":[..]}      the feed's first block: the tables it was created with
//! ```
//!
//! A block is the lines of one write: a batch's change lines and its `commit` line, one `ddl`
//! line, or one `checkpoint` line. Consumers read `insert`, `update`, `delete` and `ddl` and
//! skip the rest. `position` is where the change's rows event (the DDL's Query event) starts
//! upstream, `row` the change's index among that event's rows: together they identify a change.
//! Values: numbers for integers, floats, `YEAR`, `BIT`, `ENUM` and `SET` indexes; strings for
//! `DECIMAL` (exact), text, dates and times (`TIMESTAMP` in UTC), `UUID` and `INET6`; the
//! document for `JSON`; `{"hex":".."}` for bytes and geometry. A `checkpoint` line's
//! `upstream` (`{"server_id", "server_uuid"?}`) is the server that wrote its location, only when
//! known: lines of earlier versions have none and read as `None`.

use std::collections::HashMap;
use std::sync::Arc;

use dm_core::{
    BinlogPosition, DdlJob, DdlKind, DdlRecord, DdlTarget, Flavor, GlobalCheckpoint, GtidSet,
    HoldStage, Location, ReplayMark, Row, RowChange, RowChangeKind, ShardHold, TableCheckpoint,
    TableRef, TableSchema, TableSnapshot, UpstreamIdentity, Value, WorkerCheckpoint,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

/// A table's name in a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableName {
    /// Database.
    pub schema: String,
    /// Table.
    pub table: String,
}

impl From<&TableRef> for TableName {
    fn from(table: &TableRef) -> Self {
        TableName {
            schema: table.schema.clone(),
            table: table.table.clone(),
        }
    }
}

impl From<TableName> for TableRef {
    fn from(name: TableName) -> Self {
        TableRef::new(name.schema, name.table)
    }
}

/// A location in a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLocation {
    /// `file:offset`.
    pub position: String,
    /// The GTID set, when known.
    pub gtid: Option<String>,
    /// The injected-event suffix.
    #[serde(default)]
    pub suffix: u32,
}

impl StoredLocation {
    /// The stored form of `location`.
    pub fn new(location: &Location) -> Self {
        StoredLocation {
            position: location.position.to_string(),
            gtid: location.gtid_set.as_ref().map(|set| set.to_string()),
            suffix: location.suffix,
        }
    }

    /// The location it stores.
    pub fn location(&self, flavor: Flavor) -> Result<Location, String> {
        let position = BinlogPosition::parse(&self.position)
            .map_err(|error| format!("position `{}`: {error}", self.position))?;
        let gtid_set = match self.gtid.as_deref().filter(|text| !text.is_empty()) {
            Some(text) => Some(Arc::new(
                GtidSet::parse(flavor, text).map_err(|error| format!("GTID set: {error}"))?,
            )),
            None => None,
        };
        Ok(Location {
            position,
            gtid_set,
            suffix: self.suffix,
        })
    }
}

/// A worker checkpoint in a `commit` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWorker {
    source: String,
    worker: u32,
    workers: u32,
    location: StoredLocation,
    row: u64,
    /// Its replay progress (shard DDL), when the batch replayed rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replayed: Option<StoredMark>,
}

/// A worker's replay progress in a `commit` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMark {
    held_at: StoredLocation,
    location: StoredLocation,
    row: u64,
}

/// A shard hold in a `checkpoint` line: `stage` is `held`, `replaying` or `replayed` (the last
/// two with `until`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHold {
    table: TableName,
    held_at: StoredLocation,
    reopen_at: StoredLocation,
    stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<StoredLocation>,
}

impl StoredHold {
    fn new(hold: &ShardHold) -> Self {
        let (stage, until) = match &hold.stage {
            HoldStage::Held => ("held", None),
            HoldStage::Replaying { until } => ("replaying", Some(StoredLocation::new(until))),
            HoldStage::Replayed { until } => ("replayed", Some(StoredLocation::new(until))),
        };
        StoredHold {
            table: TableName::from(&hold.table),
            held_at: StoredLocation::new(&hold.held_at),
            reopen_at: StoredLocation::new(&hold.reopen_at),
            stage: stage.to_owned(),
            until,
        }
    }

    fn hold(&self, flavor: Flavor) -> Result<ShardHold, String> {
        let until = || match &self.until {
            Some(until) => until.location(flavor),
            None => Err(format!(
                "the hold of {} has no replay end",
                self.table.table
            )),
        };
        Ok(ShardHold {
            table: self.table.clone().into(),
            held_at: self.held_at.location(flavor)?,
            reopen_at: self.reopen_at.location(flavor)?,
            stage: match self.stage.as_str() {
                "held" => HoldStage::Held,
                "replaying" => HoldStage::Replaying { until: until()? },
                "replayed" => HoldStage::Replayed { until: until()? },
                other => return Err(format!("unknown hold stage `{other}`")),
            },
        })
    }
}

/// A `commit` line: the end of a batch's block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitLine {
    /// How many change lines the block holds before this one.
    pub changes: u64,
    /// The worker checkpoint committed with them.
    pub worker: Option<StoredWorker>,
}

/// A table in a `checkpoint` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTable {
    table: TableName,
    snapshot: Option<TableSnapshot>,
}

/// A `checkpoint` line: the global checkpoint, alone in its block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointLine {
    source: String,
    location: StoredLocation,
    /// The upstream server that wrote `location`, when known (absent in earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<UpstreamIdentity>,
    safe_mode_exit: Option<StoredLocation>,
    schema_charsets: HashMap<String, String>,
    ddl: Option<DdlRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    earlier_ddls: Vec<DdlRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    holds: Vec<StoredHold>,
    tables: Vec<StoredTable>,
}

/// A `ddl` line: one statement, alone in its block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DdlLine {
    /// The table it acts on (for a rename: the old name), when it acts on a table.
    pub table: Option<TableName>,
    /// The database it acts on (the table's).
    pub schema: String,
    /// For a rename: the new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TableName>,
    /// What it does (`create_table`, `alter_table`, `rename_table`, ...).
    pub kind: String,
    /// The statement, names qualified and routed.
    pub sql: String,
    /// Where its Query event starts upstream.
    pub position: String,
    /// The event's suffix (events a binlog operator made share a position).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suffix: u32,
    /// The GTID set there, when known.
    pub gtid: Option<String>,
    /// Its index among the statements of its event.
    pub statement: usize,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// A `catalog` line: the upstream's tables when the feed was created, alone in its block and
/// the feed's first. What the sink says of a table no DDL named yet comes from it, the same in
/// every later run (a catalog read anew at each start could describe a table as a later DDL left
/// it, and move its changes to other workers than before a crash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogLine {
    /// The tables, by their routed names.
    pub tables: Vec<TableSchema>,
}

/// The `catalog` block of `tables`.
pub fn catalog_block(tables: &[TableSchema]) -> Vec<u8> {
    let mut out = Vec::new();
    push_line(
        &mut out,
        "catalog",
        serde_json::to_value(CatalogLine {
            tables: tables.to_vec(),
        })
        .unwrap_or(Json::Null),
    );
    out
}

/// What a line is, as far as reading the feed back needs.
pub enum Parsed {
    /// A change line.
    Change,
    /// The end of a batch's block.
    Commit(CommitLine),
    /// A DDL statement's block.
    Ddl(DdlLine),
    /// A global checkpoint's block.
    Checkpoint(Box<CheckpointLine>),
    /// The catalog's block.
    Catalog(CatalogLine),
}

/// Reads one line (without its line break).
pub fn parse(line: &[u8]) -> Result<Parsed, String> {
    let json: Json = serde_json::from_slice(line).map_err(|error| error.to_string())?;
    let op = json
        .get("op")
        .and_then(Json::as_str)
        .ok_or("a line without `op`")?
        .to_owned();
    match op.as_str() {
        "insert" | "update" | "delete" => Ok(Parsed::Change),
        "commit" => serde_json::from_value(json)
            .map(Parsed::Commit)
            .map_err(|error| format!("a commit line: {error}")),
        "ddl" => serde_json::from_value(json)
            .map(Parsed::Ddl)
            .map_err(|error| format!("a ddl line: {error}")),
        "checkpoint" => serde_json::from_value(json)
            .map(|line| Parsed::Checkpoint(Box::new(line)))
            .map_err(|error| format!("a checkpoint line: {error}")),
        "catalog" => serde_json::from_value(json)
            .map(Parsed::Catalog)
            .map_err(|error| format!("a catalog line: {error}")),
        other => Err(format!("unknown op `{other}`")),
    }
}

fn push_line(out: &mut Vec<u8>, op: &str, value: Json) {
    let mut object = match value {
        Json::Object(object) => object,
        _ => Map::new(),
    };
    object.insert("op".into(), Json::String(op.to_owned()));
    // Serializing a map of plain values cannot fail.
    if serde_json::to_writer(&mut *out, &Json::Object(object)).is_ok() {
        out.push(b'\n');
    }
}

/// The JSON form of a value.
pub fn value_json(value: &Value) -> Json {
    let hex = |bytes: &[u8]| {
        let mut text = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            text.push_str(&format!("{byte:02x}"));
        }
        json!({ "hex": text })
    };
    match value {
        Value::Null => Json::Null,
        Value::Int(value) => json!(value),
        Value::UInt(value) => json!(value),
        Value::Float(value) if value.is_finite() => json!(f64::from(*value)),
        Value::Double(value) if value.is_finite() => json!(value),
        Value::Float(value) => json!(value.to_string()),
        Value::Double(value) => json!(value.to_string()),
        Value::Decimal(decimal) => json!(decimal.to_string()),
        Value::Date(date) => json!(date.to_string()),
        Value::DateTime(datetime) => json!(datetime.to_string()),
        Value::Timestamp(timestamp) => json!(timestamp.to_utc().to_string()),
        Value::Time(time) => json!(time.to_string()),
        Value::Year(year) => json!(year),
        Value::Text(text) => json!(text),
        Value::Bytes(bytes) | Value::Geometry(bytes) => hex(bytes),
        Value::Bit(bits) | Value::Set(bits) => json!(bits),
        Value::Enum(index) => json!(index),
        Value::Json(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        Value::Uuid(bytes) => {
            let text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            json!(format!(
                "{}-{}-{}-{}-{}",
                &text[..8],
                &text[8..12],
                &text[12..16],
                &text[16..20],
                &text[20..]
            ))
        }
        Value::Inet6(bytes) => json!(std::net::Ipv6Addr::from(*bytes).to_string()),
    }
}

fn image(schema: &TableSchema, row: &Row) -> Json {
    let mut object = Map::new();
    for (column, value) in schema.columns().iter().zip(row.values()) {
        object.insert(column.name.clone(), value_json(value));
    }
    Json::Object(object)
}

/// Appends a change's line.
pub fn push_change(out: &mut Vec<u8>, change: &RowChange) {
    let op = match change.kind() {
        RowChangeKind::Insert { .. } => "insert",
        RowChangeKind::Update { .. } => "update",
        RowChangeKind::Delete { .. } => "delete",
    };
    let location = change.location();
    let mut line = json!({
        "table": TableName::from(change.table()),
        "position": location.position.to_string(),
        "gtid": location.gtid_set.as_ref().map(|set| set.to_string()),
        "row": change.row(),
        "commit_ts": change.commit_ts(),
        "before": change.before().map(|row| image(change.schema(), row)),
        "after": change.after().map(|row| image(change.schema(), row)),
    });
    if location.suffix > 0
        && let Json::Object(object) = &mut line
    {
        object.insert("suffix".into(), json!(location.suffix));
    }
    push_line(out, op, line);
}

/// Appends a batch's `commit` line.
pub fn push_commit(out: &mut Vec<u8>, changes: usize, checkpoint: Option<&WorkerCheckpoint>) {
    let line = CommitLine {
        changes: changes as u64,
        worker: checkpoint.map(|checkpoint| StoredWorker {
            source: checkpoint.source.clone(),
            worker: checkpoint.worker,
            workers: checkpoint.workers,
            location: StoredLocation::new(&checkpoint.location),
            row: checkpoint.row,
            replayed: checkpoint.replayed.as_ref().map(|mark| StoredMark {
                held_at: StoredLocation::new(&mark.held_at),
                location: StoredLocation::new(&mark.location),
                row: mark.row,
            }),
        }),
    };
    push_line(
        out,
        "commit",
        serde_json::to_value(line).unwrap_or(Json::Null),
    );
}

fn kind_name(kind: &DdlKind) -> &'static str {
    match kind {
        DdlKind::CreateSchema => "create_schema",
        DdlKind::DropSchema => "drop_schema",
        DdlKind::AlterSchema => "alter_schema",
        DdlKind::CreateTable => "create_table",
        DdlKind::DropTable => "drop_table",
        DdlKind::AlterTable => "alter_table",
        DdlKind::RenameTable { .. } => "rename_table",
        DdlKind::TruncateTable => "truncate_table",
        DdlKind::CreateIndex => "create_index",
        DdlKind::DropIndex => "drop_index",
        DdlKind::CreateView => "create_view",
        DdlKind::DropView => "drop_view",
    }
}

/// The `ddl` line of `job`.
pub fn ddl_line(job: &DdlJob) -> DdlLine {
    let (table, schema) = match &job.statement.target {
        DdlTarget::Table(table) => (Some(TableName::from(table)), table.schema.clone()),
        DdlTarget::Schema(schema) => (None, schema.clone()),
    };
    DdlLine {
        table,
        schema,
        to: match &job.statement.kind {
            DdlKind::RenameTable { to } => Some(TableName::from(to)),
            _ => None,
        },
        kind: kind_name(&job.statement.kind).to_owned(),
        sql: job.statement.sql.clone(),
        position: job.location.position.to_string(),
        suffix: job.location.suffix,
        gtid: job.location.gtid_set.as_ref().map(|set| set.to_string()),
        statement: job.index,
    }
}

/// Appends a `ddl` line.
pub fn push_ddl(out: &mut Vec<u8>, line: &DdlLine) {
    push_line(out, "ddl", serde_json::to_value(line).unwrap_or(Json::Null));
}

/// Appends a `checkpoint` line.
pub fn push_checkpoint(out: &mut Vec<u8>, checkpoint: &GlobalCheckpoint) {
    let line = CheckpointLine {
        source: checkpoint.source.clone(),
        location: StoredLocation::new(&checkpoint.location),
        upstream: checkpoint.upstream.clone(),
        safe_mode_exit: checkpoint.safe_mode_exit.as_ref().map(StoredLocation::new),
        schema_charsets: checkpoint.schema_charsets.clone(),
        ddl: checkpoint.ddl.clone(),
        earlier_ddls: checkpoint.earlier_ddls.clone(),
        holds: checkpoint.holds.iter().map(StoredHold::new).collect(),
        tables: checkpoint
            .tables
            .iter()
            .map(|table| StoredTable {
                table: TableName::from(&table.table),
                snapshot: table.snapshot.clone(),
            })
            .collect(),
    };
    push_line(
        out,
        "checkpoint",
        serde_json::to_value(line).unwrap_or(Json::Null),
    );
}

impl CommitLine {
    /// The worker checkpoint it commits.
    pub fn worker(&self, flavor: Flavor) -> Result<Option<WorkerCheckpoint>, String> {
        let Some(worker) = &self.worker else {
            return Ok(None);
        };
        Ok(Some(WorkerCheckpoint {
            source: worker.source.clone(),
            worker: worker.worker,
            workers: worker.workers,
            location: worker.location.location(flavor)?,
            row: worker.row,
            replayed: match &worker.replayed {
                Some(mark) => Some(ReplayMark {
                    held_at: mark.held_at.location(flavor)?,
                    location: mark.location.location(flavor)?,
                    row: mark.row,
                }),
                None => None,
            },
        }))
    }
}

impl CheckpointLine {
    /// The global checkpoint it saves (its tables: the ones changed by this save).
    pub fn checkpoint(&self, flavor: Flavor) -> Result<GlobalCheckpoint, String> {
        Ok(GlobalCheckpoint {
            source: self.source.clone(),
            location: self.location.location(flavor)?,
            upstream: self.upstream.clone(),
            safe_mode_exit: match &self.safe_mode_exit {
                Some(exit) => Some(exit.location(flavor)?),
                None => None,
            },
            schema_charsets: self.schema_charsets.clone(),
            ddl: self.ddl.clone(),
            earlier_ddls: self.earlier_ddls.clone(),
            holds: self
                .holds
                .iter()
                .map(|hold| hold.hold(flavor))
                .collect::<Result<_, _>>()?,
            tables: self
                .tables
                .iter()
                .map(|table| TableCheckpoint {
                    table: table.table.clone().into(),
                    snapshot: table.snapshot.clone(),
                })
                .collect(),
        })
    }
}

impl DdlLine {
    /// The tables it acts on (the old and new names of a rename).
    pub fn tables(&self) -> Vec<TableRef> {
        self.table
            .iter()
            .chain(self.to.iter())
            .cloned()
            .map(TableRef::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {

    use dm_core::testsuite::suite_location;

    use super::*;

    fn read_back(bytes: &[u8]) -> GlobalCheckpoint {
        let line = bytes.strip_suffix(b"\n").expect("one line");
        match parse(line).expect("parses") {
            Parsed::Checkpoint(line) => line.checkpoint(Flavor::MySql).expect("checkpoint"),
            _ => panic!("not a checkpoint line"),
        }
    }

    #[test]
    fn a_checkpoint_line_keeps_the_upstream_that_wrote_its_location() {
        let checkpoint = GlobalCheckpoint {
            upstream: Some(UpstreamIdentity {
                server_id: 7,
                server_uuid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562".into()),
            }),
            ..GlobalCheckpoint::new("source", suite_location(100))
        };
        let mut bytes = Vec::new();
        push_checkpoint(&mut bytes, &checkpoint);
        assert_eq!(read_back(&bytes), checkpoint);
        let mariadb = GlobalCheckpoint {
            upstream: Some(UpstreamIdentity::from_server_id(2)),
            ..checkpoint.clone()
        };
        let mut bytes = Vec::new();
        push_checkpoint(&mut bytes, &mariadb);
        assert!(
            !String::from_utf8_lossy(&bytes).contains("server_uuid"),
            "no UUID is written when there is none"
        );
        assert_eq!(read_back(&bytes), mariadb);
        // A line of an earlier version (no `upstream`) reads as not known.
        let unknown = GlobalCheckpoint {
            upstream: None,
            ..checkpoint
        };
        let mut bytes = Vec::new();
        push_checkpoint(&mut bytes, &unknown);
        assert!(!String::from_utf8_lossy(&bytes).contains("upstream"));
        assert_eq!(read_back(&bytes), unknown);
    }
}
