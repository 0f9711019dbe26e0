//! TLS settings of a connection that leaves the process, in one type for every connector.
//!
//! ```text
//! source.yaml from.security / task.yaml target-database.security / dm-master, dm-worker toml
//!   {ssl-ca | ssl-ca-bytes | ssl-ca-base64, ssl-cert.., ssl-key.., cert-allowed-cn, ssl-mode}
//!     --dm-task (DatabaseConfig::tls)--> TlsConfig (this module: data, no I/O)
//!         --dm-binlog remote::tls----> rustls ClientConfig   (replica protocol: SSL request, then TLS)
//!         --dm-sink / dm-dumpload----> mysql_async SslOpts   (downstream, dump and load connections)
//!         --dm-coord etcd------------> tonic TLS options     (the etcd client)
//! ```
//!
//! The type lives here, below every connector, so that the coming API server and dmctl read
//! the same settings; each connector turns it into its own library's TLS options, where the
//! files are read (this crate does no I/O). Building a rustls configuration in one shared crate
//! would serve only the replica client today: mysql_async and tonic each take PEM bytes or
//! paths and build their own.
//!
//! Invariants kept by the type:
//! - a [`TlsConfig`] always has a CA to verify the server with: TLS without verification is
//!   not offered (a `security` section without a CA is refused where it is read, never turned
//!   into plaintext or into an unverified connection);
//! - a client certificate always comes with its key ([`ClientIdentity`]);
//! - the server's certificate is always checked against the CA; [`TlsVerification`] says
//!   whether its name must also match the host connected to.
//!
//! Error model: none here; a connector that cannot read a file or whose server fails the
//! checks returns its own classed error naming the file ([`PemSource`]'s `Display`).

use std::fmt;
use std::path::PathBuf;

/// PEM text: a file (DM's `ssl-ca`, `ssl-cert`, `ssl-key`), or given inline (DM's
/// `ssl-*-bytes` and `ssl-*-base64`, the OpenAPI forms). `Debug` and `Display` never show
/// inline contents (a key is a secret).
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file, read by the connector when it connects.
    File(PathBuf),
    /// The PEM bytes themselves; `key` names the setting they came from (for messages).
    Inline {
        /// The setting, e.g. `ssl-ca-base64`.
        key: String,
        /// The PEM bytes.
        pem: Vec<u8>,
    },
}

impl fmt::Debug for PemSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(path) => formatter.debug_tuple("File").field(path).finish(),
            PemSource::Inline { key, pem } => formatter
                .debug_struct("Inline")
                .field("key", key)
                .field("bytes", &pem.len())
                .finish(),
        }
    }
}

impl fmt::Display for PemSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(path) => write!(formatter, "file {}", path.display()),
            PemSource::Inline { key, .. } => write!(formatter, "the PEM given in {key}"),
        }
    }
}

/// A client certificate and its private key, sent when the server asks for one (a MySQL user
/// `REQUIRE X509`, an etcd with client-certificate auth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub certificate: PemSource,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PemSource,
}

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsVerification {
    /// The chain must lead to the CA, and the certificate must name the host connected to
    /// (a DNS name or an IP address in its subject alternative names). MySQL's
    /// `VERIFY_IDENTITY`; DM's behaviour (its driver checks the host name). The default.
    #[default]
    Identity,
    /// The chain must lead to the CA; the name is not checked. MySQL's `VERIFY_CA`: for
    /// servers whose certificates do not name the host (MySQL's auto-generated ones), behind a
    /// CA that signs only database servers.
    CertificateAuthority,
}

impl TlsVerification {
    /// The name in configuration files (`ssl-mode`).
    pub fn name(self) -> &'static str {
        match self {
            TlsVerification::Identity => "verify-identity",
            TlsVerification::CertificateAuthority => "verify-ca",
        }
    }
}

/// TLS for one connection target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// The CA (one or more PEM certificates) the server's certificate must chain to; the only
    /// roots trusted (the system's are not).
    pub ca: PemSource,
    /// The client certificate to present, if any.
    pub client_identity: Option<ClientIdentity>,
    /// Whether the server's name is checked too.
    pub verification: TlsVerification,
    /// DM's `cert-allowed-cn`: the common names a peer's certificate may have. Kept for the
    /// servers that check their clients' certificates (the coming API); the database and etcd
    /// clients refuse a non-empty list (their TLS libraries cannot check it), so it is never
    /// ignored.
    pub allowed_common_names: Vec<String>,
}

impl TlsConfig {
    /// Verify the server against `ca`, its name included; no client certificate.
    pub fn new(ca: PemSource) -> Self {
        TlsConfig {
            ca,
            client_identity: None,
            verification: TlsVerification::Identity,
            allowed_common_names: Vec::new(),
        }
    }

    /// With a client certificate and key.
    pub fn with_client_identity(mut self, certificate: PemSource, key: PemSource) -> Self {
        self.client_identity = Some(ClientIdentity { certificate, key });
        self
    }

    /// With the given verification.
    pub fn with_verification(mut self, verification: TlsVerification) -> Self {
        self.verification = verification;
        self
    }

    /// Checks that every file it names can be read now: `Err((file, reason))` for the first
    /// that cannot. A connector reads them only when it connects, where a missing file looks
    /// like a network failure to be retried; callers check first and refuse the configuration.
    pub fn check_files(&self) -> Result<(), (PathBuf, String)> {
        let identity = self
            .client_identity
            .iter()
            .flat_map(|identity| [&identity.certificate, &identity.key]);
        for source in std::iter::once(&self.ca).chain(identity) {
            if let PemSource::File(path) = source
                && let Err(error) = std::fs::File::open(path)
            {
                return Err((path.clone(), error.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_pem_is_never_shown() {
        let key = PemSource::Inline {
            key: "ssl-key-base64".into(),
            pem: b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n".to_vec(),
        };
        let config = TlsConfig::new(PemSource::File("/etc/ca.pem".into()))
            .with_client_identity(PemSource::File("/etc/client.pem".into()), key.clone());
        let shown = format!("{config:?} {key}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("ssl-key-base64"), "{shown}");
        assert_eq!(config.ca.to_string(), "file /etc/ca.pem");
        assert_eq!(config.verification.name(), "verify-identity");
    }
}
