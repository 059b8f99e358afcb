//! The one place where core errors become Python exceptions. The exception classes live
//! in `dimse.exceptions` (so users can import and catch them without the extension);
//! this module looks them up once and raises them with the core error's message.

use dimse_core::pdu::PduError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Which exception of `dimse.exceptions` to raise.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Bytes from a peer are not a valid PDU.
    InvalidPdu,
    /// Bytes from a peer are not a valid command set.
    InvalidCommandSet,
    /// PDVs from a peer do not form a valid message.
    InvalidMessage,
    /// A caller's argument is wrong (also a ValueError).
    InvalidArgument,
    /// A bug in dimse.
    Internal,
    AssociationRejected,
    AssociationAborted,
    ConnectFailed,
    DimseTimeout,
    NotEstablished,
    InvalidFile,
    AcseTimeout,
    /// Writing a received instance to disk failed.
    StorageFailed,
    /// The TLS handshake failed (certificate, protocol, peer not speaking TLS).
    TlsFailed,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::InvalidPdu => "InvalidPDU",
            Kind::InvalidCommandSet => "InvalidCommandSet",
            Kind::InvalidMessage => "InvalidMessage",
            Kind::InvalidArgument => "InvalidArgument",
            Kind::Internal => "DimseError",
            Kind::AssociationRejected => "AssociationRejected",
            Kind::AssociationAborted => "AssociationAborted",
            Kind::ConnectFailed => "ConnectFailed",
            Kind::DimseTimeout => "DimseTimeout",
            Kind::NotEstablished => "NotEstablished",
            Kind::InvalidFile => "InvalidFile",
            Kind::AcseTimeout => "AcseTimeout",
            Kind::StorageFailed => "StorageFailed",
            Kind::TlsFailed => "TLSError",
        }
    }
}

static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn exception_class<'py>(py: Python<'py>, kind: Kind) -> PyResult<Bound<'py, PyType>> {
    let module = MODULE.get_or_try_init(py, || {
        PyModule::import(py, "dimse.exceptions").map(Bound::unbind)
    })?;
    Ok(module
        .bind(py)
        .getattr(kind.class_name())?
        .cast_into::<PyType>()?)
}

/// Builds the Python exception for `kind` with `message`.
pub fn raise(kind: Kind, message: String) -> PyErr {
    Python::attach(|py| match exception_class(py, kind) {
        Ok(cls) => PyErr::from_type(cls, message),
        Err(e) => PyRuntimeError::new_err(format!(
            "{message} (and dimse.exceptions failed to import: {e})"
        )),
    })
}

/// Builds the exception for `kind` with these constructor arguments (message first).
pub fn raise_with<A>(kind: Kind, args: A) -> PyErr
where
    A: pyo3::PyErrArguments + Send + Sync + 'static,
{
    Python::attach(|py| match exception_class(py, kind) {
        Ok(cls) => PyErr::from_type(cls, args),
        Err(e) => PyRuntimeError::new_err(format!("dimse.exceptions failed to import: {e}")),
    })
}

/// An InvalidPDU carrying the A-ABORT reason code that answers it as `.abort_reason`.
pub fn pdu_error(e: PduError) -> PyErr {
    let reason = e.abort_reason().value();
    let err = raise(Kind::InvalidPdu, e.to_string());
    Python::attach(|py| {
        // Best effort: the message alone is still a complete error.
        let _ = err.value(py).setattr("abort_reason", reason);
    });
    err
}
