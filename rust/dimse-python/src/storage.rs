//! Native storage: a server that writes each received C-STORE data set to a file in Rust
//! (File Meta Information + the data set as received), without passing the bytes through
//! Python; Python may be told afterwards (to index the file) and have the last word on
//! the status.

use std::path::PathBuf;

use bytes::Bytes;
use dimse_core::message::command::{CStoreRsp, Command};
use dimse_core::message::element::tags;
use dimse_core::message::fragment::ReceivedMessage;
use dimse_core::message::Status;
use dimse_core::net::{AssociationInfo, Response};
use dimse_core::storage::{Durability, FileStore, Instance, Layout, StoreError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{raise, Kind};

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
    discard: bool,
    /// Called as on_stored(assoc, stored) after the file is written; returns the status
    /// (None: success; an int; or (int, comment)).
    on_stored: Option<Py<PyAny>>,
}

/// ErrorComment is an LO: at most 64 characters (PS3.7 C.4.2, PS3.5 6.2).
fn comment(text: &str) -> String {
    text.chars().take(64).collect()
}

impl NativeStorage {
    pub fn new(settings: StorageSettings, on_stored: Option<Py<PyAny>>) -> NativeStorage {
        NativeStorage {
            store: FileStore::new(settings.directory, settings.layout, settings.durability),
            discard: settings.discard,
            on_stored,
        }
    }

    /// Performs one C-STORE (PS3.4 B.2.2) and returns its response. Runs on a blocking
    /// thread: file I/O, and the GIL for `on_stored`.
    pub fn handle(&self, info: &AssociationInfo, message: &ReceivedMessage) -> Response {
        let (request, outcome) = match Command::from_command_set(&message.command) {
            Ok(decoded) => match decoded.command {
                Command::CStoreRq(rq) => {
                    let outcome = self.perform(info, message, &rq);
                    (Some(rq), outcome)
                }
                _ => (
                    None,
                    Err((Status::CANNOT_UNDERSTAND, "not a C-STORE-RQ".into())),
                ),
            },
            Err(e) => (
                None,
                Err((Status::CANNOT_UNDERSTAND, format!("invalid request: {e}"))),
            ),
        };
        let (status, error_comment) = match outcome {
            Ok(status) => status,
            Err((status, text)) => (status, Some(comment(&text))),
        };
        let mut rsp = CStoreRsp {
            message_id_being_responded_to: message.command.get_us(tags::MESSAGE_ID).unwrap_or(0),
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
            context_id: message.context_id,
            command: Bytes::from(command),
            dataset: None,
        }
    }

    /// The status (with an optional comment) of a request, or a failure and why.
    #[allow(clippy::type_complexity)]
    fn perform(
        &self,
        info: &AssociationInfo,
        message: &ReceivedMessage,
        rq: &dimse_core::message::command::CStoreRq,
    ) -> Result<(Status, Option<String>), (Status, String)> {
        let Some(dataset) = message.dataset.as_ref() else {
            return Err((Status(0xC210), "the C-STORE-RQ carries no data set".into()));
        };
        // A data set always has an even length (PS3.5 7.1); an odd one was cut or padded
        // wrongly, and would be stored broken.
        if dataset.len() % 2 != 0 {
            return Err((
                Status(0xC210),
                format!("data set of odd length {}", dataset.len()),
            ));
        }
        let context = info
            .negotiated
            .accepted()
            .find(|c| c.id == message.context_id);
        let Some(transfer_syntax) = context.and_then(|c| c.transfer_syntax.as_deref()) else {
            return Err((Status(0xC210), "no accepted context for the request".into()));
        };
        if self.discard {
            return Ok((Status::SUCCESS, None));
        }
        let parts: Vec<&[u8]> = dataset.parts().iter().map(|p| p.as_ref()).collect();
        let calling = info.negotiated.calling_ae_title.as_str().into_owned();
        // A title a peer sent is recorded only when it is a valid AE value (PS3.5 6.2).
        let source = Some(calling.trim())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
            .filter(|t| !t.contains('\\'));
        let instance = Instance {
            sop_class_uid: &rq.affected_sop_class_uid,
            sop_instance_uid: &rq.affected_sop_instance_uid,
            transfer_syntax_uid: transfer_syntax,
            source_ae_title: source,
            dataset: &parts,
        };
        let path = self.store.store(&instance).map_err(|e| match e {
            // PS3.4 Table B.2-1: A7xx Refused: Out of Resources.
            StoreError::Io { .. } => (Status::OUT_OF_RESOURCES, e.to_string()),
            StoreError::Meta(_) => (Status(0xC210), e.to_string()),
        })?;
        let Some(on_stored) = &self.on_stored else {
            return Ok((Status::SUCCESS, None));
        };
        Python::attach(|py| {
            let stored = PyDict::new(py);
            stored.set_item("path", &path)?;
            stored.set_item(
                "sop_class_uid",
                instance.sop_class_uid.trim_end_matches('\0'),
            )?;
            stored.set_item(
                "sop_instance_uid",
                instance.sop_instance_uid.trim_end_matches('\0'),
            )?;
            stored.set_item("transfer_syntax_uid", transfer_syntax)?;
            stored.set_item("size", dataset.len())?;
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
