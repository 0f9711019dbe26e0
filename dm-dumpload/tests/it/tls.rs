//! Dump and load over TLS, configured as a user writes it: a source's `from.security` and a
//! task's `target-database.security` (read by dm-task) give the dump's and the loader's
//! connections their TLS. Both servers run `require_secure_transport=ON` with certificates the
//! test makes, and both users `REQUIRE X509`; the data arrives whole. A wrong CA stops the dump
//! with a definite error that names the CA file.

use dm_core::{ClassifiedError, ErrorClass, Flavor};
use dm_dumpload::{DumpError, DumpLoadConfig, Loader, migrate_stream};
use dm_task::config::{DatabaseConfig, TaskConfig};
use dm_task::filter::{BlockAllowList, TableRouter};
use dm_testkit::{MariaDb, MariaDbOptions, TestCertificates, or_skip};

use crate::support::{assert_same, progress};

async fn tls_server(
    name: &str,
    certificates: &TestCertificates,
) -> Result<MariaDb, dm_testkit::TestkitError> {
    let server = MariaDb::start_with(
        MariaDbOptions::named(name)
            .with_tls(certificates)
            .arg("--require-secure-transport=ON"),
    )
    .await?;
    server
        .execute(
            "CREATE USER mover@'127.0.0.1' IDENTIFIED BY 's3cr3t-Pa55' REQUIRE X509;
             GRANT ALL ON *.* TO mover@'127.0.0.1';",
        )
        .await
        .expect("user");
    Ok(server)
}

fn security(certificates: &TestCertificates, ca: &std::path::Path) -> String {
    let (certificate, key) = certificates.client();
    format!(
        "{{ssl-ca: '{}', ssl-cert: '{}', ssl-key: '{}'}}",
        ca.display(),
        certificate.display(),
        key.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_and_load_run_over_tls_as_the_task_and_source_files_say() {
    let certificates = TestCertificates::generate().expect("certificates");
    let upstream = or_skip!(tls_server("tls-dump-upstream", &certificates).await);
    let downstream = or_skip!(tls_server("tls-dump-downstream", &certificates).await);
    upstream
        .execute(
            "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20));
             INSERT INTO shop.items SELECT seq, CONCAT('item ', seq) FROM shop.seq_1_to_500;",
        )
        .await
        .expect("rows");
    let security_text = security(&certificates, &certificates.ca());
    let task = TaskConfig::from_yaml(
        &format!(
            "name: tls\ntask-mode: full\ntarget-database:\n  host: 127.0.0.1\n  port: {}\n  user: mover\n  password: s3cr3t-Pa55\n  security: {security_text}\nmysql-instances:\n  - source-id: s1\n",
            downstream.port()
        ),
        "task.yaml",
    )
    .expect("task");
    let from: DatabaseConfig = serde_norway::from_str(&format!(
        "host: 127.0.0.1\nport: {}\nuser: mover\npassword: s3cr3t-Pa55\nsecurity: {security_text}\n",
        upstream.port()
    ))
    .expect("from");
    let config = DumpLoadConfig::from_task(&task, &task.mysql_instances[0]).expect("dump config");
    let dump = config.dump_options(&from, Flavor::MariaDb);
    assert!(dump.snapshot.tls.is_some(), "the dump connects with TLS");
    let loader = Loader::new(
        config.load_options(&task, &task.mysql_instances[0]),
        TableRouter::new(true, Vec::new()),
    )
    .expect("loader");
    let filter = BlockAllowList::default();
    migrate_stream(&dump, &filter, &loader, progress(), progress())
        .await
        .expect("dump and load over TLS");
    assert_same(&upstream, &downstream, &["shop"]).await;

    // The wrong CA: the dump stops, naming the CA file.
    let wrong: DatabaseConfig = serde_norway::from_str(&format!(
        "host: 127.0.0.1\nport: {}\nuser: mover\npassword: s3cr3t-Pa55\nsecurity: {}\n",
        upstream.port(),
        security(&certificates, &certificates.other_ca())
    ))
    .expect("from");
    let dump = config.dump_options(&wrong, Flavor::MariaDb);
    let Err(error) = dm_dumpload::open_snapshot(&dump.snapshot).await else {
        panic!("a wrong CA must be refused");
    };
    assert!(matches!(&error, DumpError::Tls { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Definite);
    assert!(error.to_string().contains("other-ca.pem"), "{error}");
    // The password shows in no Debug output of the options.
    assert!(!format!("{dump:?}").contains("s3cr3t"), "{dump:?}");
}
