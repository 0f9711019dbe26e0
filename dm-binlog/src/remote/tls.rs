//! TLS of the replica connection: [`dm_core::TlsConfig`] turned into a rustls client
//! configuration, and the stream that is plain TCP until the handshake upgrades it.
//!
//! ```text
//! server: HandshakeV10 (capabilities with CLIENT_SSL)
//! client: SSL request (capabilities | CLIENT_SSL, max packet, charset, 23 zeros)   sequence 1
//!         ---- TLS handshake over the same socket: CA, name (verify-identity), client cert ----
//! client: HandshakeResponse41 (inside TLS)                                         sequence 2
//! ```
//!
//! Invariants:
//! - only the configured CA is trusted (no system roots); a server without CLIENT_SSL, a
//!   certificate that does not chain to the CA or (verify-identity) does not name the host
//!   ends the connection with [`BinlogError::Tls`], which names the CA: TLS asked for is never
//!   given up;
//! - `cert-allowed-cn` is refused (rustls cannot check a common name; DM uses it on its own
//!   servers), never ignored;
//! - rustls runs on ring, chosen here, so no process-wide crypto provider is needed.
//!
//! Error model: every failure here is [`BinlogError::Tls`] (definite: the configuration, the
//! files or the server's certificate must change).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use dm_core::{PemSource, TlsConfig, TlsVerification};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::BinlogError;

/// The socket of a connection: plain, or TLS after the SSL request.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(context, buffer),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, buffer),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(context),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

impl Stream {
    /// Whether the connection is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

/// Reads PEM bytes from their source.
fn pem_bytes(source: &PemSource) -> Result<Vec<u8>, String> {
    match source {
        PemSource::File(path) => {
            std::fs::read(path).map_err(|error| format!("cannot read {source}: {error}"))
        }
        PemSource::Inline { pem, .. } => Ok(pem.clone()),
    }
}

/// The certificates of a PEM source (at least one).
fn certificates(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = pem_bytes(source)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{source} is not valid PEM: {error}"))?;
    if certificates.is_empty() {
        return Err(format!("{source} holds no PEM certificate"));
    }
    Ok(certificates)
}

/// The TLS settings as a rustls client configuration, and the name to verify.
pub(crate) struct TlsClient {
    config: Arc<ClientConfig>,
    /// For messages: `the CA file ...`.
    ca: String,
}

impl TlsClient {
    /// Builds the client configuration; `address` names the server in errors.
    pub(crate) fn new(tls: &TlsConfig, address: &str) -> Result<TlsClient, BinlogError> {
        let failed = |reason: String| BinlogError::Tls {
            address: address.to_owned(),
            reason,
        };
        if !tls.allowed_common_names.is_empty() {
            return Err(failed(
                "cert-allowed-cn is not supported on a database connection (it checks the \
                 common name of a peer's certificate, which this client cannot do); remove it \
                 and keep ssl-mode verify-identity, which checks the host name"
                    .into(),
            ));
        }
        let mut roots = RootCertStore::empty();
        for certificate in certificates(&tls.ca).map_err(&failed)? {
            roots.add(certificate).map_err(|error| {
                failed(format!(
                    "the CA in {} is not a usable certificate: {error}",
                    tls.ca
                ))
            })?;
        }
        // ring, like mysql_async's and tonic's TLS here: one provider, no C build of aws-lc
        // (rustls deprecates ring's provider only for its lack of post-quantum key exchange).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| failed(error.to_string()))?
            .with_root_certificates(roots.clone());
        let mut config = match &tls.client_identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let chain = certificates(&identity.certificate).map_err(&failed)?;
                let key_bytes = pem_bytes(&identity.key).map_err(&failed)?;
                let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|error| {
                    failed(format!(
                        "{} holds no usable private key: {error}",
                        identity.key
                    ))
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|error| {
                    let text = error.to_string();
                    failed(if text.contains("UnsupportedCertVersion") {
                        format!(
                            "the client certificate ({}) is not X.509 v3 ({text}): make it with \
                             extensions (`openssl x509 -req ... -extfile` with at least \
                             `basicConstraints=CA:FALSE`)",
                            identity.certificate
                        )
                    } else {
                        format!(
                            "the client certificate ({}) and key ({}) do not go together: {text}",
                            identity.certificate, identity.key
                        )
                    })
                })?
            }
        };
        if tls.verification == TlsVerification::CertificateAuthority {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|error| failed(error.to_string()))?;
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(CertificateAuthorityOnly { verifier }));
        }
        Ok(TlsClient {
            config: Arc::new(config),
            ca: tls.ca.to_string(),
        })
    }

    /// Runs the TLS handshake over `stream` with the server called `host`.
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        host: &str,
        address: &str,
    ) -> Result<Stream, BinlogError> {
        let failed = |reason: String| BinlogError::Tls {
            address: address.to_owned(),
            reason,
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|error| failed(format!("`{host}` is not a host name for TLS: {error}")))?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = connector.connect(name, stream).await.map_err(|error| {
            failed(format!(
                "the TLS handshake failed: {error} (the server's certificate is verified against \
                 the CA in {})",
                self.ca
            ))
        })?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// verify-ca: the chain must lead to the CA; a name mismatch alone is accepted.
#[derive(Debug)]
struct CertificateAuthorityOnly {
    verifier: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for CertificateAuthorityOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}
