//! Criterion bench of dm-binlog decoding on one core, over a binlog recorded from sysbench
//! `oltp_write_only` on a real MariaDB (the bench starts one with dm-testkit, prepares 8 tables
//! of 10k rows, runs a fixed number of transactions with a fixed seed, and reads the files).
//!
//! - `events`: framing, CRC32 check and event decoding of every event of the files
//!   (throughput = all binlog bytes);
//! - `row events`: the same for the row events and their table maps only, plus `decode_rows`
//!   of every row image into `dm_core::Value` (throughput = row-event bytes; rows/s printed).
//!
//! Run: `cargo bench --bench binlog_decode` (needs mariadbd and sysbench: `scripts/setup.sh`).

#[path = "support/sbtest.rs"]
mod sbtest;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dm::binlog::{EventData, EventDecoder, Frame, decode_rows, frame};
use dm::core::TableSchema;
use dm_testkit::{MariaDb, MariaDbOptions};

const TABLES: usize = 8;
const TABLE_SIZE: usize = 10_000;
const TRANSACTIONS: usize = 20_000;

/// The binlog files' bytes (without the magic number), or why they could not be made.
fn record_binlog() -> Result<Vec<Vec<u8>>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    runtime.block_on(async {
        let server = MariaDb::start_with(MariaDbOptions::named("bench-binlog"))
            .await
            .map_err(|error| error.to_string())?;
        server
            .execute("CREATE DATABASE sbtest")
            .await
            .map_err(|error| error.to_string())?;
        let workload = sbtest::write_only(TABLES, TABLE_SIZE);
        workload.run(server.port(), "prepare", &["--threads=2"])?;
        workload.run(
            server.port(),
            "run",
            &[
                "--threads=2",
                "--time=0",
                &format!("--events={TRANSACTIONS}"),
            ],
        )?;
        server
            .execute("FLUSH BINARY LOGS")
            .await
            .map_err(|error| error.to_string())?;
        let mut names: Vec<_> = std::fs::read_dir(server.directory().join("data"))
            .map_err(|error| error.to_string())?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("mysql-bin.") && !name.ends_with("index"))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                std::fs::read(path)
                    .map(|bytes| bytes[4..].to_vec())
                    .map_err(|error| error.to_string())
            })
            .collect()
    })
}

/// Every event of every file: (file index, offset, bytes range).
fn split_events(files: &[Vec<u8>]) -> Vec<(usize, usize, usize)> {
    let mut events = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let mut offset = 0;
        while let Ok(Frame::Complete { length }) = frame(&file[offset..]) {
            events.push((index, offset, length));
            offset += length;
            if offset >= file.len() {
                break;
            }
        }
    }
    events
}

/// Decodes every event of every file; returns the number of events.
fn decode_all_events(files: &[Vec<u8>]) -> usize {
    let mut events = 0;
    for file in files {
        let mut decoder = EventDecoder::new("bench");
        let mut offset = 0;
        while let Ok(Frame::Complete { length }) = frame(&file[offset..]) {
            let event = decoder
                .decode(&file[offset..offset + length], offset as u64 + 4)
                .expect("recorded events decode");
            black_box(&event);
            events += 1;
            offset += length;
            if offset >= file.len() {
                break;
            }
        }
    }
    events
}

/// The row path: each file's format description, then its table maps and row events, with
/// every row image decoded to values. Returns the number of row changes.
fn decode_row_events(
    files: &[Vec<u8>],
    row_path: &[Vec<(usize, usize)>],
    schemas: &HashMap<String, TableSchema>,
) -> usize {
    let mut rows = 0;
    for (file, events) in files.iter().zip(row_path) {
        let mut decoder = EventDecoder::new("bench");
        let mut maps = HashMap::new();
        for &(offset, length) in events {
            let event = decoder
                .decode(&file[offset..offset + length], offset as u64 + 4)
                .expect("recorded events decode");
            match &event.data {
                EventData::TableMap(map) => {
                    maps.insert(map.table_id, map.clone());
                }
                EventData::Rows(rows_event) => {
                    let map = &maps[&rows_event.table_id];
                    let decoded =
                        decode_rows(rows_event, map, &schemas[&map.table]).expect("rows decode");
                    rows += decoded.len();
                    black_box(decoded);
                }
                _ => {}
            }
        }
    }
    rows
}

fn bench(criterion: &mut Criterion) {
    let files = match record_binlog() {
        Ok(files) => files,
        Err(reason) => {
            eprintln!("binlog_decode: skipped, could not record a sysbench binlog: {reason}");
            return;
        }
    };
    let total: usize = files.iter().map(Vec::len).sum();
    // The row path: format descriptions, table maps and row events, per file.
    let mut row_path = vec![Vec::new(); files.len()];
    let mut row_bytes = 0;
    for (index, offset, length) in split_events(&files) {
        let event_type = files[index][offset + 4];
        let is_rows = matches!(event_type, 23..=25 | 30..=32);
        if matches!(event_type, 15 | 19) || is_rows {
            row_path[index].push((offset, length));
            row_bytes += length;
        }
    }
    let schemas = sbtest::sbtest_schemas(TABLES);
    let started = Instant::now();
    let events = decode_all_events(&files);
    let rows = decode_row_events(&files, &row_path, &schemas);
    println!(
        "recorded binlog: {total} bytes, {events} events; row path (table maps + row events): {row_bytes} bytes, {rows} row changes (one pass {:?})",
        started.elapsed()
    );
    let mut group = criterion.benchmark_group("binlog decode");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("all events", |bencher| {
        bencher.iter(|| black_box(decode_all_events(&files)))
    });
    group.throughput(Throughput::Bytes(row_bytes as u64));
    group.bench_function("row events to values (bytes)", |bencher| {
        bencher.iter(|| black_box(decode_row_events(&files, &row_path, &schemas)))
    });
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("row events to values (rows)", |bencher| {
        bencher.iter(|| black_box(decode_row_events(&files, &row_path, &schemas)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
