//! The `dimse._core` extension module: thin PyO3 wrappers over `dimse-core`.
//!
//! No protocol logic lives here. Rust values cross to Python as plain dicts, lists, ints,
//! strings and bytes (through serde), and every core error is raised as one of the
//! exception classes of `dimse.exceptions` by [`error`], the one conversion point.

use bytes::{Bytes, BytesMut};
use dimse_core::message::command_set::CommandSet;
use dimse_core::message::element::{self, Tag, Vr};
use dimse_core::message::fragment::{Fragmenter, ReceivedMessage};
use dimse_core::message::status::Service;
use dimse_core::message::{Command, Status};
use dimse_core::pdu::{Pdu, PduReader as CoreReader};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList};

mod error;
mod net;
mod pool;
mod storage;
mod tls;
use error::{raise, Kind};

fn to_py<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| raise(Kind::Internal, e.to_string()))
}

/// Splits a tagged dict into its tag and a copy without the tag (and without `also`).
fn untag<'py>(
    obj: &Bound<'py, PyAny>,
    tag: &str,
    also: &[&str],
    what: &str,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| raise(Kind::InvalidArgument, format!("{what} must be a dict")))?
        .copy()?;
    let name: String = dict
        .get_item(tag)?
        .ok_or_else(|| raise(Kind::InvalidArgument, format!("{what} needs a {tag:?} key")))?
        .extract()?;
    dict.del_item(tag)?;
    for key in also {
        if dict.contains(key)? {
            dict.del_item(key)?;
        }
    }
    Ok((name, dict))
}

/// Deserializes `fields` as the variant `name` of `$ty` (which has `deserialize_named`),
/// naming the offending field on error, e.g. "C-ECHO-RQ: message_id: out of range".
macro_rules! deserialize_named {
    ($ty:ty, $name:expr, $fields:expr) => {{
        let name: &str = $name;
        let mut de = pythonize::Depythonizer::from_object($fields);
        let mut track = serde_path_to_error::Track::new();
        <$ty>::deserialize_named(
            name,
            serde_path_to_error::Deserializer::new(&mut de, &mut track),
        )
        .map_err(|e| {
            let path = track.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            raise(Kind::InvalidArgument, format!("{name}: {at}{e}"))
        })
    }};
}

/// Bytes from Python without a copy: the `Bytes` keeps the Python object alive.
fn shared(data: PyBackedBytes) -> Bytes {
    Bytes::from_owner(data)
}

/// Decodes a command set into `{keyword: value}` (US/UL as int, text as str without
/// padding, AT as a list of (group, element) tuples, unknown elements as bytes keyed
/// "(0000,xxxx)").
#[pyfunction]
fn decode_command_set<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let cs = CommandSet::decode(data).map_err(|e| raise(Kind::InvalidCommandSet, e.to_string()))?;
    let out = PyDict::new(py);
    for (el, raw) in cs.iter() {
        match element::lookup(el) {
            Some(info) => {
                let value: Bound<'py, PyAny> = match info.vr {
                    Vr::US => cs.get_us(el).into_pyobject(py)?.into_any(),
                    Vr::UL => cs.get_ul(el).into_pyobject(py)?.into_any(),
                    Vr::AT => {
                        let tags: Vec<(u16, u16)> = cs
                            .get_tags(el)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|t| (t.0, t.1))
                            .collect();
                        tags.into_pyobject(py)?.into_any()
                    }
                    _ => match cs.get_str(el) {
                        Some(s) => s.into_pyobject(py)?.into_any(),
                        None => PyBytes::new(py, raw).into_any(),
                    },
                };
                out.set_item(info.keyword, value)?;
            }
            None => out.set_item(format!("(0000,{el:04X})"), PyBytes::new(py, raw))?,
        }
    }
    Ok(out)
}

/// Encodes `{keyword: value}` into a command set, in tag order, with Command Group Length.
#[pyfunction]
fn encode_command_set<'py>(
    py: Python<'py>,
    elements: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut cs = CommandSet::new();
    for (key, value) in elements.iter() {
        let keyword: String = key.extract()?;
        let info = element::lookup_keyword(&keyword).ok_or_else(|| {
            raise(
                Kind::InvalidArgument,
                format!("{keyword:?} is not a command element keyword of PS3.7 Annex E"),
            )
        })?;
        let el = info.element;
        let res = match info.vr {
            Vr::US => cs.set_us(el, value.extract()?),
            Vr::UL => cs.set_ul(el, value.extract()?),
            Vr::AT => {
                let tags: Vec<(u16, u16)> = value.extract()?;
                let tags: Vec<Tag> = tags.into_iter().map(|(g, e)| Tag(g, e)).collect();
                cs.set_tags(el, &tags)
            }
            _ => cs.set_str(el, &value.extract::<String>()?),
        };
        res.map_err(|e| raise(Kind::InvalidArgument, e.to_string()))?;
    }
    Ok(PyBytes::new(py, &cs.encode()))
}

/// Decodes a command set into a typed message dict: `{"type": "C-ECHO-RQ", ...fields,
/// "has_dataset": bool}`; raises InvalidMessage when a required field is missing.
#[pyfunction]
fn decode_message<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let decoded =
        Command::decode(data).map_err(|e| raise(Kind::InvalidCommandSet, e.to_string()))?;
    let out = to_py(py, &decoded.command)?;
    out.set_item("has_dataset", decoded.has_dataset)?;
    Ok(out)
}

/// Encodes a typed message dict (as `decode_message` returns) into a command set.
#[pyfunction]
#[pyo3(signature = (message, has_dataset=None))]
fn encode_message<'py>(
    py: Python<'py>,
    message: &Bound<'py, PyDict>,
    has_dataset: Option<bool>,
) -> PyResult<Bound<'py, PyBytes>> {
    let flag: Option<bool> = match message.get_item("has_dataset")? {
        Some(v) => Some(v.extract()?),
        None => None,
    };
    let (name, fields) = untag(message.as_any(), "type", &["has_dataset"], "message")?;
    let command = deserialize_named!(Command, &name, fields.as_any())?;
    let has_dataset = has_dataset.or(flag).unwrap_or(false);
    let bytes = command
        .encode(has_dataset)
        .map_err(|e| raise(Kind::InvalidArgument, e.to_string()))?;
    Ok(PyBytes::new(py, &bytes))
}

/// Decodes one complete PDU into a dict (`{"pdu": "AAssociateRq", ...}`).
#[pyfunction]
#[pyo3(signature = (data, max_pdu_length=0))]
fn decode_pdu<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    max_pdu_length: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let pdu = CoreReader::new(max_pdu_length)
        .decode(shared(data))
        .map_err(error::pdu_error)?;
    to_py(py, &pdu)
}

/// Encodes a PDU dict (as `decode_pdu` returns).
#[pyfunction]
fn encode_pdu<'py>(py: Python<'py>, pdu: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let (name, fields) = untag(pdu, "pdu", &[], "pdu")?;
    let pdu = deserialize_named!(Pdu, &name, fields.as_any())?;
    let bytes = pdu
        .encode()
        .map_err(|e| raise(Kind::InvalidArgument, e.to_string()))?;
    Ok(PyBytes::new(py, &bytes))
}

/// The incremental PDU reader: feed bytes as they arrive, take PDUs as they complete.
#[pyclass(module = "dimse._core")]
struct PduReader {
    reader: CoreReader,
    buf: std::sync::Mutex<BytesMut>,
}

#[pymethods]
impl PduReader {
    #[new]
    #[pyo3(signature = (max_pdu_length=0, max_associate_length=None))]
    fn new(max_pdu_length: u32, max_associate_length: Option<u32>) -> Self {
        let mut reader = CoreReader::new(max_pdu_length);
        if let Some(m) = max_associate_length {
            reader.max_associate_length = m;
        }
        PduReader {
            reader,
            buf: std::sync::Mutex::new(BytesMut::new()),
        }
    }

    /// Appends received bytes.
    fn feed(&self, data: &[u8]) {
        self.lock().extend_from_slice(data);
    }

    /// The next complete PDU as a dict, or None when more bytes are needed. Raises
    /// InvalidPdu (with the A-ABORT reason to send) for bytes that are not a valid PDU.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let pdu = self
            .reader
            .read(&mut self.lock())
            .map_err(error::pdu_error)?;
        pdu.map(|p| to_py(py, &p)).transpose()
    }

    /// Bytes buffered but not yet returned as a PDU.
    fn buffered(&self) -> usize {
        self.lock().len()
    }
}

impl PduReader {
    fn lock(&self) -> std::sync::MutexGuard<'_, BytesMut> {
        // A poisoned lock only means another thread panicked mid-append; the buffer is
        // still a valid byte buffer.
        self.buf.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Splits a message into encoded P-DATA-TF PDUs for a peer with this maximum length.
#[pyfunction]
#[pyo3(signature = (context_id, command, dataset=None, max_pdu_length=0))]
fn fragment<'py>(
    py: Python<'py>,
    context_id: u8,
    command: PyBackedBytes,
    dataset: Option<PyBackedBytes>,
    max_pdu_length: u32,
) -> PyResult<Bound<'py, PyList>> {
    let f = Fragmenter::new(max_pdu_length);
    let pdus: Vec<Bound<'py, PyBytes>> = f
        .fragments(context_id, shared(command), dataset.map(shared))
        .map(|frag| {
            PyBytes::new_with(py, frag.len(), |out| {
                out[..12].copy_from_slice(&frag.header);
                out[12..].copy_from_slice(&frag.data);
                Ok(())
            })
        })
        .collect::<PyResult<_>>()?;
    PyList::new(py, pdus)
}

/// (context ID, command set bytes, data set bytes) of a reassembled message.
type Completed<'py> = (u8, Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>);

/// Reassembles messages from P-DATA-TF PDUs.
#[pyclass(module = "dimse._core")]
struct MessageAssembler {
    inner: std::sync::Mutex<dimse_core::message::fragment::MessageAssembler>,
}

#[pymethods]
impl MessageAssembler {
    #[new]
    #[pyo3(signature = (max_dataset_length=None))]
    fn new(max_dataset_length: Option<usize>) -> Self {
        MessageAssembler {
            inner: std::sync::Mutex::new(match max_dataset_length {
                Some(m) => dimse_core::message::fragment::MessageAssembler::new(m),
                None => dimse_core::message::fragment::MessageAssembler::default(),
            }),
        }
    }

    /// Feeds one encoded P-DATA-TF PDU; returns the messages it completes as
    /// `(context_id, command_set_bytes, dataset_bytes_or_None)` tuples.
    fn push_pdu<'py>(&self, py: Python<'py>, pdu: PyBackedBytes) -> PyResult<Vec<Completed<'py>>> {
        let pdu = CoreReader::new(0)
            .decode(shared(pdu))
            .map_err(error::pdu_error)?;
        let Pdu::PDataTf(p) = pdu else {
            return Err(raise(
                Kind::InvalidArgument,
                format!("expected a P-DATA-TF, got {}", pdu.name()),
            ));
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for pdv in p.values {
            if let Some(ReceivedMessage {
                context_id,
                command,
                dataset,
            }) = inner
                .push(pdv)
                .map_err(|e| raise(Kind::InvalidMessage, e.to_string()))?
            {
                out.push((
                    context_id,
                    PyBytes::new(py, &command.encode()),
                    dataset
                        .as_ref()
                        .map(|d| net::payload_bytes(py, d))
                        .transpose()?,
                ));
            }
        }
        Ok(out)
    }
}

/// Reads a DICOM file's File Meta Information (PS3.10 7.1) without reading its data set:
/// the meta's fields, plus `data_offset` (where the data set starts) and `has_preamble`.
#[pyfunction]
fn read_file_meta<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<Bound<'py, PyAny>> {
    let header = py
        .detach(|| dimse_core::filemeta::read_header(&path))
        .map_err(|e| raise(Kind::InvalidFile, format!("{}: {e}", path.display())))?;
    let out = to_py(py, &header.meta)?;
    out.set_item("data_offset", header.data_offset)?;
    out.set_item("has_preamble", header.has_preamble)?;
    Ok(out)
}

fn parse_service(name: &str) -> PyResult<Service> {
    Service::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = Service::ALL.iter().map(|s| s.as_str()).collect();
            raise(
                Kind::InvalidArgument,
                format!("unknown service {name:?}; use one of {}", names.join(", ")),
            )
        })
}

/// The category of a status code: "Success", "Pending", "Cancel", "Warning" or "Failure".
#[pyfunction]
#[pyo3(signature = (code, service=None))]
fn status_category(code: u16, service: Option<&str>) -> PyResult<&'static str> {
    let s = Status(code);
    Ok(match service {
        Some(name) => s.category_for(parse_service(name)?).as_str(),
        None => s.category().as_str(),
    })
}

/// The standard's name of a status code, optionally in a service ("C-STORE", ...).
#[pyfunction]
#[pyo3(signature = (code, service=None))]
fn status_name(code: u16, service: Option<&str>) -> PyResult<Option<&'static str>> {
    let service = service.map(parse_service).transpose()?;
    Ok(Status(code).name(service))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "IMPLEMENTATION_CLASS_UID",
        dimse_core::uid::IMPLEMENTATION_CLASS_UID,
    )?;
    m.add(
        "IMPLEMENTATION_VERSION_NAME",
        dimse_core::uid::IMPLEMENTATION_VERSION_NAME,
    )?;
    m.add_function(wrap_pyfunction!(decode_command_set, m)?)?;
    m.add_function(wrap_pyfunction!(encode_command_set, m)?)?;
    m.add_function(wrap_pyfunction!(decode_message, m)?)?;
    m.add_function(wrap_pyfunction!(encode_message, m)?)?;
    m.add_function(wrap_pyfunction!(decode_pdu, m)?)?;
    m.add_function(wrap_pyfunction!(encode_pdu, m)?)?;
    m.add_function(wrap_pyfunction!(fragment, m)?)?;
    m.add_function(wrap_pyfunction!(status_category, m)?)?;
    m.add_function(wrap_pyfunction!(read_file_meta, m)?)?;
    m.add_function(wrap_pyfunction!(status_name, m)?)?;
    m.add_function(wrap_pyfunction!(net::associate, m)?)?;
    m.add_function(wrap_pyfunction!(storage::store_file, m)?)?;
    m.add_class::<net::Association>()?;
    m.add_class::<net::Server>()?;
    m.add_class::<tls::TlsServerConfig>()?;
    m.add_class::<tls::TlsClientConfig>()?;
    m.add_class::<net::Responder>()?;
    m.add_class::<PduReader>()?;
    m.add_class::<MessageAssembler>()?;
    Ok(())
}
