//! TLS configurations for Python: built once from PEM bytes (checked then), shared by
//! every association that uses them. `dimse.TLS` (Python) reads the files and builds these.

use std::sync::Arc;

use dimse_core::net::tls::{self, ClientAuth, MinVersion, ServerCheck};
use pyo3::prelude::*;

use crate::error::{raise, Kind};

fn min_version(v: &str) -> PyResult<MinVersion> {
    match v {
        "1.2" => Ok(MinVersion::Tls12),
        "1.3" => Ok(MinVersion::Tls13),
        other => Err(raise(
            Kind::InvalidArgument,
            format!("TLS minimum_version must be '1.2' or '1.3' (BCP 195 allows nothing older), not '{other}'"),
        )),
    }
}

fn invalid(e: tls::TlsError) -> PyErr {
    raise(Kind::InvalidArgument, format!("TLS: {e}"))
}

/// A server's TLS: certificate chain, key, and how client certificates are treated.
#[pyclass(frozen, module = "dimse._core")]
pub struct TlsServerConfig {
    pub(crate) inner: Arc<tls::rustls::ServerConfig>,
}

#[pymethods]
impl TlsServerConfig {
    #[new]
    #[pyo3(signature = (cert_chain, key, client_ca=None, client_auth="none", minimum_version="1.2"))]
    fn new(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
        client_auth: &str,
        minimum_version: &str,
    ) -> PyResult<Self> {
        let client_auth = match client_auth {
            "none" => ClientAuth::None,
            "optional" => ClientAuth::Optional,
            "required" => ClientAuth::Required,
            other => {
                return Err(raise(
                    Kind::InvalidArgument,
                    format!("client_auth must be 'none', 'optional' or 'required', not '{other}'"),
                ))
            }
        };
        let inner = tls::server_config(&tls::ServerTls {
            cert_chain,
            key,
            client_ca,
            client_auth,
            min_version: min_version(minimum_version)?,
        })
        .map_err(invalid)?;
        Ok(TlsServerConfig { inner })
    }
}

/// A client's TLS: how the server is checked, and our certificate if the server wants one.
#[pyclass(frozen, module = "dimse._core")]
pub struct TlsClientConfig {
    pub(crate) inner: tls::Connector,
}

#[pymethods]
impl TlsClientConfig {
    #[new]
    #[pyo3(signature = (ca=None, check_hostname=true, cert_chain=None, key=None, server_hostname=None, minimum_version="1.2"))]
    fn new(
        ca: Option<&[u8]>,
        check_hostname: bool,
        cert_chain: Option<&[u8]>,
        key: Option<&[u8]>,
        server_hostname: Option<String>,
        minimum_version: &str,
    ) -> PyResult<Self> {
        let server = match ca {
            Some(ca) => ServerCheck::Ca { ca, check_hostname },
            None => ServerCheck::Insecure,
        };
        let identity = match (cert_chain, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(raise(
                    Kind::InvalidArgument,
                    "a client certificate needs its key, and a key its certificate: give both or neither".to_owned(),
                ))
            }
        };
        if let Some(name) = &server_hostname {
            tls::server_name(name).map_err(invalid)?;
        }
        let config = tls::client_config(&tls::ClientTls {
            server,
            identity,
            min_version: min_version(minimum_version)?,
        })
        .map_err(invalid)?;
        Ok(TlsClientConfig {
            inner: tls::Connector {
                config,
                server_name: server_hostname,
            },
        })
    }
}
