//! The relay log against a live MariaDB: the relay written from the replica stream replays
//! byte for byte as the stream (gaps filled and skipped), a writer killed mid-transaction with a
//! torn event at the end resumes exactly, a reader tailing a relay being written gets every
//! event once, an upstream switch starts a new sub-directory that readers follow, and purge
//! keeps what readers need.

use std::time::Duration;

use dm_binlog::relay::{read_index, relay_files};
use dm_binlog::{
    EventStream, PurgeRule, RelayPosition, RelaySource, RelayWriter, RemoteSource, StreamEvent,
    purge,
};
use dm_core::{BinlogFileName, BinlogPosition, Flavor};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::remote::{options_for, read_all, start_of, write_workload};

/// The remote stream's real events from the first file.
async fn remote_events(server: &MariaDb, server_id: u32) -> (Vec<StreamEvent>, String) {
    let mut source = RemoteSource::connect(
        &options_for(server, server_id),
        &start_of("mysql-bin.000001"),
    )
    .await
    .expect("connect");
    let uuid = source.upstream().server_uuid.clone();
    let events = read_all(&mut source).await;
    source.close().await;
    (events, uuid)
}

async fn relay_events(root: &std::path::Path, start: &str) -> Vec<StreamEvent> {
    let start = BinlogPosition::parse(start).expect("position");
    let mut source = RelaySource::open(root, &start, false).expect("open relay");
    let mut events = Vec::new();
    while let Some(event) = source.next_event().await.expect("relay read") {
        events.push(event);
    }
    events
}

fn assert_same_stream(relay: &[StreamEvent], remote: &[StreamEvent]) {
    let remote: Vec<&StreamEvent> = remote.iter().filter(|event| !event.artificial).collect();
    assert_eq!(relay.len(), remote.len(), "events");
    for (ours, theirs) in relay.iter().zip(remote) {
        assert_eq!(ours.position, theirs.position);
        assert_eq!(
            ours.next_position, theirs.next_position,
            "{}",
            ours.position
        );
        assert_eq!(ours.raw, theirs.raw, "{}", ours.position);
        assert_eq!(ours.event, theirs.event, "{}", ours.position);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_replays_byte_for_byte_as_the_remote_stream() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("relay-replay")).await);
    write_workload(&server, 5_000).await;
    // ANNOTATE_ROWS are not requested: the relay fills their gaps and the reader skips them.
    let (remote, uuid) = remote_events(&server, 301).await;
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().join("relay");
    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("writer");
    assert!(writer.meta().is_none(), "a new sub-directory has no meta");
    for event in &remote {
        writer.write(event).expect("write");
    }
    writer.flush().expect("flush");
    let last = remote.last().expect("events");
    let meta = writer.meta().expect("meta").clone();
    assert_eq!(
        format!("{}:{}", meta.binlog_name, meta.binlog_position),
        last.next_position.to_string(),
        "the meta is the last transaction end"
    );
    let expected_gtid = server
        .query("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid")[0][0]
        .clone()
        .expect("value");
    assert_eq!(meta.binlog_gtid.as_deref(), Some(expected_gtid.as_str()));

    let index = read_index(&root).expect("index");
    assert_eq!(index.len(), 1);
    assert_eq!(index[0].name, format!("{uuid}.000001"));
    assert_eq!(
        relay_files(&root.join(&index[0].name))
            .expect("files")
            .len(),
        2,
        "mysql-bin.000001 and .000002"
    );
    // The relay file has the upstream file's bytes at the same offsets.
    let upstream = std::fs::read(server.directory().join("data/mysql-bin.000001")).expect("read");
    let relayed = std::fs::read(root.join(&index[0].name).join("mysql-bin.000001")).expect("read");
    assert_eq!(relayed.len(), upstream.len());

    let replayed = relay_events(&root, "mysql-bin.000001:4").await;
    assert_same_stream(&replayed, &remote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_transaction_resumes_without_gap_or_repeat() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("relay-resume")).await);
    write_workload(&server, 20_000).await;
    let (remote, uuid) = remote_events(&server, 302).await;
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().join("relay");

    // Write into the middle of the big INSERT's transaction, flush, then tear the file: half of
    // the next event is on disk, as after a crash.
    let real: Vec<&StreamEvent> = remote.iter().filter(|event| !event.artificial).collect();
    let cut = real
        .iter()
        .position(|event| matches!(event.event.data, dm_binlog::EventData::Rows(_)))
        .expect("rows")
        + 3;
    {
        let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("writer");
        for event in &remote[..remote.len()] {
            if !event.artificial && event.position == real[cut].position {
                break;
            }
            writer.write(event).expect("write");
        }
        writer.flush().expect("flush");
        let subdirectory = writer.subdirectory().name.clone();
        let path = root.join(subdirectory).join("mysql-bin.000001");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&real[cut].raw[..real[cut].raw.len() / 2]);
        std::fs::write(&path, bytes).expect("tear");
    }

    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("reopen");
    let meta = writer.meta().expect("recovered meta").clone();
    // The recovered point is the start of the interrupted transaction (its GTID event).
    let transaction_start = real[..cut]
        .iter()
        .rev()
        .find(|event| matches!(event.event.data, dm_binlog::EventData::MariaDbGtid { .. }))
        .expect("the transaction's GTID");
    assert_eq!(
        format!("{}:{}", meta.binlog_name, meta.binlog_position),
        transaction_start.position.to_string()
    );
    // Resume the upstream stream where the meta says; the writer takes the rest.
    let start = writer
        .start_point(false)
        .expect("start")
        .expect("a start point");
    let mut source = RemoteSource::connect(&options_for(&server, 302), &start)
        .await
        .expect("connect");
    for event in read_all(&mut source).await {
        writer.write(&event).expect("write after resume");
    }
    writer.flush().expect("flush");
    let replayed = relay_events(&root, "mysql-bin.000001:4").await;
    assert_same_stream(&replayed, &remote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_tailing_a_relay_being_written_gets_every_event_once() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("relay-tail")).await);
    write_workload(&server, 30_000).await;
    let (remote, uuid) = remote_events(&server, 303).await;
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().join("relay");
    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("writer");
    // The first event creates the file the reader opens.
    let mut events = remote.iter();
    for event in events.by_ref() {
        writer.write(event).expect("write");
        if matches!(event.event.data, dm_binlog::EventData::FormatDescription(_))
            && !event.artificial
        {
            break;
        }
    }
    writer.flush().expect("flush");
    let target = remote.last().expect("events").next_position.clone();
    let root_for_reader = root.clone();
    let reader = tokio::spawn(async move {
        let start = BinlogPosition::parse("mysql-bin.000001:4").expect("position");
        let mut source = RelaySource::open(&root_for_reader, &start, true).expect("open");
        let mut read = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), source.next_event())
                .await
                .expect("the reader keeps up")
                .expect("no error while tailing")
                .expect("following never ends");
            let done = event.next_position == target;
            read.push(event);
            if done {
                return read;
            }
        }
    });
    // Write the rest in small steps; the buffered writer also leaves partial events on disk.
    for (index, event) in events.enumerate() {
        writer.write(event).expect("write");
        if index % 7 == 0 {
            writer.flush().expect("flush");
            tokio::task::yield_now().await;
        }
    }
    writer.flush().expect("flush");
    let read = reader.await.expect("reader task");
    assert_same_stream(&read, &remote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_switch_starts_a_sub_directory_that_readers_follow() {
    let (first, second) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("relay-primary")),
        MariaDb::start_with(MariaDbOptions::named("relay-replacement")),
    );
    let first = or_skip!(first);
    let second = or_skip!(second);
    first.execute("CREATE DATABASE a").await.expect("write");
    second.execute("CREATE DATABASE b").await.expect("write");
    let (from_first, first_uuid) = remote_events(&first, 304).await;
    let (from_second, second_uuid) = remote_events(&second, 304).await;
    assert_ne!(first_uuid, second_uuid);

    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().join("relay");
    let mut writer = RelayWriter::open(&root, &first_uuid, Flavor::MariaDb).expect("writer");
    for event in &from_first {
        writer.write(event).expect("write");
    }
    writer.switch_upstream(&second_uuid).expect("switch");
    for event in &from_second {
        writer.write(event).expect("write");
    }
    writer.flush().expect("flush");
    let index = read_index(&root).expect("index");
    assert_eq!(
        index
            .iter()
            .map(|entry| entry.name.clone())
            .collect::<Vec<_>>(),
        vec![
            format!("{first_uuid}.000001"),
            format!("{second_uuid}.000002")
        ]
    );
    // Reopening for the second server continues its sub-directory.
    drop(writer);
    let writer = RelayWriter::open(&root, &second_uuid, Flavor::MariaDb).expect("reopen");
    assert_eq!(writer.subdirectory().sequence, 2);

    // Both servers name their first file mysql-bin.000001: by file alone, the newest
    // sub-directory has it; a reader started in the first continues into the second.
    let start = BinlogPosition::parse("mysql-bin.000001:4").expect("position");
    let newest = RelaySource::open(&root, &start, false).expect("open");
    assert_eq!(
        newest.position().subdirectory,
        format!("{second_uuid}.000002")
    );
    let mut source =
        RelaySource::open_in(&root, &format!("{first_uuid}.000001"), &start, false).expect("open");
    let mut statements = Vec::new();
    while let Some(event) = source.next_event().await.expect("read") {
        if let dm_binlog::EventData::Query { sql, .. } = &event.event.data {
            statements.push(String::from_utf8_lossy(sql).into_owned());
        }
    }
    assert!(
        statements.contains(&"CREATE DATABASE a".to_owned()),
        "{statements:?}"
    );
    assert!(
        statements.contains(&"CREATE DATABASE b".to_owned()),
        "{statements:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_old_files_and_keeps_what_readers_need() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("relay-purge")).await);
    for round in 0..4 {
        server
            .execute(&format!("CREATE DATABASE d{round}; FLUSH BINARY LOGS"))
            .await
            .expect("write");
    }
    let (remote, uuid) = remote_events(&server, 305).await;
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().join("relay");
    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("writer");
    for event in &remote {
        writer.write(event).expect("write");
    }
    writer.flush().expect("flush");
    let subdirectory = writer.subdirectory().name.clone();
    let files = |root: &std::path::Path| -> Vec<String> {
        relay_files(&root.join(&subdirectory))
            .expect("files")
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(files(&root).len(), 5);
    let at = |sequence: u64| RelayPosition {
        subdirectory: subdirectory.clone(),
        file: BinlogFileName::new("mysql-bin", sequence, 6).expect("name"),
    };

    // A reader at file 2: purging before file 4 removes only file 1.
    let removed = purge(&root, &PurgeRule::Before(at(4)), Some(&at(2))).expect("purge");
    assert_eq!(removed.len(), 1);
    assert_eq!(files(&root)[0], "mysql-bin.000002");
    // By age and by free space, nothing the reader needs goes, nor the file being written.
    purge(&root, &PurgeRule::OlderThan(Duration::ZERO), Some(&at(3))).expect("purge");
    assert_eq!(files(&root)[0], "mysql-bin.000003");
    purge(&root, &PurgeRule::KeepFree(u64::MAX), None).expect("purge");
    assert_eq!(files(&root), vec!["mysql-bin.000005".to_owned()]);
    // The reader of the remaining file still reads it.
    let replayed = relay_events(&root, "mysql-bin.000005:4").await;
    assert!(!replayed.is_empty());
}
