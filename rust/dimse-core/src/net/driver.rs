//! The loop shared by both roles: write what the association queued, deliver its events,
//! then wait for bytes, a request from the user, or the next deadline.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
    Release {
        done: oneshot::Sender<Result<(), AssociationError>>,
    },
    ReleaseResponse,
    Abort,
    Accept {
        ac: crate::pdu::AAssociateAc,
        negotiated: Box<crate::negotiation::Negotiated>,
    },
    Reject(crate::pdu::AAssociateRj),
}

/// Largest read issued at once: bounds the memory one association can make us hold
/// beyond the PDU being assembled.
const READ_CHUNK: usize = 256 * 1024;

/// Writes everything the association queued, one vectored write per fragment.
pub(crate) async fn flush(stream: &mut TcpStream, assoc: &mut Association) -> std::io::Result<()> {
    while let Some(t) = assoc.poll_transmit() {
        match t {
            Transmit::Pdu(b) => stream.write_all(&b).await?,
            Transmit::Fragment(f) => {
                let mut header: &[u8] = &f.header;
                let mut data: &[u8] = &f.data;
                while !header.is_empty() || !data.is_empty() {
                    let n = stream
                        .write_vectored(&[IoSlice::new(header), IoSlice::new(data)])
                        .await?;
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
/// `idle` closes the association with an A-ABORT when nothing arrives for that long.
pub(crate) async fn run(
    mut stream: TcpStream,
    mut assoc: Association,
    mut requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<AssociationEvent>,
    idle: Option<Duration>,
) -> End {
    let mut last_activity = Instant::now();
    let mut requests_open = true;
    let mut pending: VecDeque<AssociationEvent> = VecDeque::new();
    let mut user_gone = false;
    loop {
        if flush(&mut stream, &mut assoc).await.is_err() {
            assoc.transport_closed(Instant::now());
        }
        while let Some(event) = assoc.poll_event() {
            if !user_gone {
                pending.push_back(event);
            }
        }
        if assoc.wants_close() {
            if assoc.has_transmit() {
                let _ = flush(&mut stream, &mut assoc).await;
            }
            let _ = stream.shutdown().await;
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
        let deadline = [assoc.deadline(), idle.map(|d| last_activity + d)]
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
            read = stream.read_buf(buf), if can_read => {
                let now = Instant::now();
                match read {
                    Ok(0) | Err(_) => assoc.transport_closed(now),
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
            request = requests.recv(), if requests_open => {
                let now = Instant::now();
                match request {
                    Some(Request::Send { context_id, command, dataset, done }) => {
                        let _ = done.send(assoc.send_message(context_id, command, dataset, now));
                    }
                    Some(Request::Release { done }) => {
                        let _ = done.send(assoc.release(now));
                    }
                    Some(Request::ReleaseResponse) => {
                        let _ = assoc.release_response(now);
                    }
                    Some(Request::Abort) => assoc.abort(now),
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
            () = sleep => {
                let now = Instant::now();
                if assoc.deadline().is_some_and(|d| now >= d) {
                    assoc.handle_timeout(now);
                } else if idle.is_some_and(|d| now >= last_activity + d) {
                    last_activity = now;
                    assoc.idle_timeout(now);
                }
            }
        }
    }
}
