//! The dumper: a consistent snapshot of the upstream, cut into chunks and read in parallel.
//!
//! ```text
//! open_snapshot (N connections, one snapshot, time_zone '+00:00') -> catalog on connection 0:
//!     databases, tables (SHOW CREATE TABLE, columns, chunk key MIN/MAX -> plan), views,
//!     as the block-allow list and the selection (-B, -T, -W) allow
//!   -> DumpItem::Header
//!   -> N readers, each in the dump's time zone, take chunks from one queue:
//!        SELECT cols (TIMESTAMP as UNIX_TIMESTAMP(col)) FROM t WHERE (where) AND (range)
//!        -> StatementBuilder -> ChunkStream (bounded) -> consumer (directory or loader)
//! ```
//!
//! Invariants: every connection reads in the same snapshot, so chunks of different tables and
//! readers are mutually consistent and consistent with the header's location; a chunk stream
//! ends with `End` only after its last row; the first error stops every reader and is
//! returned; nothing is buffered beyond the bounded channels. TIMESTAMP values and table
//! definitions are written in UTC whatever the dump's time zone (see [`crate::selection`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dm_core::{ColumnType, TableRef, quote_identifier};
use dm_mysql::literal::quote_text;
use dm_task::filter::BlockAllowList;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use tokio::sync::{Mutex, mpsc};

use crate::encode::{
    LiteralForm, StatementBuilder, insert_prefix, literal_form, utc_from_unix_timestamp,
};
use crate::error::{DumpError, catalog_error, server_error};
use crate::item::{
    ChunkMessage, ChunkStream, DatabaseDump, DumpHeader, DumpItem, TableDump, ViewDump,
};
use crate::plan::{ChunkKey, ChunkLimits, ChunkPlan, plan_chunks};
use crate::progress::Progress;
use crate::selection::{DumpSelection, DumpTimeZone};
use crate::snapshot::{Consistency, SnapshotOptions, connect, open_snapshot_locking};
use crate::tally::Tallies;

/// How to dump.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// The upstream and the snapshot (`connections` is DM's `threads`).
    pub snapshot: SnapshotOptions,
    /// Chunk sizes.
    pub limits: ChunkLimits,
    /// Cut statements at about this many bytes (DM's `statement-size`, 1 000 000).
    pub statement_bytes: usize,
    /// What is dumped beyond the block-allow list (`where`, `-B`, `-T`, `-W`).
    pub selection: DumpSelection,
    /// The session time zone rows are read in (`skip-tz-utc`, the task's `timezone`).
    pub time_zone: DumpTimeZone,
}

/// What an interrupted load already did: tables keep their stored plans (so chunk numbers
/// mean the same rows), finished chunks are not dumped again.
#[derive(Clone, Debug, Default)]
pub struct ResumePlan {
    /// Stored plans by upstream (database, table).
    pub plans: HashMap<(String, String), Vec<ChunkPlan>>,
    /// Finished chunks: (database, table, chunk number).
    pub finished: HashSet<(String, String, u32)>,
}

/// Capacity of each chunk's statement channel.
const CHUNK_CHANNEL: usize = 4;

/// Dumps the upstream into `output`: the header, then every chunk not finished in `resume`.
/// Returns the header once every chunk was delivered.
pub async fn dump(
    options: &DumpOptions,
    filter: &BlockAllowList,
    resume: &ResumePlan,
    output: mpsc::Sender<DumpItem>,
    progress: Arc<Progress>,
) -> Result<Arc<DumpHeader>, DumpError> {
    let locked = match options.snapshot.consistency {
        Consistency::Lock => dumped_tables(&options.snapshot, &options.selection, filter).await?,
        _ => Vec::new(),
    };
    let mut snapshot = open_snapshot_locking(&options.snapshot, &locked).await?;
    let (header, readings) = {
        let Some(connection) = snapshot.connections.first_mut() else {
            return Err(DumpError::Config("threads must be at least 1".into()));
        };
        read_catalog(
            connection,
            filter,
            &options.selection,
            options.limits,
            resume,
        )
        .await?
    };
    let header = Arc::new(DumpHeader {
        flavor: options.snapshot.flavor,
        location: snapshot.location.clone(),
        exit_point: snapshot.exit_point.clone(),
        upstream_sql_mode: header.sql_mode,
        databases: header.databases,
        tables: header.tables,
        views: header.views,
    });
    if output.send(DumpItem::Header(header.clone())).await.is_err() {
        return Err(DumpError::Interrupted("the header".into()));
    }
    let mut jobs = VecDeque::new();
    let mut done_before = 0;
    let mut estimated_bytes = 0;
    for (index, table) in header.tables.iter().enumerate() {
        estimated_bytes += table.estimated_bytes;
        for plan in &table.chunks {
            if resume
                .finished
                .contains(&(table.schema.clone(), table.table.clone(), plan.number))
            {
                done_before += 1;
            } else {
                jobs.push_back((index, plan.clone()));
            }
        }
    }
    progress.begin(header.chunk_count(), done_before, estimated_bytes);
    let mut chunks_to_do = vec![0u64; header.tables.len()];
    for (table, _) in &jobs {
        chunks_to_do[*table] += 1;
    }
    let tallies = Arc::new(Tallies::new(chunks_to_do));
    tracing::info!(
        tables = header.tables.len(),
        chunks = jobs.len(),
        chunks_done_before = done_before,
        location = %header.location,
        "dump started"
    );
    let jobs = Arc::new(Mutex::new(jobs));
    let failed = Arc::new(AtomicBool::new(false));
    let readings = Arc::new(readings);
    let time_zone = options.time_zone.statement();
    let mut readers = tokio::task::JoinSet::new();
    for connection in snapshot.connections.drain(..) {
        let reader = Reader {
            header: header.clone(),
            readings: readings.clone(),
            selection: options.selection.clone(),
            time_zone: time_zone.clone(),
            jobs: jobs.clone(),
            failed: failed.clone(),
            output: output.clone(),
            progress: progress.clone(),
            statement_bytes: options.statement_bytes,
            tallies: tallies.clone(),
        };
        readers.spawn(reader.run(connection));
    }
    drop(output);
    let mut first_error = None;
    while let Some(joined) = readers.join_next().await {
        let result = joined.unwrap_or_else(|panic| {
            Err(DumpError::Unexpected(format!(
                "a dump reader panicked: {panic}"
            )))
        });
        if let Err(error) = result {
            failed.store(true, Ordering::Relaxed);
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let (tables, rows, bytes) = tallies.totals();
    tracing::info!(tables, rows, bytes, "dump finished");
    Ok(header)
}

/// The base tables the filter and the selection let through, for `consistency: lock`.
async fn dumped_tables(
    options: &SnapshotOptions,
    selection: &DumpSelection,
    filter: &BlockAllowList,
) -> Result<Vec<TableRef>, DumpError> {
    let mut connection = connect(options).await?;
    let tables: Vec<(String, String)> = query_rows(
        &mut connection,
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 1, 2",
    )
    .await?;
    let _ = connection.disconnect().await;
    Ok(tables
        .into_iter()
        .filter(|(schema, table)| selection.allows_table(filter, schema, table))
        .map(|(schema, table)| TableRef::new(schema, table))
        .collect())
}

struct Reader {
    header: Arc<DumpHeader>,
    readings: Arc<Vec<TableReading>>,
    selection: DumpSelection,
    /// `SET SESSION time_zone = ...` of the dump's zone.
    time_zone: String,
    jobs: Arc<Mutex<VecDeque<(usize, ChunkPlan)>>>,
    failed: Arc<AtomicBool>,
    output: mpsc::Sender<DumpItem>,
    progress: Arc<Progress>,
    statement_bytes: usize,
    /// Per-table counts, for the logs.
    tallies: Arc<Tallies>,
}

impl Reader {
    async fn run(self, mut connection: Conn) -> Result<(), DumpError> {
        if let Err(error) = connection.query_drop(self.time_zone.as_str()).await {
            self.failed.store(true, Ordering::Relaxed);
            return Err(match server_error(&self.time_zone, error) {
                DumpError::Server {
                    code: 1298,
                    message,
                    ..
                } => DumpError::Config(format!(
                    "the dump's time zone: {message}; give the task's timezone as an offset \
                     (+08:00), or load the upstream's time zone tables (mariadb-tzinfo-to-sql)"
                )),
                other => other,
            });
        }
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some((table, plan)) = self.jobs.lock().await.pop_front() else {
                break;
            };
            if self.tallies.start(table)
                && let Some(dump) = self.header.tables.get(table)
            {
                tracing::debug!(
                    table = %format_args!("{}.{}", dump.schema, dump.table),
                    chunks = dump.chunks.len(),
                    "table dump started"
                );
            }
            let (sender, messages) = mpsc::channel(CHUNK_CHANNEL);
            let stream = ChunkStream {
                table,
                chunk: plan.number,
                origin: "the dump stream".into(),
                messages,
            };
            if self.output.send(DumpItem::Chunk(stream)).await.is_err() {
                // The consumer stopped; its error is the one to report.
                self.failed.store(true, Ordering::Relaxed);
                return Ok(());
            }
            if let Err(error) = self
                .read_chunk(&mut connection, table, &plan, &sender)
                .await
            {
                self.failed.store(true, Ordering::Relaxed);
                let _ = sender
                    .send(Err(DumpError::Interrupted(format!(
                        "chunk {}",
                        plan.number
                    ))))
                    .await;
                return Err(error);
            }
        }
        // The snapshot transaction only read; end it politely.
        let _ = connection.query_drop("COMMIT").await;
        let _ = connection.disconnect().await;
        Ok(())
    }

    /// Counts a finished statement and sends it; `Err` when the consumer is gone.
    async fn deliver(
        &self,
        (statement, count): (String, u64),
        (rows, bytes): (&mut u64, &mut u64),
        sender: &mpsc::Sender<Result<ChunkMessage, DumpError>>,
    ) -> Result<(), ()> {
        *rows += count;
        *bytes += statement.len() as u64;
        self.progress.add_bytes(statement.len() as u64);
        sender
            .send(Ok(ChunkMessage::Statement(statement, count)))
            .await
            .map_err(|_| ())
    }

    async fn read_chunk(
        &self,
        connection: &mut Conn,
        table_index: usize,
        plan: &ChunkPlan,
        sender: &mpsc::Sender<Result<ChunkMessage, DumpError>>,
    ) -> Result<(), DumpError> {
        let table = &self.header.tables[table_index];
        let reading = &self.readings[table_index];
        let forms = &reading.forms;
        let mut select = String::from("SELECT ");
        for (index, column) in table.columns.iter().enumerate() {
            if index > 0 {
                select.push(',');
            }
            if reading.epoch[index] {
                select.push_str("UNIX_TIMESTAMP(");
                dm_mysql::literal::write_identifier(&mut select, column);
                select.push(')');
            } else {
                dm_mysql::literal::write_identifier(&mut select, column);
            }
        }
        select.push_str(" FROM ");
        dm_mysql::literal::write_table(&mut select, &TableRef::new(&table.schema, &table.table));
        let range = plan.range.as_ref().map(|range| range.condition());
        if let Some(condition) = self.selection.chunk_condition(range.as_deref()) {
            select.push_str(" WHERE ");
            select.push_str(&condition);
        }
        let mut builder = StatementBuilder::new(
            insert_prefix(&table.table, &table.columns),
            forms.clone(),
            self.statement_bytes,
        );
        let mut converted: Vec<Option<String>> = Vec::with_capacity(forms.len());
        let (mut rows, mut bytes) = (0u64, 0u64);
        let stopped = || {
            DumpError::Interrupted(format!(
                "{}.{} chunk {}",
                table.schema, table.table, plan.number
            ))
        };
        let mut result = connection
            .query_iter(select.as_str())
            .await
            .map_err(|error| server_error(&select, error))?;
        while let Some(row) = result
            .next()
            .await
            .map_err(|error| server_error(&select, error))?
        {
            let mut values = Vec::with_capacity(forms.len());
            converted.clear();
            for index in 0..forms.len() {
                let value = match row.as_ref(index) {
                    Some(Value::Bytes(bytes)) => Some(bytes.as_slice()),
                    Some(Value::NULL) => None,
                    other => {
                        return Err(DumpError::Unexpected(format!(
                            "{}.{} column `{}`: the text protocol sent {other:?}",
                            table.schema, table.table, table.columns[index]
                        )));
                    }
                };
                converted.push(match value {
                    Some(seconds) if reading.epoch[index] => {
                        Some(utc_from_unix_timestamp(seconds).ok_or_else(|| {
                            DumpError::Unexpected(format!(
                                "{}.{} column `{}`: UNIX_TIMESTAMP() returned `{}`",
                                table.schema,
                                table.table,
                                table.columns[index],
                                String::from_utf8_lossy(seconds)
                            ))
                        })?)
                    }
                    _ => None,
                });
                values.push(value);
            }
            let values = values
                .into_iter()
                .zip(&converted)
                .map(|(value, utc)| utc.as_deref().map(str::as_bytes).or(value));
            if let Some(done) = builder.push_row(values) {
                self.deliver(done, (&mut rows, &mut bytes), sender)
                    .await
                    .map_err(|()| stopped())?;
            }
        }
        drop(result);
        if let Some(done) = builder.finish() {
            self.deliver(done, (&mut rows, &mut bytes), sender)
                .await
                .map_err(|()| stopped())?;
        }
        sender
            .send(Ok(ChunkMessage::End { rows, bytes }))
            .await
            .map_err(|_| stopped())?;
        self.progress.chunk_done(rows);
        if let Some((rows, bytes)) = self.tallies.finish(table_index, rows, bytes) {
            tracing::debug!(
                table = %format_args!("{}.{}", table.schema, table.table),
                rows,
                bytes,
                "table dumped"
            );
        }
        Ok(())
    }
}

async fn query_rows<Row: mysql_async::prelude::FromRow + Send + 'static>(
    connection: &mut Conn,
    statement: &str,
) -> Result<Vec<Row>, DumpError> {
    connection
        .query(statement)
        .await
        .map_err(|error| server_error(statement, error))
}

/// What the snapshot holds.
struct Catalog {
    sql_mode: String,
    databases: Vec<DatabaseDump>,
    tables: Vec<TableDump>,
    views: Vec<ViewDump>,
}

/// How a table's columns are read and written.
struct TableReading {
    /// Each column's literal form.
    forms: Vec<LiteralForm>,
    /// Which columns are TIMESTAMP: read as `UNIX_TIMESTAMP(column)`, written as UTC text.
    epoch: Vec<bool>,
}

/// Reads what the snapshot holds: databases, tables with their chunk plans, views. Also
/// returns how each table is read.
async fn read_catalog(
    connection: &mut Conn,
    filter: &BlockAllowList,
    selection: &DumpSelection,
    limits: ChunkLimits,
    resume: &ResumePlan,
) -> Result<(Catalog, Vec<TableReading>), DumpError> {
    let sql_mode: Vec<String> = query_rows(connection, "SELECT @@GLOBAL.sql_mode").await?;
    let schemas: Vec<String> = query_rows(
        connection,
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
    )
    .await?;
    let missing = selection.missing_databases(&schemas);
    if !missing.is_empty() {
        return Err(DumpError::Config(format!(
            "mydumpers extra-args -B names databases the upstream does not have: {}",
            missing.join(", ")
        )));
    }
    let mut header = Catalog {
        sql_mode: sql_mode.into_iter().next().unwrap_or_default(),
        databases: Vec::new(),
        tables: Vec::new(),
        views: Vec::new(),
    };
    let mut readings = Vec::new();
    let mut found = Vec::new();
    for schema in schemas {
        if !selection.allows_schema(filter, &schema) {
            continue;
        }
        let objects: Vec<(String, String, Option<u64>, Option<u64>)> = query_rows(
            connection,
            &format!(
                "SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {} ORDER BY TABLE_NAME",
                quote_text(&schema)
            ),
        )
        .await?;
        // A database is created downstream when it has something to migrate, or nothing at all.
        let empty = objects.is_empty();
        let allowed: Vec<_> = objects
            .into_iter()
            .filter(|(_, kind, ..)| selection.views || kind != "VIEW")
            .filter(|(name, ..)| selection.allows_table(filter, &schema, name))
            .collect();
        found.extend(
            allowed
                .iter()
                .map(|(name, ..)| TableRef::new(&schema, name)),
        );
        if allowed.is_empty() && !empty {
            continue;
        }
        let statement = format!("SHOW CREATE DATABASE {}", quote_identifier(&schema));
        let create: Vec<(String, String)> = query_rows(connection, &statement).await?;
        let Some((_, create_statement)) = create.into_iter().next() else {
            continue; // dropped since the listing
        };
        header.databases.push(DatabaseDump {
            name: schema.clone(),
            create_statement,
        });
        for (name, kind, rows, bytes) in allowed {
            let table = TableRef::new(&schema, &name);
            match kind.as_str() {
                "BASE TABLE" | "SYSTEM VERSIONED" => {
                    let (dump, reading) = read_table(
                        connection,
                        &table,
                        rows.unwrap_or(0),
                        bytes.unwrap_or(0),
                        limits,
                        resume,
                    )
                    .await?;
                    header.tables.push(dump);
                    readings.push(reading);
                }
                "VIEW" => {
                    let definition: Vec<String> = query_rows(
                        connection,
                        &format!(
                            "SELECT VIEW_DEFINITION FROM information_schema.VIEWS \
                             WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
                            quote_text(&schema),
                            quote_text(&name)
                        ),
                    )
                    .await?;
                    if let Some(definition) = definition.into_iter().next() {
                        header.views.push(ViewDump {
                            schema: schema.clone(),
                            view: name,
                            definition,
                        });
                    }
                }
                // Sequences and temporary tables are not data to migrate.
                _ => {}
            }
        }
    }
    let missing = selection.missing_tables(&found);
    if !missing.is_empty() {
        return Err(DumpError::Config(format!(
            "mydumpers extra-args -T names tables the dump does not find (not in the upstream, \
             outside -B, or views left out by -W): {}",
            missing.join(", ")
        )));
    }
    Ok((header, readings))
}

async fn read_table(
    connection: &mut Conn,
    table: &TableRef,
    estimated_rows: u64,
    estimated_bytes: u64,
    limits: ChunkLimits,
    resume: &ResumePlan,
) -> Result<(TableDump, TableReading), DumpError> {
    let statement = format!("SHOW CREATE TABLE {}", table.quoted());
    let create: Vec<(String, String)> = query_rows(connection, &statement).await?;
    let create_statement = create
        .into_iter()
        .next()
        .map(|(_, text)| text)
        .ok_or_else(|| DumpError::Unexpected(format!("{statement} returned nothing")))?;
    let schema = dm_mysql::load_table_schema(connection, table)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| DumpError::Unexpected(format!("{} has no columns", table.quoted())))?;
    let written: Vec<_> = schema
        .columns()
        .iter()
        .filter(|column| !column.generated)
        .collect();
    let columns = written.iter().map(|column| column.name.clone()).collect();
    let forms = written.iter().map(|column| literal_form(column)).collect();
    let epoch = written
        .iter()
        .map(|column| matches!(column.column_type, ColumnType::Timestamp { .. }))
        .collect();
    let key = (table.schema.clone(), table.table.clone());
    let chunks = match resume.plans.get(&key) {
        Some(stored) => stored.clone(),
        None => {
            let key_column = schema.identifying_keys().find_map(|key| {
                let column = schema.columns().get(key.columns.first()?.column)?;
                matches!(column.column_type, ColumnType::Integer { .. })
                    .then(|| column.name.clone())
            });
            let chunk_key = match key_column {
                Some(column) => {
                    let column_sql = quote_identifier(&column);
                    let statement = format!(
                        "SELECT MIN({column_sql}), MAX({column_sql}) FROM {}",
                        table.quoted()
                    );
                    let bounds: Vec<(Option<String>, Option<String>)> =
                        query_rows(connection, &statement).await?;
                    let parse = |text: &Option<String>| {
                        text.as_ref().and_then(|text| text.parse::<i128>().ok())
                    };
                    let bounds = bounds
                        .first()
                        .and_then(|(low, high)| Some((parse(low)?, parse(high)?)));
                    Some(ChunkKey { column, bounds })
                }
                None => None,
            };
            plan_chunks(chunk_key.as_ref(), estimated_rows, estimated_bytes, limits)
        }
    };
    Ok((
        TableDump {
            schema: table.schema.clone(),
            table: table.table.clone(),
            create_statement,
            columns,
            estimated_rows,
            estimated_bytes,
            chunks,
            keyed: schema.row_identity_key().is_some(),
        },
        TableReading { forms, epoch },
    ))
}
