//! A `security` section whose certificate files cannot be read is refused when the spec is
//! built, naming the file and the section: at connect time the missing file would look like a
//! network failure that auto-resume retries for ever. No server is needed.

use dm_subtask::{SubtaskError, SubtaskSpec};
use dm_task::config::{SourceConfig, TaskConfig};

const TASK: &str = "name: tls-files
task-mode: incremental
target-database:
  host: 127.0.0.1
  port: 3306
  user: root
  password: \"\"
  security:
    ssl-ca: TARGET_CA
mysql-instances:
  - source-id: upstream-1
    meta:
      binlog-name: mysql-bin.000001
      binlog-pos: 4
";

const SOURCE: &str = "source-id: upstream-1
flavor: mariadb
from:
  host: 127.0.0.1
  port: 3306
  user: root
  password: \"\"
  security:
    ssl-ca: SOURCE_CA
";

fn build(target_ca: &str, source_ca: &str) -> Result<SubtaskSpec, SubtaskError> {
    let task = TaskConfig::from_yaml(&TASK.replace("TARGET_CA", target_ca), "task.yaml")
        .unwrap_or_else(|error| panic!("{error}"));
    let source = SourceConfig::from_yaml(&SOURCE.replace("SOURCE_CA", source_ca), "source.yaml")
        .unwrap_or_else(|error| panic!("{error}"));
    SubtaskSpec::new(task, source, "task.yaml", "source.yaml")
}

#[test]
fn an_unreadable_certificate_file_is_refused_naming_it_and_its_section() {
    let directory = tempfile::tempdir().expect("temp dir");
    let present = directory.path().join("ca.pem");
    std::fs::write(&present, "not checked here: only that it can be read").expect("write");
    let present = present.display().to_string();
    let missing = directory.path().join("nope.pem").display().to_string();

    build(&present, &present).expect("readable files are accepted");
    for (target, source, section, file) in [
        (&present, &missing, "source.yaml: from.security", &missing),
        (
            &missing,
            &present,
            "task.yaml: target-database.security",
            &missing,
        ),
    ] {
        let error = build(target, source).expect_err("a missing CA file");
        let message = error.to_string();
        assert!(
            message.contains(file.as_str()) && message.contains(section),
            "{message}"
        );
        assert_eq!(
            dm_core::ClassifiedError::class(&error),
            dm_core::ErrorClass::Definite,
            "{message}"
        );
    }
}

/// Both servers accept TLS connections only (`require_secure_transport=ON`, a user that
/// `REQUIRE X509`): the subtask's own checks (the flavour, the connection precheck), the dump,
/// the load and the sync all connect with the files' `security`, and a `full` task copies
/// everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_of_a_subtask_uses_the_files_tls() {
    use dm_subtask::{Stage, Subtask};
    use dm_testkit::{MariaDb, MariaDbOptions, TestCertificates, or_skip};

    let certificates = TestCertificates::generate().expect("certificates");
    let start = |name: &'static str| {
        MariaDb::start_with(
            MariaDbOptions::named(name)
                .with_tls(&certificates)
                .arg("--require-secure-transport=ON"),
        )
    };
    let (upstream, downstream) = tokio::join!(start("tls-subtask-up"), start("tls-subtask-down"));
    let (upstream, downstream) = (or_skip!(upstream), or_skip!(downstream));
    for server in [&upstream, &downstream] {
        server
            .execute(
                "CREATE USER mover@'127.0.0.1' IDENTIFIED BY 's3cr3t-Pa55' REQUIRE X509;
                 GRANT ALL ON *.* TO mover@'127.0.0.1';",
            )
            .await
            .expect("user");
    }
    upstream
        .execute(
            "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20));
             INSERT INTO shop.items SELECT seq, CONCAT('item ', seq) FROM shop.seq_1_to_300;",
        )
        .await
        .expect("rows");
    let (certificate, key) = certificates.client();
    let security = format!(
        "{{ssl-ca: '{}', ssl-cert: '{}', ssl-key: '{}'}}",
        certificates.ca().display(),
        certificate.display(),
        key.display()
    );
    let directory = tempfile::tempdir().expect("temp dir");
    let task = TaskConfig::from_yaml(
        &format!(
            "name: tls-subtask\ntask-mode: full\ntarget-database:\n  host: 127.0.0.1\n  port: {}\n  user: mover\n  password: s3cr3t-Pa55\n  security: {security}\nmysql-instances:\n  - source-id: s1\n    mydumper-config-name: global\n    loader-config-name: global\nmydumpers:\n  global:\n    threads: 2\nloaders:\n  global:\n    dir: {}\n",
            downstream.port(),
            directory.path().join("dump").display()
        ),
        "task.yaml",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    // No `flavor`: the subtask asks the upstream itself, over TLS.
    let source = SourceConfig::from_yaml(
        &format!(
            "source-id: s1\nfrom:\n  host: 127.0.0.1\n  port: {}\n  user: mover\n  password: s3cr3t-Pa55\n  security: {security}\n",
            upstream.port()
        ),
        "source.yaml",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let spec = SubtaskSpec::new(task, source, "task.yaml", "source.yaml")
        .unwrap_or_else(|error| panic!("{error}"));
    spec.check_connections()
        .await
        .unwrap_or_else(|error| panic!("the precheck connects over TLS: {error}"));
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        Subtask::new(spec).spawn().wait(),
    )
    .await
    .expect("the subtask ends")
    .expect("a status");
    assert_eq!(status.stage, Stage::Finished, "{status:#?}");
    let rows = downstream
        .query("SELECT COUNT(*) FROM shop.items")
        .await
        .expect("count");
    assert_eq!(rows[0][0].as_deref(), Some("300"));
}
