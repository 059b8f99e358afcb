//! Native storage: a server that writes each received C-STORE data set to a file in Rust
//! (File Meta Information + the data set as received), without passing the bytes through
//! Python; Python may be told afterwards (to index the file) and have the last word on
//! the status.

use std::path::PathBuf;

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dimse_core::message::command::{CStoreRq, CStoreRsp, Command};
use dimse_core::message::element::tags;
use dimse_core::message::fragment::ReceivedMessage;
use dimse_core::message::CommandSet;
use dimse_core::message::Status;
use dimse_core::net::{AssociationInfo, DataSetSink, Responder, Response, ServiceFuture};
use dimse_core::storage::{Durability, FileStore, Instance, Layout, PartialFile, StoreError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{raise, Kind};
use crate::pool::ThreadPool;

/// Settings from Python (`dimse.storage.FileStorage`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StorageSettings {
    directory: PathBuf,
    #[serde(default)]
    layout: Layout,
    #[serde(default)]
    durability: Durability,
    /// Accept without writing (storescp --ignore).
    #[serde(default)]
    discard: bool,
}

/// What the server does with a C-STORE-RQ when native storage is on.
pub struct NativeStorage {
    store: FileStore,
    /// Streamed data sets being written at once, at most (each write takes a blocking
    /// thread): a thousand associations streaming take a few threads, not a thousand.
    io: Arc<ThreadPool>,
    discard: bool,
    /// Called as on_stored(assoc, stored) after the file is written; returns the status
    /// (None: success; an int; or (int, comment)).
    on_stored: Option<Py<PyAny>>,
}

/// ErrorComment is an LO: at most 64 characters (PS3.7 C.4.2, PS3.5 6.2).
fn comment(text: &str) -> String {
    // LO: no backslash (the value delimiter, PS3.5 6.2), at most 64 characters.
    text.chars()
        .map(|c| if c == '\\' { '/' } else { c })
        .take(64)
        .collect()
}

impl NativeStorage {
    pub fn new(settings: StorageSettings, on_stored: Option<Py<PyAny>>) -> NativeStorage {
        NativeStorage {
            store: FileStore::new(settings.directory, settings.layout, settings.durability),
            io: ThreadPool::new("dimse-storage", STREAM_WRITERS),
            discard: settings.discard,
            on_stored,
        }
    }

    /// Performs one C-STORE (PS3.4 B.2.2) and returns its response. Runs on a blocking
    /// thread: file I/O, and the GIL for `on_stored`.
    pub fn handle(&self, info: &AssociationInfo, message: &ReceivedMessage) -> Response {
        let request = decode_request(&message.command);
        let outcome = match &request {
            Ok(rq) => self.perform(info, message, rq),
            Err(e) => Err(e.clone()),
        };
        respond(message.context_id, &message.command, request.ok(), outcome)
    }

    /// The threads that write files.
    pub fn io_pool(&self) -> Arc<ThreadPool> {
        self.io.clone()
    }

    /// A sink for the data set of a C-STORE-RQ longer than the stream threshold: written
    /// to its file part by part as it arrives. `None` for anything else (held in memory
    /// and handled as usual).
    pub fn stream(
        self: &Arc<Self>,
        info: &AssociationInfo,
        context_id: u8,
        command: &CommandSet,
    ) -> Option<Box<dyn DataSetSink>> {
        let rq = decode_request(command).ok()?;
        let transfer_syntax = transfer_syntax(info, context_id).ok()?;
        let file = StreamFile::new(
            self.store.clone(),
            self.io.clone(),
            rq,
            transfer_syntax,
            calling_ae(info),
            self.discard,
        );
        Some(Box::new(StoreSink {
            storage: self.clone(),
            info: info.clone(),
            context_id,
            command: command.clone(),
            file,
        }))
    }

    /// The status (with an optional comment) of a request, or a failure and why.
    fn perform(&self, info: &AssociationInfo, message: &ReceivedMessage, rq: &CStoreRq) -> Outcome {
        let Some(dataset) = message.dataset.as_ref() else {
            return Err((Status(0xC210), "the C-STORE-RQ carries no data set".into()));
        };
        check_length(dataset.len())?;
        let transfer_syntax = transfer_syntax(info, message.context_id)?;
        if self.discard {
            return Ok((Status::SUCCESS, None));
        }
        let parts: Vec<&[u8]> = dataset.parts().iter().map(|p| p.as_ref()).collect();
        let calling = calling_ae(info);
        let instance = instance(rq, &transfer_syntax, &calling, &parts);
        let path = self.store.store(&instance).map_err(store_failure)?;
        self.stored(info, rq, &transfer_syntax, &calling, path, dataset.len())
    }

    /// A file is complete: tell Python (`on_stored`), which has the last word.
    fn stored(
        &self,
        info: &AssociationInfo,
        rq: &CStoreRq,
        transfer_syntax: &str,
        calling: &str,
        path: PathBuf,
        size: usize,
    ) -> Outcome {
        let Some(on_stored) = &self.on_stored else {
            return Ok((Status::SUCCESS, None));
        };
        Python::attach(|py| {
            let stored = PyDict::new(py);
            stored.set_item("path", &path)?;
            stored.set_item(
                "sop_class_uid",
                rq.affected_sop_class_uid.trim_end_matches('\0'),
            )?;
            stored.set_item(
                "sop_instance_uid",
                rq.affected_sop_instance_uid.trim_end_matches('\0'),
            )?;
            stored.set_item("transfer_syntax_uid", transfer_syntax)?;
            stored.set_item("size", size)?;
            stored.set_item("calling_ae_title", calling.trim())?;
            let out = on_stored.call1(py, (crate::net::assoc_dict(py, info)?, stored))?;
            let out = out.bind(py);
            if out.is_none() {
                Ok((Status::SUCCESS, None))
            } else if let Ok(code) = out.extract::<u16>() {
                Ok((Status(code), None))
            } else {
                let (code, text): (u16, String) = out.extract()?;
                Ok((Status(code), Some(comment(&text))))
            }
        })
        .map_err(|e: PyErr| {
            Python::attach(|py| e.print(py));
            // PS3.4 Table B.2-1: Cxxx "Cannot understand", as for a handler that raised.
            (Status(0xC211), "the on_stored callback raised".into())
        })
    }
}

/// A status with an optional comment, or a failure status and why.
pub(crate) type Outcome = Result<(Status, Option<String>), (Status, String)>;

pub(crate) fn decode_request(command: &CommandSet) -> Result<CStoreRq, (Status, String)> {
    match Command::from_command_set(command) {
        Ok(decoded) => match decoded.command {
            Command::CStoreRq(rq) => Ok(rq),
            _ => Err((Status::CANNOT_UNDERSTAND, "not a C-STORE-RQ".into())),
        },
        Err(e) => Err((Status::CANNOT_UNDERSTAND, format!("invalid request: {e}"))),
    }
}

/// The C-STORE-RSP to a request (PS3.7 9.3.1.2).
pub(crate) fn respond(
    context_id: u8,
    command: &CommandSet,
    request: Option<CStoreRq>,
    outcome: Outcome,
) -> Response {
    // Any comment, ours or a destination's, fits an LO (64 characters).
    let (status, error_comment) = match outcome {
        Ok((status, text)) => (status, text.map(|t| comment(&t))),
        Err((status, text)) => (status, Some(comment(&text))),
    };
    let mut rsp = CStoreRsp {
        message_id_being_responded_to: command.get_us(tags::MESSAGE_ID).unwrap_or(0),
        status,
        error_comment,
        ..Default::default()
    };
    let bare = Command::CStoreRsp(rsp.clone());
    if let Some(rq) = request {
        rsp.affected_sop_class_uid = Some(rq.affected_sop_class_uid);
        rsp.affected_sop_instance_uid = Some(rq.affected_sop_instance_uid);
    }
    // The UIDs echo the request's (optional in the response, PS3.7 9.3.1.2); one that
    // cannot be encoded (a peer's malformed UID) is left out rather than the response.
    let command = Command::CStoreRsp(rsp)
        .encode(false)
        .or_else(|_| bare.encode(false))
        .unwrap_or_default();
    Response {
        context_id,
        command: Bytes::from(command),
        dataset: None,
    }
}

/// A data set always has an even length (PS3.5 7.1); an odd one was cut or padded
/// wrongly, and would be stored broken.
pub(crate) fn check_length(len: usize) -> Result<(), (Status, String)> {
    if len % 2 != 0 {
        return Err((Status(0xC210), format!("data set of odd length {len}")));
    }
    Ok(())
}

pub(crate) fn transfer_syntax(
    info: &AssociationInfo,
    context_id: u8,
) -> Result<String, (Status, String)> {
    info.negotiated
        .accepted()
        .find(|c| c.id == context_id)
        .and_then(|c| c.transfer_syntax.clone())
        .ok_or_else(|| (Status(0xC210), "no accepted context for the request".into()))
}

pub(crate) fn calling_ae(info: &AssociationInfo) -> String {
    info.negotiated.calling_ae_title.as_str().trim().to_owned()
}

fn instance<'a>(
    rq: &'a CStoreRq,
    transfer_syntax: &'a str,
    calling: &'a str,
    parts: &'a [&'a [u8]],
) -> Instance<'a> {
    // A title a peer sent is recorded only when it is a valid AE value (PS3.5 6.2).
    let source = Some(calling)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .filter(|t| !t.contains('\\'));
    Instance {
        sop_class_uid: &rq.affected_sop_class_uid,
        sop_instance_uid: &rq.affected_sop_instance_uid,
        transfer_syntax_uid: transfer_syntax,
        source_ae_title: source,
        dataset: parts,
    }
}

fn store_failure(e: StoreError) -> (Status, String) {
    match e {
        // PS3.4 Table B.2-1: A7xx Refused: Out of Resources.
        StoreError::Io { .. } => (Status::OUT_OF_RESOURCES, e.to_string()),
        StoreError::Meta(_) => (Status(0xC210), e.to_string()),
    }
}

/// Threads writing files (and telling `on_stored`).
const STREAM_WRITERS: usize = 4;

/// Parts are gathered up to this much before each write (one vectored write on the
/// file threads): few thread hand-offs, little memory.
const FLUSH_BYTES: usize = 1 << 20;

/// A data set written to its file as it arrives, a buffer at a time, on `io`'s threads.
pub(crate) struct StreamFile {
    store: FileStore,
    io: Arc<ThreadPool>,
    rq: CStoreRq,
    transfer_syntax: String,
    calling: String,
    /// The file, once its first parts are written.
    file: Option<PartialFile>,
    /// The first failure; the remaining parts are then dropped.
    failed: Option<(Status, String)>,
    /// Count the bytes, write nothing.
    discard: bool,
    buffered: Vec<Bytes>,
    buffered_len: usize,
    total: usize,
}

impl StreamFile {
    pub(crate) fn new(
        store: FileStore,
        io: Arc<ThreadPool>,
        rq: CStoreRq,
        transfer_syntax: String,
        calling: String,
        discard: bool,
    ) -> StreamFile {
        StreamFile {
            store,
            io,
            rq,
            transfer_syntax,
            calling,
            file: None,
            failed: None,
            discard,
            buffered: Vec::new(),
            buffered_len: 0,
            total: 0,
        }
    }

    pub(crate) async fn write(&mut self, part: Bytes) {
        self.total += part.len();
        if self.failed.is_some() || self.discard {
            return;
        }
        self.buffered_len += part.len();
        self.buffered.push(part);
        if self.buffered_len >= FLUSH_BYTES {
            self.flush().await;
        }
    }

    /// Writes what is buffered (creating the file on the first call).
    async fn flush(&mut self) {
        let parts = std::mem::take(&mut self.buffered);
        self.buffered_len = 0;
        if self.failed.is_some() || self.discard || parts.is_empty() {
            return;
        }
        let store = self.store.clone();
        let rq = self.rq.clone();
        let transfer_syntax = self.transfer_syntax.clone();
        let calling = self.calling.clone();
        let file = self.file.take();
        let written = self
            .io
            .run(move || {
                let slices: Vec<&[u8]> = parts.iter().map(|p| p.as_ref()).collect();
                match file {
                    Some(mut file) => file.write(&slices).map(|()| file),
                    None => store.create(&instance(&rq, &transfer_syntax, &calling, &slices)),
                }
                .map_err(store_failure)
            })
            .await;
        match written {
            Some(Ok(file)) => self.file = Some(file),
            Some(Err(failure)) => self.failed = Some(failure),
            None => self.failed = Some((Status::OUT_OF_RESOURCES, "the file writer failed".into())),
        }
    }

    /// The data set is complete: the file under its final name and the data set's
    /// length (`None` with `discard`), or why not (the partial file is then removed).
    pub(crate) async fn finish(mut self) -> Result<(Option<PathBuf>, usize), (Status, String)> {
        self.flush().await;
        let total = self.total;
        if let Some(failure) = self.failed.take() {
            return Err(failure);
        }
        check_length(total)?;
        if self.discard {
            return Ok((None, total));
        }
        let Some(file) = self.file.take() else {
            return Err((Status(0xC210), "the data set is empty".into()));
        };
        self.io
            .run(move || file.commit().map_err(store_failure))
            .await
            .unwrap_or_else(|| Err((Status::OUT_OF_RESOURCES, "the file writer failed".into())))
            .map(|path| (Some(path), total))
    }
}

/// A C-STORE data set written to its file as it arrives (see [`NativeStorage::stream`]).
struct StoreSink {
    storage: Arc<NativeStorage>,
    info: AssociationInfo,
    context_id: u8,
    command: CommandSet,
    file: StreamFile,
}

impl DataSetSink for StoreSink {
    fn write(&mut self, part: Bytes) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.file.write(part))
    }

    fn finish(self: Box<Self>, _responder: Responder) -> ServiceFuture {
        Box::pin(async move {
            let StoreSink {
                storage,
                info,
                context_id,
                command,
                file,
            } = *self;
            let rq = file.rq.clone();
            let transfer_syntax = file.transfer_syntax.clone();
            let written = file.finish().await;
            let io = storage.io.clone();
            let rq_out = rq.clone();
            let outcome = io
                .run(move || match written? {
                    (None, _) => Ok((Status::SUCCESS, None)),
                    (Some(path), size) => {
                        let calling = calling_ae(&info);
                        storage.stored(&info, &rq, &transfer_syntax, &calling, path, size)
                    }
                })
                .await
                .unwrap_or_else(|| {
                    Err((Status::OUT_OF_RESOURCES, "the file writer failed".into()))
                });
            vec![respond(context_id, &command, Some(rq_out), outcome)]
        })
    }
}

/// Writes one instance as a DICOM file below `directory` (the same writer as native
/// storage: temporary name, then rename) and returns its path.
#[pyfunction]
#[pyo3(signature = (directory, sop_class_uid, sop_instance_uid, transfer_syntax_uid, dataset, source_ae_title=None, layout="flat", durability="rename"))]
#[allow(clippy::too_many_arguments)]
pub fn store_file(
    py: Python<'_>,
    directory: PathBuf,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
    dataset: &[u8],
    source_ae_title: Option<&str>,
    layout: &str,
    durability: &str,
) -> PyResult<PathBuf> {
    let layout = match layout {
        "flat" => Layout::Flat,
        "study" => Layout::Study,
        other => {
            return Err(raise(
                Kind::InvalidArgument,
                format!("layout must be \"flat\" or \"study\", not {other:?}"),
            ))
        }
    };
    let durability = match durability {
        "rename" => Durability::Rename,
        "fsync" => Durability::Fsync,
        other => {
            return Err(raise(
                Kind::InvalidArgument,
                format!("durability must be \"rename\" or \"fsync\", not {other:?}"),
            ))
        }
    };
    let store = FileStore::new(directory, layout, durability);
    let instance = Instance {
        sop_class_uid,
        sop_instance_uid,
        transfer_syntax_uid,
        source_ae_title,
        dataset: &[dataset],
    };
    py.detach(|| store.store(&instance)).map_err(|e| match e {
        StoreError::Meta(_) => raise(Kind::InvalidArgument, e.to_string()),
        StoreError::Io { .. } => raise(Kind::StorageFailed, e.to_string()),
    })
}
