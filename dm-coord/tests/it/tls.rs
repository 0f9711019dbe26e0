//! `EtcdCoordStore` over TLS: an etcd whose clients must present a certificate its CA signed
//! (`--client-cert-auth`, certificates the test makes). The conformance suite's basic case
//! runs over TLS; a wrong CA is refused at once (definite), naming the CA file, not retried
//! as an unreachable cluster; a client without TLS does not get in.

use std::time::Duration;

use dm_coord::{CoordError, EtcdCoordStore, EtcdOptions, testsuite};
use dm_core::{ClassifiedError, ErrorClass, PemSource, TlsConfig};
use dm_testkit::{EtcdCluster, TestCertificates, or_skip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_store_runs_over_tls_with_a_client_certificate() {
    let certificates = TestCertificates::generate().expect("certificates");
    let cluster = or_skip!(EtcdCluster::start_with_tls(&certificates).await);
    let (certificate, key) = certificates.client();
    let tls = TlsConfig::new(PemSource::File(certificates.ca()))
        .with_client_identity(PemSource::File(certificate), PemSource::File(key));
    let options = |tls: Option<TlsConfig>| EtcdOptions {
        tls,
        ..EtcdOptions::new(cluster.endpoints())
    };
    let store = EtcdCoordStore::connect(&options(Some(tls.clone())))
        .await
        .expect("TLS with the client certificate");
    testsuite::put_get_delete(store).await;

    let wrong = TlsConfig::new(PemSource::File(certificates.other_ca()));
    let error = EtcdCoordStore::connect(&options(Some(wrong)))
        .await
        .expect_err("wrong CA");
    assert!(matches!(&error, CoordError::Refused { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Definite);
    assert!(error.to_string().contains("other-ca.pem"), "{error}");

    let mut plain = options(None);
    plain.request_timeout = Duration::from_secs(2);
    assert!(
        EtcdCoordStore::connect(&plain).await.is_err(),
        "a client without TLS is not served"
    );
}
