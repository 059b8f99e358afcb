//! TLS for both roles (PS3.15 Annex B, the secure transport connection profiles), with
//! rustls: TLS 1.2 and 1.3 only and rustls's cipher suites, all ECDHE with AEAD, which is
//! what BCP 195 (RFC 9325) and the "Non-downgrading BCP 195" profile (PS3.15 B.9) ask for.
//!
//! Certificates and keys come as PEM. Building a configuration checks them (a key that
//! does not match its certificate, a CA file with no certificate, a PEM without a key) and
//! says what is wrong, so that a bad file fails at start-up, not at the first handshake.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
pub use tokio_rustls::rustls;

/// Why a TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("{what} holds no {expected}")]
    Empty {
        what: &'static str,
        expected: &'static str,
    },
    #[error("{0}")]
    Config(String),
}

/// The lowest TLS version allowed (BCP 195 allows 1.2 and 1.3; nothing older is offered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MinVersion {
    #[default]
    Tls12,
    Tls13,
}

fn versions(min: MinVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        MinVersion::Tls12 => &BOTH,
        MinVersion::Tls13 => &ONLY_13,
    }
}

// ring rather than aws-lc-rs: it builds with a C compiler alone (no cmake, no Go), so
// the wheel builds anywhere. Its lack of post-quantum key exchange is what the
// deprecation note is about; PS3.15's profiles (BCP 195) do not ask for it.
// X25519 first: the client sends a key share for the first group only, and ring's P-384
// (its default order put it first) costs ~0.7 ms a handshake on each side, most of a TLS
// association's set-up (benches/tls_vs_peers.py). Every group stays offered.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    let mut provider = crypto::ring::default_provider();
    provider.kx_groups = vec![
        crypto::ring::kx_group::X25519,
        crypto::ring::kx_group::SECP256R1,
        crypto::ring::kx_group::SECP384R1,
    ];
    Arc::new(provider)
}

/// Every certificate in a PEM bundle, in order.
fn certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            expected: "PEM certificate (-----BEGIN CERTIFICATE-----)",
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "the key",
            expected: "PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)",
        },
        other => TlsError::Pem {
            what: "the key",
            detail: other.to_string(),
        },
    })
}

fn roots(pem: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem, "the CA bundle")? {
        store
            .add(cert)
            .map_err(|e| TlsError::Config(format!("the CA bundle: {e}")))?;
    }
    Ok(Arc::new(store))
}

/// How the server treats client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// None asked for.
    None,
    /// Asked for and verified against the CA bundle when sent; a client without one is
    /// still served.
    Optional,
    /// Required and verified (mutual TLS): a client without a certificate the CA bundle
    /// vouches for fails the handshake.
    Required,
}

/// The settings of a TLS server.
#[derive(Debug, Clone)]
pub struct ServerTls<'a> {
    /// Our certificate chain (ours first, then intermediates), PEM.
    pub cert_chain: &'a [u8],
    /// Our private key, PEM.
    pub key: &'a [u8],
    /// The CAs that client certificates must chain to, PEM (needed unless `client_auth`
    /// is [`ClientAuth::None`]).
    pub client_ca: Option<&'a [u8]>,
    pub client_auth: ClientAuth,
    pub min_version: MinVersion,
}

/// Builds a rustls server configuration, checking the files.
pub fn server_config(s: &ServerTls<'_>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(s.cert_chain, "the certificate")?;
    let key = private_key(s.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(s.min_version))
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (s.client_auth, s.client_ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(TlsError::Config(
                "verifying client certificates needs a CA bundle (the CAs client certificates must chain to)".into(),
            ))
        }
        (auth, Some(ca)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider());
            let verifier = if auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Config(format!("the CA bundle: {e}")))?,
            )
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("the certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

/// How the client checks the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCheck<'a> {
    /// The server's chain must lead to one of these CAs (PEM), and its certificate must
    /// name the host we connect to (DNS name or IP address) unless `check_hostname` is
    /// false.
    Ca { ca: &'a [u8], check_hostname: bool },
    /// No check at all: encryption without authentication, for testing against a peer
    /// whose certificate you cannot get (DCMTK's `-ic`). Anyone in the middle can read
    /// and change the traffic.
    Insecure,
}

/// The settings of a TLS client.
#[derive(Debug, Clone)]
pub struct ClientTls<'a> {
    pub server: ServerCheck<'a>,
    /// Our certificate chain and key, PEM, for a server that wants one (mutual TLS).
    pub identity: Option<(&'a [u8], &'a [u8])>,
    pub min_version: MinVersion,
}

/// Builds a rustls client configuration, checking the files.
pub fn client_config(c: &ClientTls<'_>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(c.min_version))
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match c.server {
        ServerCheck::Ca { ca, check_hostname } => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider())
                .build()
                .map_err(|e| TlsError::Config(format!("the CA bundle: {e}")))?;
            Arc::new(Verifier {
                inner: Some(inner),
                check_hostname,
                provider: provider(),
            })
        }
        ServerCheck::Insecure => Arc::new(Verifier {
            inner: None,
            check_hostname: false,
            provider: provider(),
        }),
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match c.identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(certificates(chain, "the certificate")?, private_key(key)?)
            .map_err(|e| TlsError::Config(format!("the certificate and key: {e}")))?,
    };
    Ok(Arc::new(config))
}

/// The name to check the server's certificate against (and to send as SNI): the host
/// part of `host:port`, an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|_| TlsError::Config(format!("'{host}' is neither a DNS name nor an IP address")))
}

/// WebPKI verification with the host name check optional (DICOM peers are often reached
/// by an address their certificate does not name; PS3.15 B.1 asks for the chain to be
/// trusted, not for a name match), or no verification at all.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    check_hostname: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client's TLS: the configuration, and the name to verify the server by (None: the
/// host we connect to).
#[derive(Debug, Clone)]
pub struct Connector {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: Option<String>,
}

impl Connector {
    /// The TLS handshake over a connected TCP stream, within `timeout`.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let host = match &self.server_name {
            Some(name) => name.as_str(),
            None => addr.rsplit_once(':').map_or(addr, |(host, _)| host),
        };
        let name = server_name(host).map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
            Err(_) => Err(format!("no TLS handshake within {timeout:?}")),
            Ok(Err(e)) => Err(handshake_error(&e)),
            Ok(Ok(s)) => Ok(s),
        }
    }
}

/// The server side of the handshake, within `timeout`.
pub(crate) async fn accept(
    config: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    timeout: Duration,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Err(_) => Err(format!("no TLS handshake within {timeout:?}")),
        Ok(Err(e)) => Err(handshake_error(&e)),
        Ok(Ok(s)) => Ok(s),
    }
}

/// A handshake failure as one line: rustls's error when there is one (a certificate
/// problem, an alert from the peer), else the I/O error (the peer closed, or spoke
/// plain DICOM to a TLS port).
fn handshake_error(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        // The first bytes were no TLS record: plain DICOM (an A-ASSOCIATE-RQ) to a TLS
        // port, most likely.
        Some(tls @ rustls::Error::InvalidMessage(_)) => {
            format!("TLS handshake failed: not TLS (plain DICOM to a TLS port?): {tls}")
        }
        Some(tls) => format!("TLS handshake failed: {tls}"),
        None if e.kind() == std::io::ErrorKind::InvalidData => {
            format!("TLS handshake failed: not TLS ({e})")
        }
        None => format!("TLS handshake failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_named() {
        let not_pem = b"hello";
        let e = server_config(&ServerTls {
            cert_chain: not_pem,
            key: not_pem,
            client_ca: None,
            client_auth: ClientAuth::None,
            min_version: MinVersion::Tls12,
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the certificate holds no PEM certificate"),
            "{e}"
        );
        let e = client_config(&ClientTls {
            server: ServerCheck::Ca {
                ca: b"",
                check_hostname: true,
            },
            identity: None,
            min_version: MinVersion::Tls13,
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("the CA bundle holds no"), "{e}");
    }

    #[test]
    fn the_certificate_is_checked_first() {
        let e = server_config(&ServerTls {
            cert_chain: b"",
            key: b"",
            client_ca: None,
            client_auth: ClientAuth::Required,
            min_version: MinVersion::Tls12,
        })
        .unwrap_err();
        // The certificate is checked first.
        assert!(matches!(e, TlsError::Empty { .. }), "{e}");
    }

    #[test]
    fn server_names() {
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("pacs.example.org").is_ok());
        assert!(server_name("bad name!").is_err());
    }

    #[test]
    fn an_insecure_client_builds() {
        assert!(client_config(&ClientTls {
            server: ServerCheck::Insecure,
            identity: None,
            min_version: MinVersion::Tls12,
        })
        .is_ok());
    }
}
