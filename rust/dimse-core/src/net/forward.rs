//! Forwarding received instances to another AE (a router's storage SCP): each data set
//! goes on as it was received, never decoded, over a small pool of associations to the
//! destination, and the destination's status comes back.
//!
//! The pool keeps, per (SOP Class, transfer syntax), up to `max_associations`
//! associations each proposing that one context: whatever the instance, the destination
//! is asked for exactly what it must accept, and an instance is never converted. Idle
//! associations are released (A-RELEASE) after `idle_timeout`; one the destination
//! released or aborted while idle is replaced on its next use (the request is retried
//! once on a new association). With a spool folder, an instance the destination cannot
//! take now (unreachable, refusing the association) is written there, acknowledged, and
//! sent again later, oldest first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::client::{associate, Client, ClientConfig};
use crate::association::AssociationEvent;
use crate::filemeta;
use crate::message::command::{CStoreRq, Command};
use crate::message::Status;
use crate::negotiation::RequestorParams;
use crate::pdu::AeTitle;
use crate::storage::{Durability, FileStore, Instance, Layout};

/// Where and how to forward.
#[derive(Debug, Clone)]
pub struct Destination {
    /// `host:port`.
    pub address: String,
    pub calling_ae_title: AeTitle,
    pub called_ae_title: AeTitle,
    /// Associations per (SOP Class, transfer syntax), at most.
    pub max_associations: usize,
    /// An association unused this long is released.
    pub idle_timeout: Duration,
    /// How long to wait for the destination's C-STORE-RSP.
    pub dimse_timeout: Duration,
    pub config: ClientConfig,
    /// Instances the destination cannot take now are kept here and sent again later.
    pub spool: Option<PathBuf>,
    /// How often the spool is retried.
    pub retry_interval: Duration,
}

/// What became of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The destination's status (or ours, when it could not be asked).
    pub status: Status,
    pub error_comment: Option<String>,
}

type Key = (String, String);

struct Idle {
    client: Client,
    since: Instant,
}

/// A pool of associations to one destination; see the module documentation.
pub struct Forwarder {
    destination: Destination,
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
    slots: Mutex<HashMap<Key, Arc<Semaphore>>>,
    message_id: AtomicU16,
    /// One spool retry at a time.
    retrying: tokio::sync::Mutex<()>,
}

/// Why an instance could not be handed to the destination (as opposed to the
/// destination answering with a failure status).
#[derive(Debug, thiserror::Error)]
enum Unreachable {
    #[error("cannot associate with {0}")]
    Associate(String),
    #[error("the destination accepts no context for {0}")]
    NoContext(String),
    #[error("the association to the destination failed: {0}")]
    Link(String),
}

impl Forwarder {
    /// A forwarder, and its background task on the current runtime: releasing idle
    /// associations and retrying the spool. The task ends when the forwarder is dropped.
    pub fn start(destination: Destination) -> Arc<Forwarder> {
        let forwarder = Arc::new(Forwarder {
            destination,
            idle: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            message_id: AtomicU16::new(1),
            retrying: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&forwarder);
        tokio::spawn(housekeeping(weak));
        forwarder
    }

    /// Forwards one instance; with a spool, one the destination cannot take now is kept
    /// and acknowledged (0x0000 with a comment saying so).
    pub async fn forward(&self, rq: &CStoreRq, transfer_syntax: &str, dataset: Bytes) -> Forwarded {
        match self.send(rq, transfer_syntax, dataset.clone()).await {
            Ok(forwarded) => forwarded,
            Err(why) => match &self.destination.spool {
                Some(spool) => self.keep(spool, rq, transfer_syntax, &dataset, &why),
                None => Forwarded {
                    // PS3.4 Table B.2-1: A7xx Refused: Out of Resources.
                    status: Status::OUT_OF_RESOURCES,
                    error_comment: Some(why.to_string()),
                },
            },
        }
    }

    fn keep(
        &self,
        spool: &std::path::Path,
        rq: &CStoreRq,
        transfer_syntax: &str,
        dataset: &[u8],
        why: &Unreachable,
    ) -> Forwarded {
        let store = FileStore::new(spool, Layout::Flat, Durability::Fsync);
        let instance = Instance {
            sop_class_uid: &rq.affected_sop_class_uid,
            sop_instance_uid: &rq.affected_sop_instance_uid,
            transfer_syntax_uid: transfer_syntax,
            source_ae_title: None,
            dataset: &[dataset],
        };
        match store.store(&instance) {
            Ok(_) => Forwarded {
                status: Status::SUCCESS,
                error_comment: None,
            },
            Err(e) => Forwarded {
                status: Status::OUT_OF_RESOURCES,
                error_comment: Some(format!("{why}; and cannot spool: {e}")),
            },
        }
    }

    fn slot(&self, key: &Key) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.destination.max_associations.max(1))))
            .clone()
    }

    async fn send(
        &self,
        rq: &CStoreRq,
        transfer_syntax: &str,
        dataset: Bytes,
    ) -> Result<Forwarded, Unreachable> {
        let key = (
            rq.affected_sop_class_uid.trim_end_matches('\0').to_owned(),
            transfer_syntax.to_owned(),
        );
        let slot = self.slot(&key);
        let Ok(_permit) = slot.acquire_owned().await else {
            return Err(Unreachable::Link("the forwarder is closing".into()));
        };
        // An idle association may have been closed by the destination meanwhile: its
        // failure sends the request again, once, on a new one.
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.get_mut(&key).and_then(Vec::pop)
        };
        if let Some(idle) = reused {
            if let Ok(done) = self.exchange(&idle.client, rq, dataset.clone()).await {
                self.put_back(key, idle.client);
                return Ok(done);
            }
            idle.client.abort().await;
        }
        let client = self.open(&key).await?;
        match self.exchange(&client, rq, dataset).await {
            Ok(done) => {
                self.put_back(key, client);
                Ok(done)
            }
            Err(e) => {
                client.abort().await;
                Err(e)
            }
        }
    }

    fn put_back(&self, key: Key, client: Client) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.entry(key).or_default().push(Idle {
            client,
            since: Instant::now(),
        });
    }

    async fn open(&self, key: &Key) -> Result<Client, Unreachable> {
        let d = &self.destination;
        let mut params = RequestorParams::new(d.calling_ae_title, d.called_ae_title);
        params
            .add_context(&key.0, &[key.1.as_str()])
            .map_err(|e| Unreachable::NoContext(format!("{} in {}: {e}", key.0, key.1)))?;
        let rq = params
            .build_rq()
            .map_err(|e| Unreachable::Associate(e.to_string()))?;
        associate(&d.address, rq, d.config.clone())
            .await
            .map_err(|e| Unreachable::Associate(format!("{}: {e}", d.address)))
    }

    async fn exchange(
        &self,
        client: &Client,
        rq: &CStoreRq,
        dataset: Bytes,
    ) -> Result<Forwarded, Unreachable> {
        let context = client
            .negotiated()
            .accepted()
            .find(|c| c.abstract_syntax == rq.affected_sop_class_uid.trim_end_matches('\0'))
            .map(|c| c.id)
            .ok_or_else(|| Unreachable::NoContext(rq.affected_sop_class_uid.clone()))?;
        let id = self.message_id.fetch_add(1, Ordering::Relaxed);
        let request = Command::CStoreRq(CStoreRq {
            message_id: id,
            ..rq.clone()
        });
        let command = request
            .encode(true)
            .map_err(|e| Unreachable::Link(e.to_string()))?;
        let link = |e: super::LinkError| Unreachable::Link(e.to_string());
        client
            .send(context, Bytes::from(command), Some(dataset))
            .await
            .map_err(link)?;
        loop {
            match client
                .next_event(Some(self.destination.dimse_timeout))
                .await
                .map_err(link)?
            {
                AssociationEvent::Message(m) => {
                    let decoded = Command::from_command_set(&m.command)
                        .map_err(|e| Unreachable::Link(format!("invalid response: {e}")))?;
                    if let Command::CStoreRsp(rsp) = decoded.command {
                        if rsp.message_id_being_responded_to == id {
                            return Ok(Forwarded {
                                status: rsp.status,
                                error_comment: rsp.error_comment,
                            });
                        }
                    }
                    // Anything else on this association is not ours to answer.
                    return Err(Unreachable::Link("unexpected message".into()));
                }
                AssociationEvent::Pdu(_) => continue,
                other => return Err(Unreachable::Link(format!("{other:?}"))),
            }
        }
    }

    /// Releases the associations idle longer than the idle timeout.
    async fn reap(&self) {
        let expired: Vec<Client> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let timeout = self.destination.idle_timeout;
            let mut out = Vec::new();
            for list in idle.values_mut() {
                let (old, fresh): (Vec<Idle>, Vec<Idle>) =
                    list.drain(..).partition(|i| i.since.elapsed() >= timeout);
                *list = fresh;
                out.extend(old.into_iter().map(|i| i.client));
            }
            out
        };
        let wait = self
            .destination
            .config
            .timeouts
            .acse
            .min(Duration::from_secs(30));
        for client in expired {
            if client.release(wait).await.is_err() {
                client.abort().await;
            }
        }
    }

    /// Sends the spooled instances, oldest first; stops at the first that cannot be
    /// sent (the destination is still away). Returns how many were delivered.
    pub async fn retry_spool(&self) -> usize {
        let Some(spool) = self.destination.spool.clone() else {
            return 0;
        };
        let _one = self.retrying.lock().await;
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = match std::fs::read_dir(&spool) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
                .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
                .collect(),
            Err(_) => return 0,
        };
        files.sort();
        let mut delivered = 0;
        for (_, path) in files {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(header) = filemeta::parse(&bytes) else {
                continue;
            };
            let Ok(offset) = usize::try_from(header.data_offset) else {
                continue;
            };
            let rq = CStoreRq {
                affected_sop_class_uid: header.meta.media_storage_sop_class_uid.clone(),
                affected_sop_instance_uid: header.meta.media_storage_sop_instance_uid.clone(),
                ..Default::default()
            };
            let dataset = Bytes::from(bytes).slice(offset..);
            match self
                .send(&rq, &header.meta.transfer_syntax_uid, dataset)
                .await
            {
                // The destination answered: its verdict stands, the copy goes.
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                    delivered += 1;
                }
                Err(_) => break,
            }
        }
        delivered
    }
}

async fn housekeeping(forwarder: Weak<Forwarder>) {
    let mut last_retry = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(f) = forwarder.upgrade() else {
            return;
        };
        f.reap().await;
        if last_retry.elapsed() >= f.destination.retry_interval {
            last_retry = Instant::now();
            f.retry_spool().await;
        }
    }
}
