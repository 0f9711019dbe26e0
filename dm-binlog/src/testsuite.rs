//! A scripted binlog source (feature `testsuite`): decoded events in memory, served through
//! [`BinlogSource`] so that the syncer's event loop runs in tests without a server.
//!
//! ```text
//! BinlogScript: table("shop", "t", columns) -> ScriptTable
//!               transaction([insert / update / delete ...])  BEGIN, TABLE_MAP + ROWS each, XID
//!               ddl("shop", "ALTER TABLE t ADD c INT")        one QUERY event
//!   .source() -> ScriptedSource --open(start)--> ScriptedStream: the events at and after `start`
//! ```
//!
//! The events sit in one file, `mysql-bin.000001`, from offset 4, each 100 bytes long (their
//! positions are what matter; their bytes are not kept). Columns are signed `INT`s, `NULL`
//! allowed, which the script encodes exactly as a server writes them in a v2 rows event. The
//! stream ends after the last event (a non-following source); every [`BinlogSource::open`] is
//! counted, so a test can see the syncer reopen. [`ScriptedSource::played_by`] names the server
//! the script plays: an open by position then checks the identity set with
//! [`BinlogSource::expect_upstream`] as a remote source does.
//!
//! Invariant: the script's positions grow strictly; opening at a position serves every event
//! that starts there or later, which is what a server does for a transaction end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dm_core::{BinlogFileName, BinlogPosition, UpstreamIdentity};

use crate::controller::BinlogSource;
use crate::error::BinlogError;
use crate::event::{
    Event, EventData, EventHeader, FormatDescription, RowsEvent, RowsKind, TableMap, event_type,
};
use crate::stream::{EventStream, StartPoint, StreamEvent};

/// How long each scripted event is, in bytes.
pub const EVENT_SIZE: u64 = 100;

/// A table of a script: signed `INT` columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptTable {
    table_id: u64,
    schema: String,
    table: String,
    /// Whether each column is nullable.
    nullable: Vec<bool>,
}

/// One row change of a scripted transaction; `None` is `NULL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptRow {
    /// An inserted row.
    Insert(ScriptTable, Vec<Option<i32>>),
    /// A changed row: before, after.
    Update(ScriptTable, Vec<Option<i32>>, Vec<Option<i32>>),
    /// A deleted row.
    Delete(ScriptTable, Vec<Option<i32>>),
}

/// Builds the events a [`ScriptedSource`] serves.
#[derive(Clone, Debug)]
pub struct BinlogScript {
    file: BinlogFileName,
    next_offset: u64,
    next_table_id: u64,
    timestamp: u32,
    events: Vec<StreamEvent>,
}

impl Default for BinlogScript {
    fn default() -> Self {
        BinlogScript::new()
    }
}

fn bitmap(bits: impl IntoIterator<Item = bool>, count: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; count.div_ceil(8)];
    for (index, set) in bits.into_iter().enumerate() {
        if set {
            bytes[index / 8] |= 1 << (index % 8);
        }
    }
    bytes
}

fn image(out: &mut Vec<u8>, values: &[Option<i32>]) {
    out.extend(bitmap(values.iter().map(Option::is_none), values.len()));
    for value in values.iter().flatten() {
        out.extend(value.to_le_bytes());
    }
}

impl BinlogScript {
    /// An empty script: a format description at offset 4 (MariaDB 10.11), nothing else.
    pub fn new() -> Self {
        let mut script = BinlogScript {
            file: BinlogFileName::parse("mysql-bin.000001").expect("a valid file name"),
            next_offset: 4,
            next_table_id: 100,
            timestamp: 1_700_000_000,
            events: Vec::new(),
        };
        script.push(
            event_type::FORMAT_DESCRIPTION,
            EventData::FormatDescription(FormatDescription {
                server_version: "10.11.0-MariaDB-log".into(),
                ..FormatDescription::assumed()
            }),
        );
        script
    }

    fn push(&mut self, event_type: u8, data: EventData) {
        let position = BinlogPosition::new(self.file.clone(), self.next_offset);
        self.next_offset += EVENT_SIZE;
        let next_position = BinlogPosition::new(self.file.clone(), self.next_offset);
        self.events.push(StreamEvent {
            event: Event {
                header: EventHeader {
                    timestamp: self.timestamp,
                    event_type,
                    server_id: 1,
                    event_size: EVENT_SIZE as u32,
                    log_position: self.next_offset as u32,
                    flags: 0,
                },
                data,
            },
            raw: Vec::new(),
            position,
            next_position,
            artificial: false,
        });
    }

    fn query(&mut self, schema: &str, sql: &str) {
        self.push(
            event_type::QUERY,
            EventData::Query {
                thread_id: 1,
                execution_time: 0,
                error_code: 0,
                schema: schema.to_owned(),
                sql: sql.as_bytes().to_vec(),
                status_variables: Vec::new(),
            },
        );
    }

    /// A table with `columns` signed `INT` columns, each nullable or not (its table map id is
    /// fixed for the script).
    pub fn table(&mut self, schema: &str, table: &str, nullable: &[bool]) -> ScriptTable {
        self.next_table_id += 1;
        ScriptTable {
            table_id: self.next_table_id,
            schema: schema.to_owned(),
            table: table.to_owned(),
            nullable: nullable.to_vec(),
        }
    }

    /// One transaction (`BEGIN`, a table map and a rows event per change, `XID`), committed one
    /// second after the previous event.
    pub fn transaction(&mut self, rows: &[ScriptRow]) {
        self.timestamp += 1;
        self.query("", "BEGIN");
        for row in rows {
            let (table, kind, code, body, after_present) = match row {
                ScriptRow::Insert(table, after) => {
                    let mut body = Vec::new();
                    image(&mut body, after);
                    (
                        table,
                        RowsKind::Write,
                        event_type::WRITE_ROWS_V2,
                        body,
                        false,
                    )
                }
                ScriptRow::Update(table, before, after) => {
                    let mut body = Vec::new();
                    image(&mut body, before);
                    image(&mut body, after);
                    (
                        table,
                        RowsKind::Update,
                        event_type::UPDATE_ROWS_V2,
                        body,
                        true,
                    )
                }
                ScriptRow::Delete(table, before) => {
                    let mut body = Vec::new();
                    image(&mut body, before);
                    (
                        table,
                        RowsKind::Delete,
                        event_type::DELETE_ROWS_V2,
                        body,
                        false,
                    )
                }
            };
            let columns = table.nullable.len();
            self.push(
                event_type::TABLE_MAP,
                EventData::TableMap(TableMap {
                    table_id: table.table_id,
                    schema: table.schema.clone(),
                    table: table.table.clone(),
                    // MYSQL_TYPE_LONG: no metadata.
                    column_types: vec![3; columns],
                    column_metadata: Vec::new(),
                    null_bitmap: bitmap(table.nullable.iter().copied(), columns),
                    optional_metadata: Vec::new(),
                }),
            );
            let all = bitmap(std::iter::repeat_n(true, columns), columns);
            self.push(
                code,
                EventData::Rows(RowsEvent {
                    kind,
                    table_id: table.table_id,
                    flags: 1,
                    column_count: columns as u64,
                    columns_present: all.clone(),
                    columns_present_after: after_present.then_some(all),
                    rows: body,
                    partial_json: false,
                }),
            );
        }
        self.push(
            event_type::XID,
            EventData::Xid {
                xid: self.next_offset,
            },
        );
    }

    /// A DDL statement run in database `schema`: one Query event, its own transaction.
    pub fn ddl(&mut self, schema: &str, sql: &str) {
        self.timestamp += 1;
        self.query(schema, sql);
    }

    /// Where the next event would start (the end of the script).
    pub fn end(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.next_offset)
    }

    /// The events so far.
    pub fn events(&self) -> &[StreamEvent] {
        &self.events
    }

    /// A source serving the events so far; its streams end after the last.
    pub fn source(&self) -> ScriptedSource {
        ScriptedSource {
            events: Arc::new(self.events.clone()),
            opened: Arc::new(AtomicUsize::new(0)),
            follow: false,
            server: None,
            upstream: None,
        }
    }

    /// A source serving the events so far whose streams then wait for more, for ever: an idle
    /// upstream that a syncer follows.
    pub fn following_source(&self) -> ScriptedSource {
        ScriptedSource {
            follow: true,
            ..self.source()
        }
    }
}

/// Serves a script's events ([`BinlogScript::source`]); clones share the open count.
#[derive(Clone, Debug)]
pub struct ScriptedSource {
    events: Arc<Vec<StreamEvent>>,
    opened: Arc<AtomicUsize>,
    /// Wait at the end instead of ending.
    follow: bool,
    /// The server the script plays, when it plays one.
    server: Option<UpstreamIdentity>,
    /// The server that wrote the positions opened at (see [`BinlogSource::upstream_identity`]).
    upstream: Option<UpstreamIdentity>,
}

impl ScriptedSource {
    /// How many streams were opened.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// The source as the server `server`: an open by position refuses a start another server
    /// wrote ([`BinlogSource::expect_upstream`]), and an open makes it the source's identity.
    pub fn played_by(self, server: UpstreamIdentity) -> Self {
        ScriptedSource {
            server: Some(server),
            ..self
        }
    }
}

/// A stream of a [`ScriptedSource`].
#[derive(Debug)]
pub struct ScriptedStream {
    events: Arc<Vec<StreamEvent>>,
    next: usize,
    follow: bool,
}

impl BinlogSource for ScriptedSource {
    type Stream = ScriptedStream;

    async fn open(&mut self, start: &StartPoint) -> Result<ScriptedStream, BinlogError> {
        let StartPoint::Position(position) = start else {
            return Err(BinlogError::Unsupported {
                address: "script".into(),
                reason: "a scripted source opens at positions only".into(),
            });
        };
        if let Some(server) = &self.server {
            crate::remote::check_identity("script", self.upstream.as_ref(), server, start)?;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.upstream = self.server.clone();
        let next = self
            .events
            .iter()
            .position(|event| {
                event
                    .position
                    .partial_cmp(position)
                    .is_some_and(|order| order.is_ge())
            })
            .unwrap_or(self.events.len());
        Ok(ScriptedStream {
            events: self.events.clone(),
            next,
            follow: self.follow,
        })
    }

    fn expect_upstream(&mut self, upstream: Option<UpstreamIdentity>) {
        self.upstream = upstream;
    }

    fn upstream_identity(&self) -> Option<&UpstreamIdentity> {
        self.upstream.as_ref()
    }
}

impl EventStream for ScriptedStream {
    async fn next_event(&mut self) -> Result<Option<StreamEvent>, BinlogError> {
        let event = self.events.get(self.next).cloned();
        if event.is_none() && self.follow {
            std::future::pending::<()>().await;
        }
        self.next += 1;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use dm_core::{ColumnDefinition, ColumnType, IntegerWidth, TableRef, TableSchema, Value};

    use super::*;
    use crate::rows::decode_rows;

    #[tokio::test]
    async fn scripted_rows_decode_as_written() {
        let mut script = BinlogScript::new();
        let table = script.table("shop", "t", &[false, true]);
        script.transaction(&[
            ScriptRow::Insert(table.clone(), vec![Some(1), None]),
            ScriptRow::Update(table.clone(), vec![Some(1), None], vec![Some(1), Some(-7)]),
        ]);
        let schema = TableSchema::new(
            TableRef::new("shop", "t"),
            ["id", "v"]
                .into_iter()
                .map(|name| {
                    ColumnDefinition::new(
                        name,
                        ColumnType::Integer {
                            width: IntegerWidth::Int,
                            unsigned: false,
                        },
                        name == "v",
                    )
                })
                .collect(),
            Vec::new(),
        )
        .expect("schema");
        let mut source = script.source();
        let start = BinlogPosition::new(script.end().file, 4);
        let mut stream = source
            .open(&StartPoint::Position(start))
            .await
            .expect("open");
        let mut map = None;
        let mut images = Vec::new();
        while let Some(event) = stream.next_event().await.expect("event") {
            match event.event.data {
                EventData::TableMap(table_map) => map = Some(table_map),
                EventData::Rows(rows) => images.extend(
                    decode_rows(&rows, map.as_ref().expect("map"), &schema).expect("decodes"),
                ),
                _ => {}
            }
        }
        assert_eq!(images.len(), 2);
        let (before, after) = &images[1];
        assert_eq!(
            before.as_ref().map(|row| row.values().to_vec()),
            Some(vec![Value::Int(1), Value::Null])
        );
        assert_eq!(
            after.as_ref().map(|row| row.values().to_vec()),
            Some(vec![Value::Int(1), Value::Int(-7)])
        );
        assert_eq!(source.opened(), 1);
    }
}
