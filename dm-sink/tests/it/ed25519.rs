//! MariaDB's `ed25519` authentication on the mysql_async connections (the downstream's
//! `MySqlSink`, and a plain `mysql_async::Conn` as the dump and the load open theirs), against a
//! real MariaDB 10.11 with the server plugin loaded: a user `IDENTIFIED VIA ed25519` connects
//! and writes; a wrong password is the server's 1045, a definite error. mysql_async answers
//! the plugin through the workspace's `client_ed25519` feature. Without the plugin file the
//! test skips (fails when `CI=true`).

use dm_core::{ApplyMode, ClassifiedError, ErrorClass, Sink};
use dm_sink::{MySqlSink, MySqlSinkOptions, SinkError};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};
use mysql_async::prelude::Queryable;

use crate::errors::{insert, items};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_user_connects_through_mysql_async_and_the_sink_writes() {
    let downstream =
        or_skip!(MariaDb::start_with(MariaDbOptions::named("ed25519-downstream")).await);
    or_skip!(downstream.install_ed25519().await);
    downstream
        .execute(
            "CREATE USER writer@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('s3cr3t-Pa55');
             CREATE DATABASE d; CREATE TABLE d.items (id INT PRIMARY KEY, v INT);
             GRANT ALL ON d.* TO writer@'127.0.0.1';",
        )
        .await
        .expect("setup");
    let plugin = downstream
        .query("SELECT plugin FROM mysql.user WHERE user = 'writer'")
        .await
        .expect("plugin");
    assert_eq!(plugin, [[Some("ed25519".to_owned())]]);

    // A plain mysql_async connection, as the dump and the load open theirs.
    let options = mysql_async::OptsBuilder::from_opts(downstream.opts())
        .user(Some("writer"))
        .pass(Some("s3cr3t-Pa55"));
    let mut connection = mysql_async::Conn::new(options)
        .await
        .expect("mysql_async login with client_ed25519");
    let user: Option<String> = connection
        .query_first("SELECT CURRENT_USER()")
        .await
        .expect("query");
    assert_eq!(user.as_deref(), Some("writer@127.0.0.1"));
    connection.disconnect().await.expect("disconnect");

    // The downstream sink, as a task's target: it logs in and applies a batch.
    let sink_options =
        |password: &str| MySqlSinkOptions::new("127.0.0.1", downstream.port(), "writer", password);
    let mut sink = MySqlSink::new(sink_options("s3cr3t-Pa55")).expect("sink");
    sink.connect()
        .await
        .expect("the sink logs in with client_ed25519");
    let schema = items("items");
    sink.apply_changes(&[insert(&schema, 1), insert(&schema, 2)], ApplyMode::Exact)
        .await
        .expect("apply");
    let rows = downstream
        .query("SELECT COUNT(*) FROM d.items")
        .await
        .expect("count");
    assert_eq!(rows[0][0].as_deref(), Some("2"));

    // A wrong password: the server's 1045, definite, naming the user.
    for password in ["wrong", ""] {
        let error = MySqlSink::new(sink_options(password))
            .expect("sink")
            .connect()
            .await
            .expect_err("wrong password");
        assert!(
            matches!(&error, SinkError::Statement { code: 1045, .. }),
            "{password:?}: {error}"
        );
        assert_eq!(error.class(), ErrorClass::Definite);
        assert!(
            error
                .to_string()
                .contains("Access denied for user 'writer'"),
            "{error}"
        );
    }
}
