//! The end-to-end benchmark: this project against what users would pick instead, on one machine
//! and in one run (`scripts/bench.sh`; `cargo bench --bench e2e -- [--quick]`).
//!
//! ```text
//! upstream (sysbench prepare: 8 tables) --full--> ours (direct stream)       timed, checksummed
//!                                        --full--> serial (ours, files)       timed, checksummed
//!                                        --full--> optimistic (mydumper+myloader) timed, checksummed
//!                                        --full--> aggressive (ours, untimed copy)
//! then per workload (oltp_write_only, oltp_insert, oltp_update_non_index), a fixed binlog slice
//! is generated upstream with every follower stopped, and each catches up from the same start:
//!   ours        our syncer (a child process: its peak RSS is read from /proc)
//!   serial      MariaDB replication, slave_parallel_threads=0
//!   optimistic  MariaDB replication, 4 threads, optimistic
//!   aggressive  MariaDB replication, 4 threads, aggressive
//! every downstream is compared with the upstream by CHECKSUM TABLE after every workload;
//! memory: ours alone catches up a write-only backlog twice as large; its peak RSS is compared.
//! ```
//!
//! Servers run with the baselines' settings (`../shared/reference/baselines.md`): 1 GiB buffer
//! pool, 512 MiB redo log, `innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`, binlog on.
//! Writers into the downstreams do not binlog, on every side: myloader's default, the replica's
//! `log_slave_updates=OFF`, and `session: sql_log_bin: OFF` in our task file.
//!
//! The results are printed as Markdown and written to `target/e2e-results.md`. `--quick` runs a
//! tenth of the data (a smoke test); `--focus[=<workload>]` runs only one workload (default
//! `oltp_write_only`) against the serial
//! replica, with no mydumper and no memory run (for tuning).

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
/// Rows per dump chunk on every side (mydumper `-r 20000`).
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
    runtime.block_on(harness(scale, focus))
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

/// CPU seconds (user + system) process `pid` used so far (`self` for this process).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks = |index: usize| {
        fields
            .get(index - 3)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

fn server_cpu(server: &MariaDb) -> f64 {
    server
        .pid()
        .map_or(0.0, |pid| cpu_seconds(&pid.to_string()))
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

/// Our task file for a downstream: DM's format, as a user writes it.
fn task_file(downstream: &MariaDb, directory: &Path, start: &(String, u64)) -> String {
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
    rows: {CHUNK_ROWS}
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
        workers = std::env::var("DM_BENCH_WORKERS").unwrap_or_else(|_| "16".into()),
        batch = std::env::var("DM_BENCH_BATCH").unwrap_or_else(|_| "100".into()),
        file = start.0,
        position = start.1,
    )
}

fn write_task(work: &Path, downstream: &MariaDb, start: &(String, u64)) -> Result<PathBuf> {
    let path = work.join(format!("{}.yaml", downstream.name()));
    std::fs::write(
        &path,
        task_file(downstream, &work.join(downstream.name()), start),
    )?;
    Ok(path)
}

fn run_tool(program: &str, arguments: &[String]) -> Result<f64> {
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
}

async fn harness(scale: Scale, focus: Option<String>) -> Result<()> {
    let focused = focus.is_some();
    let work = tempfile::tempdir()?;
    println!("starting 5 servers ...");
    let upstream = start_server("upstream").await?;
    let ours = start_server("ours").await?;
    let mut replicas = Vec::new();
    let followers = if focused {
        &REPLICAS[..1]
    } else {
        &REPLICAS[..]
    };
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

    // Full: ours (direct stream, files) and mydumper + myloader, each into an empty server.
    println!("full migration: {rows_total} rows, {megabytes:.1} MB of InnoDB data and indexes");
    let full_row = |workload: &str, tool: &str, seconds: f64, extra: String| Row {
        section: "full",
        workload: workload.to_owned(),
        tool: tool.to_owned(),
        rows: rows_total,
        seconds,
        extra: format!("{:.1} MB/s{extra}", megabytes / seconds.max(1e-9)),
    };
    let workload = format!("dump+load {tables}x{}", scale.table_size);
    let task = write_task(work.path(), &ours, &start)?;
    let port = upstream.port().to_string();
    let result = run_child(&["full", "stream", path_text(&task)?, &port])?;
    verify(&upstream, &ours, tables).await?;
    report.push(full_row(
        &workload,
        "ours, direct stream",
        result.seconds,
        format!(", peak RSS {} MiB", result.get("peak_rss_kib")? >> 10),
    ));
    let task = write_task(work.path(), &replicas[0], &start)?;
    let result = run_child(&["full", "files", path_text(&task)?, &port])?;
    verify(&upstream, &replicas[0], tables).await?;
    report.push(full_row(
        &workload,
        "ours, files",
        result.seconds,
        format!(
            ", dump {:.1} s + load {:.1} s, peak RSS {} MiB",
            result.seconds_of("dump_seconds"),
            result.seconds_of("load_seconds"),
            result.get("peak_rss_kib")? >> 10
        ),
    ));
    if !focused {
        let dump_directory = work.path().join("mydumper");
        let dump_seconds = run_tool(
            "mydumper",
            &[
                "-h".into(),
                "127.0.0.1".into(),
                "-P".into(),
                port.clone(),
                "-u".into(),
                "root".into(),
                "-B".into(),
                "sbtest".into(),
                "-t".into(),
                THREADS.to_string(),
                "-r".into(),
                CHUNK_ROWS.to_string(),
                "-o".into(),
                dump_directory.display().to_string(),
            ],
        )?;
        let load_seconds = run_tool(
            "myloader",
            &[
                "-h".into(),
                "127.0.0.1".into(),
                "-P".into(),
                replicas[1].port().to_string(),
                "-u".into(),
                "root".into(),
                "-d".into(),
                dump_directory.display().to_string(),
                "-t".into(),
                THREADS.to_string(),
            ],
        )?;
        verify(&upstream, &replicas[1], tables).await?;
        report.push(full_row(
            &workload,
            "mydumper + myloader",
            dump_seconds + load_seconds,
            format!(", dump {dump_seconds:.1} s + load {load_seconds:.1} s"),
        ));
        // The last follower's copy, untimed.
        let task = write_task(work.path(), &replicas[2], &start)?;
        run_child(&["full", "stream", path_text(&task)?, &port])?;
        verify(&upstream, &replicas[2], tables).await?;
    }

    // Incremental: the followers start where the copies were taken.
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
    let ours_task = write_task(work.path(), &ours, &start)?;
    let workloads = [
        ("oltp_write_only", scale.write_only_events),
        ("oltp_insert", scale.insert_events),
        ("oltp_update_non_index", scale.update_events),
    ];
    let mut write_only_peak = 0;
    for &(name, events) in workloads
        .iter()
        .filter(|(name, _)| focus.as_deref().is_none_or(|focus| focus == *name))
    {
        let result = incremental(
            &upstream,
            &ours,
            &replicas,
            &ours_task,
            Sysbench {
                workload: name,
                tables,
                table_size: scale.table_size,
            },
            events,
            &mut report,
        )
        .await?;
        if name == "oltp_write_only" {
            write_only_peak = result;
        }
    }

    // Memory: twice the write-only backlog, ours alone.
    if !focused {
        memory(
            &upstream,
            &ours,
            &ours_task,
            scale,
            write_only_peak,
            &mut report,
        )
        .await?;
    }
    let text = render(&report, &machine(), &version, scale);
    println!("\n{text}");
    let output = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-results.md");
    std::fs::write(&output, &text).with_context(|| format!("writing {}", output.display()))?;
    println!("written to {}", output.display());
    Ok(())
}

/// Ours alone catches up a write-only backlog twice the size of the first.
async fn memory(
    upstream: &MariaDb,
    ours: &MariaDb,
    ours_task: &Path,
    scale: Scale,
    write_only_peak: u64,
    report: &mut Vec<Row>,
) -> Result<()> {
    let tables = scale.tables;
    let port = upstream.port().to_string();
    let events = scale.write_only_events * 2;
    println!("memory: oltp_write_only, {events} transactions, ours alone ...");
    let generation = Sysbench {
        workload: "oltp_write_only",
        tables,
        table_size: scale.table_size,
    };
    generate(upstream, generation, events)?;
    let result = run_child(&["sync", path_text(ours_task)?, &port])?;
    verify(upstream, ours, tables).await?;
    let doubled_peak = result.get("peak_rss_kib")?;
    report.push(Row {
        section: "memory",
        workload: format!("oltp_write_only, {events} trx (2x backlog)"),
        tool: "ours".into(),
        rows: result.get("rows")?,
        seconds: result.seconds,
        extra: format!(
            "peak RSS {} MiB (1x backlog: {} MiB)",
            doubled_peak >> 10,
            write_only_peak >> 10
        ),
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
/// `<directory>/<workload>.perf` (read it with `perf report -i`).
fn start_profiler(workload: &str) -> Result<Option<std::process::Child>> {
    let Some(directory) = std::env::var_os("DM_BENCH_PERF") else {
        return Ok(None);
    };
    let output = Path::new(&directory).join(format!("{workload}.perf"));
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

/// One incremental workload: generate the slice, then each follower catches up alone. Returns
/// our peak RSS in KiB.
async fn incremental(
    upstream: &MariaDb,
    ours: &MariaDb,
    replicas: &[MariaDb],
    ours_task: &Path,
    workload: Sysbench<'_>,
    events: usize,
    report: &mut Vec<Row>,
) -> Result<u64> {
    println!(
        "incremental: {} x {events} transactions ...",
        workload.workload
    );
    let started = Instant::now();
    generate(upstream, workload, events)?;
    let generated = started.elapsed().as_secs_f64();
    let (end_file, end_position) = upstream.binlog_position().await?;
    let port = upstream.port().to_string();

    let load = load_average();
    let cpu_before = (server_cpu(upstream), server_cpu(ours));
    let profiler = start_profiler(workload.workload)?;
    let result = run_child(&["sync", path_text(ours_task)?, &port]);
    stop_profiler(profiler)?;
    let result = result?;
    let cpu = format!(
        "CPU s: ours {:.1}, downstream {:.1}, upstream {:.1}",
        result.seconds_of("cpu_seconds"),
        server_cpu(ours) - cpu_before.1,
        server_cpu(upstream) - cpu_before.0
    );
    verify(upstream, ours, workload.tables).await?;
    let rows = result.get("rows")?;
    let peak = result.get("peak_rss_kib")?;
    println!(
        "  generated in {generated:.1} s ({:.0} rows/s); ours: {:.1} s",
        rows as f64 / generated,
        result.seconds
    );
    let name = format!("{} ({rows} row changes)", workload.workload);
    report.push(Row {
        section: "incremental",
        workload: name.clone(),
        tool: "ours (dm-syncer)".into(),
        rows,
        seconds: result.seconds,
        extra: format!("peak RSS {} MiB, {cpu}, load {load}", peak >> 10),
    });
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
    Ok(peak)
}

/// The report: one table per section, ratios against the alternatives.
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
        let ours = report.iter().find(|candidate| {
            candidate.section == row.section
                && candidate.workload == row.workload
                && candidate.tool.starts_with("ours")
        });
        let ratio = match ours {
            Some(ours) if !row.tool.starts_with("ours") => {
                format!("{:.2}x", ours.rate() / row.rate().max(1e-9))
            }
            _ => String::new(),
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
            ratio,
            row.extra
        );
    }
    text
}

/// Our side of each run, in a child process so that its memory is its own.
mod child {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result, bail};
    use dm::binlog::RemoteOptions;
    use dm::core::{BinlogFileName, BinlogPosition, Flavor, Location};
    use dm::dumpload::{
        DumpLoadConfig, Loader, Progress, dump_to_directory, load_directory, migrate_stream,
    };
    use dm::syncer::config::{DatabaseConfig, TaskConfig};
    use dm::syncer::{SyncerSettings, SyncerStatus, run};

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
        let syncer = task.syncer_for(instance);
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
        let settings = SyncerSettings {
            workers: syncer.worker_count,
            batch: syncer.batch,
            queue_size: syncer.queue_size,
            flavor: Flavor::MariaDb,
            checkpoint_interval: Duration::from_secs(syncer.checkpoint_flush_interval.max(1)),
            compact: syncer.compact.unwrap_or(true),
            ..SyncerSettings::new(&task.name, &instance.source_id)
        };
        let (_stop_sender, stop) = tokio::sync::watch::channel(false);
        let (progress, _updates) = tokio::sync::watch::channel(SyncerStatus::default());
        let status = run(
            settings,
            remote,
            start,
            task.target_database.sink_options(),
            rules,
            stop,
            progress,
        )
        .await?;
        println!(
            "result rows={} peak_rss_kib={} cpu_seconds={:.2}",
            status.rows_dispatched,
            peak_rss_kib(),
            super::cpu_seconds("self")
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
                    "result seconds={:.3} peak_rss_kib={}",
                    started.elapsed().as_secs_f64(),
                    peak_rss_kib()
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
                    "result dump_seconds={dumped:.3} load_seconds={:.3} peak_rss_kib={}",
                    started.elapsed().as_secs_f64() - dumped,
                    peak_rss_kib()
                );
            }
            other => bail!("child full: `{other}` is neither stream nor files"),
        }
        Ok(())
    }
}
