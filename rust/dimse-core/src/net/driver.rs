//! The loop shared by both roles: write what the association queued, deliver its events,
//! then wait for bytes, a request from the user, or the next deadline.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::association::{Association, AssociationError, AssociationEvent, Transmit};

/// A request from the user of an association to its task.
#[derive(Debug)]
pub(crate) enum Request {
    Send {
        context_id: u8,
        command: bytes::Bytes,
        dataset: Option<bytes::Bytes>,
        done: oneshot::Sender<Result<(), AssociationError>>,
    },
    /// One part of a data set sent in parts, after its command set.
    SendPart {
        context_id: u8,
        data: bytes::Bytes,
        last: bool,
        done: oneshot::Sender<Result<(), AssociationError>>,
    },
    Release {
        done: oneshot::Sender<Result<(), AssociationError>>,
    },
    /// Answer the peer's release request; `done` fires once the A-RELEASE-RP is written.
    ReleaseResponse {
        done: Option<oneshot::Sender<()>>,
    },
    /// Abort; `done` fires once the A-ABORT is written (or could not be).
    Abort {
        done: Option<oneshot::Sender<()>>,
    },
    /// While held, the network timeout does not run: the user owes the peer a response
    /// (a handler at work), so silence from the peer is expected.
    Hold(bool),
    Accept {
        ac: crate::pdu::AAssociateAc,
        negotiated: Box<crate::negotiation::Negotiated>,
    },
    Reject(crate::pdu::AAssociateRj),
}

/// Largest read issued at once: bounds the memory one association can make us hold
/// beyond the PDU being assembled.
const READ_CHUNK: usize = 256 * 1024;

/// How long one write may make no progress when no network timeout is set: a peer that
/// stops reading must not pin the association (and its timers) forever.
const DEFAULT_WRITE_STALL: Duration = Duration::from_secs(60);

/// Writes everything the association queued, one vectored write per fragment; each
/// write must make progress within `stall`.
pub(crate) async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    assoc: &mut Association,
    stall: Duration,
) -> std::io::Result<()> {
    let timed = |e: tokio::time::error::Elapsed| -> std::io::Error {
        let _ = e;
        std::io::ErrorKind::TimedOut.into()
    };
    let mut wrote = false;
    while let Some(t) = assoc.poll_transmit() {
        wrote = true;
        match t {
            Transmit::Pdu(b) => tokio::time::timeout(stall, stream.write_all(&b))
                .await
                .map_err(timed)??,
            Transmit::Fragment(f) => {
                let mut header: &[u8] = &f.header;
                let mut data: &[u8] = &f.data;
                while !header.is_empty() || !data.is_empty() {
                    let n = tokio::time::timeout(
                        stall,
                        stream.write_vectored(&[IoSlice::new(header), IoSlice::new(data)]),
                    )
                    .await
                    .map_err(timed)??;
                    if n == 0 {
                        return Err(std::io::ErrorKind::WriteZero.into());
                    }
                    let from_header = n.min(header.len());
                    header = &header[from_header..];
                    data = &data[n - from_header..];
                }
            }
        }
    }
    if wrote {
        // A TLS stream may hold records until flushed; on TCP this is a no-op.
        tokio::time::timeout(stall, stream.flush())
            .await
            .map_err(timed)??;
    }
    Ok(())
}

/// How an association's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Closed,
}

/// Runs the association until its transport closes. Events go to `events`: while the
/// user has not taken them, the socket is not read (back-pressure), but requests (an
/// abort, a response to send) are still served, so neither side can wait on the other.
/// `idle` aborts the association when nothing is exchanged for that long (not counted
/// while the user holds it, i.e. owes the peer a response); it also bounds how long one
/// write may make no progress (a peer that stops reading cannot pin us).
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut assoc: Association,
    mut requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<AssociationEvent>,
    idle: Option<Duration>,
) -> End {
    let stall = idle.unwrap_or(DEFAULT_WRITE_STALL);
    let mut last_activity = Instant::now();
    let mut held = false;
    let mut requests_open = true;
    let mut pending: VecDeque<AssociationEvent> = VecDeque::new();
    let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
    let mut user_gone = false;
    loop {
        if flush(&mut stream, &mut assoc, stall).await.is_err() {
            assoc.transport_closed(Instant::now());
        }
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
        while let Some(event) = assoc.poll_event() {
            if !user_gone {
                pending.push_back(event);
            }
        }
        if assoc.wants_close() {
            if assoc.has_transmit() {
                let _ = flush(&mut stream, &mut assoc, stall).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
            // Deliver what is left (the user may be waiting for a final event) from a
            // task of its own: the socket is closed already, and a user that never
            // reads again must not hold this one.
            if !pending.is_empty() {
                tokio::spawn(async move {
                    for event in pending {
                        if events.send(event).await.is_err() {
                            break;
                        }
                    }
                });
            }
            return End::Closed;
        }
        let idle_deadline = idle.filter(|_| !held).map(|d| last_activity + d);
        let deadline = [assoc.deadline(), idle_deadline]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let hint = assoc.read_hint().clamp(1, READ_CHUNK);
        let can_read = pending.is_empty();
        let buf = assoc.read_buffer();
        if can_read {
            buf.reserve(hint);
        }
        tokio::select! {
            // Requests first: a request that waited while nothing polled this task (a
            // requestor's runtime runs only during calls) must not lose to a timer that
            // expired meanwhile.
            biased;
            request = requests.recv(), if requests_open => {
                let now = Instant::now();
                match request {
                    Some(Request::Send { context_id, command, dataset, done }) => {
                        last_activity = now;
                        let _ = done.send(assoc.send_message(context_id, command, dataset, now));
                    }
                    Some(Request::SendPart { context_id, data, last, done }) => {
                        last_activity = now;
                        let _ = done.send(assoc.send_dataset_part(context_id, data, last, now));
                    }
                    Some(Request::Release { done }) => {
                        last_activity = now;
                        let _ = done.send(assoc.release(now));
                    }
                    Some(Request::ReleaseResponse { done }) => {
                        let _ = assoc.release_response(now);
                        flushed.extend(done);
                    }
                    Some(Request::Abort { done }) => {
                        assoc.abort(now);
                        flushed.extend(done);
                    }
                    Some(Request::Hold(on)) => {
                        held = on;
                        last_activity = now;
                    }
                    Some(Request::Accept { ac, negotiated }) => {
                        let _ = assoc.accept(ac, *negotiated, now);
                    }
                    Some(Request::Reject(rj)) => {
                        let _ = assoc.reject(rj, now);
                    }
                    None => {
                        // The user dropped its handle without releasing: abort, as
                        // pynetdicom does for an association it garbage-collects.
                        requests_open = false;
                        if assoc.is_established() {
                            assoc.abort(now);
                        }
                    }
                }
            }
            read = stream.read_buf(buf), if can_read => {
                let now = Instant::now();
                match read {
                    Ok(0) => assoc.transport_closed(now),
                    Err(e) => assoc.transport_failed(describe_read_error(&e), now),
                    Ok(_) => {
                        last_activity = now;
                        assoc.process_received(now);
                    }
                }
            }
            permit = events.reserve(), if !pending.is_empty() => {
                match permit {
                    Ok(permit) => {
                        if let Some(event) = pending.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => {
                        // The user went away: drop its events, keep driving to a close.
                        user_gone = true;
                        pending.clear();
                    }
                }
            }
            () = sleep => {
                let now = Instant::now();
                if assoc.deadline().is_some_and(|d| now >= d) {
                    assoc.handle_timeout(now);
                } else if idle_deadline.is_some_and(|d| now >= d) {
                    last_activity = now;
                    assoc.idle_timeout(now);
                }
            }
        }
    }
}

/// A read error as the reason an association ended: a TLS alert from the peer (our
/// certificate refused, say) is worth more than "connection closed".
fn describe_read_error(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
    {
        Some(tls) => format!("TLS: {tls}"),
        None => format!("the connection failed: {e}"),
    }
}
