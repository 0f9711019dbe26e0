//! Criterion benches of dm-causality on one core: key computation + causality routing, compaction
//! and batch planning, for a table with a BIGINT primary key and one, two or three unique keys.
//!
//! Before the criterion runs it prints allocations per change of each hot path after warm-up,
//! counted by a global allocator wrapper. Run: `cargo bench --bench causality`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dm::causality::{
    BatchPlanner, CausalityDetector, Compactor, PendingChange, Routing, TableKeys,
};
use dm::core::{
    BinlogFileName, BinlogPosition, ColumnDefinition, ColumnType, IntegerWidth, KeyColumn,
    KeyDefinition, KeyKind, Location, Row, RowChange, RowChangeKind, TableRef, TableSchema, Value,
};

/// Counts allocations so the bench can show the hot paths do not allocate per change.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// Justification for `unsafe`: a global allocator must implement the unsafe `GlobalAlloc` trait;
// this one only counts calls and forwards them unchanged to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `pointer` came from `System` with `layout`.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const CHANGES: usize = 100_000;
const KEY_SPACE: u64 = 1_000_000;
/// The compaction window (DM's default buffer is 4096 jobs).
const WINDOW: usize = 8192;

/// A table `(id BIGINT PK, u1 INT UNIQUE, ..., payload VARCHAR(64))` with `unique_keys` unique keys.
fn schema(unique_keys: usize) -> Arc<TableSchema> {
    let int = |name: String| {
        ColumnDefinition::new(
            name,
            ColumnType::Integer {
                width: IntegerWidth::Big,
                unsigned: false,
            },
            false,
        )
    };
    let mut columns = vec![int("id".into())];
    let mut keys = vec![KeyDefinition {
        name: "PRIMARY".into(),
        kind: KeyKind::Primary,
        columns: vec![KeyColumn {
            column: 0,
            prefix_length: None,
        }],
    }];
    for index in 0..unique_keys {
        columns.push(int(format!("u{index}")));
        keys.push(KeyDefinition {
            name: format!("uk{index}"),
            kind: KeyKind::Unique,
            columns: vec![KeyColumn {
                column: index + 1,
                prefix_length: None,
            }],
        });
    }
    let mut payload = ColumnDefinition::new("payload", ColumnType::VarChar { length: 64 }, true);
    payload.collation = Some("utf8mb4_general_ci".into());
    columns.push(payload);
    Arc::new(TableSchema::new(TableRef::new("bench", "t"), columns, keys).expect("schema"))
}

/// A sysbench-like mix on random ids: 60% updates of non-key columns, 20% inserts, 20% deletes.
fn changes(schema: &Arc<TableSchema>, unique_keys: usize) -> Vec<RowChange> {
    generate(schema, unique_keys, CHANGES, KEY_SPACE)
}

/// A row of the bench table: unique values derived from the id, a payload naming the version.
fn row(unique_keys: usize, id: i64, version: i64) -> Row {
    let mut values = vec![Value::Int(id)];
    for index in 0..unique_keys {
        values.push(Value::Int(id * 8 + index as i64));
    }
    values.push(Value::Text(format!("payload-{id}-{version}")));
    Row(values)
}

/// One window of updates concentrated on 512 rows: most changes merge.
fn hot_changes(schema: &Arc<TableSchema>, unique_keys: usize) -> Vec<RowChange> {
    let mut version = 0;
    let row = |id: i64, version: i64| row(unique_keys, id, version);
    let location = Location::from_position(BinlogPosition::start_of(
        BinlogFileName::parse("mysql-bin.000001").expect("name"),
    ));
    (0..WINDOW)
        .map(|index| {
            let id = (index * 7919 % 512) as i64;
            version += 1;
            let kind = RowChangeKind::Update {
                before: row(id, version - 1),
                after: row(id, version),
            };
            RowChange::new(schema.clone(), kind, location.clone(), 0).expect("width")
        })
        .collect()
}

fn generate(
    schema: &Arc<TableSchema>,
    unique_keys: usize,
    count: usize,
    key_space: u64,
) -> Vec<RowChange> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let row = |id: i64, version: i64| row(unique_keys, id, version);
    let location = Location::from_position(BinlogPosition::start_of(
        BinlogFileName::parse("mysql-bin.000001").expect("name"),
    ));
    (0..count)
        .map(|version| {
            let id = (next() % key_space) as i64;
            let kind = match next() % 10 {
                0 | 1 => RowChangeKind::Insert {
                    after: row(id, version as i64),
                },
                2 | 3 => RowChangeKind::Delete {
                    before: row(id, version as i64),
                },
                _ => RowChangeKind::Update {
                    before: row(id, version as i64),
                    after: row(id, version as i64 + 1),
                },
            };
            RowChange::new(schema.clone(), kind, location.clone(), 0).expect("width")
        })
        .collect()
}

/// Keys and routing of every change over 16 workers; each worker acknowledges every 64 changes.
fn route_all(
    keys: &TableKeys,
    changes: &[RowChange],
    detector: &mut CausalityDetector,
    buffer: &mut Vec<u64>,
) {
    for change in changes {
        keys.causality_keys(change, buffer);
        match detector.route(buffer) {
            Routing::Assigned { worker, sequence } => {
                if sequence % 64 == 0 {
                    detector.acknowledge(worker, sequence);
                }
            }
            Routing::Conflict(_) => detector.reset(),
        }
    }
}

fn allocations_per_change(label: &str, mut run: impl FnMut()) {
    run(); // warm-up: buffers and maps reach their working size
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    println!(
        "allocations per change, {label}: {:.4}",
        (after - before) as f64 / CHANGES as f64
    );
}

fn benches(criterion: &mut Criterion) {
    for unique_keys in 1..=3 {
        let schema = schema(unique_keys);
        let keys = TableKeys::for_table(&schema);
        let changes = changes(&schema, unique_keys);
        let mut group = criterion.benchmark_group(format!("pk+{unique_keys}uk"));
        group.throughput(Throughput::Elements(CHANGES as u64));

        let mut buffer = Vec::new();
        group.bench_function("keys", |bench| {
            bench.iter(|| {
                for change in &changes {
                    keys.causality_keys(change, &mut buffer);
                    black_box(&buffer);
                }
            })
        });
        let mut detector = CausalityDetector::new(16).expect("workers");
        group.bench_function("keys+route", |bench| {
            bench.iter(|| route_all(&keys, &changes, &mut detector, &mut buffer))
        });
        group.finish();
        // Compaction consumes its input, so each run gets a fresh copy of one window of changes,
        // as the decoder would hand them over (hot in cache); the output is dropped untimed.
        let mut group = criterion.benchmark_group(format!("pk+{unique_keys}uk"));
        group.throughput(Throughput::Elements(WINDOW as u64));
        let mut compactor = Compactor::new(WINDOW);
        for (label, window) in [
            ("compact", &changes[..WINDOW]),
            ("compact-hot-rows", &hot_changes(&schema, unique_keys)[..]),
        ] {
            group.bench_function(label, |bench| {
                bench.iter_batched(
                    || (window.to_vec(), Vec::with_capacity(WINDOW)),
                    |(input, mut out)| {
                        for change in input {
                            compactor.push(change, false, &keys);
                        }
                        compactor.drain_into(&mut out);
                        out
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        let mut out = Vec::with_capacity(CHANGES);
        let pending: Vec<PendingChange> = changes
            .iter()
            .cloned()
            .map(|change| PendingChange {
                change,
                idempotent: false,
            })
            .collect();
        group.finish();
        let mut group = criterion.benchmark_group(format!("pk+{unique_keys}uk"));
        group.throughput(Throughput::Elements(CHANGES as u64));
        let mut planner = BatchPlanner::new(128);
        let mut units = Vec::with_capacity(CHANGES);
        group.bench_function("plan", |bench| {
            bench.iter(|| {
                units.clear();
                planner.plan(&pending, |_| &keys, &mut units);
                black_box(units.len())
            })
        });
        group.finish();

        allocations_per_change(&format!("pk+{unique_keys}uk keys+route"), || {
            route_all(&keys, &changes, &mut detector, &mut buffer)
        });
        let mut input = Some(changes.clone());
        let mut second = Some(changes.clone());
        let mut compactor = Compactor::new(WINDOW);
        allocations_per_change(&format!("pk+{unique_keys}uk compact"), || {
            out.clear();
            for change in input.take().or_else(|| second.take()).unwrap_or_default() {
                if compactor.is_full() {
                    compactor.drain_into(&mut out);
                }
                compactor.push(change, false, &keys);
            }
            compactor.drain_into(&mut out);
        });
        allocations_per_change(&format!("pk+{unique_keys}uk plan"), || {
            units.clear();
            planner.plan(&pending, |_| &keys, &mut units);
        });
    }
}

criterion_group!(causality, benches);
criterion_main!(causality);
