//! TLS and MySQL 8 logins of the replica client. Against dm-testkit's scripted MySQL 8 source:
//! caching_sha2_password full authentication (RSA key exchange without TLS, the password in
//! clear inside TLS), sha256_password (after an auth switch), verify-identity against a
//! certificate for another host (refused) and verify-ca (accepted), a wrong CA, a source
//! without TLS. Against MariaDB 10.11 started with certificates the test makes: a binlog
//! streamed over TLS with `require_secure_transport=ON` by a user `REQUIRE X509` (refused
//! without its client certificate), a wrong CA refused naming the CA file.

use dm_binlog::{BinlogError, EventData, RemoteOptions, RemoteSource, StartPoint, StreamEvent};
use dm_core::{BinlogPosition, ClassifiedError, ErrorClass, PemSource, TlsConfig, TlsVerification};
use dm_testkit::fake_mysql::FakeAuthentication;
use dm_testkit::{
    FakeMySqlScript, FakeMySqlSource, MariaDb, MariaDbOptions, TestCertificates, or_skip,
    shared_fixture,
};

const FIXTURE: &str = "my80_40-prev-gtids-untagged.binlog";

async fn fake(
    authentication: FakeAuthentication,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Option<FakeMySqlSource> {
    let directory = match shared_fixture("mysql-binlog") {
        Ok(directory) => directory,
        Err(error) if !dm_testkit::is_ci() => {
            eprintln!("SKIPPED: {error}");
            return None;
        }
        Err(error) => panic!("{error}"),
    };
    let bytes = std::fs::read(directory.join(FIXTURE)).expect("fixture");
    let mut script = FakeMySqlScript::from_binlog_file("binlog.000001", &bytes, "s3cr3t-Pa55");
    script.authentication = authentication;
    script.tls = tls;
    Some(FakeMySqlSource::start(script).await.expect("fake source"))
}

fn options(port: u16, password: &str, tls: Option<TlsConfig>) -> RemoteOptions {
    let mut options = RemoteOptions::new("127.0.0.1", port, "repl", password, 9);
    options.stop_at_end = true;
    options.tls = tls.map(std::sync::Arc::new);
    options
}

fn start() -> StartPoint {
    StartPoint::Position(BinlogPosition::parse("binlog.000001:4").expect("position"))
}

async fn read_all(source: &mut RemoteSource) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while let Some(event) = source.next_event().await.expect("event") {
        events.push(event);
    }
    events
}

/// The fake's logins, without the ends of connections (a client that closes after its
/// stream is recorded as `connection ended`, at a moment of its own).
fn logins(source: &FakeMySqlSource) -> Vec<String> {
    source
        .logins()
        .into_iter()
        .filter(|login| !login.starts_with("connection ended"))
        .collect()
}

fn file(path: std::path::PathBuf) -> PemSource {
    PemSource::File(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_full_authentication_exchanges_the_password_with_rsa_without_tls() {
    let Some(source) = fake(FakeAuthentication::CachingSha2Full, None).await else {
        return;
    };
    let mut stream = RemoteSource::connect(&options(source.port(), "s3cr3t-Pa55", None), &start())
        .await
        .expect("full authentication with the RSA key");
    let events = read_all(&mut stream).await;
    assert!(events.len() > 3, "{} events", events.len());
    assert_eq!(logins(&source), ["caching_sha2_password full: RSA"]);

    let error = RemoteSource::connect(&options(source.port(), "wrong", None), &start())
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_authentication_sends_the_password_inside_tls_and_only_there() {
    let certificates = TestCertificates::generate().expect("certificates");
    let tls = TlsConfig::new(file(certificates.ca()));
    for (authentication, expected) in [
        (
            FakeAuthentication::CachingSha2Full,
            "caching_sha2_password full: clear inside TLS",
        ),
        (
            FakeAuthentication::Sha256,
            "sha256_password: clear inside TLS",
        ),
        (
            FakeAuthentication::CachingSha2Fast,
            "caching_sha2_password fast",
        ),
    ] {
        let Some(source) = fake(authentication, Some(certificates.server())).await else {
            return;
        };
        let mut stream = RemoteSource::connect(
            &options(source.port(), "s3cr3t-Pa55", Some(tls.clone())),
            &start(),
        )
        .await
        .unwrap_or_else(|error| panic!("{authentication:?} over TLS: {error}"));
        assert!(read_all(&mut stream).await.len() > 3);
        assert_eq!(logins(&source), [expected]);
    }
    // sha256_password without TLS: the RSA exchange after the auth switch.
    let Some(source) = fake(FakeAuthentication::Sha256, Some(certificates.server())).await else {
        return;
    };
    RemoteSource::connect(&options(source.port(), "s3cr3t-Pa55", None), &start())
        .await
        .expect("sha256_password with RSA");
    assert_eq!(logins(&source), ["sha256_password: RSA"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_is_checked_against_the_ca_and_the_host_name() {
    let certificates = TestCertificates::generate().expect("certificates");
    // A certificate for db.example.invalid, signed by the right CA.
    let Some(source) = fake(
        FakeAuthentication::CachingSha2Fast,
        Some(certificates.elsewhere()),
    )
    .await
    else {
        return;
    };
    let identity = TlsConfig::new(file(certificates.ca()));
    let error = RemoteSource::connect(
        &options(source.port(), "s3cr3t-Pa55", Some(identity.clone())),
        &start(),
    )
    .await
    .expect_err("verify-identity: the certificate names another host");
    let message = error.to_string();
    assert!(matches!(error, BinlogError::Tls { .. }), "{message}");
    assert_eq!(error.class(), ErrorClass::Definite);
    assert_eq!(error.code().to_string(), "DM-11020");
    assert!(message.contains("not valid for name"), "{message}");
    assert!(
        message.contains(&certificates.ca().display().to_string()),
        "{message}"
    );
    let logins = source.logins();
    assert!(
        logins
            .iter()
            .all(|login| login.starts_with("connection ended")),
        "no password was sent: {logins:?}"
    );

    let verify_ca = identity.with_verification(TlsVerification::CertificateAuthority);
    RemoteSource::connect(
        &options(source.port(), "s3cr3t-Pa55", Some(verify_ca)),
        &start(),
    )
    .await
    .expect("verify-ca accepts a certificate the CA signed, whatever its name");

    // The wrong CA is refused, whatever the mode, and named.
    let other = TlsConfig::new(file(certificates.other_ca()))
        .with_verification(TlsVerification::CertificateAuthority);
    let error = RemoteSource::connect(
        &options(source.port(), "s3cr3t-Pa55", Some(other)),
        &start(),
    )
    .await
    .expect_err("a wrong CA");
    let message = error.to_string();
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("other-ca.pem"), "{message}");

    // A CA file that does not exist is named before anything is sent.
    let missing = TlsConfig::new(file(certificates.directory().join("missing.pem")));
    let error = RemoteSource::connect(
        &options(source.port(), "s3cr3t-Pa55", Some(missing)),
        &start(),
    )
    .await
    .expect_err("no CA file");
    assert!(error.to_string().contains("missing.pem"), "{error}");

    // cert-allowed-cn cannot be checked by this client: refused, not ignored.
    let mut with_names = TlsConfig::new(file(certificates.ca()));
    with_names.allowed_common_names = vec!["dm test server".into()];
    let error = RemoteSource::connect(
        &options(source.port(), "s3cr3t-Pa55", Some(with_names)),
        &start(),
    )
    .await
    .expect_err("cert-allowed-cn");
    assert!(error.to_string().contains("cert-allowed-cn"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_tls_is_refused_when_tls_is_asked_for() {
    let certificates = TestCertificates::generate().expect("certificates");
    let Some(source) = fake(FakeAuthentication::CachingSha2Full, None).await else {
        return;
    };
    let error = RemoteSource::connect(
        &options(
            source.port(),
            "s3cr3t-Pa55",
            Some(TlsConfig::new(file(certificates.ca()))),
        ),
        &start(),
    )
    .await
    .expect_err("no TLS on the source");
    assert!(
        matches!(&error, BinlogError::Tls { reason, .. } if reason.contains("does not offer TLS")),
        "{error}"
    );
    let logins = source.logins();
    assert!(
        logins
            .iter()
            .all(|login| login.starts_with("connection ended")),
        "no login was attempted: {logins:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binlog_streams_over_tls_from_mariadb_requiring_secure_transport_and_x509() {
    let certificates = TestCertificates::generate().expect("certificates");
    let server = or_skip!(
        MariaDb::start_with(
            MariaDbOptions::named("tls-source")
                .with_tls(&certificates)
                .arg("--require-secure-transport=ON")
        )
        .await
    );
    server
        .execute(
            "CREATE USER repl@'127.0.0.1' IDENTIFIED BY 's3cr3t-Pa55' REQUIRE X509;
             GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.* TO repl@'127.0.0.1';
             CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, note VARCHAR(20));
             INSERT INTO shop.t VALUES (1, 'over tls'), (2, 'encrypted');",
        )
        .await
        .expect("setup");
    let (certificate, key) = certificates.client();
    let tls =
        TlsConfig::new(file(certificates.ca())).with_client_identity(file(certificate), file(key));
    let options_with = |tls: Option<TlsConfig>| {
        let mut options =
            RemoteOptions::new("127.0.0.1", server.port(), "repl", "s3cr3t-Pa55", 4711);
        options.stop_at_end = true;
        options.tls = tls.map(std::sync::Arc::new);
        options
    };
    let start = StartPoint::Position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));

    let mut source = RemoteSource::connect(&options_with(Some(tls.clone())), &start)
        .await
        .expect("TLS with a client certificate");
    let events = read_all(&mut source).await;
    source.close().await;
    let rows = events
        .iter()
        .filter(|event| matches!(event.event.data, EventData::Rows(_)))
        .count();
    assert!(
        rows >= 1,
        "the insert streamed over TLS: {} events",
        events.len()
    );

    // Without TLS: the server refuses (require_secure_transport), root too (it has no X509
    // requirement); the X509 user is refused as well.
    let mut plain_root = options_with(None);
    plain_root.user = "root".into();
    plain_root.password = String::new();
    let error = RemoteSource::connect(&plain_root, &start)
        .await
        .expect_err("plain TCP");
    // (MariaDB answers 1045 rather than naming the transport; root logs in over TLS: setup.)
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );
    let error = RemoteSource::connect(&options_with(None), &start)
        .await
        .expect_err("plain TCP");
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );

    // TLS without the client certificate: the user REQUIRE X509 is refused.
    let mut no_certificate = tls.clone();
    no_certificate.client_identity = None;
    let error = RemoteSource::connect(&options_with(Some(no_certificate)), &start)
        .await
        .expect_err("no client certificate");
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );

    // The wrong CA: refused, naming the CA file.
    let wrong = TlsConfig::new(file(certificates.other_ca()));
    let error = RemoteSource::connect(&options_with(Some(wrong)), &start)
        .await
        .expect_err("wrong CA");
    assert!(matches!(&error, BinlogError::Tls { .. }), "{error}");
    assert!(error.to_string().contains("other-ca.pem"), "{error}");
}
