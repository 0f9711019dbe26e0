//! The dumper: a consistent snapshot of the upstream, cut into chunks and read in parallel.
//!
//! ```text
//! open_snapshot (N connections, one snapshot) -> catalog on connection 0:
//!     databases, tables (SHOW CREATE TABLE, columns, chunk key MIN/MAX -> plan), views
//!   -> DumpItem::Header
//!   -> N readers take chunks from one queue: SELECT cols FROM t WHERE <range>
//!        -> StatementBuilder -> ChunkStream (bounded) -> consumer (directory or loader)
//! ```
//!
//! Invariants: every connection reads in the same snapshot, so chunks of different tables and
//! readers are mutually consistent and consistent with the header's location; a chunk stream
//! ends with `End` only after its last row; the first error stops every reader and is
//! returned; nothing is buffered beyond the bounded channels.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dm_core::{ColumnType, TableRef};
use dm_syncer::filter::BlockAllowList;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use tokio::sync::{Mutex, mpsc};

use crate::encode::{LiteralForm, StatementBuilder, insert_prefix, literal_form};
use crate::error::{DumpError, server_error};
use crate::item::{
    ChunkMessage, ChunkStream, DatabaseDump, DumpHeader, DumpItem, TableDump, ViewDump,
};
use crate::plan::{ChunkKey, ChunkLimits, ChunkPlan, plan_chunks};
use crate::progress::Progress;
use crate::snapshot::{Consistency, SnapshotOptions, connect, open_snapshot_locking};

/// How to dump.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// The upstream and the snapshot (`connections` is DM's `threads`).
    pub snapshot: SnapshotOptions,
    /// Chunk sizes.
    pub limits: ChunkLimits,
    /// Cut statements at about this many bytes (DM's `statement-size`, 1 000 000).
    pub statement_bytes: usize,
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
        Consistency::Lock => dumped_tables(&options.snapshot, filter).await?,
        _ => Vec::new(),
    };
    let mut snapshot = open_snapshot_locking(&options.snapshot, &locked).await?;
    let (header, forms) = {
        let Some(connection) = snapshot.connections.first_mut() else {
            return Err(DumpError::Config("threads must be at least 1".into()));
        };
        read_catalog(connection, filter, options.limits, resume).await?
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
    let jobs = Arc::new(Mutex::new(jobs));
    let failed = Arc::new(AtomicBool::new(false));
    let forms = Arc::new(forms);
    let mut readers = tokio::task::JoinSet::new();
    for connection in snapshot.connections.drain(..) {
        let reader = Reader {
            header: header.clone(),
            forms: forms.clone(),
            jobs: jobs.clone(),
            failed: failed.clone(),
            output: output.clone(),
            progress: progress.clone(),
            statement_bytes: options.statement_bytes,
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
    match first_error {
        Some(error) => Err(error),
        None => Ok(header),
    }
}

/// The base tables the filter lets through, for `consistency: lock`.
async fn dumped_tables(
    options: &SnapshotOptions,
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
        .filter(|(schema, table)| filter.allows_table(schema, table))
        .map(|(schema, table)| TableRef::new(schema, table))
        .collect())
}

struct Reader {
    header: Arc<DumpHeader>,
    forms: Arc<Vec<Vec<LiteralForm>>>,
    jobs: Arc<Mutex<VecDeque<(usize, ChunkPlan)>>>,
    failed: Arc<AtomicBool>,
    output: mpsc::Sender<DumpItem>,
    progress: Arc<Progress>,
    statement_bytes: usize,
}

impl Reader {
    async fn run(self, mut connection: Conn) -> Result<(), DumpError> {
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some((table, plan)) = self.jobs.lock().await.pop_front() else {
                break;
            };
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
        let forms = &self.forms[table_index];
        let mut select = String::from("SELECT ");
        for (index, column) in table.columns.iter().enumerate() {
            if index > 0 {
                select.push(',');
            }
            dm_sink::literal::write_identifier(&mut select, column);
        }
        select.push_str(" FROM ");
        dm_sink::literal::write_table(&mut select, &TableRef::new(&table.schema, &table.table));
        if let Some(range) = &plan.range {
            select.push_str(" WHERE ");
            select.push_str(&range.condition());
        }
        let mut builder = StatementBuilder::new(
            insert_prefix(&table.table, &table.columns),
            forms.clone(),
            self.statement_bytes,
        );
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
            for index in 0..forms.len() {
                values.push(match row.as_ref(index) {
                    Some(Value::Bytes(bytes)) => Some(bytes.as_slice()),
                    Some(Value::NULL) => None,
                    other => {
                        return Err(DumpError::Unexpected(format!(
                            "{}.{} column `{}`: the text protocol sent {other:?}",
                            table.schema, table.table, table.columns[index]
                        )));
                    }
                });
            }
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

fn quoted(name: &str) -> String {
    let mut text = String::new();
    dm_sink::literal::write_identifier(&mut text, name);
    text
}

fn sql_string(text: &str) -> String {
    let mut out = String::new();
    dm_sink::literal::write_text(&mut out, text);
    out
}

/// What the snapshot holds.
struct Catalog {
    sql_mode: String,
    databases: Vec<DatabaseDump>,
    tables: Vec<TableDump>,
    views: Vec<ViewDump>,
}

/// Reads what the snapshot holds: databases, tables with their chunk plans, views. Also
/// returns each table's literal forms.
async fn read_catalog(
    connection: &mut Conn,
    filter: &BlockAllowList,
    limits: ChunkLimits,
    resume: &ResumePlan,
) -> Result<(Catalog, Vec<Vec<LiteralForm>>), DumpError> {
    let sql_mode: Vec<String> = query_rows(connection, "SELECT @@GLOBAL.sql_mode").await?;
    let schemas: Vec<String> = query_rows(
        connection,
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
    )
    .await?;
    let mut header = Catalog {
        sql_mode: sql_mode.into_iter().next().unwrap_or_default(),
        databases: Vec::new(),
        tables: Vec::new(),
        views: Vec::new(),
    };
    let mut all_forms = Vec::new();
    for schema in schemas {
        if !filter.allows_schema(&schema) {
            continue;
        }
        let objects: Vec<(String, String, Option<u64>, Option<u64>)> = query_rows(
            connection,
            &format!(
                "SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {} ORDER BY TABLE_NAME",
                sql_string(&schema)
            ),
        )
        .await?;
        // A database is created downstream when it has something to migrate, or nothing at all.
        let empty = objects.is_empty();
        let allowed: Vec<_> = objects
            .into_iter()
            .filter(|(name, ..)| filter.allows_table(&schema, name))
            .collect();
        if allowed.is_empty() && !empty {
            continue;
        }
        let statement = format!("SHOW CREATE DATABASE {}", quoted(&schema));
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
                    let (dump, forms) = read_table(
                        connection,
                        &table,
                        rows.unwrap_or(0),
                        bytes.unwrap_or(0),
                        limits,
                        resume,
                    )
                    .await?;
                    header.tables.push(dump);
                    all_forms.push(forms);
                }
                "VIEW" => {
                    let definition: Vec<String> = query_rows(
                        connection,
                        &format!(
                            "SELECT VIEW_DEFINITION FROM information_schema.VIEWS \
                             WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {}",
                            sql_string(&schema),
                            sql_string(&name)
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
    Ok((header, all_forms))
}

async fn read_table(
    connection: &mut Conn,
    table: &TableRef,
    estimated_rows: u64,
    estimated_bytes: u64,
    limits: ChunkLimits,
    resume: &ResumePlan,
) -> Result<(TableDump, Vec<LiteralForm>), DumpError> {
    let statement = format!("SHOW CREATE TABLE {}", table.quoted());
    let create: Vec<(String, String)> = query_rows(connection, &statement).await?;
    let create_statement = create
        .into_iter()
        .next()
        .map(|(_, text)| text)
        .ok_or_else(|| DumpError::Unexpected(format!("{statement} returned nothing")))?;
    let schema = dm_sink::load_table_schema(connection, table)
        .await
        .map_err(|error| {
            server_error(&format!("reading the columns of {}", table.quoted()), error)
        })?
        .ok_or_else(|| DumpError::Unexpected(format!("{} has no columns", table.quoted())))?;
    let written: Vec<_> = schema
        .columns()
        .iter()
        .filter(|column| !column.generated)
        .collect();
    let columns = written.iter().map(|column| column.name.clone()).collect();
    let forms = written.iter().map(|column| literal_form(column)).collect();
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
                    let column_sql = quoted(&column);
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
        forms,
    ))
}
