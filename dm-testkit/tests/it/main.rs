//! Integration tests of the test kit against real `mariadbd` and `etcd` processes.
//!
//! What they prove: servers start in parallel on loopback, really replicate-ready (rows written
//! upstream appear in `SHOW BINLOG EVENTS`), survive a crash and restart with their data, a
//! 3-node etcd cluster keeps a leader with one member killed, the data comparison finds the first
//! difference, and nothing (process or temp directory) is left behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dm_testkit::{
    Etcd, EtcdCluster, EtcdTiming, MariaDb, MariaDbOptions, SchemaDifference, TestkitError,
    compare_schemas, or_skip, process_alive, wait_for,
};

/// The PIDs and directories a server handle owns, to check after it is dropped.
struct Leftovers {
    pids: Vec<u32>,
    directories: Vec<PathBuf>,
}

impl Leftovers {
    fn of_mariadb(server: &MariaDb) -> Leftovers {
        Leftovers {
            pids: server
                .pid()
                .into_iter()
                .chain(server.watchdog_pid())
                .collect(),
            directories: vec![server.directory().to_owned()],
        }
    }

    fn of_etcd(cluster: &EtcdCluster) -> Leftovers {
        Leftovers {
            pids: cluster
                .pids()
                .into_iter()
                .chain(cluster.watchdog_pids())
                .collect(),
            directories: cluster.directories(),
        }
    }

    fn assert_gone(&self) {
        for pid in &self.pids {
            assert!(
                !process_alive(*pid),
                "process {pid} is still alive after drop"
            );
        }
        for directory in &self.directories {
            assert!(
                !directory.exists(),
                "{} still exists after drop",
                directory.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_start_in_parallel_replicate_rows_and_leave_nothing_behind() {
    let started = Instant::now();
    let (upstream, second_upstream, downstream, etcd) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("upstream")),
        MariaDb::start_with(MariaDbOptions::named("second-upstream")),
        MariaDb::start_with(MariaDbOptions::named("downstream")),
        Etcd::start(),
    );
    let upstream = or_skip!(upstream);
    let second_upstream = or_skip!(second_upstream);
    let downstream = or_skip!(downstream);
    let etcd = or_skip!(etcd);
    eprintln!(
        "three MariaDB instances and one etcd started in parallel in {:?}",
        started.elapsed()
    );
    let ports = [upstream.port(), second_upstream.port(), downstream.port()];
    let server_ids = [
        upstream.server_id(),
        second_upstream.server_id(),
        downstream.server_id(),
    ];
    for index in 0..3 {
        for other in index + 1..3 {
            assert_ne!(ports[index], ports[other], "ports are unique");
            assert_ne!(
                server_ids[index], server_ids[other],
                "server ids are unique"
            );
        }
    }
    assert!(upstream.url().starts_with("mysql://root@127.0.0.1:"));
    assert!(etcd.is_healthy(0).await);

    let (binlog_file, _) = upstream.binlog_position().await.expect("binlog position");
    upstream
        .execute(
            "CREATE DATABASE shop;
             CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(20));
             INSERT INTO shop.orders VALUES (1, 'apple'), (2, 'pear');",
        )
        .await
        .expect("write upstream");
    let events = upstream
        .query(&format!("SHOW BINLOG EVENTS IN '{binlog_file}'"))
        .await
        .expect("show binlog events");
    // Columns: Log_name, Pos, Event_type, Server_id, End_log_pos, Info.
    let event_type = |row: &Vec<Option<String>>| row.get(2).cloned().flatten().unwrap_or_default();
    let info = |row: &Vec<Option<String>>| row.get(5).cloned().flatten().unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|row| event_type(row) == "Table_map" && info(row).contains("(shop.orders)")),
        "no table map for shop.orders in {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|row| event_type(row).starts_with("Write_rows")),
        "no Write_rows event in {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|row| row.get(3).cloned().flatten() == Some(upstream.server_id().to_string())),
        "events carry the instance's own server id"
    );
    // The downstream saw nothing: the instances are isolated.
    let downstream_databases = downstream
        .query("SHOW DATABASES")
        .await
        .expect("show databases");
    assert!(
        !downstream_databases
            .iter()
            .any(|row| row[0].as_deref() == Some("shop"))
    );

    let leftovers = [
        Leftovers::of_mariadb(&upstream),
        Leftovers::of_mariadb(&second_upstream),
        Leftovers::of_mariadb(&downstream),
        Leftovers::of_etcd(&etcd),
    ];
    assert!(leftovers.iter().all(|owned| owned.pids.len() >= 2));
    drop((upstream, second_upstream, downstream, etcd));
    for owned in &leftovers {
        owned.assert_gone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparison_reports_the_first_difference() {
    let (left, right) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("left")),
        MariaDb::start_with(MariaDbOptions::named("right")),
    );
    let left = or_skip!(left);
    let right = or_skip!(right);
    let schema = "CREATE DATABASE `we``ird`;
        CREATE TABLE `we``ird`.accounts (id INT PRIMARY KEY, owner VARCHAR(20), balance DECIMAL(10,2));
        CREATE TABLE `we``ird`.`log lines` (line TEXT);
        INSERT INTO `we``ird`.accounts VALUES (1, 'ann', 10.50), (2, 'bob', NULL), (3, 'cy', 0);
        INSERT INTO `we``ird`.`log lines` VALUES ('a'), ('a'), ('b');";
    left.execute(schema).await.expect("left schema");
    right.execute(schema).await.expect("right schema");
    let mut left_connection = left.connect().await.expect("connect left");
    let mut right_connection = right.connect().await.expect("connect right");
    assert_eq!(
        compare_schemas(&mut left_connection, &mut right_connection, "we`ird")
            .await
            .expect("compare"),
        None
    );

    right
        .execute("UPDATE `we``ird`.accounts SET owner = 'bobby' WHERE id = 2")
        .await
        .expect("change a row");
    let difference = compare_schemas(&mut left_connection, &mut right_connection, "we`ird")
        .await
        .expect("compare")
        .expect("a difference");
    match &difference {
        SchemaDifference::Rows {
            table,
            left_row,
            right_row,
            ..
        } => {
            assert_eq!(table, "`we``ird`.`accounts`");
            assert_eq!(
                left_row.as_deref(),
                Some(&[Some("2".into()), Some("bob".into()), None][..])
            );
            assert_eq!(
                right_row.as_ref().and_then(|row| row[1].clone()).as_deref(),
                Some("bobby")
            );
        }
        other => panic!("expected a row difference, got {other}"),
    }

    // A duplicate row more on one side of a keyless table is a difference too.
    right
        .execute("UPDATE `we``ird`.accounts SET owner = 'bob' WHERE id = 2; INSERT INTO `we``ird`.`log lines` VALUES ('a')")
        .await
        .expect("duplicate a row");
    let difference = compare_schemas(&mut left_connection, &mut right_connection, "we`ird")
        .await
        .expect("compare")
        .expect("a difference");
    assert!(
        matches!(&difference, SchemaDifference::Rows { table, row_counts: (3, 4), .. } if table == "`we``ird`.`log lines`"),
        "{difference}"
    );

    right
        .execute("DROP TABLE `we``ird`.`log lines`")
        .await
        .expect("drop a table");
    let difference = compare_schemas(&mut left_connection, &mut right_connection, "we`ird")
        .await
        .expect("compare")
        .expect("a difference");
    assert_eq!(
        difference.to_string(),
        "table `we``ird`.`log lines` is missing on the right side"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_killed_server_restarts_with_its_data() {
    let mut server = or_skip!(MariaDb::start().await);
    server
        .execute(
            "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (1), (2)",
        )
        .await
        .expect("write");
    let (file_before, position_before) = server.binlog_position().await.expect("position");
    let old_pid = server.pid().expect("running");
    server.kill().expect("kill");
    assert!(!process_alive(old_pid));
    assert!(
        server.execute("SELECT 1").await.is_err(),
        "a killed server does not answer"
    );
    server.restart().await.expect("restart");
    let rows = server
        .query("SELECT COUNT(*) FROM d.t")
        .await
        .expect("count");
    assert_eq!(rows, vec![vec![Some("2".to_owned())]]);
    // A restarted server rotates to a new binlog file after the old one.
    let (file_after, _) = server.binlog_position().await.expect("position");
    assert!(
        file_after > file_before,
        "{file_after} after {file_before}:{position_before}"
    );

    // A clean stop (SIGTERM) keeps the data too, and frees the process.
    let pid = server.pid().expect("running");
    server.stop().await.expect("stop");
    assert!(!process_alive(pid) && server.pid().is_none());
    server.restart().await.expect("restart after a clean stop");
    let rows = server
        .query("SELECT COUNT(*) FROM d.t")
        .await
        .expect("count");
    assert_eq!(rows, vec![vec![Some("2".to_owned())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_etcd_cluster_keeps_serving_with_one_member_killed() {
    let mut cluster = or_skip!(EtcdCluster::start_cluster(3, EtcdTiming::default()).await);
    assert_eq!(cluster.endpoints().len(), 3);
    for index in 0..3 {
        assert!(cluster.is_healthy(index).await, "member {index} healthy");
    }
    cluster.kill_member(0).expect("kill member 0");
    assert_eq!(cluster.endpoints().len(), 2);
    assert!(!cluster.is_healthy(0).await);
    wait_for(
        "members 1 and 2 to be healthy",
        Duration::from_secs(20),
        || async { cluster.is_healthy(1).await && cluster.is_healthy(2).await },
    )
    .await
    .expect("the two remaining members keep a leader");
    cluster.restart_member(0).await.expect("member 0 rejoins");
    assert_eq!(cluster.endpoints().len(), 3);
    let leftovers = Leftovers::of_etcd(&cluster);
    drop(cluster);
    leftovers.assert_gone();
}

#[tokio::test]
async fn a_missing_binary_is_reported_by_path() {
    let options = MariaDbOptions {
        mariadbd: Some(PathBuf::from("/nonexistent/mariadbd")),
        ..MariaDbOptions::default()
    };
    let error = MariaDb::start_with(options)
        .await
        .expect_err("no such binary");
    assert!(error.is_missing_binary());
    assert!(
        matches!(&error, TestkitError::MissingBinary { binary, .. } if binary == "/nonexistent/mariadbd"),
        "{error}"
    );
}

#[test]
fn a_panicking_test_stops_its_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = or_skip!(runtime.block_on(MariaDb::start()));
    let leftovers = Leftovers::of_mariadb(&server);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _owned = server;
        panic!("a test assertion failed");
    }));
    assert!(outcome.is_err());
    leftovers.assert_gone();
}

/// Set in the child process of `a_killed_test_process_takes_its_servers_with_it`.
const CHILD_VARIABLE: &str = "DM_TESTKIT_KILLED_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_test_process_takes_its_servers_with_it() {
    if std::env::var_os(CHILD_VARIABLE).is_some() {
        // Child: start a server, report it, then wait to be killed.
        let server = MariaDb::start().await.expect("child starts a server");
        println!(
            "SERVER {} {}",
            server.pid().expect("running"),
            server.directory().display()
        );
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }
    // Skip like the other tests when there is no server to start.
    drop(or_skip!(MariaDb::start().await));
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_killed_test_process_takes_its_servers_with_it",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VARIABLE, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the child test process");
    let stdout = child.stdout.take().expect("child stdout");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest prints `test <name> ... ` on the same line first.
            .find_map(|line| {
                line.split_once("SERVER ")
                    .map(|(_, report)| report.to_owned())
            })
    })
    .await
    .expect("read child output")
    .expect("the child reports its server");
    let mut parts = line.split_whitespace();
    let pid: u32 = parts.next().and_then(|pid| pid.parse().ok()).expect("pid");
    let directory = PathBuf::from(parts.next().expect("directory"));
    assert!(process_alive(pid) && directory.exists());

    child.kill().expect("SIGKILL the child test process");
    child.wait().expect("reap the child");
    wait_for(
        "the orphaned server to be killed and its directory removed",
        Duration::from_secs(20),
        || {
            let directory = directory.clone();
            async move { !process_alive(pid) && !directory.exists() }
        },
    )
    .await
    .expect("the watchdog cleans up");
}
