//! Associations and servers for Python: the tokio runtime, the one helper for every
//! blocking call, and the Python-side service (handlers on a bounded pool of threads).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use dimse_core::association::{AssociationEvent, Limits};
use dimse_core::message::command::{CEchoRsp, Command};
use dimse_core::message::fragment::{Payload, ReceivedMessage};
use dimse_core::message::Status;
use dimse_core::negotiation::{
    AcceptorHooks, AcceptorParams, CommonExtendedNegotiation, ExtendedNegotiation, RequestorParams,
    UserIdentity, UserIdentityVerdict,
};
use dimse_core::net::{
    self, AssociateError, AssociationInfo, Client, LinkError, Notification, NotifyFuture, Origin,
    Response, ServiceFuture,
};
use dimse_core::ul::Timeouts;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{raise, raise_with, Kind};
use crate::pool::ThreadPool;
use crate::storage;
use crate::storage::{NativeStorage, StorageSettings};
use crate::tls::{TlsClientConfig, TlsServerConfig};
use dimse_core::net::forward::{Destination, Forwarder};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("dimse-io")
            .enable_all()
            .build()
            // Without a runtime nothing can run; there is no better answer than to stop.
            .unwrap_or_else(|e| panic!("dimse could not start its tokio runtime: {e}"))
    })
}

/// Runs `fut` on the runtime with the GIL released; Ctrl-C raises KeyboardInterrupt
/// (signals are checked every 100 ms, with the GIL taken back just for that).
pub fn block_on<T: Send>(
    py: Python<'_>,
    fut: impl std::future::Future<Output = T> + Send,
) -> PyResult<T> {
    block_on_in(py, runtime(), fut)
}

/// [`block_on`] on a given runtime. Signals are checked between 100 ms slices, outside
/// the runtime: a Python signal handler may itself call dimse (start a runtime) without
/// nesting one runtime in another.
fn block_on_in<T: Send>(
    py: Python<'_>,
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = T> + Send,
) -> PyResult<T> {
    let mut fut = std::pin::pin!(fut);
    loop {
        // The timer must be created inside the runtime (it registers with its driver).
        let slice = py.detach(|| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(100), fut.as_mut()).await
            })
        });
        match slice {
            Ok(out) => return Ok(out),
            Err(_) => py.check_signals()?,
        }
    }
}

/// Seconds from Python as a Duration; `None`, negative, NaN or too large for a Duration
/// mean "no limit".
fn seconds(v: Option<f64>) -> Option<Duration> {
    v.and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Settings shared by both roles, from the AE's attributes.
#[derive(Debug, Clone, serde::Deserialize)]
struct Settings {
    acse_timeout: Option<f64>,
    network_timeout: Option<f64>,
    connection_timeout: Option<f64>,
    #[serde(default)]
    maximum_associations: Option<usize>,
    #[serde(default)]
    maximum_dataset_size: Option<usize>,
    /// Data sets above this are streamed (to native storage) instead of held whole.
    #[serde(default)]
    stream_threshold: Option<usize>,
    #[serde(default)]
    maximum_associations_per_peer: Option<usize>,
    #[serde(default)]
    maximum_queued_requests: Option<usize>,
    /// Client networks allowed to associate ("10.0.0.0/8", "127.0.0.1"); empty: any.
    #[serde(default)]
    allowed_networks: Vec<String>,
}

impl Settings {
    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(max) = self.maximum_dataset_size {
            limits.max_dataset_length = max;
        }
        if let Some(threshold) = self.stream_threshold {
            limits.stream_threshold = threshold;
        }
        limits
    }

    /// The settings of a requestor association (ours, or the forwarder's).
    fn client_config(&self, tls: Option<dimse_core::net::tls::Connector>) -> net::ClientConfig {
        net::ClientConfig {
            tls,
            connect_timeout: seconds(self.connection_timeout),
            timeouts: self.timeouts(),
            network_timeout: seconds(self.network_timeout),
            // A requestor receives its data sets whole (streaming is the server's).
            limits: Limits {
                stream_threshold: usize::MAX,
                ..self.limits()
            },
        }
    }

    fn timeouts(&self) -> Timeouts {
        let acse = seconds(self.acse_timeout).unwrap_or(Duration::MAX);
        Timeouts {
            // ARTIM bounds waiting for the RQ and for the peer's close: the ACSE timeout
            // is the user's word on how long negotiation may take.
            artim: seconds(self.acse_timeout).unwrap_or(Duration::from_secs(30)),
            acse,
        }
    }
}

fn depythonize<T: serde::de::DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let mut de = pythonize::Depythonizer::from_object(obj);
    let mut track = serde_path_to_error::Track::new();
    T::deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track)).map_err(|e| {
        let path = track.path().to_string();
        raise(Kind::InvalidArgument, format!("{what}: {path}: {e}"))
    })
}

/// Connects and negotiates; raises AssociationRejected, AssociationAborted, ConnectFailed
/// or TLSError.
#[pyfunction]
#[pyo3(signature = (address, params, settings, tls=None))]
pub fn associate(
    py: Python<'_>,
    address: String,
    params: &Bound<'_, PyAny>,
    settings: &Bound<'_, PyAny>,
    tls: Option<PyRef<'_, TlsClientConfig>>,
) -> PyResult<Association> {
    let params: RequestorParams = depythonize(params, "association parameters")?;
    let settings: Settings = depythonize(settings, "AE settings")?;
    let rq = params
        .build_rq()
        .map_err(|e| raise(Kind::InvalidArgument, e.to_string()))?;
    let config = settings.client_config(tls.map(|t| t.inner.clone()));
    // A requestor association runs on a current-thread runtime of its own, driven by the
    // thread that calls it: a request and its response then cost no cross-thread wake-up
    // (two per round trip through a shared runtime, which dominate on small machines).
    // While no call is in progress nothing reads the socket; timers (the network
    // timeout) are enforced at the next call, as the peer's bytes wait in the kernel.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| raise(Kind::Internal, format!("cannot start a runtime: {e}")))?;
    let result = block_on_in(py, &rt, net::associate(&address, rq, config))?;
    match result {
        Ok(client) => Ok(Association {
            client: Arc::new(client),
            rt: Arc::new(rt),
        }),
        Err(AssociateError::Rejected(rj)) => {
            let result = match rj.result {
                dimse_core::pdu::RejectResult::Permanent => 1u8,
                dimse_core::pdu::RejectResult::Transient => 2u8,
            };
            let (source, reason) = rj.reason.values();
            let message = format!(
                "association rejected by {address}: {} (result {result}, source {source}, reason {reason})",
                reject_text(source, reason),
            );
            Err(raise_with(
                Kind::AssociationRejected,
                (message, result, source, reason),
            ))
        }
        Err(e @ (AssociateError::Connect { .. } | AssociateError::ConnectTimeout { .. })) => {
            Err(raise(Kind::ConnectFailed, e.to_string()))
        }
        Err(e @ AssociateError::Aborted(_)) => Err(raise(Kind::AssociationAborted, e.to_string())),
        Err(e @ AssociateError::Tls { .. }) => Err(raise(Kind::TlsFailed, e.to_string())),
        Err(AssociateError::TimedOut(why)) => Err(raise(
            Kind::AcseTimeout,
            format!("{why} (AE.acse_timeout): no A-ASSOCIATE-AC or -RJ from {address}"),
        )),
    }
}

fn reject_text(source: u8, reason: u8) -> &'static str {
    match (source, reason) {
        (1, 1) => "service-user: no reason given",
        (1, 2) => "service-user: application context name not supported",
        (1, 3) => "service-user: calling AE title not recognized",
        (1, 7) => "service-user: called AE title not recognized",
        (2, 1) => "service-provider (ACSE): no reason given",
        (2, 2) => "service-provider (ACSE): protocol version not supported",
        (3, 1) => "service-provider (presentation): temporary congestion",
        (3, 2) => "service-provider (presentation): local limit exceeded",
        _ => "reserved source/reason",
    }
}

fn link_error(e: LinkError) -> PyErr {
    match e {
        LinkError::Timeout(t) => raise(
            Kind::DimseTimeout,
            format!(
                "the peer did not answer within {:.3} s (the DIMSE timeout)",
                t.as_secs_f64()
            ),
        ),
        LinkError::Closed => raise(
            Kind::AssociationAborted,
            "the association is closed".to_owned(),
        ),
        LinkError::Invalid(e) => raise(Kind::NotEstablished, e.to_string()),
        LinkError::AcseTimeout(why) => raise(Kind::AcseTimeout, format!("{why} (AE.acse_timeout)")),
        LinkError::Source(why) => raise(
            Kind::InvalidFile,
            format!("{why}; the association was aborted (the message could not be completed)"),
        ),
        LinkError::Ended(why) => raise(
            Kind::AssociationAborted,
            format!("the association ended: {why}"),
        ),
    }
}

/// An established association (requestor side).
#[pyclass(frozen, module = "dimse._core")]
pub struct Association {
    client: Arc<Client>,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Drop for Association {
    /// An association dropped while open is aborted, as pynetdicom does: queue the
    /// A-ABORT and let the driver write it before the runtime (and socket) goes away.
    fn drop(&mut self) {
        let client = self.client.clone();
        self.rt.block_on(async move {
            client.abort().await;
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
        });
    }
}

fn event_to_py<'py>(py: Python<'py>, event: AssociationEvent) -> PyResult<Bound<'py, PyTuple>> {
    Ok(match event {
        AssociationEvent::Message(m) => message_tuple(py, m)?,
        AssociationEvent::ReleaseRequested => PyTuple::new(py, ["release_requested"])?,
        AssociationEvent::Released => PyTuple::new(py, ["released"])?,
        AssociationEvent::Aborted(a) => {
            ("aborted", a.source.value(), a.reason.value()).into_pyobject(py)?
        }
        AssociationEvent::ProviderAborted(why) | AssociationEvent::TimedOut(why) => {
            ("provider_aborted", why).into_pyobject(py)?
        }
        other => ("other", format!("{other:?}")).into_pyobject(py)?,
    })
}

/// A received data set as a Python bytes object: its parts copied once, straight into
/// the object's buffer (no joined copy in between).
pub fn payload_bytes<'py>(py: Python<'py>, payload: &Payload) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, payload.len(), |buf| {
        payload.copy_to_slice(buf);
        Ok(())
    })
}

fn message_tuple<'py>(py: Python<'py>, m: ReceivedMessage) -> PyResult<Bound<'py, PyTuple>> {
    (
        "message",
        m.context_id,
        PyBytes::new(py, &m.command.encode()),
        m.dataset
            .as_ref()
            .map(|d| payload_bytes(py, d))
            .transpose()?,
    )
        .into_pyobject(py)
}

#[pymethods]
impl Association {
    /// What was negotiated, as a dict.
    fn negotiated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pythonize::pythonize(py, self.client.negotiated())
            .map_err(|e| raise(Kind::Internal, e.to_string()))
    }

    /// The peer's (host, port).
    fn peer(&self) -> (String, u16) {
        let p = self.client.peer();
        (p.ip().to_string(), p.port())
    }

    /// Sends one message (command set bytes, data set bytes).
    #[pyo3(signature = (context_id, command, dataset=None))]
    fn send(
        &self,
        py: Python<'_>,
        context_id: u8,
        command: PyBackedBytes,
        dataset: Option<PyBackedBytes>,
    ) -> PyResult<()> {
        let client = self.client.clone();
        block_on_in(py, &self.rt, async move {
            client
                .send(
                    context_id,
                    Bytes::from_owner(command),
                    dataset.map(Bytes::from_owner),
                )
                .await
        })?
        .map_err(link_error)
    }

    /// The next event: ("message", context_id, command, dataset), ("release_requested",),
    /// ("released",), ("aborted", source, reason) or ("provider_aborted", why).
    #[pyo3(signature = (timeout=None))]
    fn receive<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyTuple>> {
        let client = self.client.clone();
        let event = block_on_in(py, &self.rt, async move {
            client.next_event(seconds(timeout)).await
        })?
        .map_err(link_error)?;
        event_to_py(py, event)
    }

    /// Sends a message, then waits for the next event (typically its response).
    #[pyo3(signature = (context_id, command, dataset=None, timeout=None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        context_id: u8,
        command: PyBackedBytes,
        dataset: Option<PyBackedBytes>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let client = self.client.clone();
        let event = block_on_in(py, &self.rt, async move {
            client
                .send(
                    context_id,
                    Bytes::from_owner(command),
                    dataset.map(Bytes::from_owner),
                )
                .await?;
            client.next_event(seconds(timeout)).await
        })?
        .map_err(link_error)?;
        event_to_py(py, event)
    }

    /// Sends a message whose data set is the file at `path` from byte `offset` to its
    /// end, read as it is sent (never held whole), then waits for the next event.
    #[pyo3(signature = (context_id, command, path, offset, timeout=None))]
    fn request_file<'py>(
        &self,
        py: Python<'py>,
        context_id: u8,
        command: PyBackedBytes,
        path: std::path::PathBuf,
        offset: u64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        use std::io::Seek;
        let shown = path.display().to_string();
        let mut file = std::fs::File::open(&path)
            .map_err(|e| raise(Kind::InvalidFile, format!("cannot open {shown}: {e}")))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| raise(Kind::InvalidFile, format!("cannot read {shown}: {e}")))?;
        let client = self.client.clone();
        let event = block_on_in(py, &self.rt, async move {
            let file = tokio::fs::File::from_std(file);
            client
                .send_stream(context_id, Bytes::from_owner(command), file)
                .await?;
            client.next_event(seconds(timeout)).await
        })?
        .map_err(|e| match e {
            LinkError::Source(why) => link_error(LinkError::Source(format!("{shown}: {why}"))),
            other => link_error(other),
        })?;
        event_to_py(py, event)
    }

    /// Answers the peer's release request.
    fn release_response(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.client.clone();
        block_on_in(py, &self.rt, async move { client.release_response().await })?
            .map_err(link_error)
    }

    /// Releases the association; waits at most `timeout` seconds for the A-RELEASE-RP.
    #[pyo3(signature = (timeout=30.0))]
    fn release(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let client = self.client.clone();
        // The state machine enforces the ACSE timeout (and raises AcseTimeout); this is a
        // backstop beyond it, so that the right error wins.
        let t = seconds(Some(timeout)).map_or(Duration::from_secs(24 * 3600), |t| {
            t + Duration::from_secs(2)
        });
        block_on_in(py, &self.rt, async move { client.release(t).await })?.map_err(link_error)
    }

    /// Aborts the association (A-ABORT, service-user source).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.client.clone();
        block_on_in(py, &self.rt, async move { client.abort().await })
    }
}

/// The Python side of a server: handlers run on a bounded pool of blocking threads, never
/// on the I/O threads; C-ECHO is answered natively unless Python asked to see it.
struct PyService {
    dispatch: Option<Arc<Py<PyAny>>>,
    /// Called as notify(kind, origin, payload) for the notifications in `wanted`.
    notify: Option<Arc<Py<PyAny>>>,
    /// The `net::notify` bits Python has handlers for (changed by bind/unbind).
    wanted: Arc<AtomicU32>,
    hooks: Option<Arc<Py<PyAny>>>,
    /// Answer C-ECHO in Rust (no EVT_C_ECHO handler bound); changed by bind/unbind.
    native_echo: Arc<AtomicBool>,
    /// The Python handlers' threads (`handler_threads`).
    pool: Arc<ThreadPool>,
    /// Associations Python keeps per-association state for, and those of them that
    /// ended since Python last asked (so that it can drop that state).
    tracked: Arc<Mutex<(HashSet<u64>, Vec<u64>)>>,
    /// C-STORE written to files in Rust, when set.
    storage: Option<Arc<NativeStorage>>,
    /// C-STORE forwarded to another AE in Rust, when set.
    forward: Option<Arc<Forwarder>>,
    /// Whether Python has negotiation handlers bound (EVT_USER_ID ...); without them
    /// negotiation never touches Python (nor a blocking thread).
    hooks_bound: Arc<AtomicBool>,
    /// Notifications delivered at once, at most (each takes a blocking thread and the
    /// GIL): separate from the handler pool, which a handler may hold while it waits
    /// for its association to take a response.
    notify_pool: Arc<ThreadPool>,
    /// Threads spooling large data sets for Python handlers to files (only when C-STORE
    /// goes to Python: not with native storage or forwarding).
    spool_io: Option<Arc<ThreadPool>>,
}

/// Threads delivering notifications (and running negotiation hooks) to Python.
const NOTIFY_THREADS: usize = 2;

fn echo_response(message: &ReceivedMessage) -> Option<Response> {
    let decoded = Command::from_command_set(&message.command).ok()?;
    let Command::CEchoRq(rq) = decoded.command else {
        return None;
    };
    let rsp = Command::CEchoRsp(CEchoRsp {
        affected_sop_class_uid: Some(rq.affected_sop_class_uid),
        message_id_being_responded_to: rq.message_id,
        status: Status::SUCCESS,
        ..Default::default()
    });
    let command = rsp.encode(false).ok()?;
    Some(Response {
        context_id: message.context_id,
        command: Bytes::from(command),
        dataset: None,
    })
}

pub fn assoc_dict<'py>(py: Python<'py>, info: &AssociationInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", info.id)?;
    d.set_item("peer", (info.peer.ip().to_string(), info.peer.port()))?;
    d.set_item(
        "negotiated",
        pythonize::pythonize(py, info.negotiated.as_ref())
            .map_err(|e| raise(Kind::Internal, e.to_string()))?,
    )?;
    Ok(d)
}

fn to_py<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, v).map_err(|e| raise(Kind::Internal, e.to_string()))
}

/// The payload of a notification for Python: ("kind", payload).
fn notification_to_py<'py>(
    py: Python<'py>,
    n: &Notification,
) -> PyResult<(&'static str, Bound<'py, PyAny>)> {
    Ok(match n {
        Notification::ConnOpen => ("conn_open", py.None().into_bound(py)),
        Notification::ConnClose => ("conn_close", py.None().into_bound(py)),
        Notification::Requested(rq) => ("requested", to_py(py, rq.as_ref())?),
        Notification::Accepted(ac) => ("accepted", to_py(py, ac.as_ref())?),
        Notification::Rejected { rj, why } => {
            let result = match rj.result {
                dimse_core::pdu::RejectResult::Permanent => 1u8,
                dimse_core::pdu::RejectResult::Transient => 2u8,
            };
            let (source, reason) = rj.reason.values();
            (
                "rejected",
                (result, source, reason, why.as_str())
                    .into_pyobject(py)?
                    .into_any(),
            )
        }
        Notification::Refused(why) => ("refused", why.into_pyobject(py)?.into_any()),
        Notification::Established => ("established", py.None().into_bound(py)),
        Notification::Released => ("released", py.None().into_bound(py)),
        Notification::Aborted(why) => ("aborted", why.into_pyobject(py)?.into_any()),
        Notification::DimseRecv {
            context_id,
            command,
        } => (
            "dimse_recv",
            (*context_id, PyBytes::new(py, command))
                .into_pyobject(py)?
                .into_any(),
        ),
        Notification::DimseSent {
            context_id,
            command,
        } => (
            "dimse_sent",
            (*context_id, PyBytes::new(py, command))
                .into_pyobject(py)?
                .into_any(),
        ),
        Notification::Pdu(note) => (
            if note.sent { "pdu_sent" } else { "pdu_recv" },
            (note.pdu_type, note.length).into_pyobject(py)?.into_any(),
        ),
    })
}

fn notification_bit(kind: &str) -> Option<u32> {
    use net::notify::*;
    Some(match kind {
        "conn_open" => CONN_OPEN,
        "conn_close" => CONN_CLOSE,
        "requested" => REQUESTED,
        "accepted" => ACCEPTED,
        "rejected" => REJECTED,
        "refused" => REFUSED,
        "established" => ESTABLISHED,
        "released" => RELEASED,
        "aborted" => ABORTED,
        "dimse_recv" => DIMSE_RECV,
        "dimse_sent" => DIMSE_SENT,
        "pdu_recv" => PDU_RECV,
        "pdu_sent" => PDU_SENT,
        _ => return None,
    })
}

fn origin_dict<'py>(py: Python<'py>, origin: Origin<'_>) -> PyResult<Bound<'py, PyDict>> {
    match origin.info {
        Some(info) => assoc_dict(py, info),
        None => {
            let d = PyDict::new(py);
            d.set_item("id", origin.id)?;
            d.set_item("peer", (origin.peer.ip().to_string(), origin.peer.port()))?;
            Ok(d)
        }
    }
}

impl net::Service for PyService {
    fn closed(&self, assoc: &AssociationInfo, _how: &str) {
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        if tracked.0.remove(&assoc.id) {
            tracked.1.push(assoc.id);
        }
    }

    fn notifications(&self) -> u32 {
        self.wanted.load(Ordering::Relaxed)
    }

    fn notify(&self, origin: Origin<'_>, notification: Notification) -> NotifyFuture {
        let Some(notify) = self.notify.clone() else {
            return Box::pin(std::future::ready(()));
        };
        // Owned copies: the call runs on the blocking pool, after this returns.
        let id = origin.id;
        let peer = origin.peer;
        let info = origin.info.cloned();
        let pool = self.notify_pool.clone();
        Box::pin(async move {
            let _ = pool
                .run(move || {
                    Python::attach(|py| {
                        let origin = Origin {
                            id,
                            peer,
                            info: info.as_ref(),
                        };
                        let called =
                            notification_to_py(py, &notification).and_then(|(kind, payload)| {
                                notify.call1(py, (kind, origin_dict(py, origin)?, payload))
                            });
                        // The Python side logs handler errors itself; this is its own bug.
                        if let Err(e) = called {
                            e.print(py);
                        }
                    })
                })
                .await;
        })
    }

    fn run_blocking(
        &self,
        job: Box<dyn FnOnce() + Send>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        // Negotiation hooks share the notifications' threads: short Python calls that
        // never wait on an association.
        let pool = self.notify_pool.clone();
        Box::pin(async move {
            let _ = pool.run(job).await;
        })
    }

    fn stream(
        &self,
        assoc: &AssociationInfo,
        context_id: u8,
        command: &dimse_core::message::CommandSet,
        _head: &Payload,
    ) -> Option<Box<dyn net::DataSetSink>> {
        // Native storage writes a large C-STORE data set as it arrives, a Python
        // handler gets it spooled to a file; anything else (forwarding, other requests)
        // is held whole.
        if command.command_field() != Some(0x0001) || self.forward.is_some() {
            return None;
        }
        if let Some(storage) = self.storage.as_ref() {
            return storage.stream(assoc, context_id, command);
        }
        let dispatch = self.dispatch.clone()?;
        let spool_io = self.spool_io.clone()?;
        let rq = storage::decode_request(command).ok()?;
        let transfer_syntax = storage::transfer_syntax(assoc, context_id).ok()?;
        let folder = spool_folder();
        let store = dimse_core::storage::FileStore::new(
            &folder,
            dimse_core::storage::Layout::Flat,
            dimse_core::storage::Durability::Rename,
        );
        Some(Box::new(SpoolSink {
            file: storage::StreamFile::new(
                store,
                spool_io,
                rq,
                transfer_syntax,
                storage::calling_ae(assoc),
                false,
            ),
            folder: SpoolFolder(folder),
            dispatch,
            pool: self.pool.clone(),
            info: assoc.clone(),
            context_id,
            command: command.clone(),
        }))
    }

    fn hooks(&self, _peer: SocketAddr) -> Box<dyn AcceptorHooks + Send> {
        Box::new(PyHooks {
            hooks: self.hooks.clone().filter(|_| self.negotiation_blocks()),
        })
    }

    fn negotiation_blocks(&self) -> bool {
        self.hooks.is_some() && self.hooks_bound.load(Ordering::Relaxed)
    }

    fn handle(
        &self,
        assoc: &AssociationInfo,
        message: ReceivedMessage,
        responder: net::Responder,
    ) -> ServiceFuture {
        let field = message.command.command_field();
        if let Some(forwarder) = self.forward.clone().filter(|_| field == Some(0x0001)) {
            let info = assoc.clone();
            return Box::pin(async move { vec![forward_one(&forwarder, &info, &message).await] });
        }
        if let Some(storage) = self.storage.clone().filter(|_| field == Some(0x0001)) {
            let info = assoc.clone();
            return Box::pin(async move {
                let io = storage.io_pool();
                io.run(move || storage.handle(&info, &message))
                    .await
                    .map(|r| vec![r])
                    .unwrap_or_default()
            });
        }
        let is_echo = field == Some(0x0030);
        let Some(dispatch) = self
            .dispatch
            .clone()
            .filter(|_| !(is_echo && self.native_echo.load(Ordering::Relaxed)))
        else {
            let out = echo_response(&message).into_iter().collect();
            return Box::pin(std::future::ready(out));
        };
        let pool = self.pool.clone();
        let info = assoc.clone();
        Box::pin(async move {
            pool.run(move || {
                let context_id = message.context_id;
                call_dispatch(
                    &dispatch,
                    &info,
                    context_id,
                    &message.command,
                    message.dataset.as_ref(),
                    None,
                    responder,
                )
                // A failure here is a bug in the dispatcher (it turns handler errors into
                // failure statuses itself), already reported: answer an echo at least.
                .unwrap_or_else(|| echo_response(&message).into_iter().collect())
            })
            .await
            .unwrap_or_default()
        })
    }
}

/// Calls the Python dispatcher for one request (its data set in memory, or spooled to
/// the file at `path`) and takes the responses it returns; `None` (reported) when the
/// dispatcher itself failed.
fn call_dispatch(
    dispatch: &Py<PyAny>,
    info: &AssociationInfo,
    context_id: u8,
    command: &dimse_core::message::CommandSet,
    dataset: Option<&Payload>,
    path: Option<&std::path::Path>,
    responder: net::Responder,
) -> Option<Vec<Response>> {
    Python::attach(|py| -> PyResult<Vec<Response>> {
        let command_bytes = PyBytes::new(py, &command.encode());
        let dataset = dataset.map(|d| payload_bytes(py, d)).transpose()?;
        let responder = Py::new(py, Responder { inner: responder })?;
        let out = dispatch.call1(
            py,
            (
                assoc_dict(py, info)?,
                context_id,
                command_bytes,
                dataset,
                responder,
                path,
            ),
        )?;
        let items: Vec<(u8, PyBackedBytes, Option<PyBackedBytes>)> = out.extract(py)?;
        Ok(items
            .into_iter()
            .map(|(context_id, command, dataset)| Response {
                context_id,
                command: Bytes::from_owner(command),
                dataset: dataset.map(Bytes::from_owner),
            })
            .collect())
    })
    .map_err(|e| Python::attach(|py| e.print(py)))
    .ok()
}

/// A C-STORE data set for a Python handler, too large to hold: spooled to a file as it
/// arrives; the handler then gets the file (`event.dataset_path`), removed afterwards.
struct SpoolSink {
    file: storage::StreamFile,
    folder: SpoolFolder,
    dispatch: Arc<Py<PyAny>>,
    pool: Arc<ThreadPool>,
    info: AssociationInfo,
    context_id: u8,
    command: dimse_core::message::CommandSet,
}

impl net::DataSetSink for SpoolSink {
    fn write(
        &mut self,
        part: Bytes,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.file.write(part))
    }

    fn finish(self: Box<Self>, responder: net::Responder) -> ServiceFuture {
        Box::pin(async move {
            let SpoolSink {
                file,
                folder,
                dispatch,
                pool,
                info,
                context_id,
                command,
            } = *self;
            let request = storage::decode_request(&command).ok();
            let out = match file.finish().await {
                Err(failure) => {
                    vec![storage::respond(
                        context_id,
                        &command,
                        request,
                        Err(failure),
                    )]
                }
                Ok((path, _)) => pool
                    .run(move || {
                        call_dispatch(
                            &dispatch,
                            &info,
                            context_id,
                            &command,
                            None,
                            path.as_deref(),
                            responder,
                        )
                        .unwrap_or_default()
                    })
                    .await
                    .unwrap_or_default(),
            };
            // The handler had its chance to keep the file (by moving it away).
            drop(folder);
            out
        })
    }
}

/// A spool folder, removed with whatever is left in it when the message is done or
/// abandoned (the peer aborted mid-data-set: the sink is dropped without `finish`). The
/// association's loop awaits each write, so no write is in flight by then.
struct SpoolFolder(std::path::PathBuf);

impl Drop for SpoolFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where data sets for Python handlers are spooled: one fresh folder per message.
fn spool_folder() -> std::path::PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "dimse-spool-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A C-STORE passed on to the destination, answered with its status (PS3.4 B.2.3).
async fn forward_one(
    forwarder: &Forwarder,
    info: &AssociationInfo,
    message: &ReceivedMessage,
) -> Response {
    let request = storage::decode_request(&message.command);
    let outcome: storage::Outcome = async {
        let rq = request.clone()?;
        let dataset = message.dataset.as_ref().ok_or_else(|| {
            (
                Status(0xC210),
                "the C-STORE-RQ carries no data set".to_owned(),
            )
        })?;
        storage::check_length(dataset.len())?;
        let transfer_syntax = storage::transfer_syntax(info, message.context_id)?;
        let done = forwarder
            .forward(&rq, &transfer_syntax, dataset.to_bytes())
            .await;
        Ok((done.status, done.error_comment))
    }
    .await;
    storage::respond(message.context_id, &message.command, request.ok(), outcome)
}

/// Forwarding settings from Python (`dimse.forward.Forward`).
#[derive(Debug, Clone, serde::Deserialize)]
struct ForwardSettings {
    host: String,
    port: u16,
    ae_title: String,
    calling_ae_title: String,
    max_associations: usize,
    idle_timeout: f64,
    dimse_timeout: f64,
    spool: Option<std::path::PathBuf>,
    retry_interval: f64,
}

impl ForwardSettings {
    fn destination(
        self,
        settings: &Settings,
        tls: Option<dimse_core::net::tls::Connector>,
    ) -> PyResult<Destination> {
        let title = |t: &str| {
            dimse_core::pdu::AeTitle::new(t)
                .map_err(|e| raise(Kind::InvalidArgument, e.to_string()))
        };
        Ok(Destination {
            address: format!("{}:{}", self.host, self.port),
            calling_ae_title: title(&self.calling_ae_title)?,
            called_ae_title: title(&self.ae_title)?,
            max_associations: self.max_associations.max(1),
            idle_timeout: seconds(Some(self.idle_timeout)).unwrap_or(Duration::from_secs(30)),
            dimse_timeout: seconds(Some(self.dimse_timeout)).unwrap_or(Duration::from_secs(60)),
            config: settings.client_config(tls),
            spool: self.spool,
            retry_interval: seconds(Some(self.retry_interval)).unwrap_or(Duration::from_secs(10)),
        })
    }
}

/// What a Python handler uses to send responses as it goes and to see a C-CANCEL.
#[pyclass(frozen, module = "dimse._core")]
pub struct Responder {
    inner: net::Responder,
}

#[pymethods]
impl Responder {
    /// Sends a response now (blocks, without the GIL, while the association's queue is
    /// full); False when the association is gone.
    #[pyo3(signature = (context_id, command, dataset=None))]
    fn send(
        &self,
        py: Python<'_>,
        context_id: u8,
        command: PyBackedBytes,
        dataset: Option<PyBackedBytes>,
    ) -> bool {
        let response = Response {
            context_id,
            command: Bytes::from_owner(command),
            dataset: dataset.map(Bytes::from_owner),
        };
        py.detach(|| self.inner.blocking_send(response))
    }

    /// Whether the peer sent a C-CANCEL-RQ for this request.
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// The next response the peer sent to one of this handler's own requests (a C-GET's
    /// C-STORE sub-operations) as (context_id, command, dataset), or None after `timeout`
    /// seconds or when the association is gone.
    #[pyo3(signature = (timeout=None))]
    fn reply<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let inner = self.inner.clone();
        // Handlers run on the server's own threads (not the runtime's): waiting on the
        // runtime from there is allowed.
        let message = block_on(py, async move { inner.reply(seconds(timeout)).await })?;
        message
            .map(|m| {
                (
                    m.context_id,
                    PyBytes::new(py, &m.command.encode()),
                    m.dataset
                        .as_ref()
                        .map(|d| payload_bytes(py, d))
                        .transpose()?,
                )
                    .into_pyobject(py)
            })
            .transpose()
    }
}

/// Negotiation hooks backed by a Python object with optional methods `user_identity`,
/// `sop_extended`, `async_ops` (the EVT_USER_ID, EVT_SOP_EXTENDED, EVT_ASYNC_OPS handlers).
struct PyHooks {
    hooks: Option<Arc<Py<PyAny>>>,
}

/// What calling a hook gave.
enum HookResult<T> {
    /// No hook bound for this event.
    Unbound,
    Value(T),
    /// The hook raised or returned something unusable (already reported).
    Failed,
}

impl PyHooks {
    fn call<T: for<'a, 'py> FromPyObject<'a, 'py>>(
        &self,
        name: &str,
        args: impl for<'py> IntoPyObject<'py, Target = PyTuple>,
    ) -> HookResult<T> {
        let Some(hooks) = self.hooks.as_ref() else {
            return HookResult::Unbound;
        };
        Python::attach(|py| {
            let obj = hooks.bind(py);
            let Some(method) = obj.getattr(name).ok().filter(|m| !m.is_none()) else {
                return HookResult::Unbound;
            };
            let args = match args.into_pyobject(py) {
                Ok(a) => pyo3::BoundObject::into_bound(a),
                Err(e) => {
                    Into::<PyErr>::into(e).print(py);
                    return HookResult::Failed;
                }
            };
            match method
                .call1(args)
                .and_then(|r| r.extract::<T>().map_err(Into::into))
            {
                Ok(v) => HookResult::Value(v),
                Err(e) => {
                    e.print(py);
                    HookResult::Failed
                }
            }
        })
    }
}

impl AcceptorHooks for PyHooks {
    fn user_identity(&mut self, identity: &UserIdentity) -> UserIdentityVerdict {
        let args = (
            identity.identity_type.value(),
            identity.primary.to_vec(),
            identity.secondary.to_vec(),
            identity.positive_response_requested,
        );
        match self.call::<(bool, Option<Vec<u8>>)>("user_identity", args) {
            HookResult::Unbound => UserIdentityVerdict::Accept { response: None },
            HookResult::Value((true, response)) => UserIdentityVerdict::Accept {
                response: response.map(Bytes::from),
            },
            // A handler that says no, raises, or answers something else: the identity is
            // not verified (fail closed, as pynetdicom does).
            HookResult::Value((false, _)) | HookResult::Failed => UserIdentityVerdict::Reject,
        }
    }

    fn sop_extended(&mut self, proposed: &[ExtendedNegotiation]) -> Vec<ExtendedNegotiation> {
        let items: Vec<(String, Vec<u8>)> = proposed
            .iter()
            .map(|e| (e.sop_class_uid.clone(), e.info.to_vec()))
            .collect();
        let answers = match self.call::<Vec<(String, Vec<u8>)>>("sop_extended", (items,)) {
            HookResult::Value(v) => v,
            HookResult::Unbound | HookResult::Failed => Vec::new(),
        };
        answers
            .into_iter()
            .map(|(sop_class_uid, info)| ExtendedNegotiation {
                sop_class_uid,
                info: Bytes::from(info),
            })
            .collect()
    }

    fn sop_common_extended(
        &mut self,
        proposed: &[CommonExtendedNegotiation],
    ) -> Vec<CommonExtendedNegotiation> {
        let items: Vec<(String, String, Vec<String>)> = proposed
            .iter()
            .map(|c| {
                (
                    c.sop_class_uid.clone(),
                    c.service_class_uid.clone(),
                    c.related_general_sop_classes.clone(),
                )
            })
            .collect();
        match self.call::<Vec<String>>("sop_common", (items,)) {
            HookResult::Unbound => proposed.to_vec(),
            HookResult::Value(accepted) => proposed
                .iter()
                .filter(|c| accepted.contains(&c.sop_class_uid))
                .cloned()
                .collect(),
            HookResult::Failed => Vec::new(),
        }
    }

    fn async_ops(&mut self, invoked: u16, performed: u16) -> (u16, u16) {
        match self.call::<(u16, u16)>("async_ops", (invoked, performed)) {
            HookResult::Value(v) => v,
            HookResult::Unbound | HookResult::Failed => (1, 1),
        }
    }
}

/// A running server.
/// A listening socket on `host:port`. With `reuse_port` (SO_REUSEPORT, Linux and the
/// BSDs) several processes can listen on the same port and the kernel spreads incoming
/// connections over them: one server per core, each with its own GIL.
async fn listen(host: String, port: u16, reuse_port: bool) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host.as_str(), port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As std's TcpListener::bind does: a restarted server can bind again at once.
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        if reuse_port {
            socket.set_reuseport(true)?;
        }
        #[cfg(not(unix))]
        if reuse_port {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "reuse_port needs SO_REUSEPORT (Linux, macOS, the BSDs)",
            ));
        }
        match socket.bind(addr).and_then(|()| socket.listen(1024)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
    }))
}

#[pyclass(frozen, module = "dimse._core")]
pub struct Server {
    shutdown: watch::Sender<bool>,
    hooks_bound: Arc<AtomicBool>,
    wanted: Arc<AtomicU32>,
    native_echo: Arc<AtomicBool>,
    tracked: Arc<Mutex<(HashSet<u64>, Vec<u64>)>>,
    address: SocketAddr,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (host, port, acceptor, settings, dispatch=None, hooks=None, native_echo=true, handler_threads=8, notify=None, storage=None, on_stored=None, reuse_port=false, forward=None, tls=None, forward_tls=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        acceptor: &Bound<'_, PyAny>,
        settings: &Bound<'_, PyAny>,
        dispatch: Option<Py<PyAny>>,
        hooks: Option<Py<PyAny>>,
        native_echo: bool,
        handler_threads: usize,
        notify: Option<Py<PyAny>>,
        storage: Option<&Bound<'_, PyAny>>,
        on_stored: Option<Py<PyAny>>,
        reuse_port: bool,
        forward: Option<&Bound<'_, PyAny>>,
        tls: Option<PyRef<'_, TlsServerConfig>>,
        forward_tls: Option<PyRef<'_, TlsClientConfig>>,
    ) -> PyResult<Server> {
        let storage = match storage {
            Some(s) => {
                let settings: StorageSettings = depythonize(s, "storage settings")?;
                Some(Arc::new(NativeStorage::new(settings, on_stored)))
            }
            None => None,
        };
        let acceptor: AcceptorParams = depythonize(acceptor, "server parameters")?;
        let settings: Settings = depythonize(settings, "AE settings")?;
        let forward = match forward {
            Some(f) => {
                let f: ForwardSettings = depythonize(f, "forwarding settings")?;
                let destination = f.destination(&settings, forward_tls.map(|t| t.inner.clone()))?;
                // Its housekeeping task runs on the shared runtime.
                let _inside = runtime().enter();
                Some(Forwarder::start(destination))
            }
            None => None,
        };
        let allowed_networks = settings
            .allowed_networks
            .iter()
            .map(|n| {
                n.parse::<net::Network>()
                    .map_err(|e| raise(Kind::InvalidArgument, format!("AE.allowed_networks: {e}")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let config = Arc::new(net::ServerConfig {
            timeouts: settings.timeouts(),
            limits: settings.limits(),
            max_associations: settings.maximum_associations.unwrap_or(10).max(1),
            network_timeout: seconds(settings.network_timeout),
            tls: tls.map(|t| t.inner.clone()),
            allowed_networks,
            max_associations_per_peer: settings.maximum_associations_per_peer.unwrap_or(0),
            max_queued_requests: settings
                .maximum_queued_requests
                .unwrap_or(net::DEFAULT_MAX_QUEUED),
            ..net::ServerConfig::new(acceptor)
        });
        let wanted = Arc::new(AtomicU32::new(0));
        let native_echo = Arc::new(AtomicBool::new(native_echo));
        let tracked = Arc::new(Mutex::new((HashSet::new(), Vec::new())));
        let hooks_bound = Arc::new(AtomicBool::new(true));
        let spool_io = storage.is_none() && forward.is_none() && dispatch.is_some();
        let service = Arc::new(PyService {
            dispatch: dispatch.map(Arc::new),
            notify: notify.map(Arc::new),
            wanted: wanted.clone(),
            hooks: hooks.map(Arc::new),
            native_echo: native_echo.clone(),
            pool: ThreadPool::new("dimse-handler", handler_threads.max(1)),
            tracked: tracked.clone(),
            storage,
            forward,
            hooks_bound: hooks_bound.clone(),
            notify_pool: ThreadPool::new("dimse-notify", NOTIFY_THREADS),
            spool_io: spool_io.then(|| ThreadPool::new("dimse-spool", 2)),
        });
        let listener = block_on(py, listen(host.clone(), port, reuse_port))?.map_err(|e| {
            raise(
                Kind::InvalidArgument,
                format!("cannot listen on {host}:{port}: {e}"),
            )
        })?;
        let address = listener
            .local_addr()
            .map_err(|e| raise(Kind::Internal, e.to_string()))?;
        let (tx, rx) = watch::channel(false);
        let task = runtime().spawn(net::serve(listener, config, service, rx));
        Ok(Server {
            shutdown: tx,
            hooks_bound,
            wanted,
            native_echo,
            tracked,
            address,
            task: Mutex::new(Some(task)),
        })
    }

    /// The (host, port) the server listens on (the port is chosen when 0 was asked).
    #[getter]
    fn address(&self) -> (String, u16) {
        (self.address.ip().to_string(), self.address.port())
    }

    /// Stops accepting, aborts the associations in progress, waits for them to end.
    #[pyo3(signature = (timeout=10.0))]
    fn shutdown(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let t = seconds(Some(timeout)).unwrap_or(Duration::from_secs(10));
            block_on(py, async move {
                let _ = tokio::time::timeout(t, task).await;
            })?;
        }
        Ok(())
    }

    /// Which notifications to deliver to `notify`: a set of kinds ("conn_open",
    /// "conn_close", "requested", "accepted", "rejected", "established", "released",
    /// "aborted", "dimse_recv", "dimse_sent", "pdu_recv", "pdu_sent").
    fn set_notifications(&self, kinds: Vec<String>) -> PyResult<()> {
        let mut bits = 0;
        for kind in &kinds {
            bits |= notification_bit(kind).ok_or_else(|| {
                raise(
                    Kind::InvalidArgument,
                    format!("{kind:?} is not a notification kind"),
                )
            })?;
        }
        self.wanted.store(bits, Ordering::Relaxed);
        Ok(())
    }

    /// Whether negotiation handlers are bound (EVT_USER_ID, EVT_SOP_EXTENDED,
    /// EVT_SOP_COMMON, EVT_ASYNC_OPS): without them negotiation stays in Rust.
    fn set_negotiation_hooks(&self, on: bool) {
        self.hooks_bound.store(on, Ordering::Relaxed);
    }

    /// Whether C-ECHO is answered in Rust (True) or passed to `dispatch`.
    fn set_native_echo(&self, on: bool) {
        self.native_echo.store(on, Ordering::Relaxed);
    }

    /// Asks to be told (by `ended()`) when association `id` ends.
    fn track(&self, id: u64) {
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        tracked.0.insert(id);
    }

    /// The tracked associations that ended since the last call.
    fn ended(&self) -> Vec<u64> {
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut tracked.1)
    }

    /// Whether the server is still running.
    fn is_running(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }
}
