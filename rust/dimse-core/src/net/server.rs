//! The acceptor side: listen, one task per association, a cap on associations, graceful
//! shutdown. What to do with each request is the [`Service`]'s business.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::access::{Network, PeerCounts, PeerSlot};
use super::driver::{self, Request};
use super::tls;
use crate::association::{Association, AssociationEvent, Limits};
use crate::message::element::tags;
use crate::message::fragment::{Payload, ReceivedMessage};
use crate::message::CommandSet;
use crate::negotiation::{self, AcceptorHooks, AcceptorParams, Negotiated};
use crate::ul::Timeouts;

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub acceptor: AcceptorParams,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// Associations served at once; beyond it, A-ASSOCIATE-RJ (transient, local limit
    /// exceeded).
    pub max_associations: usize,
    /// Abort an association when nothing arrives for this long (None: never).
    pub network_timeout: Option<Duration>,
    /// TLS on every connection (None: plain TCP). The handshake must complete within
    /// ARTIM.
    pub tls: Option<Arc<tls::rustls::ServerConfig>>,
    /// Client addresses allowed to associate (empty: any); others get A-ASSOCIATE-RJ
    /// (permanent, service-user, no reason given).
    pub allowed_networks: Vec<Network>,
    /// Associations one client address may hold at once (0: no limit but
    /// `max_associations`); beyond it, A-ASSOCIATE-RJ (transient, local limit exceeded).
    pub max_associations_per_peer: usize,
    /// Requests of one association waiting for a handler, at most; beyond it the
    /// association's socket is not read until one starts (TCP slows the peer down).
    pub max_queued_requests: usize,
}

impl ServerConfig {
    /// A server with these acceptor parameters and the defaults for the rest.
    pub fn new(acceptor: AcceptorParams) -> Self {
        ServerConfig {
            acceptor,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            max_associations: 1000,
            network_timeout: Some(Duration::from_secs(60)),
            tls: None,
            allowed_networks: Vec::new(),
            max_associations_per_peer: 0,
            max_queued_requests: DEFAULT_MAX_QUEUED,
        }
    }
}

/// One response to send: context, command set, data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub context_id: u8,
    pub command: Bytes,
    pub dataset: Option<Bytes>,
}

/// What a service knows about the association a request came on.
#[derive(Debug, Clone)]
pub struct AssociationInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub negotiated: Arc<Negotiated>,
}

/// A handler's work: streams responses through its [`Responder`] as it goes, and returns
/// the ones left to send (typically the final one).
pub type ServiceFuture = Pin<Box<dyn Future<Output = Vec<Response>> + Send>>;

/// Where a running handler sends responses as it produces them (C-FIND matches, C-GET
/// and C-MOVE pending statuses), and where it learns that the peer sent a C-CANCEL-RQ
/// for its request (PS3.7 9.3.2.3).
#[derive(Debug, Clone)]
pub struct Responder {
    tx: mpsc::Sender<Response>,
    cancelled: Arc<AtomicBool>,
    /// Responses the peer sends to the handler's own requests (the C-STORE sub-operations
    /// of a C-GET, PS3.4 C.4.3), in arrival order.
    replies: Arc<tokio::sync::Mutex<mpsc::Receiver<ReceivedMessage>>>,
}

impl Responder {
    /// Sends a response now; false when the association is gone.
    pub async fn send(&self, response: Response) -> bool {
        self.tx.send(response).await.is_ok()
    }

    /// [`Responder::send`] from a blocking thread (a Python handler).
    pub fn blocking_send(&self, response: Response) -> bool {
        self.tx.blocking_send(response).is_ok()
    }

    /// Whether the peer cancelled this request.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The next response the peer sent to one of the handler's own requests, waiting at
    /// most `timeout`; `None` on timeout or when the association is gone.
    pub async fn reply(&self, timeout: Option<Duration>) -> Option<ReceivedMessage> {
        let mut replies = self.replies.lock().await;
        match timeout {
            Some(t) => tokio::time::timeout(t, replies.recv()).await.ok().flatten(),
            None => replies.recv().await,
        }
    }
}

/// What happened on an association, for a service that asked to be told (pynetdicom's
/// notification events). Each kind costs nothing unless [`Service::notifications`]
/// includes its bit.
#[derive(Debug, Clone)]
pub enum Notification {
    /// A TCP connection was accepted.
    ConnOpen,
    /// The connection closed (last notification of an association).
    ConnClose,
    /// An A-ASSOCIATE-RQ arrived.
    Requested(Box<crate::pdu::AAssociateRq>),
    /// We accepted (the A-ASSOCIATE-AC is about to be sent).
    Accepted(Box<crate::pdu::AAssociateAc>),
    /// We rejected; `why` says what about the request or the peer made us.
    Rejected {
        rj: crate::pdu::AAssociateRj,
        why: String,
    },
    /// A connection was closed before any association: its TLS handshake failed.
    Refused(String),
    /// The association is established.
    Established,
    /// The association was released.
    Released,
    /// The association was aborted; the text says by whom and why.
    Aborted(String),
    /// A DIMSE message arrived (its command set; the data set is not copied here).
    DimseRecv { context_id: u8, command: Bytes },
    /// A DIMSE message was queued for sending.
    DimseSent { context_id: u8, command: Bytes },
    /// A PDU was received or queued for sending.
    Pdu(crate::association::PduNote),
}

/// The bit of each kind of [`Notification`] in [`Service::notifications`].
pub mod notify {
    pub const CONN_OPEN: u32 = 1 << 0;
    pub const CONN_CLOSE: u32 = 1 << 1;
    pub const REQUESTED: u32 = 1 << 2;
    pub const ACCEPTED: u32 = 1 << 3;
    pub const REJECTED: u32 = 1 << 4;
    pub const ESTABLISHED: u32 = 1 << 5;
    pub const RELEASED: u32 = 1 << 6;
    pub const ABORTED: u32 = 1 << 7;
    pub const DIMSE_RECV: u32 = 1 << 8;
    pub const DIMSE_SENT: u32 = 1 << 9;
    pub const PDU_RECV: u32 = 1 << 10;
    pub const PDU_SENT: u32 = 1 << 11;
    pub const REFUSED: u32 = 1 << 12;
}

impl Notification {
    /// Its bit in [`Service::notifications`].
    pub fn bit(&self) -> u32 {
        match self {
            Notification::ConnOpen => notify::CONN_OPEN,
            Notification::ConnClose => notify::CONN_CLOSE,
            Notification::Requested(_) => notify::REQUESTED,
            Notification::Accepted(_) => notify::ACCEPTED,
            Notification::Rejected { .. } => notify::REJECTED,
            Notification::Refused(_) => notify::REFUSED,
            Notification::Established => notify::ESTABLISHED,
            Notification::Released => notify::RELEASED,
            Notification::Aborted(_) => notify::ABORTED,
            Notification::DimseRecv { .. } => notify::DIMSE_RECV,
            Notification::DimseSent { .. } => notify::DIMSE_SENT,
            Notification::Pdu(n) if n.sent => notify::PDU_SENT,
            Notification::Pdu(_) => notify::PDU_RECV,
        }
    }
}

/// Where a notification comes from: the association's id and peer, and what was
/// negotiated once it is established.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub id: u64,
    pub peer: SocketAddr,
    pub info: Option<&'a AssociationInfo>,
}

/// A notification being delivered; the association waits for it (in order).
pub type NotifyFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a data set longer than the stream threshold goes, part by part, as it arrives
/// (see [`Service::stream`]). The association reads its socket no faster than the sink
/// takes the parts.
pub trait DataSetSink: Send {
    /// Takes the next part, in order. A sink that fails (a full disk) remembers it and
    /// answers with a failure in [`DataSetSink::finish`]; the remaining parts still come.
    fn write(&mut self, part: Bytes) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// The data set is complete: performs the request and returns its responses (as
    /// [`Service::handle`] does). A sink dropped without `finish` (the association
    /// ended mid-way) must clean up after itself.
    fn finish(self: Box<Self>, responder: Responder) -> ServiceFuture;
}

/// A streamed data set on its way: to a sink, or (without one) held until complete.
enum Streamed {
    Sink {
        sink: Box<dyn DataSetSink>,
        message_id: u16,
    },
    Held {
        context_id: u8,
        command: CommandSet,
        parts: Vec<Bytes>,
        /// Bytes in `parts`.
        held: usize,
    },
}

/// A responder for a request starting now, with the handles the loop keeps.
fn responder_for(
    resp_tx: &mpsc::Sender<Response>,
    cancelled: bool,
) -> (Responder, Arc<AtomicBool>, mpsc::Sender<ReceivedMessage>) {
    let cancelled = Arc::new(AtomicBool::new(cancelled));
    let (reply_tx, reply_rx) = mpsc::channel(EVENT_QUEUE);
    let responder = Responder {
        tx: resp_tx.clone(),
        cancelled: cancelled.clone(),
        replies: Arc::new(tokio::sync::Mutex::new(reply_rx)),
    };
    (responder, cancelled, reply_tx)
}

/// The performing side of the DIMSE services: negotiation hooks and request handling.
/// Requests of one association are handled one at a time, in order, unless the requestor
/// negotiated an asynchronous operations window: then up to that many at once (a C-GET,
/// whose sub-operations use the association, always alone).
pub trait Service: Send + Sync + 'static {
    /// The negotiation hooks for one incoming association.
    fn hooks(&self, peer: SocketAddr) -> Box<dyn AcceptorHooks + Send>;
    /// Whether the hooks may block (call into Python ...): negotiation then runs on the
    /// blocking pool, a few at a time; otherwise on the association's own task.
    fn negotiation_blocks(&self) -> bool {
        true
    }
    /// Runs blocking work (a negotiation with blocking hooks) off the I/O threads. The
    /// default uses tokio's blocking pool; a service with its own threads uses those.
    fn run_blocking(
        &self,
        job: Box<dyn FnOnce() + Send>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(job).await;
        })
    }
    /// Handles one request: responses go out through `responder` as they come, then the
    /// ones returned. While it runs, the association's other requests wait (in order)
    /// beyond the negotiated window, and a C-CANCEL-RQ for it sets
    /// `responder.is_cancelled()`.
    fn handle(
        &self,
        assoc: &AssociationInfo,
        message: ReceivedMessage,
        responder: Responder,
    ) -> ServiceFuture;
    /// A request's data set is longer than the stream threshold ([`Limits`]
    /// `stream_threshold`): a sink to take it part by part as it arrives, or `None` to
    /// have it held whole and passed to [`Service::handle`] as usual. `head` is the data
    /// set's start (at least the threshold); the server writes it to the sink first.
    fn stream(
        &self,
        _assoc: &AssociationInfo,
        _context_id: u8,
        _command: &CommandSet,
        _head: &Payload,
    ) -> Option<Box<dyn DataSetSink>> {
        None
    }
    /// Notification that an association ended (released, aborted, closed).
    fn closed(&self, _assoc: &AssociationInfo, _how: &str) {}
    /// The [`notify`] bits of the notifications wanted now (read at each occasion, so
    /// that handlers bound later take effect).
    fn notifications(&self) -> u32 {
        0
    }
    /// Delivers one notification the service asked for. The association goes on once it
    /// completes: notifications of one association arrive in order.
    fn notify(&self, _origin: Origin<'_>, _notification: Notification) -> NotifyFuture {
        Box::pin(std::future::ready(()))
    }
}

/// Delivers a notification when the service wants its kind; builds it only then.
async fn tell(
    service: &Arc<dyn Service>,
    origin: Origin<'_>,
    bit: u32,
    make: impl FnOnce() -> Notification,
) {
    if service.notifications() & bit != 0 {
        service.notify(origin, make()).await;
    }
}

/// Serves associations on `listener` until `shutdown` turns true; then stops accepting
/// and waits for the associations in progress to end.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    service: Arc<dyn Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.max_associations.max(1)));
    let negotiations = Arc::new(Semaphore::new(NEGOTIATIONS_AT_ONCE));
    let peers = Arc::new(PeerCounts::default());
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                next_id += 1;
                let shared = Shared {
                    id: next_id,
                    config: config.clone(),
                    service: service.clone(),
                    permits: permits.clone(),
                    negotiations: negotiations.clone(),
                    peers: peers.clone(),
                };
                let shutdown = shutdown.clone();
                match config.tls.clone() {
                    None => {
                        tasks.spawn(serve_one(stream, peer, shared, shutdown));
                    }
                    Some(tls) => {
                        tasks.spawn(async move {
                            // ARTIM bounds the handshake as it bounds the wait for the
                            // A-ASSOCIATE-RQ: a silent or slow client holds nothing longer.
                            match tls::accept(tls, stream, shared.config.timeouts.artim).await {
                                Ok(stream) => serve_one(stream, peer, shared, shutdown).await,
                                Err(why) => {
                                    let origin = Origin { id: shared.id, peer, info: None };
                                    tell(&shared.service, origin, notify::REFUSED, || {
                                        Notification::Refused(why)
                                    })
                                    .await;
                                }
                            }
                        });
                    }
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    // Associations in progress were told to abort; give them a moment to say so to
    // their peers, then stop them (a stuck write must not hold shutdown).
    let grace = tokio::time::sleep(SHUTDOWN_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = &mut grace => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// The acceptor's decision, with what made it reject.
fn negotiate(
    rq: &crate::pdu::AAssociateRq,
    params: &AcceptorParams,
    hooks: &mut dyn AcceptorHooks,
) -> Result<(crate::pdu::AAssociateAc, Negotiated), (crate::pdu::AAssociateRj, String)> {
    negotiation::accept(rq, params, hooks)
        .map_err(|rj| (rj, negotiation::rejection_cause(rq, params, &rj)))
}

fn congested() -> (crate::pdu::AAssociateRj, String) {
    (
        negotiation::reject_congestion(),
        "no negotiation slot (the server is overloaded)".to_owned(),
    )
}

/// Negotiations whose hooks may block (Python) running at once, at most: a burst of
/// A-ASSOCIATE-RQs waits for them instead of taking a thread each.
const NEGOTIATIONS_AT_ONCE: usize = 4;

/// What one association's task shares with the server.
struct Shared {
    id: u64,
    config: Arc<ServerConfig>,
    service: Arc<dyn Service>,
    /// Association slots (`max_associations`).
    permits: Arc<Semaphore>,
    /// Blocking negotiations ([`NEGOTIATIONS_AT_ONCE`]).
    negotiations: Arc<Semaphore>,
    /// Associations per client address (`max_associations_per_peer`).
    peers: Arc<PeerCounts>,
}

/// How long a shutting-down server waits for its associations to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Events waiting for the association's handler, at most.
const EVENT_QUEUE: usize = 8;
/// Requests waiting while a handler runs, at most, by default.
pub const DEFAULT_MAX_QUEUED: usize = 16;
/// Command Field of C-CANCEL-RQ (PS3.7 E.1).
const C_CANCEL_RQ: u16 = 0x0FFF;

/// Command Field of C-GET-RQ: its handler sends C-STORE sub-operations on this
/// association and reads their responses, so it runs alone (PS3.4 C.4.3).
const C_GET_RQ: u16 = 0x0010;
/// Operations performed at once on one association, at most, whatever the window.
const MAX_PERFORMED: usize = 64;

/// Whether a Command Field is a DIMSE request this server performs (PS3.7 E.1;
/// C-CANCEL-RQ is handled apart).
fn is_request(field: Option<u16>) -> bool {
    matches!(
        field,
        Some(
            0x0001
                | 0x0010
                | 0x0020
                | 0x0021
                | 0x0030
                | 0x0100
                | 0x0110
                | 0x0120
                | 0x0130
                | 0x0140
                | 0x0150
        )
    )
}

/// A handler at work on one request.
struct Running {
    cancelled: Arc<AtomicBool>,
    replies: mpsc::Sender<ReceivedMessage>,
    /// A C-GET: nothing else runs beside it.
    exclusive: bool,
}

/// How many operations may be performed at once on an association: the number the
/// requestor may invoke asynchronously (PS3.7 D.3.3.3; 1 without the window item).
fn performed_window(info: &AssociationInfo) -> usize {
    match info.negotiated.async_ops.0 {
        0 => MAX_PERFORMED,
        n => usize::from(n).min(MAX_PERFORMED),
    }
}

async fn send_response(
    req_tx: &mpsc::Sender<Request>,
    service: &Arc<dyn Service>,
    origin: Origin<'_>,
    response: Response,
) -> Result<(), mpsc::error::SendError<Request>> {
    tell(service, origin, notify::DIMSE_SENT, || {
        Notification::DimseSent {
            context_id: response.context_id,
            command: response.command.clone(),
        }
    })
    .await;
    let (done, _ignored) = tokio::sync::oneshot::channel();
    req_tx
        .send(Request::Send {
            context_id: response.context_id,
            command: response.command,
            dataset: response.dataset,
            done,
        })
        .await
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    shared: Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let Shared {
        id,
        config,
        service,
        permits,
        negotiations,
        peers,
    } = shared;
    // Held for the association's life: dropping it gives the address's slot back.
    let mut _peer_slot: Option<PeerSlot> = None;
    let max_queued = config.max_queued_requests.max(1);
    // The association slot is taken when the A-ASSOCIATE-RQ arrives, not when the TCP
    // connection does: a connection that never sends one (a port scan, a health check)
    // is bounded by ARTIM and must not lock real peers out.
    let mut permit = None;
    let now = Instant::now();
    let mut assoc = Association::acceptor(
        config.timeouts,
        config.acceptor.max_pdu_length,
        config.limits,
        now,
    );
    assoc.observe_pdus(service.notifications() & (notify::PDU_RECV | notify::PDU_SENT) != 0);
    let bare = Origin {
        id,
        peer,
        info: None,
    };
    tell(&service, bare, notify::CONN_OPEN, || Notification::ConnOpen).await;
    let (req_tx, req_rx) = mpsc::channel(EVENT_QUEUE);
    let (ev_tx, mut ev_rx) = mpsc::channel(EVENT_QUEUE);
    let driver = tokio::spawn(driver::run(
        stream,
        assoc,
        req_rx,
        ev_tx,
        config.network_timeout,
    ));
    let mut info: Option<AssociationInfo> = None;
    let mut how = "closed";
    let mut watching = true;
    // Requests wait here until a handler may start: one at a time per association, or
    // up to the asynchronous operations window the requestor negotiated (PS3.7
    // D.3.3.3); at most max_queued wait, beyond which the association's events (and so
    // its socket) are not read.
    let mut queue: VecDeque<ReceivedMessage> = VecDeque::new();
    let mut cancelled_ids: HashSet<u16> = HashSet::new();
    let mut running: HashMap<u16, Running> = HashMap::new();
    let mut tasks: tokio::task::JoinSet<(u16, Vec<Response>)> = tokio::task::JoinSet::new();
    let mut task_ids: HashMap<tokio::task::Id, u16> = HashMap::new();
    let (resp_tx, mut resp_rx) = mpsc::channel::<Response>(EVENT_QUEUE);
    let mut streamed: Option<Streamed> = None;
    // The peer asked to release while requests were in progress: answer when they are done.
    let mut release_pending = false;
    loop {
        while let (Some(message), Some(assoc)) = (queue.front(), info.as_ref()) {
            let id = message.command.get_us(tags::MESSAGE_ID).unwrap_or(0);
            let exclusive = message.command.command_field() == Some(C_GET_RQ);
            let room = running.len() < performed_window(assoc)
                && !running.values().any(|r| r.exclusive)
                && (running.is_empty() || !exclusive)
                // Message IDs tell responses apart: a second request with the ID of one
                // in progress waits for it (PS3.7 9.1.1.1 wants them unique).
                && !running.contains_key(&id);
            if !room {
                break;
            }
            let Some(message) = queue.pop_front() else {
                break;
            };
            let (responder, cancelled, reply_tx) =
                responder_for(&resp_tx, cancelled_ids.remove(&id));
            if running.is_empty() {
                // The peer waits for our answer: its silence meanwhile is no idleness.
                let _ = req_tx.send(Request::Hold(true)).await;
            }
            let work = service.handle(assoc, message, responder);
            let task = tasks.spawn(async move { (id, work.await) });
            task_ids.insert(task.id(), id);
            running.insert(
                id,
                Running {
                    cancelled,
                    replies: reply_tx,
                    exclusive,
                },
            );
        }
        let finished = async {
            if tasks.is_empty() {
                std::future::pending::<(Option<tokio::task::Id>, Vec<Response>)>().await
            } else {
                match tasks.join_next_with_id().await {
                    Some(Ok((task, (_, finals)))) => (Some(task), finals),
                    // A handler that panicked answers nothing; its slot is freed.
                    Some(Err(e)) => (Some(e.id()), Vec::new()),
                    None => (None, Vec::new()),
                }
            }
        };
        tokio::select! {
            Some(response) = resp_rx.recv() => {
                if send_response(&req_tx, &service, Origin { id, peer, info: info.as_ref() }, response).await.is_err() {
                    break;
                }
            }
            (done, finals) = finished => {
                if let Some(id) = done.and_then(|task| task_ids.remove(&task)) {
                    running.remove(&id);
                }
                // Streamed responses the handler sent just before it returned come first.
                while let Ok(response) = resp_rx.try_recv() {
                    let _ = send_response(&req_tx, &service, Origin { id, peer, info: info.as_ref() }, response).await;
                }
                for response in finals {
                    let _ = send_response(&req_tx, &service, Origin { id, peer, info: info.as_ref() }, response).await;
                }
                if queue.is_empty() && running.is_empty() {
                    let _ = req_tx.send(Request::Hold(false)).await;
                    if std::mem::take(&mut release_pending) {
                        // The slots go back before the peer can see the A-RELEASE-RP: a
                        // client that associates again at once must find them free.
                        (permit, _peer_slot) = (None, None);
                        let _ = req_tx.send(Request::ReleaseResponse { done: None }).await;
                    }
                }
            }
            event = ev_rx.recv(), if queue.len() < max_queued => {
                let Some(event) = event else { break };
                match event {
                    AssociationEvent::Requested(rq) => {
                        tell(&service, bare, notify::REQUESTED, || {
                            Notification::Requested(rq.clone())
                        })
                        .await;
                        let refused = if *shutdown.borrow() {
                            // Shutting down: transient, so that the peer tries again later.
                            Some((negotiation::reject_congestion(), "the server is shutting down".to_owned()))
                        } else if !config.allowed_networks.is_empty()
                            && !config.allowed_networks.iter().any(|n| n.contains(peer.ip()))
                        {
                            Some((
                                negotiation::reject_not_allowed(),
                                format!("{} is in none of the allowed networks", peer.ip()),
                            ))
                        } else {
                            permit = permits.clone().try_acquire_owned().ok();
                            if permit.is_none() {
                                Some((
                                    negotiation::reject_local_limit(),
                                    format!("{} associations already (the maximum)", config.max_associations),
                                ))
                            } else if config.max_associations_per_peer > 0 {
                                _peer_slot = peers.take(peer.ip(), config.max_associations_per_peer);
                                _peer_slot.is_none().then(|| (
                                    negotiation::reject_local_limit(),
                                    format!(
                                        "{} holds {} associations already (the maximum per client address)",
                                        peer.ip(),
                                        config.max_associations_per_peer
                                    ),
                                ))
                            } else {
                                None
                            }
                        };
                        let verdict = if let Some(refused) = refused {
                            Err(refused)
                        } else if service.negotiation_blocks() {
                            // The hooks may call into Python (EVT_USER_ID ...): never on an
                            // I/O thread, so the negotiation runs on the blocking pool, a
                            // few at a time (a burst of requests waits, takes no threads).
                            let mut hooks = service.hooks(peer);
                            let config = config.clone();
                            match negotiations.clone().acquire_owned().await {
                                Ok(_slot) => {
                                    let (tx, rx) = tokio::sync::oneshot::channel();
                                    service
                                        .run_blocking(Box::new(move || {
                                            let _ = tx.send(negotiate(
                                                &rq,
                                                &config.acceptor,
                                                hooks.as_mut(),
                                            ));
                                        }))
                                        .await;
                                    rx.await.unwrap_or_else(|_| Err(congested()))
                                }
                                Err(_) => Err(congested()),
                            }
                        } else {
                            let mut hooks = service.hooks(peer);
                            negotiate(&rq, &config.acceptor, hooks.as_mut())
                        };
                        let request = match verdict {
                            Ok((ac, negotiated)) => {
                                info = Some(AssociationInfo {
                                    id,
                                    peer,
                                    negotiated: Arc::new(negotiated.clone()),
                                });
                                let origin = Origin { id, peer, info: info.as_ref() };
                                tell(&service, origin, notify::ACCEPTED, || {
                                    Notification::Accepted(Box::new(ac.clone()))
                                })
                                .await;
                                Request::Accept {
                                    ac,
                                    negotiated: Box::new(negotiated),
                                }
                            }
                            Err((rj, why)) => {
                                tell(&service, bare, notify::REJECTED, || {
                                    Notification::Rejected { rj, why }
                                })
                                .await;
                                how = "rejected";
                                permit = None;
                                _peer_slot = None;
                                Request::Reject(rj)
                            }
                        };
                        if req_tx.send(request).await.is_err() {
                            break;
                        }
                    }
                    AssociationEvent::Message(message) => {
                        let origin = Origin { id, peer, info: info.as_ref() };
                        tell(&service, origin, notify::DIMSE_RECV, || Notification::DimseRecv {
                            context_id: message.context_id,
                            command: Bytes::from(message.command.encode()),
                        })
                        .await;
                        if message.command.command_field() == Some(C_CANCEL_RQ) {
                            // PS3.7 9.3.2.3: a C-CANCEL-RQ has no response; it flags the
                            // request it names, running or still waiting.
                            let target = message
                                .command
                                .get_us(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                                .unwrap_or(0);
                            // One for no request of ours is ignored: remembering it would
                            // cancel a later request that reuses the ID.
                            match running.get(&target) {
                                Some(r) => r.cancelled.store(true, Ordering::Relaxed),
                                None if queue.iter().any(|m| {
                                    m.command.get_us(tags::MESSAGE_ID) == Some(target)
                                }) => {
                                    cancelled_ids.insert(target);
                                }
                                None => {}
                            }
                        } else if message.command.command_field().is_some_and(|f| f & 0x8000 != 0) {
                            // A response: to a request the running handler made (a C-GET's
                            // C-STORE sub-operation). Without one it answers nothing.
                            // try_send: a peer sending responses nobody asked for must not
                            // block this loop; beyond the queue they are dropped.
                            if let Some(r) = running.values().find(|r| r.exclusive) {
                                let _ = r.replies.try_send(message);
                            }
                        } else if is_request(message.command.command_field()) {
                            queue.push_back(message);
                        } else {
                            // Nothing can answer it (no response type to use), and the
                            // peer would wait for one: end the association instead.
                            how = "aborted: the peer sent a command that is no DIMSE request";
                            let _ = req_tx.send(Request::Abort { done: None }).await;
                        }
                    }
                    AssociationEvent::DataSetStarted { context_id, command, head } => {
                        let origin = Origin { id, peer, info: info.as_ref() };
                        tell(&service, origin, notify::DIMSE_RECV, || Notification::DimseRecv {
                            context_id,
                            command: Bytes::from(command.encode()),
                        })
                        .await;
                        let is_request = command.command_field().is_some_and(|f| f & 0x8000 == 0);
                        let sink = info
                            .as_ref()
                            .filter(|_| is_request)
                            .and_then(|assoc| service.stream(assoc, context_id, &command, &head));
                        streamed = Some(match sink {
                            Some(mut sink) => {
                                for part in head.parts() {
                                    sink.write(part.clone()).await;
                                }
                                Streamed::Sink {
                                    sink,
                                    message_id: command.get_us(tags::MESSAGE_ID).unwrap_or(0),
                                }
                            }
                            None => Streamed::Held {
                                context_id,
                                command,
                                held: head.len(),
                                parts: head.parts().to_vec(),
                            },
                        });
                    }
                    AssociationEvent::DataSetPart { data, last } => {
                        match streamed.as_mut() {
                            Some(Streamed::Sink { sink, .. }) => sink.write(data).await,
                            Some(Streamed::Held { parts, held, .. }) => {
                                *held += data.len();
                                parts.push(data);
                                // Held whole, it is bounded as an assembled one is.
                                if *held > config.limits.max_dataset_length {
                                    streamed = None;
                                    how = "aborted: a data set longer than the maximum data set size";
                                    let _ = req_tx.send(Request::Abort { done: None }).await;
                                    continue;
                                }
                            }
                            None => {}
                        }
                        if last {
                            match streamed.take() {
                                Some(Streamed::Sink { sink, message_id }) => {
                                    let (responder, cancelled, reply_tx) = responder_for(
                                        &resp_tx,
                                        cancelled_ids.remove(&message_id),
                                    );
                                    if running.is_empty() {
                                        let _ = req_tx.send(Request::Hold(true)).await;
                                    }
                                    let work = sink.finish(responder);
                                    let task = tasks.spawn(async move { (message_id, work.await) });
                                    task_ids.insert(task.id(), message_id);
                                    running.insert(
                                        message_id,
                                        Running { cancelled, replies: reply_tx, exclusive: false },
                                    );
                                }
                                Some(Streamed::Held { context_id, command, parts, .. }) => {
                                    let message = ReceivedMessage {
                                        context_id,
                                        command,
                                        dataset: Some(Payload::from_parts(parts)),
                                    };
                                    if message.command.command_field().is_some_and(|f| f & 0x8000 != 0) {
                                        // A (large) response to the running C-GET's request.
                                        if let Some(r) = running.values().find(|r| r.exclusive) {
                                            let _ = r.replies.try_send(message);
                                        }
                                    } else if is_request(message.command.command_field()) {
                                        queue.push_back(message);
                                    } else {
                                        how = "aborted: the peer sent a command that is no DIMSE request";
                                        let _ = req_tx.send(Request::Abort { done: None }).await;
                                    }
                                }
                                None => {}
                            }
                        }
                    }
                    AssociationEvent::ReleaseRequested => {
                        how = "released";
                        // PS3.8 7.2.2: the requests that came before the A-RELEASE-RQ are
                        // still answered (P-DATA in Sta8, AR-7); the A-RELEASE-RP follows
                        // their last response.
                        if queue.is_empty() && running.is_empty() {
                            // The slots go back before the peer can see the A-RELEASE-RP: a
                            // client that associates again at once must find them free.
                            (permit, _peer_slot) = (None, None);
                            let _ = req_tx.send(Request::ReleaseResponse { done: None }).await;
                        } else {
                            release_pending = true;
                        }
                    }
                    AssociationEvent::Released => how = "released",
                    AssociationEvent::Aborted(_) => how = "aborted by the peer",
                    AssociationEvent::ProviderAborted(_) | AssociationEvent::TimedOut(_) => {
                        how = "aborted"
                    }
                    AssociationEvent::Established(_) => {
                        let origin = Origin { id, peer, info: info.as_ref() };
                        tell(&service, origin, notify::ESTABLISHED, || Notification::Established)
                            .await;
                    }
                    AssociationEvent::Pdu(note) => {
                        let origin = Origin { id, peer, info: info.as_ref() };
                        let bit = if note.sent { notify::PDU_SENT } else { notify::PDU_RECV };
                        tell(&service, origin, bit, || Notification::Pdu(note)).await;
                    }
                    AssociationEvent::Rejected(_) => {}
                }
            }
            _ = shutdown.changed(), if watching => {
                // Graceful shutdown (or the server handle dropped): abort what is in
                // progress, then keep driving it to its close.
                watching = false;
                let _ = req_tx.send(Request::Abort { done: None }).await;
                how = "aborted by server shutdown";
            }
        }
    }
    drop(req_tx);
    let _ = driver.await;
    drop(permit);
    let origin = Origin {
        id,
        peer,
        info: info.as_ref(),
    };
    if info.is_some() {
        if how == "released" {
            tell(&service, origin, notify::RELEASED, || {
                Notification::Released
            })
            .await;
        } else if how.starts_with("aborted") || how == "closed" {
            let why = how.to_owned();
            tell(&service, origin, notify::ABORTED, || {
                Notification::Aborted(why)
            })
            .await;
        }
    }
    tell(&service, origin, notify::CONN_CLOSE, || {
        Notification::ConnClose
    })
    .await;
    if let Some(assoc) = info.as_ref() {
        service.closed(assoc, how);
    }
}
