//! What `RemoteSource` checks before it streams, against dm-testkit's scripted MySQL 8 source
//! and a live MariaDB: a binlog that is not `binlog_format=ROW` with `binlog_row_image=FULL` is
//! refused with the fix (unless the check is off, as for a binlog dump tool); MySQL 5.5, which
//! has no `binlog_row_image`, passes. The server id: `choose_server_id` finds the one free id
//! of DM's range when the upstream and its replicas hold all the others; at connect time a taken
//! automatic id is replaced and a taken fixed id refused; at a reconnect, an automatic id that
//! another replica took meanwhile is replaced and the stream goes on, while a fixed one is
//! reported; a dump the upstream ends because another replica took our id is transient only for
//! an automatic id.

use std::time::Duration;

use dm_binlog::{
    AUTOMATIC_SERVER_ID_BASE, AUTOMATIC_SERVER_ID_COUNT, BinlogError, EventData, ReconnectPolicy,
    RemoteOptions, RemoteSource, ServerIdChoice, StartPoint, StreamController, choose_server_id,
};
use dm_core::{BinlogPosition, ClassifiedError, ErrorClass, Location};
use dm_testkit::{
    FakeMySqlScript, FakeMySqlSource, MariaDb, MariaDbOptions, or_skip, shared_fixture,
};

const FIXTURE: &str = "my80_40-prev-gtids-untagged.binlog";

fn script(directory: &std::path::Path) -> FakeMySqlScript {
    let bytes = std::fs::read(directory.join(FIXTURE)).expect("fixture");
    FakeMySqlScript::from_binlog_file("binlog.000001", &bytes, "pw")
}

fn fake_options(source: &FakeMySqlSource, server_id: ServerIdChoice) -> RemoteOptions {
    let mut options = RemoteOptions::new("127.0.0.1", source.port(), "repl", "pw", 1);
    options.server_id = server_id;
    options.stop_at_end = true;
    options
}

fn file_start(file: &str) -> StartPoint {
    StartPoint::Position(BinlogPosition::parse(&format!("{file}:4")).expect("position"))
}

/// Reads a stream to its end and returns how many events it had.
async fn drain(mut source: RemoteSource) -> usize {
    let mut count = 0;
    while source.next_event().await.expect("stream").is_some() {
        count += 1;
    }
    count
}

/// The server id the client sent in its `COM_BINLOG_DUMP(_GTID)`.
fn dumped_server_id(source: &FakeMySqlSource) -> u32 {
    let dump = source
        .commands()
        .into_iter()
        .rev()
        .find(|command| command[0] == 0x12 || command[0] == 0x1e)
        .expect("a dump command");
    let at = if dump[0] == 0x12 { 7 } else { 3 };
    u32::from_le_bytes([dump[at], dump[at + 1], dump[at + 2], dump[at + 3]])
}

fn in_automatic_range(id: u32) -> bool {
    (AUTOMATIC_SERVER_ID_BASE..AUTOMATIC_SERVER_ID_BASE + AUTOMATIC_SERVER_ID_COUNT).contains(&id)
}

fn assert_refused(error: &BinlogError, variable: &str, value: &str, required: &str) {
    assert!(
        matches!(
            error,
            BinlogError::BinlogFormatNotRow { variable: found, value: had, .. }
                if found == variable && had == value
        ),
        "{error}"
    );
    let text = error.to_string();
    for needle in [
        format!("{variable}={value}"),
        format!("SET GLOBAL {variable} = {required}"),
        "my.cnf".to_owned(),
        "until they reconnect".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle:?} missing in: {text}");
    }
    assert_eq!(error.class(), ErrorClass::Definite);
    assert_eq!(error.code().to_string(), "DM-11011");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_format_source_is_refused_with_the_fix_unless_the_check_is_off() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    for format in ["STATEMENT", "MIXED"] {
        let mut script = script(&directory);
        script.binlog_format = format.into();
        let source = FakeMySqlSource::start(script).await.expect("fake");
        let options = fake_options(&source, ServerIdChoice::Fixed(9));
        let error = RemoteSource::connect(&options, &file_start("binlog.000001"))
            .await
            .expect_err("not ROW");
        assert_refused(&error, "binlog_format", format, "ROW");
        assert!(
            !source.commands().iter().any(|command| command[0] == 0x15),
            "refused before registering as a replica"
        );

        // A tool that only reads the binlog turns the check off (the row image is FULL here).
        let mut reader = options.clone();
        reader.require_row_format = false;
        let stream = RemoteSource::connect(&reader, &file_start("binlog.000001"))
            .await
            .expect("the check is off");
        assert!(drain(stream).await > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_row_images_are_refused_and_mysql_5_5_without_the_variable_passes() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    for image in ["MINIMAL", "NOBLOB", "FULL_NODUP"] {
        let mut script = script(&directory);
        script.binlog_format = "MIXED".into();
        script.binlog_row_image = Some(image.into());
        let source = FakeMySqlSource::start(script).await.expect("fake");
        let mut options = fake_options(&source, ServerIdChoice::Fixed(9));
        // Not ROW either: each check is refused on its own.
        options.require_row_format = false;
        let error = RemoteSource::connect(&options, &file_start("binlog.000001"))
            .await
            .expect_err("not FULL");
        assert_refused(&error, "binlog_row_image", image, "FULL");

        // DM's `ignore-checking-items: [binlog_row_image]`.
        options.require_full_row_image = false;
        let stream = RemoteSource::connect(&options, &file_start("binlog.000001"))
            .await
            .expect("the check is off");
        assert!(drain(stream).await > 0);
    }

    let mut script = script(&directory);
    script.binlog_row_image = None;
    let source = FakeMySqlSource::start(script).await.expect("fake");
    let stream = RemoteSource::connect(
        &fake_options(&source, ServerIdChoice::Fixed(9)),
        &file_start("binlog.000001"),
    )
    .await
    .expect("no binlog_row_image: full rows");
    assert!(drain(stream).await > 0);
    let queries = source.queries();
    assert!(
        queries
            .iter()
            .any(|query| query == "SELECT @@global.binlog_format"),
        "{queries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_writing_statements_or_partial_rows_is_refused_until_fixed() {
    let server = or_skip!(
        MariaDb::start_with(
            MariaDbOptions::named("checks-statement").arg("--binlog-format=STATEMENT")
        )
        .await
    );
    let options = {
        let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", 4301);
        options.stop_at_end = true;
        options
    };
    let error = RemoteSource::connect(&options, &file_start("mysql-bin.000001"))
        .await
        .expect_err("STATEMENT");
    assert_refused(&error, "binlog_format", "STATEMENT", "ROW");

    server
        .execute("SET GLOBAL binlog_format = ROW; SET GLOBAL binlog_row_image = MINIMAL")
        .await
        .expect("set");
    let error = RemoteSource::connect(&options, &file_start("mysql-bin.000001"))
        .await
        .expect_err("MINIMAL");
    assert_refused(&error, "binlog_row_image", "MINIMAL", "FULL");

    server
        .execute("SET GLOBAL binlog_row_image = FULL")
        .await
        .expect("set");
    let stream = RemoteSource::connect(&options, &file_start("mysql-bin.000001"))
        .await
        .expect("ROW and FULL");
    assert!(drain(stream).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chosen_server_id_is_the_one_no_replica_and_not_the_upstream_uses() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let free = AUTOMATIC_SERVER_ID_BASE + 31_337;
    let upstream = AUTOMATIC_SERVER_ID_BASE + 500;
    let mut script = script(&directory);
    script.server_id = upstream;
    // Every other id of the range is held by a replica; the upstream's is not listed.
    script.replica_server_ids = (0..AUTOMATIC_SERVER_ID_COUNT)
        .map(|step| AUTOMATIC_SERVER_ID_BASE + step)
        .filter(|id| *id != free && *id != upstream)
        .collect();
    let source = FakeMySqlSource::start(script).await.expect("fake");
    let options = fake_options(&source, ServerIdChoice::Automatic(0));
    for _ in 0..3 {
        assert_eq!(choose_server_id(&options).await.expect("choose"), free);
    }
    // Connecting with no id yet chooses the same one and says so.
    let stream = RemoteSource::connect(&options, &file_start("binlog.000001"))
        .await
        .expect("connect");
    assert_eq!(stream.server_id(), ServerIdChoice::Automatic(free));
    // The dump command is sent without waiting for an answer: read the stream first.
    assert!(drain(stream).await > 0);
    assert_eq!(dumped_server_id(&source), free);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_connect_a_taken_automatic_id_is_replaced_and_a_taken_fixed_id_refused() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let taken = AUTOMATIC_SERVER_ID_BASE + 7;
    let mut script = script(&directory);
    script.replica_server_ids = vec![taken, 12];
    let source = FakeMySqlSource::start(script).await.expect("fake");

    let stream = RemoteSource::connect(
        &fake_options(&source, ServerIdChoice::Automatic(taken)),
        &file_start("binlog.000001"),
    )
    .await
    .expect("replaced");
    let ServerIdChoice::Automatic(replacement) = stream.server_id() else {
        panic!("an automatic id stays automatic");
    };
    assert_ne!(replacement, taken);
    assert!(in_automatic_range(replacement), "{replacement}");
    assert!(drain(stream).await > 0);
    assert_eq!(dumped_server_id(&source), replacement);

    // The upstream's own id (77 in the script) is taken too.
    let stream = RemoteSource::connect(
        &fake_options(&source, ServerIdChoice::Automatic(77)),
        &file_start("binlog.000001"),
    )
    .await
    .expect("replaced");
    assert_ne!(stream.server_id().id(), 77);
    drop(stream);

    for (id, holder) in [(12, "replica-12:3306"), (77, "the upstream server itself")] {
        let error = RemoteSource::connect(
            &fake_options(&source, ServerIdChoice::Fixed(id)),
            &file_start("binlog.000001"),
        )
        .await
        .expect_err("fixed and taken");
        assert!(
            matches!(error, BinlogError::ServerIdInUse { server_id, automatic: false, .. } if server_id == id),
            "{error}"
        );
        assert!(error.to_string().contains(holder), "{error}");
        assert_eq!(error.class(), ErrorClass::Definite);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_ended_for_another_replica_with_our_id_is_transient_only_when_automatic() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let mut script = script(&directory);
    script.dump_error = Some((
        1236,
        "A replica with the same server_uuid/server_id as this replica has connected to the source; the first event 'binlog.000001' at 4, the last event read from './binlog.000001' at 126".into(),
    ));
    let source = FakeMySqlSource::start(script).await.expect("fake");
    for (choice, class) in [
        (ServerIdChoice::Fixed(9), ErrorClass::Definite),
        (
            ServerIdChoice::Automatic(AUTOMATIC_SERVER_ID_BASE + 9),
            ErrorClass::Transient,
        ),
    ] {
        let mut stream =
            RemoteSource::connect(&fake_options(&source, choice), &file_start("binlog.000001"))
                .await
                .expect("connect");
        let error = loop {
            match stream.next_event().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the dump ends with an error"),
                Err(error) => break error,
            }
        };
        assert!(
            matches!(&error, BinlogError::ServerIdInUse { server_id, .. } if *server_id == choice.id()),
            "{error}"
        );
        assert_eq!(error.class(), class, "{error}");
    }
}

async fn replica_ids(server: &MariaDb) -> Vec<u32> {
    server
        .query("SHOW SLAVE HOSTS")
        .await
        .expect("replicas")
        .into_iter()
        .filter_map(|row| row.first().cloned().flatten()?.parse().ok())
        .collect()
}

/// Kills the dump connections and waits until the upstream no longer lists `id`.
async fn kill_dumps_and_wait_unregistered(server: &MariaDb, id: u32) {
    let dumps: Vec<String> = server
        .query("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
        .await
        .expect("processlist")
        .into_iter()
        .filter_map(|row| row[0].clone())
        .collect();
    assert!(!dumps.is_empty(), "a dump connection runs");
    for dump in dumps {
        let _ = server.execute(&format!("KILL {dump}")).await;
    }
    tokio::time::timeout(Duration::from_secs(20), async {
        while replica_ids(server).await.contains(&id) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the killed replica unregistered");
}

/// A controller following `server` as `choice`, having read the first insert's rows.
async fn following(server: &MariaDb, choice: ServerIdChoice) -> StreamController<RemoteOptions> {
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", 1);
    options.server_id = choice;
    options.heartbeat_period = Duration::from_millis(500);
    options.connect_timeout = Duration::from_secs(2);
    let policy = ReconnectPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        give_up_after: Some(Duration::from_secs(30)),
    };
    let start =
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("position"));
    let mut controller = StreamController::new(options, start, policy);
    // Read up to the first insert's rows.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = controller
                .next_event()
                .await
                .expect("stream")
                .expect("event");
            if matches!(event.event.event.data, EventData::Rows(_)) {
                break;
            }
        }
    })
    .await
    .expect("the first rows");
    controller
}

/// Another replica that registers with `id` (a fixed id, its own replica name) and stays
/// connected; returns it with the name it registered with.
async fn thief(server: &MariaDb, id: u32) -> (RemoteSource, String) {
    let options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", id);
    let stream = RemoteSource::connect(&options, &file_start("mysql-bin.000001"))
        .await
        .expect("the other replica connects");
    (stream, options.replica_name)
}

async fn prepare(server: &MariaDb) {
    server
        .execute(
            "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (1)",
        )
        .await
        .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_server_id_taken_while_reconnecting_is_replaced_and_the_stream_goes_on() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("ids-automatic")).await);
    prepare(&server).await;
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", 1);
    options.server_id = ServerIdChoice::Automatic(0);
    let chosen = choose_server_id(&options).await.expect("choose");
    assert!(in_automatic_range(chosen), "{chosen}");
    assert_ne!(chosen, server.server_id());

    let mut controller = following(&server, ServerIdChoice::Automatic(chosen)).await;
    assert!(replica_ids(&server).await.contains(&chosen));
    kill_dumps_and_wait_unregistered(&server, chosen).await;
    let (_other, _) = thief(&server, chosen).await;
    server
        .execute("INSERT INTO d.t VALUES (2)")
        .await
        .expect("write");

    // The stream reconnects with a new id and delivers the second insert.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = controller
                .next_event()
                .await
                .expect("the stream goes on")
                .expect("event");
            if matches!(event.event.event.data, EventData::Rows(_)) {
                break;
            }
        }
    })
    .await
    .expect("the second rows");
    assert!(controller.reconnects() >= 1);
    let ServerIdChoice::Automatic(replacement) = controller.source().server_id else {
        panic!("the id stays automatic");
    };
    assert_ne!(replacement, chosen);
    assert!(in_automatic_range(replacement), "{replacement}");
    let registered = replica_ids(&server).await;
    assert!(
        registered.contains(&replacement) && registered.contains(&chosen),
        "{registered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_server_id_taken_while_reconnecting_is_reported() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("ids-fixed")).await);
    prepare(&server).await;
    let mut controller = following(&server, ServerIdChoice::Fixed(4242)).await;
    kill_dumps_and_wait_unregistered(&server, 4242).await;
    let (_other, other_name) = thief(&server, 4242).await;
    let error = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match controller.next_event().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a following stream does not end"),
                Err(error) => break error,
            }
        }
    })
    .await
    .expect("an error");
    assert!(
        matches!(
            error,
            BinlogError::ServerIdInUse {
                server_id: 4242,
                automatic: false,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&other_name), "{error}");
    assert_eq!(error.class(), ErrorClass::Definite);
    assert_eq!(controller.source().server_id, ServerIdChoice::Fixed(4242));
}
