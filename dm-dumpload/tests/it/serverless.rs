//! The loader over a recording fake of `dm_core`'s load traits, without a server: what it
//! creates (routed, views retried until their views exist), what it stores as its progress, and
//! that every chunk commits with its mark once, an incomplete one not at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dm_core::sink::{
    LoadCheckpoint, LoadCheckpointStore, LoadSinkFactory, LoadStatus, PlannedChunk, SchemaObject,
    StoredChunk,
};
use dm_core::{
    BinlogPosition, ChunkMark, ChunkOutcome, ChunkPiece, ChunkReader, ErrorClass, ErrorCode,
    ErrorReport, Flavor, LoadSink, Location, TableRef,
};
use dm_dumpload::item::{ChunkMessage, ChunkStream, DatabaseDump, TableDump, ViewDump};
use dm_dumpload::plan::ChunkPlan;
use dm_dumpload::{
    DumpError, DumpHeader, DumpItem, LoadSettings, LoadStage, Loader, OnDuplicate, Progress,
};
use dm_task::filter::{RouteRule, TableRouter};
use tokio::sync::mpsc;

/// What the fake downstream holds.
#[derive(Debug, Default)]
struct Downstream {
    /// Every object created, in order.
    objects: Vec<SchemaObject>,
    status: Option<LoadStatus>,
    /// Per (schema, table, chunk): its plan and mark.
    chunks: BTreeMap<(String, String, u32), (String, bool)>,
    /// Statements committed with their chunk's mark.
    committed: Vec<String>,
}

/// Opens fake sinks over one [`Downstream`].
#[derive(Clone, Debug, Default)]
struct FakeLoadSinks {
    downstream: Arc<Mutex<Downstream>>,
}

impl FakeLoadSinks {
    fn downstream(&self) -> std::sync::MutexGuard<'_, Downstream> {
        self.downstream.lock().expect("downstream")
    }
}

#[derive(Debug)]
struct FakeLoadSink {
    downstream: Arc<Mutex<Downstream>>,
}

impl FakeLoadSink {
    fn downstream(&self) -> std::sync::MutexGuard<'_, Downstream> {
        self.downstream.lock().expect("downstream")
    }
}

fn refused(message: String) -> ErrorReport {
    ErrorReport {
        class: ErrorClass::Definite,
        code: ErrorCode(13002),
        message,
        workaround: "see the message",
    }
}

impl LoadSinkFactory for FakeLoadSinks {
    type Error = ErrorReport;
    type Control = FakeLoadSink;
    type Worker = FakeLoadSink;

    async fn open_control(&self) -> Result<FakeLoadSink, ErrorReport> {
        Ok(FakeLoadSink {
            downstream: self.downstream.clone(),
        })
    }

    async fn open_worker(
        &self,
        _worker: usize,
        _workers: usize,
    ) -> Result<FakeLoadSink, ErrorReport> {
        self.open_control().await
    }
}

impl LoadSink for FakeLoadSink {
    type Error = ErrorReport;

    /// A view fails while a view its `SELECT` names (`from <name>`) is not created.
    async fn create_object(&mut self, object: &SchemaObject) -> Result<(), ErrorReport> {
        let mut downstream = self.downstream();
        if let SchemaObject::View { select, .. } = object
            && let Some(name) = select.strip_prefix("select * from ")
            && !downstream.objects.iter().any(
                |created| matches!(created, SchemaObject::View { view, .. } if view.table == name),
            )
        {
            return Err(refused(format!("no view {name}")));
        }
        let exists = downstream
            .objects
            .iter()
            .any(|created| match (created, object) {
                (SchemaObject::Table { table, .. }, SchemaObject::Table { table: new, .. }) => {
                    table == new
                }
                (SchemaObject::Database { name, .. }, SchemaObject::Database { name: new, .. }) => {
                    name == new
                }
                _ => false,
            });
        if !exists {
            downstream.objects.push(object.clone());
        }
        Ok(())
    }

    async fn load_chunk<Reader: ChunkReader>(
        &mut self,
        chunk: &ChunkMark,
        reader: &mut Reader,
    ) -> Result<ChunkOutcome, ErrorReport> {
        let mut statements = Vec::new();
        loop {
            match reader.next_piece().await {
                Some(ChunkPiece::Statement(statement)) => statements.push(statement),
                Some(ChunkPiece::End { rows, bytes }) => {
                    let mut downstream = self.downstream();
                    let key = (
                        chunk.table.schema.clone(),
                        chunk.table.table.clone(),
                        chunk.chunk,
                    );
                    let Some((_, loaded)) = downstream.chunks.get_mut(&key) else {
                        return Err(refused(format!("chunk {key:?} was not planned")));
                    };
                    assert!(!*loaded, "chunk {key:?} loaded twice");
                    *loaded = true;
                    downstream.committed.extend(statements);
                    return Ok(ChunkOutcome::Loaded { rows, bytes });
                }
                None => return Ok(ChunkOutcome::Incomplete),
            }
        }
    }
}

impl LoadCheckpointStore for FakeLoadSink {
    type Error = ErrorReport;

    async fn prepare_load(&mut self) -> Result<(), ErrorReport> {
        Ok(())
    }

    async fn read_load(&mut self, _flavor: Flavor) -> Result<Option<LoadCheckpoint>, ErrorReport> {
        let downstream = self.downstream();
        Ok(downstream.status.clone().map(|status| LoadCheckpoint {
            status,
            chunks: downstream
                .chunks
                .iter()
                .map(|((schema, table, chunk), (plan, loaded))| StoredChunk {
                    planned: PlannedChunk {
                        table: TableRef::new(schema, table),
                        chunk: *chunk,
                        plan: plan.clone(),
                    },
                    loaded: *loaded,
                })
                .collect(),
        }))
    }

    async fn begin_load(
        &mut self,
        status: &LoadStatus,
        _flavor: Flavor,
    ) -> Result<(), ErrorReport> {
        let mut downstream = self.downstream();
        assert!(downstream.status.is_none(), "a second load began");
        downstream.status = Some(status.clone());
        Ok(())
    }

    async fn set_load_exit_point(
        &mut self,
        exit_point: Option<&Location>,
    ) -> Result<(), ErrorReport> {
        if let Some(status) = self.downstream().status.as_mut() {
            status.exit_point = exit_point.cloned();
        }
        Ok(())
    }

    async fn finish_load(&mut self) -> Result<(), ErrorReport> {
        if let Some(status) = self.downstream().status.as_mut() {
            status.stage = LoadStage::Finished;
        }
        Ok(())
    }

    async fn plan_chunks(&mut self, chunks: &[PlannedChunk]) -> Result<(), ErrorReport> {
        let mut downstream = self.downstream();
        for chunk in chunks {
            downstream
                .chunks
                .entry((
                    chunk.table.schema.clone(),
                    chunk.table.table.clone(),
                    chunk.chunk,
                ))
                .or_insert_with(|| (chunk.plan.clone(), false));
        }
        Ok(())
    }

    async fn chunks_left(&mut self) -> Result<u64, ErrorReport> {
        Ok(self
            .downstream()
            .chunks
            .values()
            .filter(|(_, loaded)| !loaded)
            .count() as u64)
    }

    async fn forget_load(&mut self) -> Result<(), ErrorReport> {
        let mut downstream = self.downstream();
        downstream.status = None;
        downstream.chunks.clear();
        Ok(())
    }
}

fn location() -> Location {
    Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("position"))
}

/// `shop.items` in 2 chunks and `shop.orders` in 1, views `v2` (of `v1`) and `v1`.
fn header() -> Arc<DumpHeader> {
    let table = |name: &str, chunks: u32| TableDump {
        schema: "shop".into(),
        table: name.into(),
        create_statement: format!("CREATE TABLE `{name}` (`id` int)"),
        columns: vec!["id".into()],
        estimated_rows: 0,
        estimated_bytes: 0,
        chunks: (0..chunks)
            .map(|number| ChunkPlan {
                number,
                range: None,
            })
            .collect(),
        keyed: true,
    };
    let view = |name: &str, select: &str| ViewDump {
        schema: "shop".into(),
        view: name.into(),
        definition: select.into(),
    };
    Arc::new(DumpHeader {
        flavor: Flavor::MariaDb,
        location: location(),
        exit_point: None,
        upstream_sql_mode: String::new(),
        databases: vec![DatabaseDump {
            name: "shop".into(),
            create_statement: "CREATE DATABASE `shop`".into(),
        }],
        tables: vec![table("items", 2), table("orders", 1)],
        views: vec![view("v2", "select * from v1"), view("v1", "select 1")],
    })
}

/// The chunk `chunk` of table `table` (index in the header) with one statement, complete or
/// not.
fn chunk(header: &DumpHeader, table: usize, chunk: u32, complete: bool) -> DumpItem {
    let name = &header.tables[table].table;
    let (sender, messages) = mpsc::channel(4);
    sender
        .try_send(Ok(ChunkMessage::Statement(
            format!("INSERT INTO `{name}` (`id`) VALUES ({chunk})"),
            1,
        )))
        .expect("statement");
    if complete {
        sender
            .try_send(Ok(ChunkMessage::End { rows: 1, bytes: 10 }))
            .expect("end");
    }
    DumpItem::Chunk(ChunkStream {
        table,
        chunk,
        origin: format!("{name} chunk {chunk}"),
        messages,
    })
}

fn loader(sinks: &FakeLoadSinks) -> Loader<FakeLoadSinks> {
    let route = RouteRule::new("shop", "shop", None, "store", None, true).expect("route");
    Loader::with_sinks(
        sinks.clone(),
        LoadSettings {
            task: "fake".into(),
            source_id: "source-1".into(),
            pool_size: 2,
            on_duplicate: OnDuplicate::Replace,
        },
        TableRouter::new(true, vec![route]),
    )
}

/// Runs one load of the header and `chunks` (items 0, 1, orders 0; `complete[i]` says whether
/// chunk i ends).
async fn load(loader: &Loader<FakeLoadSinks>, complete: [bool; 3]) -> Result<(), DumpError> {
    let header = header();
    let (sender, input) = mpsc::channel(8);
    sender
        .try_send(DumpItem::Header(header.clone()))
        .expect("header");
    for (index, (table, number)) in [(0, 0), (0, 1), (1, 0)].into_iter().enumerate() {
        sender
            .try_send(chunk(&header, table, number, complete[index]))
            .expect("chunk");
    }
    drop(sender);
    loader
        .load("stream", input, Arc::new(Progress::new()))
        .await
        .map(|handoff| assert_eq!(handoff.location, location()))
}

#[tokio::test]
async fn the_loader_speaks_only_the_load_traits() {
    let sinks = FakeLoadSinks::default();
    let loader = loader(&sinks);
    load(&loader, [true; 3]).await.expect("load");
    {
        let downstream = sinks.downstream();
        let database = |statement: Option<&str>| SchemaObject::Database {
            name: "store".into(),
            statement: statement.map(str::to_owned),
        };
        let table = |name: &str| SchemaObject::Table {
            table: TableRef::new("store", name),
            statement: format!("CREATE TABLE `{name}` (`id` int)"),
        };
        let view = |name: &str, select: &str| SchemaObject::View {
            view: TableRef::new("store", name),
            select: select.into(),
        };
        assert_eq!(
            downstream.objects,
            vec![
                database(Some("CREATE DATABASE `shop`")),
                table("items"),
                table("orders"),
                view("v1", "select 1"),
                view("v2", "select * from v1"),
            ]
        );
        assert_eq!(
            downstream.status,
            Some(LoadStatus {
                stage: LoadStage::Loading,
                origin: "stream".into(),
                location: location(),
                exit_point: None,
            })
        );
        assert!(downstream.chunks.values().all(|(_, loaded)| *loaded));
        let mut committed = downstream.committed.clone();
        committed.sort();
        assert_eq!(
            committed,
            vec![
                "REPLACE INTO `store`.`items` (`id`) VALUES (0)",
                "REPLACE INTO `store`.`items` (`id`) VALUES (1)",
                "REPLACE INTO `store`.`orders` (`id`) VALUES (0)",
            ]
        );
    }
    loader.mark_finished().await.expect("finished");
    let stored = loader
        .stored(Flavor::MariaDb)
        .await
        .expect("stored")
        .expect("a load");
    assert_eq!(stored.stage, LoadStage::Finished);
    assert_eq!(stored.resume.finished.len(), 3);
    assert_eq!(stored.resume.plans.len(), 2);
    loader.forget().await.expect("forget");
    assert!(
        loader
            .stored(Flavor::MariaDb)
            .await
            .expect("stored")
            .is_none()
    );
}

#[tokio::test]
async fn an_incomplete_chunk_is_loaded_by_the_next_run_only() {
    let sinks = FakeLoadSinks::default();
    let loader = loader(&sinks);
    let error = load(&loader, [true, false, true])
        .await
        .expect_err("an incomplete chunk fails the load");
    assert!(matches!(error, DumpError::Interrupted(_)), "{error}");
    // The incomplete chunk left nothing; the others stopped taking chunks, so a chunk after it
    // may or may not be loaded.
    let committed = {
        let downstream = sinks.downstream();
        assert!(
            !downstream.committed.iter().any(|sql| sql.contains("(1)")),
            "{:?}",
            downstream.committed
        );
        downstream.committed.len()
    };
    let stored = loader
        .stored(Flavor::MariaDb)
        .await
        .expect("stored")
        .expect("a load");
    assert_eq!(stored.stage, LoadStage::Loading);
    assert_eq!(stored.resume.finished.len(), committed);
    assert!(
        !stored
            .resume
            .finished
            .contains(&("shop".into(), "items".into(), 1))
    );
    // The second run gets every chunk again and loads only those not marked (the fake refuses
    // a chunk loaded twice).
    load(&loader, [true; 3]).await.expect("resumed load");
    let downstream = sinks.downstream();
    assert_eq!(downstream.committed.len(), 3);
    assert!(downstream.chunks.values().all(|(_, loaded)| *loaded));
}
