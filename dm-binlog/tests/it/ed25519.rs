//! MariaDB's `ed25519` authentication (client plugin `client_ed25519`) for the replica client,
//! against a real MariaDB 10.11 with the server plugin loaded (`INSTALL SONAME 'auth_ed25519'`):
//! a replication user `IDENTIFIED VIA ed25519` logs in (MariaDB asks for the plugin with an
//! auth switch and a 32-byte nonce; the client answers with its Ed25519 signature) and streams
//! the binlog; a wrong password, and an empty one, are refused at once with the server's 1045
//! as a definite `BinlogError::Server` naming the user and the plugin; a user whose ed25519
//! password is empty is refused with an empty password, as MariaDB's own client is (the server
//! stores no key for it). Against dm-testkit's scripted source: the auth switch from
//! `caching_sha2_password` to `client_ed25519` with a nonce whose last byte is 0 (kept: MariaDB
//! sends no terminator), answered with the signature an independent implementation computed.
//! Without the plugin file (or the shared fixtures, for the scripted source) the tests skip
//! (fail when `CI=true`).

use std::time::Duration;

use dm_binlog::{BinlogError, EventData, RemoteOptions, RemoteSource, StartPoint, StreamEvent};
use dm_core::{BinlogPosition, ClassifiedError, ErrorClass};
use dm_testkit::fake_mysql::FakeAuthentication;
use dm_testkit::{
    FakeMySqlScript, FakeMySqlSource, MariaDb, MariaDbOptions, TestkitError, or_skip,
    shared_fixture,
};

fn options(server: &MariaDb, user: &str, password: &str) -> RemoteOptions {
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), user, password, 4712);
    options.stop_at_end = true;
    options.connect_timeout = Duration::from_secs(10);
    options
}

fn start() -> StartPoint {
    StartPoint::Position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"))
}

async fn read_all(source: &mut RemoteSource) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while let Some(event) = source.next_event().await.expect("event") {
        events.push(event);
    }
    events
}

/// A server with the ed25519 plugin, a table with two rows in its binlog, and a replication
/// user `repl` (password `s3cr3t-Pa55`) and a user `nopassword` (an empty ed25519 password),
/// both `IDENTIFIED VIA ed25519`. `None`: skipped.
async fn server_with_ed25519_users(name: &str) -> Option<MariaDb> {
    let server = match MariaDb::start_with(MariaDbOptions::named(name)).await {
        Ok(server) => server,
        Err(error) => skip_or_fail(error)?,
    };
    if let Err(error) = server.install_ed25519().await {
        skip_or_fail(error)?;
    }
    server
        .execute(
            "CREATE USER repl@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('s3cr3t-Pa55');
             CREATE USER nopassword@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('');
             GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.* TO repl@'127.0.0.1', nopassword@'127.0.0.1';
             CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(20));
             INSERT INTO shop.t VALUES (1, 'signed'), (2, 'not sent');",
        )
        .await
        .expect("setup");
    let plugins = server
        .query("SELECT user, plugin FROM mysql.user WHERE user IN ('repl', 'nopassword') ORDER BY user")
        .await
        .expect("plugins");
    assert_eq!(
        plugins,
        [
            [Some("nopassword".to_owned()), Some("ed25519".to_owned())],
            [Some("repl".to_owned()), Some("ed25519".to_owned())],
        ]
    );
    Some(server)
}

/// [`or_skip!`]'s decision for a helper that returns an `Option`.
fn skip_or_fail<T>(error: TestkitError) -> Option<T> {
    match dm_testkit::skip_decision(&error, dm_testkit::is_ci()) {
        dm_testkit::SkipDecision::Skip => {
            dm_testkit::announce_skip(&error);
            None
        }
        dm_testkit::SkipDecision::Fail => panic!("test prerequisite failed: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_replication_user_logs_in_and_streams_the_binlog() {
    let Some(server) = server_with_ed25519_users("ed25519-source").await else {
        return;
    };
    let mut source = RemoteSource::connect(&options(&server, "repl", "s3cr3t-Pa55"), &start())
        .await
        .expect("login with client_ed25519");
    let events = read_all(&mut source).await;
    source.close().await;
    let tables: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.event.data {
            EventData::TableMap(map) => Some(format!("{}.{}", map.schema, map.table)),
            _ => None,
        })
        .collect();
    let row_events = events
        .iter()
        .filter(|event| matches!(event.event.data, EventData::Rows(_)))
        .count();
    assert_eq!(tables, ["shop.t"], "{} events", events.len());
    assert_eq!(row_events, 1, "the insert of two rows");

    // Each login signs a fresh nonce: a second one works too.
    let source = RemoteSource::connect(&options(&server, "repl", "s3cr3t-Pa55"), &start())
        .await
        .expect("second login");
    source.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_and_empty_ed25519_passwords_are_refused_with_a_classed_error() {
    let Some(server) = server_with_ed25519_users("ed25519-refusals").await else {
        return;
    };
    // An empty password signs too (MariaDB's client does the same): the server answers
    // "using password: YES" and refuses it for a user with a password, and for a user whose
    // ed25519 password is empty (the server stores no key for it: MariaDB's own client is
    // refused the same way).
    for (user, password) in [
        ("repl", "wrong"),
        ("repl", ""),
        ("repl", "s3cr3t-Pa55 "),
        ("nopassword", ""),
        ("nopassword", "anything"),
    ] {
        let login = options(&server, user, password);
        let start = start();
        let error = tokio::time::timeout(
            Duration::from_secs(15),
            RemoteSource::connect(&login, &start),
        )
        .await
        .unwrap_or_else(|_| panic!("{user}/{password:?}: no answer within 15 s"))
        .expect_err("refused");
        assert!(
            matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
            "{user}/{password:?}: {error}"
        );
        assert_eq!(error.class(), ErrorClass::Definite, "{error}");
        assert_eq!(error.code().to_string(), "DM-11007");
        let message = error.to_string();
        assert!(
            message.contains(&format!("login as {user} (client_ed25519)")),
            "{message}"
        );
        assert!(
            message.contains(&format!("Access denied for user '{user}'")),
            "{message}"
        );
        assert!(message.contains("using password: YES"), "{message}");
        if !password.is_empty() {
            assert!(!message.contains(password), "{message}");
        }
        assert_eq!(
            error.workaround(),
            "check the user and password in the source configuration"
        );
    }
}

/// The Ed25519 signature of [`dm_testkit::fake_mysql::ED25519_NONCE`] with the password
/// `s3cr3t-Pa55`, computed with RFC 8032's reference algorithm in Python (not this crate's code).
const FAKE_SIGNATURE: &str = "7c5aa94fb16b2b78a4e5f3e8e0d886abbbeeb328d8f6120642c73d2d4d6adfcdda3c594cf76121e35af1035e3fbb9ebced4f0ddc3b2abd1275d1c52427bd2a07";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_to_client_ed25519_signs_the_whole_nonce_even_ending_in_zero() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let bytes =
        std::fs::read(directory.join("my80_40-prev-gtids-untagged.binlog")).expect("fixture");
    let mut signature = [0u8; 64];
    for (index, byte) in signature.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&FAKE_SIGNATURE[2 * index..2 * index + 2], 16).expect("hex");
    }
    let mut script = FakeMySqlScript::from_binlog_file("binlog.000001", &bytes, "s3cr3t-Pa55");
    script.authentication = FakeAuthentication::Ed25519 { signature };
    let source = FakeMySqlSource::start(script).await.expect("fake source");
    let start = StartPoint::Position(BinlogPosition::parse("binlog.000001:4").expect("start"));
    let login = |password: &str| {
        let mut options = RemoteOptions::new("127.0.0.1", source.port(), "repl", password, 9);
        options.stop_at_end = true;
        options
    };
    let mut stream = RemoteSource::connect(&login("s3cr3t-Pa55"), &start)
        .await
        .expect("login after the switch");
    let events = read_all(&mut stream).await;
    stream.close().await;
    assert!(events.len() > 3, "{} events", events.len());

    let error = RemoteSource::connect(&login("wrong"), &start)
        .await
        .expect_err("wrong password");
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );
    assert!(
        error.to_string().contains("login as repl (client_ed25519)"),
        "{error}"
    );
    let logins: Vec<String> = source
        .logins()
        .into_iter()
        .filter(|login| !login.starts_with("connection ended"))
        .collect();
    assert_eq!(
        logins,
        [
            "client_ed25519",
            "refused: client_ed25519 got 64 bytes that are not the signature"
        ]
    );
}
