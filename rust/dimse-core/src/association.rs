//! One association, sans-io: the PDU codec, the PS3.8 state machine, negotiation results,
//! fragmentation and reassembly, glued together like h11's `Connection` or quinn-proto's
//! `Connection`. No socket and no clock: the driver ([`crate::net`] or a test) feeds it
//! received bytes, transport events, local requests and the current time, and carries out
//! what it asks: bytes to write ([`Association::poll_transmit`]), events for the user
//! ([`Association::poll_event`]), when to close the transport ([`Association::wants_close`])
//! and when to call back ([`Association::deadline`]).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::message::fragment::{
    Assembled, Fragmenter, MessageAssembler, PDataFragment, Payload, ReceivedMessage,
};
use crate::message::CommandSet;
use crate::negotiation::Negotiated;
use crate::pdu::{
    self, AAbort, AAssociateAc, AAssociateRj, AAssociateRq, AbortReason, AbortSource, Pdu,
    PduReader, RejectReason, RejectResult,
};
use crate::ul::{
    self, Event, Indication, Output, ProviderAbortCause, Role, State, StateMachine, Timeouts,
};

/// Something to write to the transport, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A whole encoded PDU.
    Pdu(Bytes),
    /// A P-DATA-TF PDU as a header and a slice of the caller's data set: write both with
    /// one vectored write, the data set is not copied.
    Fragment(PDataFragment),
}

impl Transmit {
    pub fn len(&self) -> usize {
        match self {
            Transmit::Pdu(b) => b.len(),
            Transmit::Fragment(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What happened, for the user of the association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssociationEvent {
    /// Acceptor: an A-ASSOCIATE-RQ arrived; answer with [`Association::accept`] or
    /// [`Association::reject`].
    Requested(Box<AAssociateRq>),
    /// The association is established (both roles).
    Established(Box<Negotiated>),
    /// Requestor: the peer rejected the association.
    Rejected(AAssociateRj),
    /// A complete DIMSE message.
    Message(ReceivedMessage),
    /// A message whose data set is longer than [`Limits::stream_threshold`]: its command
    /// and the data set's first bytes; the rest follows as [`AssociationEvent::DataSetPart`]s
    /// (as they arrive, never held whole).
    DataSetStarted {
        context_id: u8,
        command: CommandSet,
        head: Payload,
    },
    /// The next bytes of the data set being streamed; `last` ends the message.
    DataSetPart { data: Bytes, last: bool },
    /// The peer asked to release; answer with [`Association::release_response`].
    ReleaseRequested,
    /// The release completed.
    Released,
    /// The peer sent an A-ABORT.
    Aborted(AAbort),
    /// The association ended because of a protocol error or a closed transport; the text
    /// says which.
    ProviderAborted(String),
    /// The peer did not answer the A-ASSOCIATE-RQ or A-RELEASE-RQ within the ACSE timeout;
    /// we sent A-ABORT and closed.
    TimedOut(String),
    /// A PDU was received or queued for sending; only when asked for with
    /// [`Association::observe_pdus`] (for tracing, as pynetdicom's EVT_PDU_RECV/SENT).
    Pdu(PduNote),
}

/// One PDU seen on the association: its type (PS3.8 9.3.1) and its PDU-length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduNote {
    /// True for a PDU we send, false for one received.
    pub sent: bool,
    pub pdu_type: u8,
    pub length: u32,
}

/// A local request that is not valid now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssociationError {
    #[error("cannot {what} in state {state} ({})", state.description())]
    InvalidState { what: &'static str, state: State },
    #[error("presentation context {0} was not accepted on this association")]
    UnknownContext(u8),
    #[error("could not encode the {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}

/// The limits an association enforces on what the peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest data set of one message held in memory.
    pub max_dataset_length: usize,
    /// The largest A-ASSOCIATE-RQ/AC accepted.
    pub max_associate_length: u32,
    /// Data sets longer than this are passed on in parts as they arrive
    /// ([`AssociationEvent::DataSetStarted`]); `usize::MAX`: never.
    pub stream_threshold: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A multi-frame image can be large; the cap only stops a peer from making us
            // buffer without bound (streaming larger data sets is the network layer's job).
            max_dataset_length: 4 << 30,
            max_associate_length: pdu::DEFAULT_MAX_ASSOCIATE_LENGTH,
            stream_threshold: usize::MAX,
        }
    }
}

/// One association, either role.
#[derive(Debug)]
pub struct Association {
    machine: StateMachine,
    reader: PduReader,
    inbuf: BytesMut,
    transmits: VecDeque<Transmit>,
    events: VecDeque<AssociationEvent>,
    assembler: MessageAssembler,
    fragmenter: Fragmenter,
    /// Requestor: the A-ASSOCIATE-RQ we send. Acceptor: the one we received.
    rq: Option<AAssociateRq>,
    /// The PDU to send for the next SendAssociateAc/Rj/Abort output.
    pending_ac: Option<AAssociateAc>,
    pending_rj: Option<AAssociateRj>,
    abort_reason: AbortReason,
    negotiated: Option<Negotiated>,
    /// The peer's A-ABORT, for the event that AA-3 indicates.
    peer_abort: Option<AAbort>,
    /// What went wrong, for the event that an A-P-ABORT indicates.
    provider_detail: Option<String>,
    close: bool,
    /// Acceptor in a release collision: the user answered the A-RELEASE indication in
    /// Sta10, before the A-RELEASE-RP that lets it answer (AR-10); sent after it.
    release_answer_pending: bool,
    /// Set once the peer's bytes stopped making sense: ignore whatever else arrives.
    poisoned: bool,
    observe_pdus: bool,
}

impl Association {
    fn new(role: Role, timeouts: Timeouts, max_pdu_length: u32, limits: Limits) -> Self {
        let mut reader = PduReader::new(max_pdu_length);
        reader.max_associate_length = limits.max_associate_length;
        Association {
            machine: StateMachine::new(role, timeouts),
            reader,
            inbuf: BytesMut::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            assembler: MessageAssembler::new(limits.max_dataset_length)
                .with_stream_threshold(limits.stream_threshold),
            fragmenter: Fragmenter::new(0),
            rq: None,
            pending_ac: None,
            pending_rj: None,
            abort_reason: AbortReason::NotSpecified,
            negotiated: None,
            peer_abort: None,
            provider_detail: None,
            close: false,
            release_answer_pending: false,
            poisoned: false,
            observe_pdus: false,
        }
    }

    /// A requestor that will send `rq` once the transport is connected: Evt1, then the
    /// driver connects and calls [`Association::transport_connected`].
    pub fn requestor(rq: AAssociateRq, timeouts: Timeouts, limits: Limits, now: Instant) -> Self {
        let our_max = rq.user_information.maximum_length().unwrap_or(0);
        let mut a = Association::new(Role::Requestor, timeouts, our_max, limits);
        a.rq = Some(rq);
        a.step(Event::Evt1, now);
        a
    }

    /// An acceptor for a transport connection the driver has just accepted (Evt5).
    /// `max_pdu_length` is the Maximum Length we will announce.
    pub fn acceptor(timeouts: Timeouts, max_pdu_length: u32, limits: Limits, now: Instant) -> Self {
        let mut a = Association::new(Role::Acceptor, timeouts, max_pdu_length, limits);
        a.step(Event::Evt5, now);
        a
    }

    pub fn state(&self) -> State {
        self.machine.state()
    }

    pub fn is_established(&self) -> bool {
        self.negotiated.is_some() && matches!(self.state(), State::Sta6)
    }

    /// What was negotiated, once established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The A-ASSOCIATE-RQ (sent or received).
    pub fn associate_rq(&self) -> Option<&AAssociateRq> {
        self.rq.as_ref()
    }

    /// Reports every PDU received and sent from now on as [`AssociationEvent::Pdu`].
    pub fn observe_pdus(&mut self, on: bool) {
        self.observe_pdus = on;
    }

    /// The next thing to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        if self.observe_pdus {
            let (pdu_type, length) = match &t {
                Transmit::Pdu(b) => pdu_header(b).unwrap_or((0, 0)),
                Transmit::Fragment(f) => (0x04, f.len().saturating_sub(pdu::PDU_HEADER_LEN) as u32),
            };
            self.events.push_back(AssociationEvent::Pdu(PduNote {
                sent: true,
                pdu_type,
                length,
            }));
        }
        Some(t)
    }

    /// Whether anything is waiting to be written.
    pub fn has_transmit(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<AssociationEvent> {
        self.events.pop_front()
    }

    /// Whether the driver must close the transport (after writing what is queued).
    pub fn wants_close(&self) -> bool {
        self.close
    }

    /// When the driver must call [`Association::handle_timeout`].
    pub fn deadline(&self) -> Option<Instant> {
        self.machine.deadline()
    }

    /// The buffer the driver reads into; call [`Association::process_received`] after.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.inbuf
    }

    /// How many more bytes the next PDU needs (at least 1 while open): a hint for sizing
    /// reads so that memory stays bounded by the PDU limits.
    pub fn read_hint(&self) -> usize {
        match self.reader.check_header(&self.inbuf) {
            Ok(Some(total)) => total.saturating_sub(self.inbuf.len()).max(1),
            _ => pdu::PDU_HEADER_LEN.saturating_sub(self.inbuf.len()).max(1),
        }
    }

    /// Appends received bytes and processes them.
    pub fn receive(&mut self, data: &[u8], now: Instant) {
        self.inbuf.extend_from_slice(data);
        self.process_received(now);
    }

    /// Decodes and handles every complete PDU in the read buffer.
    pub fn process_received(&mut self, now: Instant) {
        while !self.poisoned {
            let header = if self.observe_pdus {
                pdu_header(&self.inbuf)
            } else {
                None
            };
            match self.reader.read(&mut self.inbuf) {
                Ok(Some(pdu)) => {
                    if let Some((pdu_type, length)) = header {
                        self.events.push_back(AssociationEvent::Pdu(PduNote {
                            sent: false,
                            pdu_type,
                            length,
                        }));
                    }
                    self.handle_pdu(pdu, now)
                }
                Ok(None) => break,
                Err(e) => {
                    self.poison();
                    self.protocol_error(
                        e.abort_reason(),
                        format!("invalid PDU from the peer: {e}"),
                        now,
                    );
                }
            }
        }
        if self.poisoned {
            self.inbuf.clear();
        }
    }

    fn poison(&mut self) {
        self.poisoned = true;
        self.inbuf.clear();
    }

    /// Evt19 (or AA-8 for a well-formed PDU in the wrong state): abort with `reason`.
    fn protocol_error(&mut self, reason: AbortReason, detail: String, now: Instant) {
        self.abort_reason = reason;
        self.provider_detail = Some(detail);
        self.step(Event::Evt19, now);
    }

    fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
        // A well-formed PDU that the table refuses in this state gets AA-8 with reason
        // "unexpected PDU" (PS3.8 9.3.8).
        self.abort_reason = AbortReason::UnexpectedPdu;
        match pdu {
            Pdu::AAssociateRq(rq) => {
                let acceptable = rq.protocol_version & 0x0001 != 0;
                if !acceptable {
                    // AE-6 reject branch: the service-provider's own rejection (PS3.8 9.3.4).
                    self.pending_rj = Some(AAssociateRj {
                        result: RejectResult::Permanent,
                        reason: RejectReason::AcseProtocolVersionNotSupported,
                    });
                }
                let is_new = self.machine.state() == State::Sta2;
                if is_new {
                    self.rq = Some(rq.clone());
                }
                self.step_rq(acceptable, now);
                if is_new && acceptable && self.machine.state() == State::Sta3 {
                    self.events
                        .push_back(AssociationEvent::Requested(Box::new(rq)));
                }
            }
            Pdu::AAssociateAc(ac) => {
                let state = self.machine.state();
                self.step(Event::Evt3, now);
                if state == State::Sta5 {
                    self.established_by(ac, now);
                }
            }
            Pdu::AAssociateRj(rj) => {
                let state = self.machine.state();
                self.step(Event::Evt4, now);
                if state == State::Sta5 {
                    self.events.push_back(AssociationEvent::Rejected(rj));
                }
            }
            Pdu::PDataTf(p) => {
                let state = self.machine.state();
                self.step(Event::Evt10, now);
                if matches!(state, State::Sta6 | State::Sta7) {
                    self.receive_pdata(p, now);
                }
            }
            Pdu::AReleaseRq => self.step(Event::Evt12, now),
            Pdu::AReleaseRp => {
                self.step(Event::Evt13, now);
                if self.release_answer_pending && self.machine.state() == State::Sta12 {
                    self.release_answer_pending = false;
                    self.step(Event::Evt14, now);
                }
            }
            Pdu::AAbort(a) => {
                self.peer_abort = Some(a);
                self.step(Event::Evt16, now);
            }
        }
    }

    fn established_by(&mut self, ac: AAssociateAc, now: Instant) {
        let Some(rq) = self.rq.as_ref() else { return };
        match crate::negotiation::process_ac(rq, &ac) {
            Ok(negotiated) => {
                self.fragmenter = Fragmenter::new(negotiated.peer_max_pdu_length);
                self.events
                    .push_back(AssociationEvent::Established(Box::new(negotiated.clone())));
                self.negotiated = Some(negotiated);
            }
            Err(e) => {
                // The AC contradicts our RQ: abort as a provider, invalid parameter.
                self.abort_reason = AbortReason::InvalidPduParameterValue;
                self.provider_detail = Some(format!("invalid A-ASSOCIATE-AC: {e}"));
                self.local_abort(AbortSource::ServiceProvider, now);
            }
        }
    }

    fn receive_pdata(&mut self, p: pdu::PDataTf, now: Instant) {
        for pdv in p.values {
            let known = self
                .negotiated
                .as_ref()
                .and_then(|n| n.context(pdv.context_id))
                .is_some_and(|c| {
                    c.transfer_syntax.is_some()
                        && c.result == pdu::PresentationContextResult::Acceptance
                });
            if !known {
                self.poison();
                self.protocol_error(
                    AbortReason::InvalidPduParameterValue,
                    format!(
                        "a PDV on presentation context {} which was not accepted",
                        pdv.context_id
                    ),
                    now,
                );
                return;
            }
            match self.assembler.push_assembled(pdv) {
                Ok(Some(Assembled::Message(message))) => {
                    self.events.push_back(AssociationEvent::Message(message))
                }
                Ok(Some(Assembled::Started {
                    context_id,
                    command,
                    head,
                })) => self.events.push_back(AssociationEvent::DataSetStarted {
                    context_id,
                    command,
                    head,
                }),
                Ok(Some(Assembled::Part { data, last })) => self
                    .events
                    .push_back(AssociationEvent::DataSetPart { data, last }),
                Ok(None) => {}
                Err(e) => {
                    self.poison();
                    self.protocol_error(
                        AbortReason::InvalidPduParameterValue,
                        format!("invalid message from the peer: {e}"),
                        now,
                    );
                    return;
                }
            }
        }
    }
}

impl Association {
    /// Transport connected (requestor, Evt2): sends the A-ASSOCIATE-RQ.
    pub fn transport_connected(&mut self, now: Instant) {
        self.step(Event::Evt2, now);
    }

    /// The transport closed under us (Evt17), or failed to connect.
    pub fn transport_closed(&mut self, now: Instant) {
        if !self.close {
            self.step(Event::Evt17, now);
        }
        self.close = true;
    }

    /// The transport failed under us (a reset, a TLS alert): as
    /// [`Association::transport_closed`], with the error as the reason given.
    pub fn transport_failed(&mut self, error: String, now: Instant) {
        if !self.close && self.provider_detail.is_none() {
            self.provider_detail = Some(error);
        }
        self.transport_closed(now);
    }

    /// Call when `now >= deadline()`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let outputs = self.machine.poll_timeout(now);
        self.perform(&outputs, now);
    }

    /// Acceptor: accept with this A-ASSOCIATE-AC and what it agrees (Evt7).
    pub fn accept(
        &mut self,
        ac: AAssociateAc,
        negotiated: Negotiated,
        now: Instant,
    ) -> Result<(), AssociationError> {
        self.require(State::Sta3, "accept an association")?;
        self.fragmenter = Fragmenter::new(negotiated.peer_max_pdu_length);
        self.negotiated = Some(negotiated.clone());
        self.pending_ac = Some(ac);
        self.step(Event::Evt7, now);
        self.events
            .push_back(AssociationEvent::Established(Box::new(negotiated)));
        Ok(())
    }

    /// Acceptor: reject with this A-ASSOCIATE-RJ (Evt8).
    pub fn reject(&mut self, rj: AAssociateRj, now: Instant) -> Result<(), AssociationError> {
        self.require(State::Sta3, "reject an association")?;
        self.pending_rj = Some(rj);
        self.step(Event::Evt8, now);
        Ok(())
    }

    /// Sends one DIMSE message (Evt9 per P-DATA-TF): the command set and the data set
    /// bytes, fragmented for the peer's maximum length. The data set is not copied.
    pub fn send_message(
        &mut self,
        context_id: u8,
        command: Bytes,
        dataset: Option<Bytes>,
        now: Instant,
    ) -> Result<(), AssociationError> {
        self.check_can_send(context_id)?;
        let state = self.machine.state();
        let fragmenter = self.fragmenter;
        for fragment in fragmenter.fragments(context_id, command, dataset) {
            let outputs = self.machine.handle(Event::Evt9, now).map_err(|_| {
                AssociationError::InvalidState {
                    what: "send a message",
                    state,
                }
            })?;
            // DT-1 / AR-7: the only output is SendPData, which is this fragment.
            debug_assert!(outputs.iter().all(|o| *o == Output::SendPData));
            self.transmits.push_back(Transmit::Fragment(fragment));
        }
        Ok(())
    }

    /// Queues one part of a data set whose command set went out with
    /// [`Association::send_message`] (its Command Data Set Type saying a data set
    /// follows): a large data set is sent as it is read, never held whole. `last` ends
    /// the message. Nothing else may be sent on the association until it ends: the peer
    /// reassembles the fragments of one message before the next.
    pub fn send_dataset_part(
        &mut self,
        context_id: u8,
        data: Bytes,
        last: bool,
        now: Instant,
    ) -> Result<(), AssociationError> {
        self.check_can_send(context_id)?;
        let state = self.machine.state();
        let fragmenter = self.fragmenter;
        for fragment in fragmenter.part(context_id, data, last) {
            self.machine
                .handle(Event::Evt9, now)
                .map_err(|_| AssociationError::InvalidState {
                    what: "send a message",
                    state,
                })?;
            self.transmits.push_back(Transmit::Fragment(fragment));
        }
        Ok(())
    }

    fn check_can_send(&self, context_id: u8) -> Result<(), AssociationError> {
        let state = self.machine.state();
        if !matches!(state, State::Sta6 | State::Sta8) {
            return Err(AssociationError::InvalidState {
                what: "send a message",
                state,
            });
        }
        let accepted = self
            .negotiated
            .as_ref()
            .and_then(|n| n.context(context_id))
            .is_some_and(|c| c.result == pdu::PresentationContextResult::Acceptance);
        if !accepted {
            return Err(AssociationError::UnknownContext(context_id));
        }
        Ok(())
    }

    /// The largest data set fragment one P-DATA-TF carries to this peer.
    pub fn max_fragment(&self) -> usize {
        self.fragmenter.max_fragment()
    }

    /// Asks the peer to release (Evt11).
    pub fn release(&mut self, now: Instant) -> Result<(), AssociationError> {
        self.require(State::Sta6, "release")?;
        self.step(Event::Evt11, now);
        Ok(())
    }

    /// Answers the peer's release request (Evt14). In a release collision the acceptor
    /// (Sta10) may answer at once: the answer waits for the peer's A-RELEASE-RP (AR-10),
    /// as PS3.8 orders it.
    pub fn release_response(&mut self, now: Instant) -> Result<(), AssociationError> {
        let state = self.machine.state();
        if state == State::Sta10 {
            self.release_answer_pending = true;
            return Ok(());
        }
        if !matches!(state, State::Sta8 | State::Sta9 | State::Sta12) {
            return Err(AssociationError::InvalidState {
                what: "answer a release request",
                state,
            });
        }
        self.step(Event::Evt14, now);
        Ok(())
    }

    /// Aborts (Evt15): sends A-ABORT (service-user) and waits for the peer to close,
    /// bounded by ARTIM.
    pub fn abort(&mut self, now: Instant) {
        if self.machine.state() == State::Sta2 {
            // No association yet (Table 9-10 has no Evt15 cell in Sta2): there is nobody
            // to send an A-ABORT to, so just close rather than wait for ARTIM.
            self.close = true;
            return;
        }
        self.abort_reason = AbortReason::NotSpecified;
        self.step(Event::Evt15, now);
    }

    /// Nothing arrived for the network timeout: abort (A-ABORT, service-user source) and
    /// tell the user why.
    pub fn idle_timeout(&mut self, now: Instant) {
        if self.close {
            return;
        }
        let state = self.machine.state();
        self.abort(now);
        if !matches!(state, State::Sta13) {
            self.events.push_back(AssociationEvent::ProviderAborted(
                "no data from the peer within the network timeout".to_owned(),
            ));
        }
        // Waiting for a silent peer to close after our A-ABORT would only add ARTIM.
        self.close = true;
    }

    fn local_abort(&mut self, source: AbortSource, now: Instant) {
        // A provider-initiated abort outside the table's Evt19 cells (e.g. a bad AC we
        // already took): send it and close, as AA-8 does.
        let pdu = Pdu::AAbort(AAbort {
            source,
            reason: if source == AbortSource::ServiceProvider {
                self.abort_reason
            } else {
                AbortReason::NotSpecified
            },
        });
        self.queue_pdu(&pdu);
        let detail = self
            .provider_detail
            .take()
            .unwrap_or_else(|| "aborted".to_owned());
        self.events
            .push_back(AssociationEvent::ProviderAborted(detail));
        // Evt15 takes the machine to Sta13 (AA-1) with ARTIM running; the peer will close,
        // or ARTIM will. The A-ABORT above replaces the one AA-1 would send.
        let _ = self.machine.handle(Event::Evt15, now);
    }

    fn require(&self, state: State, what: &'static str) -> Result<(), AssociationError> {
        if self.machine.state() == state {
            Ok(())
        } else {
            Err(AssociationError::InvalidState {
                what,
                state: self.machine.state(),
            })
        }
    }

    fn step(&mut self, event: Event, now: Instant) {
        match self.machine.handle(event, now) {
            Ok(outputs) => self.perform(&outputs, now),
            Err(_) => {
                // A blank cell. For a PDU from the peer this cannot happen (every PDU event
                // has an action in every state but Sta1/Sta4, where no PDU arrives); for a
                // local request the public methods check the state first.
            }
        }
    }

    fn step_rq(&mut self, acceptable: bool, now: Instant) {
        if let Ok(outputs) = self.machine.handle_associate_rq(acceptable, now) {
            self.perform(&outputs, now);
        }
    }

    fn queue_pdu(&mut self, pdu: &Pdu) {
        match pdu.encode() {
            Ok(bytes) => self.transmits.push_back(Transmit::Pdu(Bytes::from(bytes))),
            Err(e) => {
                // Only our own values can fail to encode (checked when they were built).
                self.provider_detail = Some(format!("could not encode {}: {e}", pdu.name()));
            }
        }
    }

    fn perform(&mut self, outputs: &[Output], _now: Instant) {
        for output in outputs {
            match *output {
                Output::ConnectTransport | Output::SendPData => {}
                Output::SendAssociateRq => {
                    if let Some(rq) = self.rq.clone() {
                        self.queue_pdu(&Pdu::AAssociateRq(rq));
                    }
                }
                Output::SendAssociateAc => {
                    if let Some(ac) = self.pending_ac.take() {
                        self.queue_pdu(&Pdu::AAssociateAc(ac));
                    }
                }
                Output::SendAssociateRj => {
                    let rj = self.pending_rj.take().unwrap_or(AAssociateRj {
                        result: RejectResult::Permanent,
                        reason: RejectReason::UserNoReasonGiven,
                    });
                    self.queue_pdu(&Pdu::AAssociateRj(rj));
                }
                Output::SendReleaseRq => self.queue_pdu(&Pdu::AReleaseRq),
                Output::SendReleaseRp => self.queue_pdu(&Pdu::AReleaseRp),
                Output::SendAbort { source } => {
                    let (source, reason) = match source {
                        ul::AbortSource::ServiceUser => {
                            (AbortSource::ServiceUser, AbortReason::NotSpecified)
                        }
                        ul::AbortSource::ServiceProvider => {
                            (AbortSource::ServiceProvider, self.abort_reason)
                        }
                    };
                    self.queue_pdu(&Pdu::AAbort(AAbort { source, reason }));
                }
                Output::CloseTransport => self.close = true,
                Output::Indicate(indication) => self.indicate(indication),
            }
        }
    }

    fn indicate(&mut self, indication: Indication) {
        let event = match indication {
            // Raised with the PDU in handle_pdu, which has the payload.
            Indication::AssociateIndication
            | Indication::AssociateConfirmAccept
            | Indication::AssociateConfirmReject
            | Indication::PData => return,
            Indication::ReleaseIndication { .. } => AssociationEvent::ReleaseRequested,
            Indication::ReleaseConfirm => AssociationEvent::Released,
            Indication::PeerAbort => {
                AssociationEvent::Aborted(self.peer_abort.take().unwrap_or(AAbort {
                    source: AbortSource::ServiceUser,
                    reason: AbortReason::NotSpecified,
                }))
            }
            Indication::ProviderAbort { cause } => AssociationEvent::ProviderAborted(
                self.provider_detail.take().unwrap_or_else(|| match cause {
                    ProviderAbortCause::TransportClosed => {
                        "the peer closed the connection".to_owned()
                    }
                    ProviderAbortCause::ProtocolError => {
                        "the peer sent a PDU that is not valid in this state".to_owned()
                    }
                }),
            ),
            Indication::AssociateTimeout => AssociationEvent::TimedOut(
                "the peer did not answer the A-ASSOCIATE-RQ within the ACSE timeout".to_owned(),
            ),
            Indication::ReleaseTimeout => AssociationEvent::TimedOut(
                "the peer did not answer the A-RELEASE-RQ within the ACSE timeout".to_owned(),
            ),
        };
        self.events.push_back(event);
    }
}

/// The type and PDU-length field of the PDU at the start of `b` (PS3.8 9.3.1).
fn pdu_header(b: &[u8]) -> Option<(u8, u32)> {
    let h: [u8; 6] = b.get(..6)?.try_into().ok()?;
    Some((h[0], u32::from_be_bytes([h[2], h[3], h[4], h[5]])))
}
