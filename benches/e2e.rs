//! The end-to-end benchmark: this project against what users would pick instead, on one machine
//! and in one run (`scripts/bench.sh`; `cargo bench --bench e2e -- [--quick]`).
//!
//! ```text
//! upstream (sysbench prepare: 8 tables) --full--> ours        (our direct stream)      timed
//!                                        --full--> ours-tuned  (our files)              timed
//!                                        --full--> serial      (mydumper + myloader)    timed
//!                                        --full--> optimistic, aggressive (untimed copies)
//! then per workload (oltp_write_only, oltp_insert, oltp_update_non_index) a fixed binlog slice
//! is generated upstream with every follower stopped, and each catches up alone from where it
//! stands (all stand at the same position):
//!   ours        our syncer with DM's defaults (16 workers, batch 100), a child process whose
//!               peak RSS and CPU time are read from /proc
//!   ours-tuned  our syncer with 4 workers, batch 1000 (what suits a 2-core downstream)
//!   serial      MariaDB replication, slave_parallel_threads=0
//!   optimistic  MariaDB replication, 4 threads, optimistic
//!   aggressive  MariaDB replication, 4 threads, aggressive
//! every server is compared with the upstream by CHECKSUM TABLE after every load and catch-up;
//! after oltp_insert, the raw batched-INSERT capacity of a downstream is measured (baselines C);
//! memory: ours alone catches up a write-only backlog twice as large; peak RSS is compared.
//! ```
//!
//! Servers run with the baselines' settings (`../shared/reference/baselines.md`): 1 GiB buffer
//! pool, 512 MiB redo log, `innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`, binlog on.
//! Writers into the downstreams do not binlog, on every side: myloader's default, the replica's
//! `log_slave_updates=OFF`, and `session: sql_log_bin: OFF` in our task file.
//!
//! The results are printed as Markdown and written to `target/e2e-results.md` (or `--output`). `--quick` runs a
//! tenth of the data (a smoke test); `--focus[=<workload>]` runs only one workload (default
//! `oltp_write_only`) against the serial
//! replica, with no mydumper and no memory run (for tuning).

#[path = "support/process.rs"]
mod process;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dm_testkit::workloads::Sysbench;
use dm_testkit::{MariaDb, MariaDbOptions};

/// The dataset and the binlog slices.
#[derive(Clone, Copy, Debug)]
struct Scale {
    tables: usize,
    table_size: usize,
    write_only_events: usize,
    insert_events: usize,
    update_events: usize,
}

const FULL_SCALE: Scale = Scale {
    tables: 8,
    table_size: 100_000,
    // 4 row changes each: 500 000, as in baselines.md.
    write_only_events: 125_000,
    insert_events: 300_000,
    update_events: 300_000,
};

const QUICK_SCALE: Scale = Scale {
    tables: 8,
    table_size: 10_000,
    write_only_events: 10_000,
    insert_events: 20_000,
    update_events: 20_000,
};

/// Dump threads and load connections on every side (mydumper/myloader `-t 4`).
const THREADS: usize = 4;
/// Rows per mydumper file (`-r 20000`, baselines.md; measured faster for myloader here than
/// 100 000). Ours keeps its default chunking (up to 200 000 rows or 64 MiB per chunk).
const CHUNK_ROWS: usize = 20_000;

/// The followers of the incremental runs: (downstream name, MariaDB parallel threads and mode).
const REPLICAS: [(&str, u32, &str); 3] = [
    ("serial", 0, "conservative"),
    ("optimistic", 4, "optimistic"),
    ("aggressive", 4, "aggressive"),
];

fn main() -> Result<()> {
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| argument != "--bench")
        .collect();
    if arguments.first().map(String::as_str) == Some("child") {
        return child::main(&arguments[1..]);
    }
    // `cargo test --benches` passes no --bench: only measure when benchmarking.
    if !std::env::args().any(|argument| argument == "--bench") {
        return Ok(());
    }
    let flag = |name: &str| arguments.iter().any(|argument| argument == name);
    let scale = if flag("--quick") {
        QUICK_SCALE
    } else {
        FULL_SCALE
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // `--focus` or `--focus=<workload>`.
    let focus = arguments.iter().find_map(|argument| {
        argument.strip_prefix("--focus").map(|rest| {
            rest.strip_prefix('=')
                .unwrap_or("oltp_write_only")
                .to_owned()
        })
    });
    // `--output <path>`: where the Markdown table goes (default `target/e2e-results.md`).
    let output = arguments
        .iter()
        .position(|argument| argument == "--output")
        .and_then(|index| arguments.get(index + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-results.md"));
    runtime.block_on(harness(scale, focus, &output))
}

/// A server of the bench with the baselines' settings.
async fn start_server(name: &str) -> Result<MariaDb> {
    let options = MariaDbOptions::named(&format!("bench-{name}"))
        .arg("--innodb-buffer-pool-size=1G")
        .arg("--innodb-log-file-size=512M");
    MariaDb::start_with(options)
        .await
        .with_context(|| format!("starting the {name} server (scripts/setup.sh installs mariadbd)"))
}

async fn first_row(server: &MariaDb, sql: &str) -> Result<Vec<String>> {
    let rows = server.query(sql).await?;
    Ok(rows
        .into_iter()
        .next()
        .with_context(|| format!("{}: no row from {sql}", server.name()))?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// `CHECKSUM TABLE` of every sysbench table.
async fn checksums(server: &MariaDb, tables: usize) -> Result<Vec<String>> {
    let list: Vec<String> = (1..=tables).map(|t| format!("sbtest.sbtest{t}")).collect();
    let rows = server
        .query(&format!("CHECKSUM TABLE {}", list.join(", ")))
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect())
}

async fn verify(upstream: &MariaDb, downstream: &MariaDb, tables: usize) -> Result<&'static str> {
    let (expected, actual) = (
        checksums(upstream, tables).await?,
        checksums(downstream, tables).await?,
    );
    if expected != actual {
        bail!(
            "{} differs from the upstream: {actual:?} vs {expected:?}",
            downstream.name()
        );
    }
    Ok("equal")
}

/// The machine, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or_else(|| "?".into(), |kib| format!("{} GiB", kib >> 20));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} x {model}, {memory} RAM, Linux {}", kernel.trim())
}

fn server_cpu(server: &MariaDb) -> f64 {
    server
        .pid()
        .map_or(0.0, |pid| process::cpu_seconds(&pid.to_string()))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// What a child run printed: `key=value` pairs on its `result` line.
#[derive(Debug, Default)]
struct ChildResult {
    seconds: f64,
    values: Vec<(String, String)>,
}

impl ChildResult {
    fn get(&self, key: &str) -> Result<u64> {
        self.values
            .iter()
            .find(|(name, _)| name == key)
            .with_context(|| format!("the child printed no {key}"))?
            .1
            .parse()
            .with_context(|| format!("the child's {key}"))
    }

    fn seconds_of(&self, key: &str) -> f64 {
        self.values
            .iter()
            .find(|(name, _)| name == key)
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Runs this binary as `child <arguments>`; times it from spawn to exit.
fn run_child(arguments: &[&str]) -> Result<ChildResult> {
    let started = Instant::now();
    let output = Command::new(std::env::current_exe()?)
        .arg("child")
        .args(arguments)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting the child")?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("child {arguments:?} failed: {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("result "))
        .with_context(|| format!("child {arguments:?} printed no result: {stdout}"))?;
    Ok(ChildResult {
        seconds,
        values: line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
    })
}

/// Our syncer's configurations: DM's defaults, and the one that suits a 2-core downstream.
#[derive(Clone, Copy, Debug)]
struct Variant {
    server: &'static str,
    label: &'static str,
    workers: usize,
    batch: usize,
}

const VARIANTS: [Variant; 2] = [
    Variant {
        server: "ours",
        label: "ours, DM defaults (16 workers, batch 100)",
        workers: 16,
        batch: 100,
    },
    Variant {
        server: "ours-tuned",
        label: "ours, 4 workers, batch 1000",
        workers: 4,
        batch: 1000,
    },
];

/// A downstream of ours and its task file.
struct Ours {
    variant: Variant,
    server: MariaDb,
    task: PathBuf,
}

/// Our task file for a downstream: DM's format, as a user writes it.
fn task_file(
    downstream: &MariaDb,
    directory: &Path,
    start: &(String, u64),
    variant: Variant,
) -> String {
    format!(
        "name: bench
task-mode: all
meta-schema: dm_meta
target-database:
  host: 127.0.0.1
  port: {port}
  user: root
  password: \"\"
  session:
    sql_log_bin: \"OFF\"
block-allow-list:
  bench:
    do-dbs: [sbtest]
mydumpers:
  global:
    threads: {THREADS}
loaders:
  global:
    pool-size: {THREADS}
    dir: {directory}
syncers:
  global:
    worker-count: {workers}
    batch: {batch}
mysql-instances:
  - source-id: bench-upstream
    block-allow-list: bench
    mydumper-config-name: global
    loader-config-name: global
    syncer-config-name: global
    meta:
      binlog-name: {file}
      binlog-pos: {position}
",
        port = downstream.port(),
        directory = directory.display(),
        workers = variant.workers,
        batch = variant.batch,
        file = start.0,
        position = start.1,
    )
}

fn write_task(
    work: &Path,
    downstream: &MariaDb,
    start: &(String, u64),
    variant: Variant,
) -> Result<PathBuf> {
    let path = work.join(format!("{}.yaml", downstream.name()));
    std::fs::write(
        &path,
        task_file(downstream, &work.join(downstream.name()), start, variant),
    )?;
    Ok(path)
}

fn run_tool(program: &str, arguments: &[&str]) -> Result<f64> {
    let started = Instant::now();
    let output = Command::new(program)
        .args(arguments)
        .output()
        .with_context(|| format!("{program} (scripts/bench.sh installs it)"))?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Timed rounds of each full migration tool (the median is reported).
const FULL_ROUNDS: usize = 3;

/// One full-migration tool and its empty target.
struct FullTool<'a> {
    label: &'static str,
    target: &'a MariaDb,
    /// Ours: the child's mode (`stream`, `files`) and the task file; `None`: mydumper + myloader.
    ours: Option<(&'static str, &'a Path)>,
    runs: Vec<FullRun>,
}

impl<'a> FullTool<'a> {
    fn ours(label: &'static str, mode: &'static str, ours: &'a Ours) -> Self {
        FullTool {
            label,
            target: &ours.server,
            ours: Some((mode, &ours.task)),
            runs: Vec::new(),
        }
    }

    fn mydumper(target: &'a MariaDb) -> Self {
        FullTool {
            label: "mydumper + myloader",
            target,
            ours: None,
            runs: Vec::new(),
        }
    }
}

struct FullRun {
    seconds: f64,
    dump_seconds: f64,
    our_cpu: Option<f64>,
    peak_rss_kib: Option<u64>,
    downstream_cpu: f64,
}

/// mydumper then myloader (`-t 4`, 20 000 rows per file), as baselines.md runs them.
fn mydumper_and_myloader(work: &Path, port: &str, target: &MariaDb) -> Result<FullRun> {
    let directory = work.join("mydumper");
    let directory = path_text(&directory)?;
    let threads = THREADS.to_string();
    let rows = CHUNK_ROWS.to_string();
    let dump_seconds = run_tool(
        "mydumper",
        &[
            "-h",
            "127.0.0.1",
            "-P",
            port,
            "-u",
            "root",
            "-B",
            "sbtest",
            "-t",
            &threads,
            "-r",
            &rows,
            "-o",
            directory,
        ],
    )?;
    let target_port = target.port().to_string();
    let load_seconds = run_tool(
        "myloader",
        &[
            "-h",
            "127.0.0.1",
            "-P",
            &target_port,
            "-u",
            "root",
            "-d",
            directory,
            "-t",
            &threads,
        ],
    )?;
    Ok(FullRun {
        seconds: dump_seconds + load_seconds,
        dump_seconds,
        our_cpu: None,
        peak_rss_kib: None,
        downstream_cpu: 0.0,
    })
}

/// One row of the report.
struct Row {
    section: &'static str,
    workload: String,
    tool: String,
    rows: u64,
    seconds: f64,
    extra: String,
}

impl Row {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }

    fn is_ours(&self) -> bool {
        self.tool.starts_with("ours")
    }
}

async fn harness(scale: Scale, focus: Option<String>, output: &Path) -> Result<()> {
    let focused = focus.is_some();
    let work = tempfile::tempdir()?;
    let followers = if focused {
        &REPLICAS[..1]
    } else {
        &REPLICAS[..]
    };
    println!(
        "starting {} servers ...",
        1 + VARIANTS.len() + followers.len()
    );
    let upstream = start_server("upstream").await?;
    let mut ours_servers = Vec::new();
    for variant in VARIANTS {
        ours_servers.push((variant, start_server(variant.server).await?));
    }
    let mut replicas = Vec::new();
    for (name, _, _) in followers {
        replicas.push(start_server(name).await?);
    }
    let version = first_row(&upstream, "SELECT VERSION()").await?.join("");
    let mut report: Vec<Row> = Vec::new();
    let tables = scale.tables;

    // The dataset.
    upstream.execute("CREATE DATABASE sbtest").await?;
    let prepare = Sysbench {
        workload: "oltp_write_only",
        tables,
        table_size: scale.table_size,
    };
    println!(
        "sysbench prepare: {tables} tables x {} rows ...",
        scale.table_size
    );
    prepare
        .run(upstream.port(), "prepare", &["--threads=2"])
        .map_err(anyhow::Error::msg)?;
    let list: Vec<String> = (1..=tables).map(|t| format!("sbtest.sbtest{t}")).collect();
    upstream
        .execute(&format!("ANALYZE TABLE {}", list.join(", ")))
        .await?;
    let rows_total = (tables * scale.table_size) as u64;
    let megabytes: f64 = first_row(
        &upstream,
        "SELECT SUM(data_length + index_length) / 1048576 FROM information_schema.tables WHERE table_schema = 'sbtest'",
    )
    .await?
    .join("")
    .parse()
    .unwrap_or(0.0);
    let start = upstream.binlog_position().await?;
    let port = upstream.port().to_string();

    // Full: ours (direct stream, files) and mydumper + myloader, each into an empty server,
    // in rounds (the order rotates); the other followers get an untimed copy.
    println!("full migration: {rows_total} rows, {megabytes:.1} MB of InnoDB data and indexes");
    let mut ours = Vec::new();
    for (variant, server) in ours_servers {
        let task = write_task(work.path(), &server, &start, variant)?;
        ours.push(Ours {
            variant,
            server,
            task,
        });
    }
    let mut copies = replicas.iter();
    let mydumper_target = if focused { None } else { copies.next() };
    let mut tools: Vec<FullTool> = vec![
        FullTool::ours("ours, direct stream", "stream", &ours[0]),
        FullTool::ours("ours, files", "files", &ours[1]),
    ];
    if let Some(target) = mydumper_target {
        tools.push(FullTool::mydumper(target));
    }
    let rounds = if focused { 1 } else { FULL_ROUNDS };
    for round in 0..rounds {
        let count = tools.len();
        for index in 0..count {
            let tool = &mut tools[(index + round) % count];
            tool.target
                .execute("DROP DATABASE IF EXISTS sbtest; DROP DATABASE IF EXISTS dm_meta")
                .await?;
            // The task's dump directory: `<loaders dir>.<task name>`.
            let _ =
                std::fs::remove_dir_all(work.path().join(format!("{}.bench", tool.target.name())));
            let _ = std::fs::remove_dir_all(work.path().join("mydumper"));
            let cpu_before = server_cpu(tool.target);
            let run = match tool.ours {
                None => mydumper_and_myloader(work.path(), &port, tool.target)?,
                Some((mode, task)) => {
                    let result = run_child(&["full", mode, path_text(task)?, &port])?;
                    FullRun {
                        seconds: result.seconds,
                        dump_seconds: result.seconds_of("dump_seconds"),
                        our_cpu: Some(result.seconds_of("cpu_seconds")),
                        peak_rss_kib: Some(result.get("peak_rss_kib")?),
                        downstream_cpu: 0.0,
                    }
                }
            };
            let run = FullRun {
                downstream_cpu: server_cpu(tool.target) - cpu_before,
                ..run
            };
            verify(&upstream, tool.target, tables).await?;
            println!("  {}: {:.2} s", tool.label, run.seconds);
            tool.runs.push(run);
        }
    }
    for tool in &mut tools {
        tool.runs
            .sort_by(|left, right| left.seconds.total_cmp(&right.seconds));
        let median = &tool.runs[tool.runs.len() / 2];
        let all: Vec<String> = tool
            .runs
            .iter()
            .map(|run| format!("{:.2}", run.seconds))
            .collect();
        let mut extra = format!(
            "{:.1} MB/s; median of {} s",
            megabytes / median.seconds.max(1e-9),
            all.join(" / ")
        );
        if median.dump_seconds > 0.0 {
            let _ = write!(extra, "; dump {:.1} s", median.dump_seconds);
        }
        let _ = write!(extra, "; CPU s: downstream {:.1}", median.downstream_cpu);
        if let Some(cpu) = median.our_cpu {
            let _ = write!(extra, ", ours {cpu:.1}");
        }
        if let Some(peak) = median.peak_rss_kib {
            let _ = write!(extra, "; peak RSS {} MiB", peak >> 10);
        }
        report.push(Row {
            section: "full",
            workload: format!("dump+load {tables}x{}", scale.table_size),
            tool: tool.label.to_owned(),
            rows: rows_total,
            seconds: median.seconds,
            extra,
        });
    }
    for target in copies {
        let task = write_task(work.path(), target, &start, VARIANTS[0])?;
        run_child(&["full", "stream", path_text(&task)?, &port])?;
        verify(&upstream, target, tables).await?;
    }

    // Incremental: every follower starts where the copies were taken.
    for replica in &replicas {
        replica
            .execute(&format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_LOG_FILE='{}', MASTER_LOG_POS={}, MASTER_USE_GTID=no",
                upstream.port(),
                start.0,
                start.1
            ))
            .await?;
    }
    let workloads = [
        ("oltp_write_only", scale.write_only_events),
        ("oltp_insert", scale.insert_events),
        ("oltp_update_non_index", scale.update_events),
    ];
    let mut peaks = Vec::new();
    for &(name, events) in workloads
        .iter()
        .filter(|(name, _)| focus.as_deref().is_none_or(|focus| focus == *name))
    {
        let workload = Sysbench {
            workload: name,
            tables,
            table_size: scale.table_size,
        };
        let workload_peaks =
            incremental(&upstream, &ours, &replicas, workload, events, &mut report).await?;
        if name == "oltp_write_only" {
            peaks = workload_peaks;
        }
        if name == "oltp_insert" {
            raw_insert_capacity(&ours[1].server, events, &mut report).await?;
        }
    }

    // Memory: twice the write-only backlog, ours alone.
    if !focused {
        memory(&upstream, &ours, scale, &peaks, &mut report).await?;
    }
    let text = render(&report, &machine(), &version, scale);
    println!("\n{text}");
    std::fs::write(output, &text).with_context(|| format!("writing {}", output.display()))?;
    println!("written to {}", output.display());
    Ok(())
}

/// Each of ours alone catches up a write-only backlog twice the size of the first.
async fn memory(
    upstream: &MariaDb,
    ours: &[Ours],
    scale: Scale,
    peaks: &[u64],
    report: &mut Vec<Row>,
) -> Result<()> {
    let port = upstream.port().to_string();
    let events = scale.write_only_events * 2;
    println!("memory: oltp_write_only, {events} transactions, ours alone ...");
    let generation = Sysbench {
        workload: "oltp_write_only",
        tables: scale.tables,
        table_size: scale.table_size,
    };
    generate(upstream, generation, events)?;
    for (index, ours) in ours.iter().enumerate() {
        let result = run_child(&["sync", path_text(&ours.task)?, &port])?;
        verify(upstream, &ours.server, scale.tables).await?;
        let peak = result.get("peak_rss_kib")?;
        report.push(Row {
            section: "memory",
            workload: format!("oltp_write_only, {events} trx (2x the backlog above)"),
            tool: ours.variant.label.into(),
            rows: result.get("rows")?,
            seconds: result.seconds,
            extra: format!(
                "peak RSS {} MiB (1x backlog: {} MiB)",
                peak >> 10,
                peaks.get(index).copied().unwrap_or(0) >> 10
            ),
        });
    }
    Ok(())
}

/// The downstream's raw capacity for batched inserts, as baselines.md measures it: sysbench-
/// shaped rows with explicit keys, 1000 per INSERT, 8 connections, binlog off, statements
/// built before the clock starts.
async fn raw_insert_capacity(server: &MariaDb, rows: usize, report: &mut Vec<Row>) -> Result<()> {
    const PER_STATEMENT: usize = 1000;
    const CONNECTIONS: usize = 8;
    let mut setup = String::from("CREATE DATABASE rawcap;");
    for table in 1..=8 {
        let _ = write!(
            setup,
            "CREATE TABLE rawcap.t{table} (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k));"
        );
    }
    server.execute(&setup).await?;
    let mut statements = Vec::new();
    let mut id = 0usize;
    while id < rows {
        let table = statements.len() % 8 + 1;
        let mut sql = format!("INSERT INTO rawcap.t{table} (id, k, c, pad) VALUES ");
        for index in 0..PER_STATEMENT.min(rows - id) {
            id += 1;
            let _ = write!(
                sql,
                "{}({id}, {}, '{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}', '{:011}-{:011}-{:011}-{:011}-{:011}')",
                if index == 0 { "" } else { ", " },
                id * 7 % 100_000,
                id,
                id * 3,
                id * 5,
                id * 7,
                id * 11,
                id * 13,
                id * 17,
                id * 19,
                id * 23,
                id * 29,
                id * 31,
                id * 37,
                id * 41,
                id * 43,
                id * 47
            );
        }
        statements.push(sql);
    }
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut connection = server.connect().await?;
        mysql_async::prelude::Queryable::query_drop(&mut connection, "SET SESSION sql_log_bin = 0")
            .await?;
        connections.push(connection);
    }
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); CONNECTIONS];
    for (index, statement) in statements.into_iter().enumerate() {
        shares[index % CONNECTIONS].push(statement);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut connection, share) in connections.into_iter().zip(shares) {
        tasks.push(tokio::spawn(async move {
            for statement in share {
                mysql_async::prelude::Queryable::query_drop(&mut connection, statement).await?;
            }
            Ok::<_, mysql_async::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    server.execute("DROP DATABASE rawcap").await?;
    report.push(Row {
        section: "incremental",
        workload: format!("oltp_insert ({rows} row changes)"),
        tool: "downstream raw capacity: INSERT 1000 rows/statement, 8 connections".into(),
        rows: rows as u64,
        seconds,
        extra: "binlog off, statements built before the clock (baselines.md C)".into(),
    });
    Ok(())
}

fn path_text(path: &Path) -> Result<&str> {
    path.to_str().context("a temp path that is not UTF-8")
}

/// Runs `events` transactions of `workload` upstream (4 threads, as in baselines.md).
fn generate(upstream: &MariaDb, workload: Sysbench<'_>, events: usize) -> Result<()> {
    let events = format!("--events={events}");
    workload
        .run(
            upstream.port(),
            "run",
            &["--threads=4", "--time=0", &events, "--rand-seed=2"],
        )
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

/// With `DM_BENCH_PERF=<directory>`, `perf record -a -g` runs while ours catches up, into
/// `<directory>/<workload>-<server>.perf` (read it with `perf report -i`).
fn start_profiler(name: &str) -> Result<Option<std::process::Child>> {
    let Some(directory) = std::env::var_os("DM_BENCH_PERF") else {
        return Ok(None);
    };
    let output = Path::new(&directory).join(format!("{name}.perf"));
    let child = Command::new("perf")
        .args(["record", "-a", "-g", "-F", "499", "-o"])
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("DM_BENCH_PERF is set: starting perf")?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    Ok(Some(child))
}

fn stop_profiler(profiler: Option<std::process::Child>) -> Result<()> {
    if let Some(mut child) = profiler {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()?;
        child.wait()?;
    }
    Ok(())
}

/// One incremental workload: generate the slice with every follower stopped, then each
/// catches up alone from where it stood. Returns our peak RSS (KiB) per variant.
async fn incremental(
    upstream: &MariaDb,
    ours: &[Ours],
    replicas: &[MariaDb],
    workload: Sysbench<'_>,
    events: usize,
    report: &mut Vec<Row>,
) -> Result<Vec<u64>> {
    println!(
        "incremental: {} x {events} transactions ...",
        workload.workload
    );
    let started = Instant::now();
    generate(upstream, workload, events)?;
    let generated = started.elapsed().as_secs_f64();
    let (end_file, end_position) = upstream.binlog_position().await?;
    let port = upstream.port().to_string();
    println!("  generated in {generated:.1} s");

    let mut peaks = Vec::new();
    let mut rows = 0;
    let mut ours_rows = Vec::new();
    for ours in ours {
        let load = load_average();
        let cpu_before = (server_cpu(upstream), server_cpu(&ours.server));
        let profiler = start_profiler(&format!("{}-{}", workload.workload, ours.variant.server))?;
        let result = run_child(&["sync", path_text(&ours.task)?, &port]);
        stop_profiler(profiler)?;
        let result = result?;
        let cpu = format!(
            "CPU s: ours {:.1}, downstream {:.1}, upstream {:.1}",
            result.seconds_of("cpu_seconds"),
            server_cpu(&ours.server) - cpu_before.1,
            server_cpu(upstream) - cpu_before.0
        );
        verify(upstream, &ours.server, workload.tables).await?;
        rows = result.get("rows")?;
        let peak = result.get("peak_rss_kib")?;
        peaks.push(peak);
        println!("  {}: {:.1} s", ours.variant.label, result.seconds);
        ours_rows.push(Row {
            section: "incremental",
            workload: String::new(),
            tool: ours.variant.label.into(),
            rows,
            seconds: result.seconds,
            extra: format!("peak RSS {} MiB, {cpu}, load {load}", peak >> 10),
        });
    }
    let name = format!("{} ({rows} row changes)", workload.workload);
    for mut row in ours_rows {
        row.workload = name.clone();
        report.push(row);
    }
    for (replica, (_, threads, mode)) in replicas.iter().zip(REPLICAS) {
        let load = load_average();
        replica
            .execute(&format!(
                "SET GLOBAL slave_parallel_threads = {threads}; SET GLOBAL slave_parallel_mode = '{mode}'"
            ))
            .await?;
        let cpu_before = (server_cpu(upstream), server_cpu(replica));
        let started = Instant::now();
        replica.execute("START SLAVE").await?;
        let waited = first_row(
            replica,
            &format!("SELECT MASTER_POS_WAIT('{end_file}', {end_position}, 1800)"),
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = format!(
            "CPU s: replica {:.1}, upstream {:.1}",
            server_cpu(replica) - cpu_before.1,
            server_cpu(upstream) - cpu_before.0
        );
        replica.execute("STOP SLAVE").await?;
        if waited
            .first()
            .is_none_or(|value| value.is_empty() || value == "-1")
        {
            bail!("{} did not catch up: {waited:?}", replica.name());
        }
        verify(upstream, replica, workload.tables).await?;
        println!("  MariaDB {mode} ({threads} threads): {seconds:.1} s");
        report.push(Row {
            section: "incremental",
            workload: name.clone(),
            tool: if threads == 0 {
                "MariaDB replica, serial".into()
            } else {
                format!("MariaDB replica, {threads} threads {mode}")
            },
            rows,
            seconds,
            extra: format!("{cpu}, load {load}"),
        });
    }
    Ok(peaks)
}

/// The report: one table, with ours against each alternative.
fn render(report: &[Row], machine: &str, version: &str, scale: Scale) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Machine: {machine}; {version} as upstream and downstreams; dataset {}x{} rows.\n",
        scale.tables, scale.table_size
    );
    let _ = writeln!(
        text,
        "| section | workload | tool | rows | seconds | rows/s | ours vs this | notes |\n|---|---|---|---:|---:|---:|---:|---|"
    );
    for row in report {
        let ratios: Vec<String> = if row.is_ours() {
            Vec::new()
        } else {
            report
                .iter()
                .filter(|ours| {
                    ours.is_ours() && ours.section == row.section && ours.workload == row.workload
                })
                .map(|ours| format!("{:.2}x", ours.rate() / row.rate().max(1e-9)))
                .collect()
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {} |",
            row.section,
            row.workload,
            row.tool,
            row.rows,
            row.seconds,
            row.rate(),
            ratios.join(" / "),
            row.extra
        );
    }
    let _ = writeln!(
        text,
        "\n\"ours vs this\": our rate divided by this row's, for each of our rows of the same \
         workload in table order (full: direct stream / files; incremental: DM defaults / tuned)."
    );
    text
}

/// Our side of each run, in a child process so that its memory is its own.
mod child {
    use std::sync::Arc;
    use std::time::Instant;

    use anyhow::{Context, Result, bail};
    use dm::binlog::RemoteOptions;
    use dm::core::{BinlogFileName, BinlogPosition, Flavor, Location};
    use dm::dumpload::{
        DumpLoadConfig, Loader, Progress, dump_to_directory, load_directory, migrate_stream,
    };
    use dm::syncer::{SyncerSettings, SyncerStatus, run, sink_options};
    use dm::task::TaskConfig;
    use dm::task::config::DatabaseConfig;

    /// Peak resident memory of this process (VmHWM), in KiB.
    fn peak_rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// `child sync <task.yaml> <upstream port>` or `child full stream|files <task.yaml> <port>`.
    pub fn main(arguments: &[String]) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        match arguments {
            [command, task, port] if command == "sync" => {
                runtime.block_on(sync(task, port.parse()?))
            }
            [command, how, task, port] if command == "full" => {
                runtime.block_on(full(how, task, port.parse()?))
            }
            _ => bail!("child: unexpected arguments {arguments:?}"),
        }
    }

    fn read_task(path: &str) -> Result<TaskConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        Ok(TaskConfig::from_yaml(&text, path)?)
    }

    async fn sync(task: &str, port: u16) -> Result<()> {
        let task = read_task(task)?;
        let instance = &task.mysql_instances[0];
        let rules = task.rules_for(instance)?;
        let meta = instance.meta.as_ref().context("the task has no meta")?;
        let file = BinlogFileName::parse(meta.binlog_name.as_deref().unwrap_or_default())?;
        let start =
            Location::from_position(BinlogPosition::new(file, meta.binlog_pos.unwrap_or(4)));
        let mut remote = RemoteOptions::new(
            "127.0.0.1",
            port,
            "root",
            "",
            4_000 + u32::from(port % 1000),
        );
        remote.stop_at_end = true;
        let settings = SyncerSettings::from_task(&task, instance, Flavor::MariaDb);
        let (_stop_sender, stop) = tokio::sync::watch::channel(false);
        let (progress, _updates) = tokio::sync::watch::channel(SyncerStatus::default());
        let status = run(
            settings,
            remote,
            start,
            sink_options(&task.target_database),
            rules,
            stop,
            progress,
        )
        .await?;
        println!(
            "result rows={} peak_rss_kib={} cpu_seconds={:.2}",
            status.rows_dispatched,
            peak_rss_kib(),
            super::process::cpu_seconds("self")
        );
        Ok(())
    }

    async fn full(how: &str, task: &str, port: u16) -> Result<()> {
        let task = read_task(task)?;
        let instance = &task.mysql_instances[0];
        let rules = task.rules_for(instance)?;
        let config = DumpLoadConfig::from_task(&task, instance)?;
        let from = DatabaseConfig {
            host: "127.0.0.1".into(),
            port,
            user: "root".into(),
            ..DatabaseConfig::default()
        };
        let dump = config.dump_options(&from, Flavor::MariaDb);
        let loader = Loader::new(config.load_options(&task, instance), rules.router.clone())?;
        let progress = || Arc::new(Progress::new());
        let started = Instant::now();
        match how {
            "stream" => {
                migrate_stream(
                    &dump,
                    &rules.block_allow_list,
                    &loader,
                    progress(),
                    progress(),
                )
                .await?;
                println!(
                    "result seconds={:.3} peak_rss_kib={} cpu_seconds={:.2}",
                    started.elapsed().as_secs_f64(),
                    peak_rss_kib(),
                    super::process::cpu_seconds("self")
                );
            }
            "files" => {
                dump_to_directory(
                    &dump,
                    &rules.block_allow_list,
                    &config.directory,
                    config.compression,
                    progress(),
                )
                .await?;
                let dumped = started.elapsed().as_secs_f64();
                load_directory(&loader, config.pool_size, &config.directory, progress()).await?;
                println!(
                    "result dump_seconds={dumped:.3} load_seconds={:.3} peak_rss_kib={} cpu_seconds={:.2}",
                    started.elapsed().as_secs_f64() - dumped,
                    peak_rss_kib(),
                    super::process::cpu_seconds("self")
                );
            }
            other => bail!("child full: `{other}` is neither stream nor files"),
        }
        Ok(())
    }
}
