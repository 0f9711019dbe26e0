//! Can the binlog client keep up with a MariaDB primary written at full speed, with CPU to
//! spare? A MariaDB (dm-testkit) runs sysbench `oltp_write_only` (8 tables of 10k rows, 4
//! threads, 20 s) while a `RemoteSource` on one runtime thread follows its binlog and decodes
//! every row to values. Printed: the write rate, what the client read and decoded, the client's
//! CPU use (share of one core), and how far behind it was when the writes stopped.
//!
//! Run: `cargo bench --bench binlog_follow` (needs mariadbd and sysbench: `scripts/setup.sh`).

#[path = "support/process.rs"]
mod process;
#[path = "support/sbtest.rs"]
mod sbtest;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dm::binlog::{EventData, RemoteOptions, RemoteSource, StartPoint, decode_rows};
use dm::core::BinlogPosition;
use dm_testkit::{MariaDb, MariaDbOptions};

const SECONDS: u64 = 20;

fn sysbench(port: u16, phase: &str, extra: &[&str]) -> String {
    sbtest::write_only(8, 10_000)
        .run(port, phase, extra)
        .expect("sysbench runs")
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: only run the
    // measurement when benchmarking.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let setup = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = match setup.block_on(MariaDb::start_with(MariaDbOptions::named("bench-follow"))) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("binlog_follow: skipped: {error}");
            return;
        }
    };
    setup
        .block_on(server.execute("CREATE DATABASE sbtest"))
        .expect("database");
    sysbench(server.port(), "prepare", &["--threads=2"]);
    let (file, offset) = setup.block_on(server.binlog_position()).expect("position");
    let start = BinlogPosition::parse(&format!("{file}:{offset}")).expect("start");

    // The follower: one runtime thread, decoding every row.
    let read_bytes = Arc::new(AtomicU64::new(0));
    let decoded_rows = Arc::new(AtomicU64::new(0));
    let reached = Arc::new(std::sync::Mutex::new(start.clone()));
    let follower = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", 4242);
    let (bytes_counter, rows_counter, reached_position) =
        (read_bytes.clone(), decoded_rows.clone(), reached.clone());
    let follower_thread = std::thread::spawn(move || {
        follower.block_on(async move {
            let mut source = RemoteSource::connect(&options, &StartPoint::Position(start))
                .await
                .expect("connect");
            let schemas = sbtest::sbtest_schemas(8);
            let mut maps = HashMap::new();
            while let Ok(Some(event)) = source.next_event().await {
                bytes_counter.fetch_add(event.raw.len() as u64, Ordering::Relaxed);
                match &event.event.data {
                    EventData::TableMap(map) => {
                        maps.insert(map.table_id, map.clone());
                    }
                    EventData::Rows(rows) => {
                        if let Some(map) = maps.get(&rows.table_id)
                            && let Some(schema) = schemas.get(&map.table)
                        {
                            let decoded = decode_rows(rows, map, schema).expect("rows decode");
                            rows_counter.fetch_add(decoded.len() as u64, Ordering::Relaxed);
                        }
                    }
                    _ => {}
                }
                if !event.artificial
                    && let Ok(mut position) = reached_position.lock()
                {
                    *position = event.next_position.clone();
                }
            }
        });
    });

    let cpu_before = process::cpu_seconds("self");
    let started = Instant::now();
    let report = sysbench(
        server.port(),
        "run",
        &["--threads=4", &format!("--time={SECONDS}"), "--events=0"],
    );
    let written_for = started.elapsed();
    let (end_file, end_offset) = setup.block_on(server.binlog_position()).expect("end");
    let end = BinlogPosition::parse(&format!("{end_file}:{end_offset}")).expect("end");
    let behind_at_end = {
        let position = reached.lock().expect("position").clone();
        if position.file == end.file {
            end.offset.saturating_sub(position.offset)
        } else {
            end.offset
        }
    };
    let catch_up_started = Instant::now();
    while *reached.lock().expect("position") != end {
        assert!(
            catch_up_started.elapsed() < Duration::from_secs(120),
            "the follower did not catch up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let catch_up = catch_up_started.elapsed();
    let cpu = process::cpu_seconds("self") - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let transactions = report
        .lines()
        .find(|line| line.contains("transactions:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    let bytes = read_bytes.load(Ordering::Relaxed) as f64;
    let rows = decoded_rows.load(Ordering::Relaxed) as f64;
    println!("sysbench oltp_write_only, 4 threads, {written_for:.1?}: {transactions}");
    println!(
        "follower read {:.1} MB ({:.1} MB/s of binlog), decoded {rows:.0} row changes ({:.0}/s)",
        bytes / 1e6,
        bytes / 1e6 / wall,
        rows / wall
    );
    println!(
        "follower CPU: {cpu:.2} s over {wall:.1} s = {:.1}% of one core; {behind_at_end} bytes behind when the writes stopped, caught up {catch_up:.1?} later",
        100.0 * cpu / wall
    );
    drop(server);
    let _ = follower_thread;
}
