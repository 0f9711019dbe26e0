//! The relay writer on a full file system (a 4 MiB tmpfs the test mounts, filled but for
//! 384 KiB): the write that does not fit fails with DM-11030 naming the relay directory; the
//! files are cut back after the last complete transaction (every relay file reads to a clean
//! end, the writer's meta names that end) and stay so through a retry while the disk is still
//! full and a reopen; once space is freed, the writer resumes from its start point and the
//! relay replays exactly as the upstream's stream. What survives: every transaction written before the
//! failure, with nothing torn, lost or doubled. The recovery time (space freed -> relay
//! caught up) is printed for the README's reliability table.

use std::path::Path;
use std::time::{Duration, Instant};

use dm_binlog::relay::{META_FILE, RelayMeta, read_index, relay_files};
use dm_binlog::{
    BinlogError, BinlogFileReader, EventStream, Read, RelaySource, RelayWriter, RemoteSource,
    StreamEvent,
};
use dm_core::{BinlogPosition, ClassifiedError, ErrorClass, Flavor};
use dm_testkit::{MariaDb, MariaDbOptions, TmpfsMount, or_skip};

use crate::remote::{options_for, read_all, start_of};

const SERVER_ID: u32 = 311;

/// About 1.6 MB of binlog in two files: one small transaction per row.
async fn small_transactions(server: &MariaDb) {
    let mut script = String::from(
        "CREATE DATABASE shop; CREATE TABLE shop.notes (id INT PRIMARY KEY, body TEXT);",
    );
    for id in 1..=1_600 {
        if id == 800 {
            script.push_str("FLUSH BINARY LOGS;");
        }
        script.push_str(&format!(
            "INSERT INTO shop.notes VALUES ({id}, REPEAT('{}', 1000));",
            char::from(b'a' + (id % 26) as u8)
        ));
    }
    server.execute(&script).await.expect("workload");
}

/// Streams the upstream from `writer`'s start point (the first file's start for a new relay)
/// into it, until the upstream's end or the first error.
async fn relay_from_upstream(
    server: &MariaDb,
    writer: &mut RelayWriter,
) -> Result<(), BinlogError> {
    let start = writer
        .start_point(false)
        .expect("start point")
        .unwrap_or_else(|| start_of("mysql-bin.000001"));
    let mut source = RemoteSource::connect(&options_for(server, SERVER_ID), &start)
        .await
        .expect("connect");
    let result = async {
        while let Some(event) = source.next_event().await.expect("stream") {
            writer.write(&event)?;
        }
        writer.flush()
    }
    .await;
    source.close().await;
    result
}

/// Every relay file reads to its end as whole events (no torn event), and `relay.meta`, when
/// there is one, names an event boundary in them: the end of the last file after a cut, or,
/// when there was no room to replace it, an earlier transaction end (still valid: opening cuts
/// again from there).
/// Returns the end of the last file.
fn assert_not_torn(root: &Path) -> (String, u64) {
    let index = read_index(root).expect("index");
    assert_eq!(index.len(), 1, "one sub-directory");
    let directory = root.join(&index[0].name);
    let files = relay_files(&directory).expect("files");
    assert!(!files.is_empty(), "the relay has files");
    let mut boundaries = Vec::new();
    for file in &files {
        let path = directory.join(file.to_string());
        let mut reader = BinlogFileReader::open(&path).expect("open relay file");
        loop {
            boundaries.push((file.to_string(), reader.offset()));
            match reader.read_next() {
                Ok(Read::Event { .. }) => {}
                Ok(Read::End) => break,
                Ok(Read::Partial { .. }) => panic!("{} ends with a torn event", path.display()),
                Err(error) => panic!("{}: {error}", path.display()),
            }
        }
        assert_eq!(
            std::fs::metadata(&path).expect("metadata").len(),
            reader.offset(),
            "{} has bytes after its last event",
            path.display()
        );
    }
    // No meta at all is valid too (none was written before the disk was full, and there was
    // no room for one after): opening scans from the first file.
    if let Ok(text) = std::fs::read_to_string(directory.join(META_FILE)) {
        let meta = RelayMeta::parse(&text).expect("meta parses");
        assert!(
            boundaries.contains(&(meta.binlog_name.clone(), meta.binlog_position)),
            "the meta names an event boundary of the relay: {meta:?}"
        );
    }
    assert!(
        !directory.join(format!("{META_FILE}.tmp")).exists(),
        "no half-written meta is left"
    );
    boundaries.pop().expect("the end of the last file")
}

async fn relay_events(root: &Path) -> Vec<StreamEvent> {
    let start = BinlogPosition::parse("mysql-bin.000001:4").expect("position");
    let mut source = RelaySource::open(root, &start, false).expect("open relay");
    let mut events = Vec::new();
    while let Some(event) = source.next_event().await.expect("relay read") {
        events.push(event);
    }
    events
}

/// The relay's events are the upstream's real events, byte for byte and at the same positions
/// (the whole stream, or its first `relay.len()` events when `prefix`).
fn assert_same_events(relay: &[StreamEvent], upstream: &[StreamEvent], prefix: bool) {
    let upstream: Vec<&StreamEvent> = upstream.iter().filter(|event| !event.artificial).collect();
    if prefix {
        assert!(
            relay.len() <= upstream.len(),
            "no more events than the upstream"
        );
    } else {
        assert_eq!(relay.len(), upstream.len(), "events");
    }
    for (ours, theirs) in relay.iter().zip(upstream) {
        assert_eq!(ours.position, theirs.position);
        assert_eq!(
            ours.next_position, theirs.next_position,
            "{}",
            ours.position
        );
        assert_eq!(ours.raw, theirs.raw, "{}", ours.position);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_stops_the_relay_writer_untorn_and_it_resumes_after_space_is_freed() {
    let mount = or_skip!(TmpfsMount::new(4 << 20));
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("relay-disk-full")).await);
    small_transactions(&server).await;
    let upstream = {
        let mut source = RemoteSource::connect(
            &options_for(&server, SERVER_ID),
            &start_of("mysql-bin.000001"),
        )
        .await
        .expect("connect");
        let events = read_all(&mut source).await;
        source.close().await;
        events
    };
    let uuid = {
        let source = RemoteSource::connect(
            &options_for(&server, SERVER_ID),
            &start_of("mysql-bin.000001"),
        )
        .await
        .expect("connect");
        let uuid = source.upstream().server_uuid.clone();
        source.close().await;
        uuid
    };
    let upstream_bytes: u64 = upstream.iter().map(|event| event.raw.len() as u64).sum();
    assert!(
        upstream_bytes > 1_500_000,
        "{upstream_bytes} bytes of binlog"
    );

    mount.fill(384 << 10).expect("filler");
    let root = mount.path().join("relay");
    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("writer");
    let error = relay_from_upstream(&server, &mut writer)
        .await
        .expect_err("the relay does not fit");
    let message = error.to_string();
    assert!(
        matches!(error, BinlogError::DiskFull { .. }),
        "a disk-full error: {error:?}"
    );
    assert!(message.contains(&root.display().to_string()), "{message}");
    assert!(message.contains("needs at least"), "{message}");
    assert_eq!(error.code().to_string(), "DM-11030");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(error.workaround().contains("free space"));
    let end = assert_not_torn(&root);
    let meta = writer.meta().expect("the writer's meta");
    assert_eq!(
        (meta.binlog_name.clone(), meta.binlog_position),
        end,
        "the writer resumes from the end of what is on disk, a transaction end"
    );
    let before = relay_events(&root).await;
    assert!(
        !before.is_empty(),
        "something was relayed before the disk was full"
    );
    assert_same_events(&before, &upstream, true);

    // Still full: the retry fails the same way and leaves the files as clean.
    let again = relay_from_upstream(&server, &mut writer)
        .await
        .expect_err("still full");
    assert!(matches!(again, BinlogError::DiskFull { .. }), "{again:?}");
    let end = assert_not_torn(&root);
    // A writer opened again (a restarted process) finds the same point: nothing to cut.
    drop(writer);
    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("reopen");
    let meta = writer.meta().expect("the reopened writer's meta");
    assert_eq!((meta.binlog_name.clone(), meta.binlog_position), end);

    // Space freed: the relay resumes (retrying every 100 ms, as a relay unit's backoff would)
    // and catches up.
    mount.free_filler().expect("free the filler");
    let freed = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match relay_from_upstream(&server, &mut writer).await {
            Ok(()) => break,
            Err(error) if error.class() == ErrorClass::Transient && attempts < 50 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the relay does not resume: {error}"),
        }
    }
    let recovery = freed.elapsed();
    let after = relay_events(&root).await;
    assert_same_events(&after, &upstream, false);
    let end = assert_not_torn(&root);
    assert_eq!(
        end,
        (
            "mysql-bin.000002".to_owned(),
            upstream.last().expect("events").next_position.offset
        )
    );
    eprintln!(
        "relay disk full: recovered {upstream_bytes} bytes of binlog in {recovery:?} after space was freed ({attempts} attempt(s))"
    );
}
