//! Passwords never show: a subtask runs in mode `all` as a user with a distinctive password,
//! then twice more with that password and a port nothing listens on (upstream, then
//! downstream), and the password is looked for in everything those runs can show: every
//! tracing event and span at TRACE level, every status snapshot (`Debug` and DM's
//! query-status JSON), the spec's `Debug`, and the errors (in the statuses, with their
//! messages and raw causes, and a task file refused for its password), and everything the
//! runs wrote: the downstream's meta tables and every file of the kept dump.

use std::io::Write;
use std::sync::{Arc, Mutex};

use dm_subtask::{Stage, Subtask, SubtaskHandle, SubtaskSpec};
use dm_testkit::{MariaDb, or_skip};

use crate::{servers, shop, source_file, spec, task_file, wait_equal, wait_status};

/// Distinctive enough to be found nowhere by chance.
const PASSWORD: &str = "Pw-7f3e9c-never-shown";
const USER: &str = "dm_redaction";

/// Everything written by the test subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("capture lock")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every status the subtask publishes, as `Debug` and as DM's query-status JSON, until it ends.
fn record_statuses(subtask: &SubtaskHandle, seen: Arc<Mutex<Vec<String>>>) {
    let mut updates = subtask.watch();
    tokio::spawn(async move {
        loop {
            {
                let status = updates.borrow_and_update();
                let shown = format!("{status:?}\n{status:#?}\n{}", status.to_query_status());
                seen.lock().expect("statuses lock").push(shown);
            }
            if updates.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The task and source files with `USER` and `PASSWORD` on both sides.
fn files(upstream: &MariaDb, downstream: &MariaDb) -> (String, String) {
    let credentials = format!("user: {USER}\n  password: \"{PASSWORD}\"");
    let task = task_file("redaction", "all", downstream, "")
        .replace("user: root\n  password: \"\"", &credentials);
    let source = source_file(upstream).replace("user: root\n  password: \"\"", &credentials);
    assert!(task.contains(PASSWORD) && source.contains(PASSWORD));
    (task, source)
}

/// Runs a subtask of `spec` until it pauses with an error (the auto-resume's last error, or
/// the result's), recording its statuses, then stops it.
async fn failing_run(spec: SubtaskSpec, seen: Arc<Mutex<Vec<String>>>) -> String {
    let subtask = Subtask::new(spec).spawn();
    record_statuses(&subtask, seen);
    let paused = wait_status(&subtask, "paused by the unreachable server", |status| {
        status.auto_resume.last_error.is_some() || status.error().is_some()
    })
    .await;
    subtask.stop_now().await.expect("stop now");
    let ended = subtask.wait().await.expect("ends");
    assert_eq!(ended.stage, Stage::Stopped, "{ended:#?}");
    let error = paused
        .auto_resume
        .last_error
        .clone()
        .or_else(|| paused.error().cloned())
        .expect("an error");
    format!(
        "{error:?}\n{error:#?}\n{}\n{:?}",
        error.message, error.raw_cause
    )
}

// A current-thread runtime: the subtask's tasks all run on this thread, where the capturing
// subscriber is the default (`set_default` is per thread; no other test's events mix in).
#[tokio::test]
async fn no_password_in_logs_statuses_or_errors() {
    let (upstream, downstream) = servers("subtask-redaction").await;
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let create_user = format!(
        "CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION"
    );
    upstream.execute(&create_user).await.expect("upstream user");
    downstream
        .execute(&create_user)
        .await
        .expect("downstream user");
    upstream.execute(&shop(200)).await.expect("data");
    let (task, source) = files(&upstream, &downstream);
    // The dump kept in a directory of the test's, read afterwards with everything else the run
    // wrote.
    let dump = tempfile::tempdir().expect("dump directory");
    let task = format!(
        "{task}loaders:\n  global:\n    dir: {}\nclean-dump-file: false\n",
        dump.path().join("dump").display()
    )
    .replace(
        "    syncer-config-name: global\n",
        "    syncer-config-name: global\n    loader-config-name: global\n",
    );
    let mut shown: Vec<String> = Vec::new();
    let statuses = Arc::new(Mutex::new(Vec::new()));

    // A run that works: dump, load, sync, live rows, stop.
    let working = spec(&task, &source);
    assert_eq!(
        working.remote.password, PASSWORD,
        "the run uses the password"
    );
    assert_eq!(working.sink.password, PASSWORD);
    shown.push(format!("{working:?}\n{working:#?}"));
    let subtask = Subtask::new(working).spawn();
    record_statuses(&subtask, statuses.clone());
    wait_status(&subtask, "syncing", |status| {
        status.stage == Stage::Running && status.sync.is_some()
    })
    .await;
    upstream
        .execute("INSERT INTO shop.items (v, note) VALUES (1, 'live'), (2, 'live')")
        .await
        .expect("live rows");
    wait_equal(&upstream, &downstream, "shop", &subtask).await;
    subtask.stop().await.expect("stop");
    let ended = subtask.wait().await.expect("ends");
    assert_eq!(ended.stage, Stage::Stopped, "{ended:#?}");
    shown.push(format!("{ended:?}\n{}", ended.to_query_status()));

    // Runs that fail: the upstream, then the downstream, on a port nothing listens on.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let port = |file: &str, server: &MariaDb| {
        file.replace(
            &format!("port: {}", server.port()),
            &format!("port: {nowhere}"),
        )
    };
    // Another task name: no load of it is marked finished, so the dump connects (and fails).
    let upstream_down = spec(
        &task.replace("name: redaction", "name: redaction_dump"),
        &port(&source, &upstream),
    );
    shown.push(format!("{upstream_down:?}"));
    let error = failing_run(upstream_down, statuses.clone()).await;
    assert!(
        error.contains("Dump") && error.contains("refused"),
        "{error}"
    );
    shown.push(error);
    let incremental = task.replace("task-mode: all", "task-mode: incremental");
    let downstream_down = spec(&port(&incremental, &downstream), &source);
    let error = failing_run(downstream_down, statuses.clone()).await;
    assert!(
        error.contains(&format!("downstream 127.0.0.1:{nowhere}")),
        "{error}"
    );
    shown.push(error);

    // A task file refused for its password's form names the key, not the value.
    let directory = tempfile::tempdir().expect("temp dir");
    let (task_path, source_path) = (
        directory.path().join("task.yaml"),
        directory.path().join("source.yaml"),
    );
    std::fs::write(
        &task_path,
        task.replace(&format!("\"{PASSWORD}\""), &format!("[{PASSWORD}]")),
    )
    .expect("write");
    std::fs::write(&source_path, &source).expect("write");
    let refused = SubtaskSpec::from_files(&task_path, &source_path).expect_err("refused");
    assert!(refused.to_string().contains("password"), "{refused}");
    shown.push(format!("{refused}\n{refused:?}"));

    let logs = captured.text();
    // The capture works: the subtask's span and events, the failing runs' errors (logged once,
    // by the subtask that paused on them) are there.
    assert!(
        logs.contains("subtask{task=redaction source=upstream-1}"),
        "{logs}"
    );
    assert!(logs.contains("unit started"), "{logs}");
    assert!(logs.contains("subtask paused by"), "{logs}");
    assert!(logs.contains(&nowhere.to_string()), "{logs}");
    let statuses = statuses.lock().expect("statuses lock").join("\n");
    assert!(statuses.contains("Sync"), "{statuses}");
    // Everything the runs wrote: the downstream's meta tables (checkpoints, the load's
    // progress) and every file of the dump directory.
    let mut written = String::new();
    let tables = downstream
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dm_meta'")
        .await
        .expect("meta tables");
    assert!(!tables.is_empty(), "the run wrote its meta tables");
    for table in tables
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
    {
        for row in downstream
            .query(&format!("SELECT * FROM dm_meta.`{table}`"))
            .await
            .expect("meta rows")
        {
            written.push_str(&format!("{table}: {row:?}\n"));
        }
    }
    let mut files = 0;
    let mut directories = vec![dump.path().to_path_buf()];
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory)
            .expect("dump directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                directories.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).expect("dump file");
                written.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    assert!(files > 0, "the dump was kept");
    for (what, text) in [
        ("the tracing output", &logs),
        ("the statuses", &statuses),
        ("the specs and errors", &shown.join("\n")),
        ("the meta tables and the dump's files", &written),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "the password shows in {what}:\n{text}"
        );
    }
}
