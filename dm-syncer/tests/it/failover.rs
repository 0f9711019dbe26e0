//! Upstream failover and purged binlogs (issue 18 item 4), against a MariaDB replication pair.
//!
//! What must survive:
//! - by GTID, the source's primary killed mid-stream and its replica promoted (another server
//!   id, other file names and offsets, the same GTIDs): the task pointed at the new primary goes
//!   on from its checkpoint's GTID set, and the downstream ends equal to the new primary, no row
//!   lost or doubled, tables with and without keys;
//! - by file position, the same failover stops the task with DM-11014, which says that the
//!   position is not the new primary's and what to do, and applies nothing from it; also when
//!   the position names a file the new primary has, at a boundary its binlog index takes (the
//!   checkpoint at a file's start): the checkpoint names the server that wrote it, and the
//!   new primary's server id is another; a resume of that checkpoint by GTID set goes on, and
//!   its checkpoints then name the new primary (and, without a server, the same with a
//!   scripted source that plays a server);
//! - a checkpoint whose binlog was purged (by file, or by GTID set) stops the task with
//!   DM-11008 naming the file or the set, never resumes past it (pingcap/tiflow#3506).
//!
//! Every server is a test's own and is killed when its handle drops (on failure too).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_binlog::testsuite::{BinlogScript, ScriptRow};
use dm_binlog::{RemoteOptions, RemoteSource, StartPoint};
use dm_core::testsuite::{RecordingSinks, int_table};
use dm_core::{
    BinlogPosition, ClassifiedError, ErrorClass, Flavor, GtidSet, Location, TableRef,
    UpstreamIdentity,
};
use dm_syncer::{SyncerSettings, SyncerStatus};
use dm_testkit::pair::gtid_binlog_pos;
use dm_testkit::{MariaDb, MariaDbOptions, ReplicationPair, compare_schemas, or_skip};

use crate::replication::{assert_equal, rules, settings, syncer};

const SCHEMA: &str = "CREATE DATABASE shop;
CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), qty INT);
CREATE TABLE shop.events (kind VARCHAR(10), amount INT);
CREATE TABLE shop.codes (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY (code))";

/// Small transactions on the three tables (one with a primary key, one without keys, one with
/// a unique key), numbered from `from`, so that a row lost or applied twice changes the tables.
fn batch(from: u32, count: u32) -> String {
    let mut sql = String::new();
    for id in from..from + count {
        sql.push_str(&format!(
            "INSERT INTO shop.items (id, name, qty) VALUES ({id}, 'item {id}', {qty});
             INSERT INTO shop.events VALUES ('buy', {id});
             INSERT INTO shop.codes VALUES ('c{id}', {id});",
            qty = id % 7
        ));
        if id % 5 == 0 {
            sql.push_str(&format!(
                "UPDATE shop.items SET qty = qty + 100 WHERE id = {id};
                 UPDATE shop.events SET amount = -amount WHERE amount = {id};
                 BEGIN; DELETE FROM shop.codes WHERE v = {id}; INSERT INTO shop.events VALUES ('undo', {id}); COMMIT;",
            ));
        }
    }
    sql
}

/// The empty MariaDB GTID set at the start of the upstream's first file: GTID mode.
/// A planned failover: the replica catches up, the primary is killed, the replica promoted
/// and 20 rows (ids 1000..) written on it: `pair.replica` is the new primary.
async fn fail_over_with_writes(pair: &mut dm_testkit::pair::ReplicationPair) {
    pair.wait_caught_up(dm_testkit::pair::CATCH_UP_TIMEOUT)
        .await
        .expect("the replica caught up");
    pair.primary.kill().expect("kill the primary");
    pair.promote().await.expect("promote");
    pair.replica
        .execute(&batch(1000, 20))
        .await
        .expect("writes on the new primary");
}

fn gtid_start() -> Location {
    Location {
        position: BinlogPosition::parse("mysql-bin.000001:4").expect("position"),
        gtid_set: Some(Arc::new(GtidSet::empty(Flavor::MariaDb))),
        suffix: 0,
    }
}

/// The upstream's current end as a file position only: position mode.
async fn position_start(upstream: &MariaDb) -> Location {
    let (file, offset) = upstream.binlog_position().await.expect("position");
    Location::from_position(BinlogPosition::parse(&format!("{file}:{offset}")).expect("position"))
}

/// Polls until the downstream's `shop` equals `upstream`'s; returns how long it took.
async fn wait_equal(upstream: &MariaDb, downstream: &MariaDb, within: Duration) -> Duration {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < within {
        let mut left = upstream.connect().await.expect("connect");
        let mut right = downstream.connect().await.expect("connect");
        match compare_schemas(&mut left, &mut right, "shop")
            .await
            .expect("compare")
        {
            None => return started.elapsed(),
            Some(difference) => last = Some(difference),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the downstream did not reach the upstream within {within:?}: {last:?}");
}

async fn count(server: &MariaDb, table: &str) -> String {
    server
        .query(&format!("SELECT COUNT(*) FROM shop.{table}"))
        .await
        .expect("count")[0][0]
        .clone()
        .unwrap_or_default()
}

/// [`count`], or 0 while the table is not there yet.
async fn count_or_zero(server: &MariaDb, table: &str) -> u64 {
    server
        .query(&format!("SELECT COUNT(*) FROM shop.{table}"))
        .await
        .ok()
        .and_then(|rows| rows.first()?.first()?.clone())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

/// The syncer's run ended with a definite error carrying `code`; returns the error.
fn expect_definite(
    result: Result<SyncerStatus, dm_syncer::SyncerError>,
    code: &str,
) -> dm_syncer::SyncerError {
    let error = match result {
        Ok(status) => panic!("the syncer went on ({status:?}); expected {code}"),
        Err(error) => error,
    };
    eprintln!("the task stopped with {}: {error}", error.code());
    assert_eq!(error.code().to_string(), code, "{error}");
    assert_eq!(error.class(), ErrorClass::Definite, "{error}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtid_failover_to_the_replica_loses_and_doubles_nothing() {
    let (pair, downstream) = tokio::join!(
        ReplicationPair::start("failover-gtid"),
        MariaDb::start_with(MariaDbOptions::named("failover-gtid-down")),
    );
    let (mut pair, downstream) = (or_skip!(pair), or_skip!(downstream));
    pair.primary.execute(SCHEMA).await.expect("schema");

    // The task streams from the primary by GTID while the primary writes.
    let (run, stop) = syncer(
        &pair.primary,
        &downstream,
        701,
        gtid_start(),
        settings(4),
        rules(),
        false,
    );
    let first_run = tokio::spawn(run);
    for round in 0..2 {
        pair.primary
            .execute(&batch(1 + round * 40, 40))
            .await
            .expect("writes on the primary");
    }
    dm_testkit::wait_for(
        "the first rows downstream",
        Duration::from_secs(60),
        || async { count_or_zero(&downstream, "items").await == 80 },
    )
    .await
    .expect("the task streams from the primary");
    // A downstream table locked holds the task back, so that the primary dies mid-stream: the
    // checkpoint is inside the primary's history, not at its end.
    let mut lock = downstream.connect().await.expect("connect");
    dm_testkit::sql::execute(&mut lock, "downstream", "LOCK TABLES shop.events WRITE")
        .await
        .expect("lock");
    pair.primary
        .execute(&batch(81, 400))
        .await
        .expect("a burst on the primary");
    let primary_end = gtid_binlog_pos(&pair.primary).await.expect("gtid");
    // The replica has all of it (a planned failover, or semi-sync), the task not yet.
    pair.wait_caught_up(dm_testkit::pair::CATCH_UP_TIMEOUT)
        .await
        .expect("the replica caught up");
    tokio::time::sleep(Duration::from_millis(300)).await;
    pair.primary.kill().expect("kill the primary");
    let _ = stop.send(true);
    dm_testkit::sql::execute(&mut lock, "downstream", "UNLOCK TABLES")
        .await
        .expect("unlock");
    drop(lock);
    let stopped = tokio::time::timeout(Duration::from_secs(30), first_run)
        .await
        .expect("the first run stops while its upstream is down")
        .expect("joins");
    let status = stopped.expect("a stop is not an error");
    let checkpoint = status.checkpoint.clone().expect("a checkpoint");
    let stopped_at = checkpoint.gtid_set.clone().expect("a GTID checkpoint");
    assert_ne!(
        stopped_at.to_string(),
        primary_end,
        "the task stopped mid-stream"
    );
    eprintln!(
        "GTID failover: the task stopped at {stopped_at} of the primary's {primary_end}, with {} \
         of its 480 items downstream",
        count_or_zero(&downstream, "items").await
    );

    // The replica becomes the primary and takes writes, then the task is pointed at it.
    let promoted_at = Instant::now();
    pair.promote().await.expect("promote the replica");
    let new_primary = &pair.replica;
    new_primary
        .execute(&batch(1000, 40))
        .await
        .expect("writes on the new primary");
    new_primary
        .execute("ALTER TABLE shop.items ADD COLUMN note VARCHAR(10) DEFAULT 'new'")
        .await
        .expect("DDL on the new primary");
    new_primary
        .execute(&batch(2000, 10))
        .await
        .expect("writes after the DDL");
    let restarted_at = Instant::now();
    let (run, stop) = syncer(
        new_primary,
        &downstream,
        701,
        gtid_start(),
        settings(4),
        rules(),
        false,
    );
    let second_run = tokio::spawn(run);
    let caught_up_in = wait_equal(new_primary, &downstream, Duration::from_secs(120)).await;
    let recovery = restarted_at.elapsed();
    eprintln!(
        "GTID failover: the task pointed at the new primary was equal to it {:?} after its \
         restart ({:?} after the promotion, writes and DDL on the new primary included)",
        caught_up_in,
        promoted_at.elapsed()
    );
    assert!(recovery < Duration::from_secs(120));
    let _ = stop.send(true);
    let status = second_run
        .await
        .expect("joins")
        .expect("the second run stops cleanly");
    let set = status
        .checkpoint
        .and_then(|location| location.gtid_set)
        .expect("a GTID checkpoint");
    let end = GtidSet::parse(
        Flavor::MariaDb,
        &gtid_binlog_pos(new_primary).await.expect("gtid"),
    )
    .expect("set");
    assert_eq!(
        set.to_string(),
        end.to_string(),
        "the checkpoint is the new primary's end"
    );
    // Row for row (compare_schemas counts and sums rows: a doubled row in the keyless table
    // shows), and the expected counts.
    assert_equal(new_primary, &downstream, "shop").await;
    assert_eq!(count(&downstream, "items").await, "530");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_only_failover_stops_and_says_why() {
    // The replica has binlog events of its own (an administrator's database in another GTID
    // domain), so its file names coincide with the primary's but its offsets do not.
    let (pair, downstream) = tokio::join!(
        ReplicationPair::start_with(
            "failover-position",
            Some(
                "SET SESSION gtid_domain_id = 9; CREATE DATABASE replica_admin; \
                 CREATE TABLE replica_admin.notes (id INT PRIMARY KEY)"
            ),
        ),
        MariaDb::start_with(MariaDbOptions::named("failover-position-down")),
    );
    let (mut pair, downstream) = (or_skip!(pair), or_skip!(downstream));
    pair.primary.execute(SCHEMA).await.expect("schema");
    downstream.execute(SCHEMA).await.expect("downstream schema");
    let start = position_start(&pair.primary).await;
    pair.primary
        .execute(&batch(1, 60))
        .await
        .expect("writes on the primary");

    let (run, _stop) = syncer(
        &pair.primary,
        &downstream,
        702,
        start.clone(),
        settings(2),
        rules(),
        true,
    );
    let status = run.await.expect("the first run reaches the primary's end");
    let checkpoint = status.checkpoint.expect("a checkpoint");
    assert!(
        checkpoint.gtid_set.is_none(),
        "a position start stays a position start: {checkpoint}"
    );
    assert_equal(&pair.primary, &downstream, "shop").await;
    let applied = count(&downstream, "items").await;

    fail_over_with_writes(&mut pair).await;
    let new_primary = &pair.replica;

    let (run, _stop) = syncer(
        new_primary,
        &downstream,
        702,
        start,
        settings(2),
        rules(),
        true,
    );
    let error = expect_definite(run.await, "DM-11014");
    let message = error.to_string();
    assert!(
        message.contains(&checkpoint.position.to_string()) && message.contains("replaced"),
        "{message}"
    );
    assert!(
        error.workaround().contains("enable-gtid: true"),
        "{}",
        error.workaround()
    );
    assert_eq!(
        count(&downstream, "items").await,
        applied,
        "nothing of the new primary was applied"
    );
}

/// Writes past the checkpoint into files that are then purged, leaving the checkpoint's file
/// (and the transactions after it) gone: FLUSH, writes (file 2), FLUSH, writes (file 3),
/// PURGE BINARY LOGS TO file 3.
async fn purge_past(upstream: &MariaDb) {
    upstream.execute("FLUSH BINARY LOGS").await.expect("flush");
    upstream.execute(&batch(500, 10)).await.expect("writes");
    upstream.execute("FLUSH BINARY LOGS").await.expect("flush");
    upstream.execute(&batch(600, 10)).await.expect("writes");
    // MariaDB keeps a file until InnoDB's checkpoint passed it: purge until it is gone.
    dm_testkit::wait_for("the purge", Duration::from_secs(30), || async {
        upstream
            .execute("PURGE BINARY LOGS TO 'mysql-bin.000003'")
            .await
            .expect("purge");
        let files = upstream.query("SHOW BINARY LOGS").await.expect("files");
        files[0][0].as_deref() == Some("mysql-bin.000003")
    })
    .await
    .expect("the first two binlog files purged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_checkpoint_file_stops_the_task_naming_it() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("purged-file-up")),
        MariaDb::start_with(MariaDbOptions::named("purged-file-down")),
    );
    let (upstream, downstream) = (or_skip!(upstream), or_skip!(downstream));
    upstream.execute(SCHEMA).await.expect("schema");
    downstream.execute(SCHEMA).await.expect("downstream schema");
    let start = position_start(&upstream).await;
    upstream.execute(&batch(1, 30)).await.expect("writes");
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        703,
        start.clone(),
        settings(2),
        rules(),
        true,
    );
    let status = run.await.expect("the first run");
    let checkpoint = status.checkpoint.expect("a checkpoint");
    assert_eq!(checkpoint.position.file.to_string(), "mysql-bin.000001");
    let applied = count(&downstream, "items").await;

    purge_past(&upstream).await;
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        703,
        start,
        settings(2),
        rules(),
        true,
    );
    let error = expect_definite(run.await, "DM-11008");
    let message = error.to_string();
    assert!(
        message.contains(&checkpoint.position.to_string())
            && message.contains("the oldest it keeps is mysql-bin.000003"),
        "{message}"
    );
    assert_eq!(
        count(&downstream, "items").await,
        applied,
        "nothing after the purged file was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_checkpoint_gtid_set_stops_the_task_naming_it() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("purged-gtid-up")),
        MariaDb::start_with(MariaDbOptions::named("purged-gtid-down")),
    );
    let (upstream, downstream) = (or_skip!(upstream), or_skip!(downstream));
    upstream.execute(SCHEMA).await.expect("schema");
    upstream.execute(&batch(1, 30)).await.expect("writes");
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        704,
        gtid_start(),
        settings(2),
        rules(),
        true,
    );
    let status = run.await.expect("the first run");
    let set = status
        .checkpoint
        .and_then(|location| location.gtid_set)
        .expect("a GTID checkpoint");
    assert_equal(&upstream, &downstream, "shop").await;
    let applied = count(&downstream, "items").await;

    purge_past(&upstream).await;
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        704,
        gtid_start(),
        settings(2),
        rules(),
        true,
    );
    let error = expect_definite(run.await, "DM-11008");
    let message = error.to_string();
    assert!(
        message.contains(&format!("GTID set '{set}'")) && message.contains("purged"),
        "{message}"
    );
    assert_eq!(
        count(&downstream, "items").await,
        applied,
        "nothing after the purged transactions was applied"
    );
}

/// The global checkpoint's `table_info` as the downstream keeps it (task `test`, source
/// `mariadb-01`: [`settings`]), where the upstream that wrote its location is stored.
async fn stored_table_info(downstream: &MariaDb) -> String {
    downstream
        .query(
            "SELECT table_info FROM dm_meta.test_syncer_checkpoint \
             WHERE id = 'mariadb-01' AND is_global = 1",
        )
        .await
        .expect("the global checkpoint row")
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .unwrap_or_default()
        // The syncer writes it compact; the server's JSON functions add spaces.
        .replace(' ', "")
}

/// How a global checkpoint's `table_info` names a MariaDB upstream (no server_uuid).
fn names_upstream(server_id: u32) -> String {
    format!("\"upstream\":{{\"server_id\":{server_id}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_the_new_primary_has_by_chance_is_refused_by_its_identity() {
    let (pair, downstream) = tokio::join!(
        ReplicationPair::start("failover-identity"),
        MariaDb::start_with(MariaDbOptions::named("failover-identity-down")),
    );
    let (mut pair, downstream) = (or_skip!(pair), or_skip!(downstream));
    let (old_id, new_id) = (pair.primary.server_id(), pair.replica.server_id());
    assert_ne!(old_id, new_id, "the pair's servers have their own ids");
    pair.primary.execute(SCHEMA).await.expect("schema");
    pair.primary
        .execute(&batch(1, 30))
        .await
        .expect("writes on the primary");

    // The task reads the primary by GTID set; its checkpoint names the primary.
    let (run, _stop) = syncer(
        &pair.primary,
        &downstream,
        705,
        gtid_start(),
        settings(2),
        rules(),
        true,
    );
    let status = run.await.expect("the first run reaches the primary's end");
    assert!(
        status
            .checkpoint
            .and_then(|location| location.gtid_set)
            .is_some(),
        "a GTID checkpoint"
    );
    assert_equal(&pair.primary, &downstream, "shop").await;
    let stored = stored_table_info(&downstream).await;
    assert!(stored.contains(&names_upstream(old_id)), "{stored}");
    let applied = count(&downstream, "items").await;

    fail_over_with_writes(&mut pair).await;
    let new_primary = &pair.replica;

    // The checkpoint at the start of the first binlog file, as a task that applied nothing
    // past it has (saved there, with the old primary's identity): a file of that name is the
    // new primary's first too, and a file's start is always an event boundary. Its binlog
    // index takes the position; only the identity tells. (Changing only the position, as a
    // user does to point the checkpoint at the new primary, would drop the identity.)
    downstream
        .execute(
            "UPDATE dm_meta.test_syncer_checkpoint SET binlog_name = 'mysql-bin.000001', \
             binlog_pos = 4, table_info = JSON_SET(table_info, '$.upstream_position', \
             'mysql-bin.000001:4') WHERE id = 'mariadb-01' AND is_global = 1",
        )
        .await
        .expect("the checkpoint at a file's start");
    let chance = BinlogPosition::parse("mysql-bin.000001:4").expect("position");
    let mut options = RemoteOptions::new("127.0.0.1", new_primary.port(), "root", "", 706);
    options.stop_at_end = true;
    let stream = RemoteSource::connect(&options, &StartPoint::Position(chance.clone()))
        .await
        .expect("without the identity, the new primary takes the old position");
    assert_eq!(
        stream.upstream_identity(),
        &UpstreamIdentity::from_server_id(new_id),
        "MariaDB: a server id and no server_uuid"
    );
    stream.close().await;

    // By file position (`enable-gtid: false`): DM-11014 naming both servers and what to do.
    let by_position = SyncerSettings {
        resume_by_gtid: false,
        ..settings(2)
    };
    let (run, _stop) = syncer(
        new_primary,
        &downstream,
        705,
        gtid_start(),
        by_position,
        rules(),
        true,
    );
    let error = expect_definite(run.await, "DM-11014");
    let message = error.to_string();
    assert!(
        message.contains(&chance.to_string())
            && message.contains(&format!("server_id {old_id}"))
            && message.contains(&format!("server_id {new_id}"))
            && message.contains("enable-gtid: true"),
        "{message}"
    );
    assert_eq!(
        count(&downstream, "items").await,
        applied,
        "nothing of the new primary was applied"
    );
    let stored = stored_table_info(&downstream).await;
    assert!(
        stored.contains(&names_upstream(old_id)),
        "the refused run left the checkpoint as it was: {stored}"
    );

    // By GTID set, the same checkpoint goes on on the new primary, which its checkpoints then
    // name.
    let (run, _stop) = syncer(
        new_primary,
        &downstream,
        705,
        gtid_start(),
        settings(2),
        rules(),
        true,
    );
    run.await.expect("a resume by GTID set is not refused");
    assert_equal(new_primary, &downstream, "shop").await;
    assert_eq!(count(&downstream, "items").await, "50");
    let stored = stored_table_info(&downstream).await;
    assert!(stored.contains(&names_upstream(new_id)), "{stored}");
}

/// The same without a server: a scripted source playing one server, then another.
#[tokio::test(start_paused = true)]
async fn a_checkpoint_names_the_server_that_wrote_it_and_a_position_start_elsewhere_is_refused() {
    let mut script = BinlogScript::new();
    let table = script.table("shop", "t", &[false, true]);
    for id in 0..10 {
        script.transaction(&[ScriptRow::Insert(table.clone(), vec![Some(id), Some(id)])]);
    }
    let sinks = RecordingSinks::new();
    sinks.define_table(int_table(TableRef::new("shop", "t"), &["id", "v"], true));
    let settings = SyncerSettings {
        checkpoint_interval: Duration::ZERO,
        ..SyncerSettings::new("failover", "script-01")
    };
    let start =
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));
    let run = |source: dm_binlog::testsuite::ScriptedSource| {
        let (_stop_sender, stop) = tokio::sync::watch::channel(false);
        let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
        dm_syncer::run_with(
            settings.clone(),
            source,
            start.clone(),
            sinks.clone(),
            rules(),
            stop,
            progress,
        )
    };
    let old = UpstreamIdentity {
        server_id: 1,
        server_uuid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562".into()),
    };
    run(script.source().played_by(old.clone()))
        .await
        .expect("the first run");
    let global = sinks.stored().global.expect("a global checkpoint");
    assert_eq!(global.location.position, script.end());
    assert_eq!(
        global.upstream,
        Some(old.clone()),
        "the server that wrote it"
    );
    let applied = sinks.applied().len();
    assert_eq!(applied, 10);

    // Another server (a clone that kept the server id, with its own server_uuid).
    let clone = UpstreamIdentity {
        server_uuid: Some("8a94f357-aab4-11df-86ab-c80aa9429562".into()),
        ..old.clone()
    };
    let error = run(script.source().played_by(clone))
        .await
        .expect_err("refused");
    assert_eq!(error.code().to_string(), "DM-11014", "{error}");
    let message = error.to_string();
    assert!(
        message.contains("3e11fa47-71ca-11e1-9e33-c80aa9429562")
            && message.contains("8a94f357-aab4-11df-86ab-c80aa9429562"),
        "{message}"
    );
    assert_eq!(sinks.applied().len(), applied, "nothing applied");
    assert_eq!(
        sinks.stored().global.and_then(|global| global.upstream),
        Some(old.clone()),
        "the checkpoint still names the server that wrote it"
    );
    // The same server again goes on.
    run(script.source().played_by(old))
        .await
        .expect("the server that wrote the checkpoint");
}

/// A task stopped in the middle of a big transaction (its workers committed part of it, the
/// global checkpoint is before it), then the primary fails over and the task resumes by GTID
/// set on the new primary: the workers' checkpoints hold the old primary's positions, which
/// mean nothing there. The transaction is written again idempotently, and the downstream ends
/// equal to the new primary: nothing lost (a mark compared by position could cover rows it
/// never applied), nothing doubled (keyed table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_applied_in_part_before_a_failover_is_completed_on_the_new_primary() {
    let (pair, downstream) = tokio::join!(
        ReplicationPair::start("failover-part"),
        MariaDb::start_with(MariaDbOptions::named("failover-part-down")),
    );
    let (mut pair, downstream) = (or_skip!(pair), or_skip!(downstream));
    // The replica writes what it replicates into its next file: the same transactions at
    // other positions (else the two binlogs can match byte for byte and old positions seem
    // to fit the new primary).
    pair.replica
        .execute("FLUSH BINARY LOGS")
        .await
        .expect("a new binlog file on the replica");
    const ROWS: u32 = 60_000;
    pair.primary
        .execute(&format!(
            "{SCHEMA};
             INSERT INTO shop.items SELECT 100000 + seq, CONCAT('big ', seq), seq % 7
                 FROM shop.seq_1_to_{ROWS};"
        ))
        .await
        .expect("one big transaction on the primary");

    // The task reads the big transaction; once part of it is downstream, the downstream table
    // is locked (the workers' next batches wait) and the task is stopped now.
    let (stop_sender, stop) = tokio::sync::watch::channel(dm_syncer::StopRequest::Continue);
    let mut source = RemoteOptions::new("127.0.0.1", pair.primary.port(), "root", "", 731);
    source.replica_name = "test-test-mariadb-01".into();
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let first_run = tokio::spawn(dm_syncer::run(
        settings(4),
        source,
        gtid_start(),
        dm_sink::MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", ""),
        rules(),
        stop,
        progress,
    ));
    let waited = Instant::now();
    while count_or_zero(&downstream, "items").await == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no row of the big transaction arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut lock = downstream.connect().await.expect("connect");
    dm_testkit::sql::execute(&mut lock, "downstream", "LOCK TABLES shop.items WRITE")
        .await
        .expect("lock");
    stop_sender.send_replace(dm_syncer::StopRequest::Now);
    dm_testkit::sql::execute(&mut lock, "downstream", "UNLOCK TABLES")
        .await
        .expect("unlock");
    drop(lock);
    tokio::time::timeout(Duration::from_secs(60), first_run)
        .await
        .expect("the first run stops")
        .expect("joins")
        .expect("a stop is not an error");
    let applied = count_or_zero(&downstream, "items").await;
    eprintln!("stopped with {applied} of the big transaction's {ROWS} rows downstream");
    assert!(
        applied > 0 && applied < u64::from(ROWS),
        "the stop fell outside the transaction ({applied} rows)"
    );

    fail_over_with_writes(&mut pair).await;
    let new_primary = &pair.replica;
    let (run, _stop) = syncer(
        new_primary,
        &downstream,
        732,
        gtid_start(),
        settings(4),
        rules(),
        true,
    );
    run.await.expect("the task goes on on the new primary");
    assert_equal(new_primary, &downstream, "shop").await;
    assert_eq!(
        count_or_zero(&downstream, "items").await,
        u64::from(ROWS) + 20
    );
}
