//! The requestor side: connect, negotiate, then exchange messages through a [`Client`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::driver::{self, Request};
use crate::association::{Association, AssociationError, AssociationEvent, Limits};
use crate::negotiation::Negotiated;
use crate::pdu::{AAssociateRj, AAssociateRq};
use crate::ul::Timeouts;

/// Settings of one requestor association.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long to wait for the TCP connection (None: as long as the OS tries).
    pub connect_timeout: Option<Duration>,
    /// ARTIM, and the ACSE wait for the A-ASSOCIATE-AC and A-RELEASE-RP.
    pub timeouts: Timeouts,
    /// Abort when nothing arrives for this long (None: never).
    pub network_timeout: Option<Duration>,
    pub limits: Limits,
    /// TLS over the TCP connection (None: plain TCP).
    pub tls: Option<super::tls::Connector>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Some(Duration::from_secs(30)),
            timeouts: Timeouts::default(),
            network_timeout: None,
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// Why an association could not be established.
#[derive(Debug, thiserror::Error)]
pub enum AssociateError {
    #[error("could not connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("no TCP connection to {addr} within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("association rejected: {0:?}")]
    Rejected(AAssociateRj),
    #[error("association aborted during negotiation: {0}")]
    Aborted(String),
    #[error("{0}")]
    TimedOut(String),
    #[error("TLS with {addr} failed: {detail}")]
    Tls { addr: String, detail: String },
}

/// Why an established association failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Invalid(#[from] AssociationError),
    #[error("the association is closed")]
    Closed,
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    AcseTimeout(String),
    #[error("the association ended: {0}")]
    Ended(String),
    /// A streamed data set could not be read; the association was aborted.
    #[error("could not read the data set to send: {0}")]
    Source(String),
}

/// An established association, as seen by its user. Cloneable handles are not offered:
/// one user drives one association, and dropping it aborts an association left open.
#[derive(Debug)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    events: Mutex<mpsc::Receiver<AssociationEvent>>,
    negotiated: Negotiated,
    peer: SocketAddr,
}

/// Events waiting for the user, at most: the bound is what makes a fast peer wait.
const EVENT_QUEUE: usize = 16;

/// Bytes read from a streamed data set at once (see [`Client::send_stream`]).
pub const STREAM_CHUNK: usize = 1024 * 1024;

/// Connects to `addr` and negotiates `rq`. Established or not, the TCP connection is closed
/// when this fails.
pub async fn associate(
    addr: &str,
    rq: AAssociateRq,
    config: ClientConfig,
) -> Result<Client, AssociateError> {
    let connect = async {
        match config.connect_timeout {
            Some(t) => tokio::time::timeout(t, TcpStream::connect(addr)).await,
            None => Ok(TcpStream::connect(addr).await),
        }
    };
    let stream = match connect.await {
        Err(_) => {
            return Err(AssociateError::ConnectTimeout {
                addr: addr.to_owned(),
                timeout: config.connect_timeout.unwrap_or_default(),
            })
        }
        Ok(Err(source)) => {
            return Err(AssociateError::Connect {
                addr: addr.to_owned(),
                source,
            })
        }
        Ok(Ok(s)) => s,
    };
    // Without TCP_NODELAY every small PDU waits on Nagle and delayed ACKs (~40 ms).
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map_err(|source| AssociateError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let (req_tx, req_rx) = mpsc::channel(4);
    let (ev_tx, mut ev_rx) = mpsc::channel(EVENT_QUEUE);
    match &config.tls {
        None => start(stream, rq, &config, req_rx, ev_tx),
        Some(tls) => {
            let stream = tls
                .connect(addr, stream, config.timeouts.acse)
                .await
                .map_err(|detail| AssociateError::Tls {
                    addr: addr.to_owned(),
                    detail,
                })?;
            start(stream, rq, &config, req_rx, ev_tx);
        }
    }
    match ev_rx.recv().await {
        Some(AssociationEvent::Established(negotiated)) => Ok(Client {
            requests: req_tx,
            events: Mutex::new(ev_rx),
            negotiated: *negotiated,
            peer,
        }),
        Some(AssociationEvent::Rejected(rj)) => Err(AssociateError::Rejected(rj)),
        Some(AssociationEvent::Aborted(a)) => Err(AssociateError::Aborted(format!(
            "the peer sent A-ABORT (source {:?}, reason {:?})",
            a.source, a.reason
        ))),
        Some(AssociationEvent::ProviderAborted(why)) => Err(AssociateError::Aborted(why)),
        Some(AssociationEvent::TimedOut(why)) => Err(AssociateError::TimedOut(why)),
        Some(other) => Err(AssociateError::Aborted(format!(
            "unexpected event during negotiation: {other:?}"
        ))),
        None => Err(AssociateError::Aborted(
            "the connection closed during negotiation".to_owned(),
        )),
    }
}

/// Starts the requestor's association on its connected transport (Evt2): its task sends
/// the A-ASSOCIATE-RQ and then serves the channels.
fn start<S>(
    stream: S,
    rq: AAssociateRq,
    config: &ClientConfig,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<AssociationEvent>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let now = Instant::now();
    let mut assoc = Association::requestor(rq, config.timeouts, config.limits, now);
    assoc.transport_connected(now);
    tokio::spawn(driver::run(
        stream,
        assoc,
        requests,
        events,
        config.network_timeout,
    ));
}

impl Client {
    /// What was negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    async fn request(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), AssociationError>>) -> Request,
    ) -> Result<(), LinkError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| LinkError::Closed)?;
        rx.await
            .map_err(|_| LinkError::Closed)?
            .map_err(LinkError::from)
    }

    /// Queues one message for sending (command set and data set bytes).
    pub async fn send(
        &self,
        context_id: u8,
        command: Bytes,
        dataset: Option<Bytes>,
    ) -> Result<(), LinkError> {
        self.request(|done| Request::Send {
            context_id,
            command,
            dataset,
            done,
        })
        .await
    }

    /// Sends one message whose data set is read from `source` as it goes (a file after
    /// its File Meta Information): at most a few chunks of about `STREAM_CHUNK` bytes
    /// are held at once, whatever the data set's size. Returns the data set's length.
    /// When `source` fails mid-way the message cannot be completed: the association is
    /// aborted and the error says why.
    pub async fn send_stream<R>(
        &self,
        context_id: u8,
        command: Bytes,
        mut source: R,
    ) -> Result<u64, LinkError>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        // Whole fragments per chunk, so that only the message's last PDU is short.
        let fragment =
            crate::message::fragment::Fragmenter::new(self.negotiated.peer_max_pdu_length)
                .max_fragment();
        let chunk_len = (STREAM_CHUNK / fragment).max(1) * fragment;
        let failed = |e: std::io::Error| LinkError::Source(e.to_string());
        // Read ahead one chunk: a part is the last when the next one is empty.
        let mut current = read_chunk(&mut source, chunk_len).await.map_err(failed)?;
        self.send(context_id, command, None).await?;
        let mut total = 0u64;
        loop {
            let next = if current.len() < chunk_len {
                Bytes::new()
            } else {
                match read_chunk(&mut source, chunk_len).await {
                    Ok(b) => b,
                    Err(e) => {
                        self.abort().await;
                        return Err(failed(e));
                    }
                }
            };
            let last = next.is_empty();
            total += current.len() as u64;
            let data = std::mem::replace(&mut current, next);
            self.request(|done| Request::SendPart {
                context_id,
                data,
                last,
                done,
            })
            .await?;
            if last {
                return Ok(total);
            }
        }
    }

    /// The next event (a message, a release request, an abort), waiting at most `timeout`.
    pub async fn next_event(
        &self,
        timeout: Option<Duration>,
    ) -> Result<AssociationEvent, LinkError> {
        let mut events = self.events.lock().await;
        let next = match timeout {
            Some(t) => tokio::time::timeout(t, events.recv())
                .await
                .map_err(|_| LinkError::Timeout(t))?,
            None => events.recv().await,
        };
        next.ok_or(LinkError::Closed)
    }

    /// Answers the peer's release request; returns once the A-RELEASE-RP is written.
    pub async fn release_response(&self) -> Result<(), LinkError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::ReleaseResponse { done: Some(tx) })
            .await
            .map_err(|_| LinkError::Closed)?;
        let _ = rx.await;
        Ok(())
    }

    /// Releases the association and waits for the peer's A-RELEASE-RP (bounded by the
    /// ACSE timeout in the state machine; `timeout` is a backstop beyond it). Messages
    /// that arrive meanwhile are dropped. A release the peer asked for first (its
    /// A-RELEASE-RQ already read) is answered instead.
    pub async fn release(&self, timeout: Duration) -> Result<(), LinkError> {
        match self.request(|done| Request::Release { done }).await {
            Ok(()) => {}
            Err(LinkError::Invalid(AssociationError::InvalidState { .. })) => {
                // Not in Sta6: the peer's A-RELEASE-RQ is probably waiting among the
                // events; answer it (PS3.8 AR-2, AR-4).
                return self.answer_pending_release(timeout).await;
            }
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(Some(left)).await? {
                AssociationEvent::Released => return Ok(()),
                // Release collision: answer it (PS3.8 Sta9/Sta12 paths).
                AssociationEvent::ReleaseRequested => self.release_response().await?,
                AssociationEvent::TimedOut(why) => return Err(LinkError::AcseTimeout(why)),
                AssociationEvent::Aborted(a) => {
                    return Err(LinkError::Ended(format!(
                        "the peer sent A-ABORT (source {:?}, reason {:?})",
                        a.source, a.reason
                    )))
                }
                AssociationEvent::ProviderAborted(why) => return Err(LinkError::Ended(why)),
                _ => {}
            }
        }
    }

    async fn answer_pending_release(&self, timeout: Duration) -> Result<(), LinkError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(Some(left)).await? {
                AssociationEvent::ReleaseRequested => return self.release_response().await,
                AssociationEvent::Released => return Ok(()),
                AssociationEvent::Aborted(_) | AssociationEvent::ProviderAborted(_) => {
                    return Err(LinkError::Closed)
                }
                _ => {}
            }
        }
    }

    /// Aborts the association (A-ABORT, service-user source); returns once it is written
    /// (or could not be).
    pub async fn abort(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .requests
            .send(Request::Abort { done: Some(tx) })
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

/// Reads up to `len` bytes (fewer only at the end of `source`).
async fn read_chunk<R: tokio::io::AsyncRead + Unpin>(
    source: &mut R,
    len: usize,
) -> std::io::Result<Bytes> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(len);
    source.take(len as u64).read_to_end(&mut buf).await?;
    Ok(Bytes::from(buf))
}
