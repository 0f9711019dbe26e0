//! Certificates a test makes for itself: a CA, a server certificate for `127.0.0.1` and
//! `localhost`, a client certificate, a server certificate that names another host, and a
//! second CA that signed none of them, written as PEM files in a temp directory.
//!
//! ```text
//! TestCertificates::generate() --> ca.pem  server.pem server-key.pem  (127.0.0.1, localhost)
//!                                          client.pem client-key.pem  (CN dm-client)
//!                                          elsewhere.pem elsewhere-key.pem (db.example.invalid)
//!                                  other-ca.pem (signed nothing here: "the wrong CA")
//! MariaDbOptions::with_tls(&certificates) --> --ssl-ca --ssl-cert --ssl-key
//! FakeMySqlScript::tls = Some(certificates.server_identity())  --> the fake source speaks TLS
//! ```
//!
//! Keys are ECDSA P-256 (fast to make); nothing here is a secret: the directory is removed when
//! the value drops.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::TestkitError;

/// PEM files of a test CA and the certificates it signed.
#[derive(Debug)]
pub struct TestCertificates {
    directory: tempfile::TempDir,
}

fn failed(action: &str) -> impl FnOnce(rcgen::Error) -> TestkitError + '_ {
    move |error| TestkitError::Io {
        action: action.to_owned(),
        source: std::io::Error::other(error.to_string()),
    }
}

impl TestCertificates {
    /// Makes the certificates in a new temp directory.
    pub fn generate() -> Result<TestCertificates, TestkitError> {
        let directory = tempfile::Builder::new()
            .prefix("dm-testkit-certificates-")
            .tempdir()
            .map_err(|source| TestkitError::Io {
                action: "create a directory for test certificates".into(),
                source,
            })?;
        let write = |name: &str, text: String| {
            std::fs::write(directory.path().join(name), text).map_err(|source| TestkitError::Io {
                action: format!("write the test certificate {name}"),
                source,
            })
        };
        let ca = |common_name: &str| -> Result<(String, Issuer<'static, KeyPair>), TestkitError> {
            let key = KeyPair::generate().map_err(failed("make a CA key"))?;
            let mut params =
                CertificateParams::new(Vec::<String>::new()).map_err(failed("describe a CA"))?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let certificate = params.self_signed(&key).map_err(failed("sign a CA"))?;
            Ok((certificate.pem(), Issuer::new(params, key)))
        };
        let (ca_pem, issuer) = ca("dm test CA")?;
        write("ca.pem", ca_pem)?;
        let (other_pem, _) = ca("dm test CA (another)")?;
        write("other-ca.pem", other_pem)?;
        let leaf = |names: &[&str], common_name: &str, purpose: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().map_err(failed("make a key"))?;
            let mut params = CertificateParams::new(
                names
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect::<Vec<_>>(),
            )
            .map_err(failed("describe a certificate"))?;
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            params.extended_key_usages = vec![purpose];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let certificate = params
                .signed_by(&key, &issuer)
                .map_err(failed("sign a certificate"))?;
            Ok::<_, TestkitError>((certificate.pem(), key.serialize_pem()))
        };
        let (server, server_key) = leaf(
            &["127.0.0.1", "localhost"],
            "dm test server",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        write("server.pem", server)?;
        write("server-key.pem", server_key)?;
        let (client, client_key) = leaf(
            &["dm-client"],
            "dm-client",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        write("client.pem", client)?;
        write("client-key.pem", client_key)?;
        let (elsewhere, elsewhere_key) = leaf(
            &["db.example.invalid"],
            "db.example.invalid",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        write("elsewhere.pem", elsewhere)?;
        write("elsewhere-key.pem", elsewhere_key)?;
        Ok(TestCertificates { directory })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    /// The directory holding the files.
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// The CA that signed every certificate here.
    pub fn ca(&self) -> PathBuf {
        self.file("ca.pem")
    }

    /// A CA that signed none of them.
    pub fn other_ca(&self) -> PathBuf {
        self.file("other-ca.pem")
    }

    /// The server certificate (`127.0.0.1`, `localhost`) and its key.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.file("server.pem"), self.file("server-key.pem"))
    }

    /// A server certificate that names only `db.example.invalid`, and its key.
    pub fn elsewhere(&self) -> (PathBuf, PathBuf) {
        (self.file("elsewhere.pem"), self.file("elsewhere-key.pem"))
    }

    /// The client certificate (CN `dm-client`) and its key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.file("client.pem"), self.file("client-key.pem"))
    }
}

/// A rustls server configuration from a certificate and key file (the fake source's TLS).
pub fn server_config(
    certificate: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TestkitError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, error: String| TestkitError::Io {
        action: format!("read the {what} for a TLS test server"),
        source: std::io::Error::other(error),
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|error| invalid("certificate", error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid("certificate", error.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|error| invalid("key", error.to_string()))?;
    // ring, as the clients under test.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid("protocol versions", error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| invalid("certificate and key", error.to_string()))?;
    Ok(Arc::new(config))
}
