//! The downstream over TLS: a MariaDB started with certificates the test makes,
//! `require_secure_transport=ON`, a user `REQUIRE X509`. The sink logs in with the client
//! certificate and writes over TLS; without the certificate it is refused; a wrong CA is a
//! definite [`SinkError::Tls`] naming the CA file; what mysql_async cannot check is refused
//! before connecting.

use dm_core::{ClassifiedError, ErrorClass, PemSource, TlsConfig, TlsVerification};
use dm_sink::{MySqlSink, MySqlSinkOptions, SinkError};
use dm_testkit::{MariaDb, MariaDbOptions, TestCertificates, or_skip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_connects_over_tls_with_a_client_certificate_and_refuses_a_wrong_ca() {
    let certificates = TestCertificates::generate().expect("certificates");
    let server = or_skip!(
        MariaDb::start_with(
            MariaDbOptions::named("tls-downstream")
                .with_tls(&certificates)
                .arg("--require-secure-transport=ON")
        )
        .await
    );
    server
        .execute(
            "CREATE USER writer@'127.0.0.1' IDENTIFIED BY 's3cr3t-Pa55' REQUIRE X509;
             GRANT ALL ON *.* TO writer@'127.0.0.1';",
        )
        .await
        .expect("user");
    let (certificate, key) = certificates.client();
    let tls = TlsConfig::new(PemSource::File(certificates.ca()))
        .with_client_identity(PemSource::File(certificate), PemSource::File(key));
    let options = |tls: Option<TlsConfig>| MySqlSinkOptions {
        tls,
        ..MySqlSinkOptions::new("127.0.0.1", server.port(), "writer", "s3cr3t-Pa55")
    };

    let mut sink = MySqlSink::new(options(Some(tls.clone()))).expect("sink");
    sink.connect()
        .await
        .expect("TLS with the client certificate");

    // Without TLS, and without the client certificate: the server refuses.
    for (what, attempt) in [
        ("plain TCP", None),
        ("no client certificate", {
            let mut without = tls.clone();
            without.client_identity = None;
            Some(without)
        }),
    ] {
        let error = MySqlSink::new(options(attempt))
            .expect("sink")
            .connect()
            .await
            .expect_err(what);
        assert!(
            matches!(&error, SinkError::Statement { code: 1045, .. }),
            "{what}: {error}"
        );
    }

    // The wrong CA: definite, naming the CA file.
    let wrong = TlsConfig::new(PemSource::File(certificates.other_ca()));
    let error = MySqlSink::new(options(Some(wrong)))
        .expect("sink")
        .connect()
        .await
        .expect_err("wrong CA");
    assert!(matches!(&error, SinkError::Tls { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Definite);
    assert_eq!(error.code().to_string(), "DM-13020");
    assert!(error.to_string().contains("other-ca.pem"), "{error}");

    // What mysql_async cannot check is refused before connecting.
    let verify_ca = tls
        .clone()
        .with_verification(TlsVerification::CertificateAuthority);
    let mut with_names = tls.clone();
    with_names.allowed_common_names = vec!["dm test server".into()];
    for (what, attempt, says) in [
        ("verify-ca", verify_ca, "verify-ca"),
        ("cert-allowed-cn", with_names, "cert-allowed-cn"),
    ] {
        let error = MySqlSink::new(options(Some(attempt)))
            .expect("sink")
            .connect()
            .await
            .expect_err(what);
        assert!(
            matches!(&error, SinkError::Tls { reason, .. } if reason.contains(says)),
            "{what}: {error}"
        );
    }
}
