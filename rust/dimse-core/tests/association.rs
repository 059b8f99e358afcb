//! The sans-io [`Association`] end to end: a requestor and an acceptor wired back to back
//! in memory, driven on a virtual clock. Bytes go from one side's `poll_transmit()` into
//! the other's `receive()`; time is an `Instant` the tests advance themselves, so every
//! timer (ARTIM, the ACSE waits) is hit exactly, without sleeping.
//!
//! Every test checks the bytes put on the wire (as PS3.8 9.3 lays them out) and the events
//! each side reports, so that a wrong PDU, a missing event or a missing close fails it.

// clippy.toml allows unwrap in #[test] functions; the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use dimse_core::association::{Association, AssociationError, AssociationEvent, Limits, Transmit};
use dimse_core::message::command::{CEchoRq, CEchoRsp, CStoreRq};
use dimse_core::message::{Command, Priority, ReceivedMessage, Status};
use dimse_core::negotiation::{self, AcceptorParams, DefaultHooks, Negotiated, RequestorParams};
use dimse_core::pdu::{
    AAbort, AAssociateRj, AAssociateRq, AbortReason, AbortSource, AeTitle,
    PresentationContextResult, RejectReason, RejectResult,
};
use dimse_core::uid::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION};
use dimse_core::ul::{State, Timeouts};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Proposed by the requestor, not supported by the acceptor: context 5 is rejected.
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const ARTIM: Duration = Duration::from_secs(10);
/// Different from ARTIM so that a test can tell which timer fired.
const ACSE: Duration = Duration::from_secs(25);
const TICK: Duration = Duration::from_millis(1);

/// Context IDs the requestor proposes (RequestorParams::add_context hands out 1, 3, 5).
const ECHO_CTX: u8 = 1;
const CT_CTX: u8 = 3;
const MR_CTX: u8 = 5;

fn timeouts() -> Timeouts {
    Timeouts {
        artim: ARTIM,
        acse: ACSE,
    }
}

fn aet(s: &str) -> AeTitle {
    AeTitle::new(s).unwrap()
}

fn requestor_params(max_pdu: u32) -> RequestorParams {
    let mut p = RequestorParams::new(aet("ECHOSCU"), aet("ANY-SCP"));
    p.max_pdu_length = max_pdu;
    assert_eq!(
        p.add_context(VERIFICATION, &[IMPLICIT_VR_LITTLE_ENDIAN])
            .unwrap(),
        ECHO_CTX
    );
    assert_eq!(
        p.add_context(CT, &[EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN])
            .unwrap(),
        CT_CTX
    );
    assert_eq!(
        p.add_context(MR, &[IMPLICIT_VR_LITTLE_ENDIAN]).unwrap(),
        MR_CTX
    );
    p
}

fn acceptor_params(max_pdu: u32) -> AcceptorParams {
    let mut p = AcceptorParams::new(aet("ANY-SCP"));
    p.max_pdu_length = max_pdu;
    p.add_context(VERIFICATION, &[IMPLICIT_VR_LITTLE_ENDIAN]);
    p.add_context(CT, &[IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]);
    p
}

/// A transmit as the bytes the driver writes.
fn wire(t: Transmit) -> Vec<u8> {
    match t {
        Transmit::Pdu(b) => b.to_vec(),
        Transmit::Fragment(f) => {
            let mut out = Vec::with_capacity(f.len());
            f.encode_into(&mut out);
            assert_eq!(out.len(), f.header.len() + f.data.len());
            out
        }
    }
}

/// Everything `a` queued, one PDU per entry.
fn sent(a: &mut Association) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| a.poll_transmit()).map(wire).collect()
}

fn events(a: &mut Association) -> Vec<AssociationEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

/// An A-ABORT PDU (PS3.8 9.3.8): type 7, reserved, length 4, reserved (2), source, reason.
fn abort_pdu(source: u8, reason: u8) -> Vec<u8> {
    vec![0x07, 0, 0, 0, 0, 4, 0, 0, source, reason]
}

/// A-RELEASE-RQ / -RP (PS3.8 9.3.6, 9.3.7).
const RELEASE_RQ: [u8; 10] = [0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0];
const RELEASE_RP: [u8; 10] = [0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0];

/// An A-ASSOCIATE-RJ PDU (PS3.8 9.3.4): reserved, result, source, reason.
fn reject_pdu(rj: AAssociateRj) -> Vec<u8> {
    let result = match rj.result {
        RejectResult::Permanent => 1,
        RejectResult::Transient => 2,
    };
    let (source, reason) = rj.reason.values();
    vec![0x03, 0, 0, 0, 0, 4, 0, result, source, reason]
}

/// A P-DATA-TF with one PDV (PS3.8 9.3.5).
fn p_data(context_id: u8, control: u8, data: &[u8]) -> Vec<u8> {
    let pdv_len = u32::try_from(data.len() + 2).unwrap();
    let mut out = vec![0x04, 0];
    out.extend_from_slice(&(pdv_len + 4).to_be_bytes());
    out.extend_from_slice(&pdv_len.to_be_bytes());
    out.push(context_id);
    out.push(control);
    out.extend_from_slice(data);
    out
}

fn echo_rq(message_id: u16) -> Command {
    CEchoRq {
        affected_sop_class_uid: VERIFICATION.into(),
        message_id,
    }
    .into()
}

fn store_rq(message_id: u16) -> Command {
    CStoreRq {
        affected_sop_class_uid: CT.into(),
        message_id,
        priority: Priority::Medium,
        affected_sop_instance_uid: "1.2.3.4.5".into(),
        ..Default::default()
    }
    .into()
}

/// A data set-like payload whose every byte depends on its position.
fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / 251) % 256).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

fn decode(message: &ReceivedMessage) -> Command {
    Command::from_command_set(&message.command).unwrap().command
}

/// A requestor and an acceptor on one virtual clock.
struct Link {
    req: Association,
    acc: Association,
    acc_params: AcceptorParams,
    now: Instant,
}

impl Link {
    /// Both ends with their transport connected: the requestor's A-ASSOCIATE-RQ is queued,
    /// the acceptor is in Sta2 with ARTIM running.
    fn connect(req_params: &RequestorParams, acc_params: AcceptorParams) -> Link {
        let rq = req_params.build_rq().unwrap();
        Link::connect_rq(rq, acc_params)
    }

    fn connect_rq(rq: AAssociateRq, acc_params: AcceptorParams) -> Link {
        let now = Instant::now();
        let mut req = Association::requestor(rq, timeouts(), Limits::default(), now);
        assert_eq!(req.state(), State::Sta4);
        assert!(
            !req.has_transmit(),
            "nothing is sent before the transport connects"
        );
        req.transport_connected(now);
        assert_eq!(req.state(), State::Sta5);
        let acc = Association::acceptor(
            timeouts(),
            acc_params.max_pdu_length,
            Limits::default(),
            now,
        );
        assert_eq!(acc.state(), State::Sta2);
        assert_eq!(acc.deadline(), Some(now + ARTIM));
        Link {
            req,
            acc,
            acc_params,
            now,
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Moves everything the requestor queued into the acceptor, PDU by PDU; returns it.
    fn req_to_acc(&mut self) -> Vec<Vec<u8>> {
        let pdus = sent(&mut self.req);
        for pdu in &pdus {
            self.acc.receive(pdu, self.now);
        }
        pdus
    }

    /// Moves everything the acceptor queued into the requestor, PDU by PDU; returns it.
    fn acc_to_req(&mut self) -> Vec<Vec<u8>> {
        let pdus = sent(&mut self.acc);
        for pdu in &pdus {
            self.req.receive(pdu, self.now);
        }
        pdus
    }

    /// Delivers the A-ASSOCIATE-RQ and returns the `Requested` event's request.
    fn deliver_rq(&mut self) -> AAssociateRq {
        let pdus = self.req_to_acc();
        assert_eq!(pdus.len(), 1);
        assert_eq!(pdus[0][0], 0x01, "A-ASSOCIATE-RQ");
        assert_eq!(self.acc.state(), State::Sta3);
        assert_eq!(self.acc.deadline(), None, "AE-6 stops ARTIM");
        let mut ev = events(&mut self.acc);
        assert_eq!(ev.len(), 1, "{ev:?}");
        match ev.remove(0) {
            AssociationEvent::Requested(rq) => {
                assert_eq!(Some(&*rq), self.req.associate_rq());
                assert_eq!(self.acc.associate_rq(), Some(&*rq));
                *rq
            }
            other => panic!("expected Requested, got {other:?}"),
        }
    }

    /// Negotiates and accepts; returns (requestor's, acceptor's) view of the association.
    fn establish(&mut self) -> (Negotiated, Negotiated) {
        let rq = self.deliver_rq();
        let (ac, negotiated) =
            negotiation::accept(&rq, &self.acc_params, &mut DefaultHooks).unwrap();
        self.acc.accept(ac, negotiated, self.now).unwrap();
        assert_eq!(self.acc.state(), State::Sta6);
        let acc_view = match events(&mut self.acc).as_slice() {
            [AssociationEvent::Established(n)] => (**n).clone(),
            other => panic!("expected Established, got {other:?}"),
        };
        let pdus = self.acc_to_req();
        assert_eq!(pdus.len(), 1);
        assert_eq!(pdus[0][0], 0x02, "A-ASSOCIATE-AC");
        assert_eq!(self.req.state(), State::Sta6);
        let req_view = match events(&mut self.req).as_slice() {
            [AssociationEvent::Established(n)] => (**n).clone(),
            other => panic!("expected Established, got {other:?}"),
        };
        assert!(self.req.is_established() && self.acc.is_established());
        assert_eq!(self.req.negotiated(), Some(&req_view));
        assert_eq!(self.acc.negotiated(), Some(&acc_view));
        (req_view, acc_view)
    }

    /// Both ends established, with the default limits.
    fn established() -> Link {
        let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
        link.establish();
        link
    }

    fn nothing_pending(&mut self) {
        assert_eq!(events(&mut self.req), vec![]);
        assert_eq!(events(&mut self.acc), vec![]);
        assert!(!self.req.has_transmit());
        assert!(!self.acc.has_transmit());
    }
}

/// Runs the timers of `a` up to `at`: checks that nothing happens one tick before.
fn expire(a: &mut Association, at: Instant) {
    assert_eq!(a.deadline(), Some(at));
    a.handle_timeout(at - TICK);
    assert!(!a.wants_close(), "the timer fired early");
    assert!(!a.has_transmit());
    a.handle_timeout(at);
}

// ---------------------------------------------------------------------------------------
// Establishment
// ---------------------------------------------------------------------------------------

#[test]
fn association_accepted_both_sides_agree() {
    let mut link = Link::connect(&requestor_params(8192), acceptor_params(32768));
    assert!(
        link.req.deadline() == Some(link.now + ACSE),
        "Sta5 runs the ACSE wait"
    );
    let (req_view, acc_view) = link.establish();

    // Both ends see the same contexts, results, transfer syntaxes and roles.
    assert_eq!(req_view.contexts, acc_view.contexts);
    let ctx = |id: u8| req_view.context(id).unwrap();
    assert_eq!(ctx(ECHO_CTX).result, PresentationContextResult::Acceptance);
    assert_eq!(
        ctx(ECHO_CTX).transfer_syntax.as_deref(),
        Some(IMPLICIT_VR_LITTLE_ENDIAN)
    );
    assert_eq!(ctx(CT_CTX).result, PresentationContextResult::Acceptance);
    // The acceptor's preference order picks the transfer syntax.
    assert_eq!(
        ctx(CT_CTX).transfer_syntax.as_deref(),
        Some(IMPLICIT_VR_LITTLE_ENDIAN)
    );
    assert_eq!(
        ctx(MR_CTX).result,
        PresentationContextResult::AbstractSyntaxNotSupported
    );
    assert_eq!(ctx(MR_CTX).transfer_syntax, None);
    assert_eq!(req_view.accepted().count(), 2);
    // Each side's peer maximum is the other's own.
    assert_eq!(req_view.peer_max_pdu_length, 32768);
    assert_eq!(req_view.our_max_pdu_length, 8192);
    assert_eq!(acc_view.peer_max_pdu_length, 8192);
    assert_eq!(acc_view.our_max_pdu_length, 32768);
    assert_eq!(req_view.calling_ae_title, aet("ECHOSCU"));
    assert_eq!(acc_view.called_ae_title, aet("ANY-SCP"));
    // No timer runs in Sta6 and nothing else happened.
    assert_eq!(link.req.deadline(), None);
    assert_eq!(link.acc.deadline(), None);
    assert!(!link.req.wants_close() && !link.acc.wants_close());
    link.nothing_pending();
}

#[test]
fn association_rejected_for_each_reason() {
    let reasons = [
        (RejectResult::Permanent, RejectReason::UserNoReasonGiven),
        (
            RejectResult::Permanent,
            RejectReason::UserApplicationContextNameNotSupported,
        ),
        (
            RejectResult::Permanent,
            RejectReason::UserCallingAeTitleNotRecognized,
        ),
        (
            RejectResult::Transient,
            RejectReason::UserCalledAeTitleNotRecognized,
        ),
        (RejectResult::Permanent, RejectReason::AcseNoReasonGiven),
        (
            RejectResult::Permanent,
            RejectReason::AcseProtocolVersionNotSupported,
        ),
        (
            RejectResult::Transient,
            RejectReason::PresentationTemporaryCongestion,
        ),
        (
            RejectResult::Transient,
            RejectReason::PresentationLocalLimitExceeded,
        ),
    ];
    for (i, (result, reason)) in reasons.into_iter().enumerate() {
        let rj = AAssociateRj { result, reason };
        let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
        link.deliver_rq();
        link.acc.reject(rj, link.now).unwrap();
        // AE-8: A-ASSOCIATE-RJ, ARTIM, Sta13; the acceptor waits for the peer to close.
        assert_eq!(link.acc.state(), State::Sta13);
        assert_eq!(link.acc.deadline(), Some(link.now + ARTIM));
        assert!(!link.acc.wants_close());
        assert_eq!(link.acc_to_req(), vec![reject_pdu(rj)], "{rj:?}");
        // AE-4: the requestor reports the same result, source and reason, and closes.
        assert_eq!(events(&mut link.req), vec![AssociationEvent::Rejected(rj)]);
        assert!(link.req.wants_close());
        assert_eq!(link.req.state(), State::Sta1);
        assert_eq!(link.req.negotiated(), None);
        assert_eq!(events(&mut link.acc), vec![]);
        assert!(link.acc.negotiated().is_none());

        if i % 2 == 0 {
            // The requestor closes: AR-5 (Evt17 in Sta13), no event.
            link.advance(Duration::from_millis(5));
            link.acc.transport_closed(link.now);
        } else {
            // It never does: ARTIM closes (AA-2), without sending anything.
            let at = link.now + ARTIM;
            expire(&mut link.acc, at);
        }
        assert!(link.acc.wants_close());
        assert_eq!(link.acc.state(), State::Sta1);
        assert_eq!(link.acc.deadline(), None);
        link.nothing_pending();
    }
}

#[test]
fn association_rejected_by_negotiation() {
    let mut params = acceptor_params(16384);
    params.ae_title = aet("STORESCP");
    params.require_called_aet = true;
    let mut link = Link::connect(&requestor_params(16384), params);
    let rq = link.deliver_rq();
    let rj = negotiation::accept(&rq, &link.acc_params, &mut DefaultHooks).unwrap_err();
    assert_eq!(
        rj,
        AAssociateRj {
            result: RejectResult::Permanent,
            reason: RejectReason::UserCalledAeTitleNotRecognized,
        }
    );
    link.acc.reject(rj, link.now).unwrap();
    // Only one answer per request.
    let (ac, negotiated) =
        negotiation::accept(&rq, &acceptor_params(16384), &mut DefaultHooks).unwrap();
    assert!(matches!(
        link.acc.accept(ac, negotiated, link.now),
        Err(AssociationError::InvalidState {
            state: State::Sta13,
            ..
        })
    ));
    assert_eq!(
        link.acc_to_req(),
        vec![vec![0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7]]
    );
    assert_eq!(events(&mut link.req), vec![AssociationEvent::Rejected(rj)]);
    assert!(link.req.wants_close());
}

#[test]
fn unsupported_protocol_version_is_rejected_by_the_provider() {
    let mut rq = requestor_params(16384).build_rq().unwrap();
    rq.protocol_version = 0x0002;
    let mut link = Link::connect_rq(rq, acceptor_params(16384));
    link.req_to_acc();
    // AE-6, reject branch: the user never hears of it.
    assert_eq!(events(&mut link.acc), vec![]);
    assert_eq!(link.acc.state(), State::Sta13);
    assert_eq!(link.acc.deadline(), Some(link.now + ARTIM));
    // Permanent, service-provider (ACSE), protocol version not supported.
    assert_eq!(
        link.acc_to_req(),
        vec![vec![0x03, 0, 0, 0, 0, 4, 0, 1, 2, 2]]
    );
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::Rejected(AAssociateRj {
            result: RejectResult::Permanent,
            reason: RejectReason::AcseProtocolVersionNotSupported,
        })]
    );
    assert!(link.req.wants_close());
    link.acc.transport_closed(link.now);
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
}

#[test]
fn a_bad_associate_ac_is_aborted_by_the_requestor() {
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    let rq = link.deliver_rq();
    let (mut ac, negotiated) =
        negotiation::accept(&rq, &link.acc_params, &mut DefaultHooks).unwrap();
    // Accept the verification context with a transfer syntax that was never proposed.
    ac.presentation_contexts[0].transfer_syntax = Some(EXPLICIT_VR_LITTLE_ENDIAN.into());
    link.acc.accept(ac, negotiated, link.now).unwrap();
    events(&mut link.acc);
    link.acc_to_req();
    let ev = events(&mut link.req);
    match ev.as_slice() {
        [AssociationEvent::ProviderAborted(why)] => {
            assert!(why.starts_with("invalid A-ASSOCIATE-AC"), "{why}");
            assert!(why.contains(EXPLICIT_VR_LITTLE_ENDIAN), "{why}");
        }
        other => panic!("expected ProviderAborted, got {other:?}"),
    }
    assert!(!link.req.is_established());
    assert_eq!(link.req.state(), State::Sta13);
    // A-ABORT, service-provider, invalid PDU parameter value; exactly one.
    assert_eq!(link.req_to_acc(), vec![abort_pdu(2, 6)]);
    assert_eq!(
        events(&mut link.acc),
        vec![AssociationEvent::Aborted(AAbort {
            source: AbortSource::ServiceProvider,
            reason: AbortReason::InvalidPduParameterValue,
        })]
    );
    assert!(link.acc.wants_close());
    // ARTIM closes the requestor if the acceptor's close never shows.
    let at = link.now + ARTIM;
    expire(&mut link.req, at);
    assert!(link.req.wants_close());
    assert!(!link.req.has_transmit());
}

// ---------------------------------------------------------------------------------------
// Data transfer
// ---------------------------------------------------------------------------------------

#[test]
fn c_echo_request_and_response() {
    let mut link = Link::established();
    let command = Bytes::from(echo_rq(7).encode(false).unwrap());
    link.req
        .send_message(ECHO_CTX, command.clone(), None, link.now)
        .unwrap();

    // One P-DATA-TF: one PDV on context 1, command + last, holding the command set.
    let t = link.req.poll_transmit().unwrap();
    let Transmit::Fragment(f) = &t else {
        panic!("expected a fragment, got {t:?}")
    };
    assert_eq!(f.data, command);
    assert_eq!(f.control(), 0x03);
    let bytes = wire(t.clone());
    assert_eq!(bytes[0], 0x04);
    assert_eq!(
        bytes[2..6],
        u32::try_from(command.len() + 6).unwrap().to_be_bytes()
    );
    assert_eq!(
        bytes[6..10],
        u32::try_from(command.len() + 2).unwrap().to_be_bytes()
    );
    assert_eq!(bytes[10..12], [ECHO_CTX, 0x03]);
    assert_eq!(bytes[12..], command[..]);
    assert!(!link.req.has_transmit());
    link.acc.receive(&bytes, link.now);

    let message = match events(&mut link.acc).as_slice() {
        [AssociationEvent::Message(m)] => m.clone(),
        other => panic!("expected Message, got {other:?}"),
    };
    assert_eq!(message.context_id, ECHO_CTX);
    assert_eq!(message.dataset, None);
    assert_eq!(decode(&message), echo_rq(7));

    let rsp: Command = CEchoRsp {
        affected_sop_class_uid: Some(VERIFICATION.into()),
        message_id_being_responded_to: 7,
        status: Status::SUCCESS,
        ..Default::default()
    }
    .into();
    link.acc
        .send_message(ECHO_CTX, rsp.encode(false).unwrap().into(), None, link.now)
        .unwrap();
    assert_eq!(link.acc_to_req().len(), 1);
    let message = match events(&mut link.req).as_slice() {
        [AssociationEvent::Message(m)] => m.clone(),
        other => panic!("expected Message, got {other:?}"),
    };
    assert_eq!(message.context_id, ECHO_CTX);
    let decoded = decode(&message);
    assert_eq!(decoded, rsp);
    assert_eq!(decoded.status(), Some(Status::SUCCESS));
    assert_eq!(decoded.message_id_being_responded_to(), Some(7));
    link.nothing_pending();
    assert!(link.req.is_established() && link.acc.is_established());
}

/// The PDU length field of each P-DATA-TF in `pdus`, checking the framing on the way.
fn p_data_lengths(pdus: &[Vec<u8>]) -> Vec<u32> {
    pdus.iter()
        .map(|p| {
            assert_eq!(p[0], 0x04);
            let len = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
            assert_eq!(p.len(), 6 + len as usize);
            len
        })
        .collect()
}

#[test]
fn large_data_set_is_fragmented_for_the_peer_and_reassembled() {
    // The acceptor receives P-DATA-TF of at most 1024 bytes, the requestor 2048.
    let mut link = Link::connect(&requestor_params(2048), acceptor_params(1024));
    link.establish();
    let dataset = payload(10_000);
    let command = Bytes::from(store_rq(1).encode(true).unwrap());

    link.req
        .send_message(CT_CTX, command.clone(), Some(dataset.clone()), link.now)
        .unwrap();
    let transmits: Vec<Transmit> = std::iter::from_fn(|| link.req.poll_transmit()).collect();
    // The data set is sliced, never copied.
    let mut offset = 0;
    for t in &transmits[1..] {
        let Transmit::Fragment(f) = t else {
            panic!("expected fragments, got {t:?}")
        };
        assert_eq!(f.data, dataset.slice(offset..offset + f.data.len()));
        offset += f.data.len();
    }
    assert_eq!(offset, dataset.len());
    let pdus: Vec<Vec<u8>> = transmits.into_iter().map(wire).collect();
    let lengths = p_data_lengths(&pdus);
    assert!(lengths.iter().all(|&l| l <= 1024), "{lengths:?}");
    // 10 000 bytes in fragments of 1024 - 6: ten data PDUs after the command.
    assert_eq!(pdus.len(), 1 + 10_000usize.div_ceil(1018));
    assert_eq!(pdus[0][11], 0x03, "command, last");
    for p in &pdus[1..pdus.len() - 1] {
        assert_eq!(p[11], 0x00, "data set, not last");
        assert_eq!(p.len(), 6 + 1024, "full fragments up to the last");
    }
    assert_eq!(pdus[pdus.len() - 1][11], 0x02, "data set, last");

    // Delivered in one go (several PDUs in one read): one message, equal to what was sent.
    let all: Vec<u8> = pdus.concat();
    link.acc.receive(&all, link.now);
    let message = match events(&mut link.acc).as_slice() {
        [AssociationEvent::Message(m)] => m.clone(),
        other => panic!("expected one Message, got {other:?}"),
    };
    assert_eq!(message.context_id, CT_CTX);
    assert_eq!(decode(&message), store_rq(1));
    assert_eq!(message.dataset_bytes().as_ref(), Some(&dataset));

    // The other way, within the requestor's 2048, delivered in awkward 333-byte reads.
    let dataset = payload(7_000).slice(1..);
    link.acc
        .send_message(
            CT_CTX,
            store_rq(2).encode(true).unwrap().into(),
            Some(dataset.clone()),
            link.now,
        )
        .unwrap();
    let pdus = sent(&mut link.acc);
    let lengths = p_data_lengths(&pdus);
    assert!(lengths.iter().all(|&l| l <= 2048), "{lengths:?}");
    assert_eq!(pdus.len(), 1 + 6_999usize.div_ceil(2042));
    for chunk in pdus.concat().chunks(333) {
        assert_eq!(
            events(&mut link.req),
            vec![],
            "no message before the last byte"
        );
        link.req.receive(chunk, link.now);
    }
    let message = match events(&mut link.req).as_slice() {
        [AssociationEvent::Message(m)] => m.clone(),
        other => panic!("expected one Message, got {other:?}"),
    };
    assert_eq!(decode(&message), store_rq(2));
    assert_eq!(message.dataset_bytes(), Some(dataset));
    link.nothing_pending();
}

#[test]
fn sending_on_a_context_that_was_not_accepted_fails() {
    let mut link = Link::established();
    let command = Bytes::from(echo_rq(1).encode(false).unwrap());
    for side in [&mut link.req, &mut link.acc] {
        // Proposed and rejected, and never proposed at all.
        for id in [MR_CTX, 7, 2] {
            assert_eq!(
                side.send_message(id, command.clone(), None, link.now),
                Err(AssociationError::UnknownContext(id))
            );
        }
        assert!(!side.has_transmit());
        assert!(side.is_established());
    }
    assert_eq!(
        AssociationError::UnknownContext(5).to_string(),
        "presentation context 5 was not accepted on this association"
    );
    link.nothing_pending();
}

#[test]
fn sending_before_established_fails() {
    let command = Bytes::from(echo_rq(1).encode(false).unwrap());
    let now = Instant::now();
    let rq = requestor_params(16384).build_rq().unwrap();
    let mut req = Association::requestor(rq, timeouts(), Limits::default(), now);
    let err = |state| AssociationError::InvalidState {
        what: "send a message",
        state,
    };
    assert_eq!(
        req.send_message(ECHO_CTX, command.clone(), None, now),
        Err(err(State::Sta4))
    );
    req.transport_connected(now);
    assert_eq!(sent(&mut req).len(), 1);
    assert_eq!(
        req.send_message(ECHO_CTX, command.clone(), None, now),
        Err(err(State::Sta5))
    );
    assert!(!req.has_transmit());
    assert_eq!(
        err(State::Sta5).to_string(),
        "cannot send a message in state Sta5 (Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU)"
    );

    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    assert_eq!(
        link.acc
            .send_message(ECHO_CTX, command.clone(), None, link.now),
        Err(err(State::Sta2))
    );
    link.deliver_rq();
    assert_eq!(
        link.acc
            .send_message(ECHO_CTX, command.clone(), None, link.now),
        Err(err(State::Sta3))
    );
    assert!(!link.acc.has_transmit());

    // Nor once a release is under way (Sta7), nor after the end.
    let mut link = Link::established();
    link.req.release(link.now).unwrap();
    assert_eq!(
        link.req
            .send_message(ECHO_CTX, command.clone(), None, link.now),
        Err(err(State::Sta7))
    );
    link.acc.abort(link.now);
    assert_eq!(
        link.acc.send_message(ECHO_CTX, command, None, link.now),
        Err(err(State::Sta13))
    );
}

#[test]
fn messages_in_both_release_directions_are_delivered() {
    // AR-7: the acceptor may still send in Sta8 (answering before it releases); AR-6: the
    // requestor still receives in Sta7.
    let mut link = Link::established();
    link.req.release(link.now).unwrap();
    link.req_to_acc();
    assert_eq!(
        events(&mut link.acc),
        vec![AssociationEvent::ReleaseRequested]
    );
    assert_eq!(link.acc.state(), State::Sta8);
    let rsp: Command = CEchoRsp {
        message_id_being_responded_to: 3,
        status: Status::SUCCESS,
        ..Default::default()
    }
    .into();
    link.acc
        .send_message(ECHO_CTX, rsp.encode(false).unwrap().into(), None, link.now)
        .unwrap();
    link.acc.release_response(link.now).unwrap();
    let pdus = link.acc_to_req();
    assert_eq!(pdus.len(), 2);
    assert_eq!(pdus[1], RELEASE_RP);
    let ev = events(&mut link.req);
    assert_eq!(ev.len(), 2, "{ev:?}");
    match &ev[0] {
        AssociationEvent::Message(m) => assert_eq!(decode(m), rsp),
        other => panic!("expected Message, got {other:?}"),
    }
    assert_eq!(ev[1], AssociationEvent::Released);
    assert!(link.req.wants_close());
}

// ---------------------------------------------------------------------------------------
// Release
// ---------------------------------------------------------------------------------------

/// Requestor releases, acceptor answers; returns the link with the acceptor in Sta13.
fn released_by_requestor() -> Link {
    let mut link = Link::established();
    link.req.release(link.now).unwrap();
    assert_eq!(link.req.state(), State::Sta7);
    assert_eq!(link.req.deadline(), Some(link.now + ACSE));
    assert_eq!(link.req_to_acc(), vec![RELEASE_RQ.to_vec()]);
    // AR-2.
    assert_eq!(
        events(&mut link.acc),
        vec![AssociationEvent::ReleaseRequested]
    );
    assert_eq!(link.acc.state(), State::Sta8);
    assert!(!link.acc.wants_close());
    link.advance(Duration::from_millis(3));
    link.acc.release_response(link.now).unwrap();
    // AR-4: A-RELEASE-RP, ARTIM, Sta13.
    assert_eq!(link.acc.state(), State::Sta13);
    assert_eq!(link.acc.deadline(), Some(link.now + ARTIM));
    assert_eq!(link.acc_to_req(), vec![RELEASE_RP.to_vec()]);
    assert!(!link.acc.wants_close(), "the requestor closes first");
    // AR-3: confirmation and close.
    assert_eq!(events(&mut link.req), vec![AssociationEvent::Released]);
    assert!(link.req.wants_close());
    assert_eq!(link.req.state(), State::Sta1);
    assert_eq!(link.req.deadline(), None);
    link
}

#[test]
fn release_by_requestor_acceptor_closes_on_transport_close() {
    let mut link = released_by_requestor();
    link.advance(Duration::from_millis(1));
    link.acc.transport_closed(link.now);
    // AR-5.
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    assert_eq!(link.acc.deadline(), None);
    link.nothing_pending();
}

#[test]
fn release_by_requestor_acceptor_closes_at_artim() {
    let mut link = released_by_requestor();
    let at = link.now + ARTIM;
    expire(&mut link.acc, at);
    // Evt18 in Sta13: AA-2, close without a PDU.
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    link.nothing_pending();
}

#[test]
fn release_by_acceptor() {
    let mut link = Link::established();
    link.acc.release(link.now).unwrap();
    assert_eq!(link.acc_to_req(), vec![RELEASE_RQ.to_vec()]);
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::ReleaseRequested]
    );
    link.req.release_response(link.now).unwrap();
    assert_eq!(link.req_to_acc(), vec![RELEASE_RP.to_vec()]);
    assert_eq!(events(&mut link.acc), vec![AssociationEvent::Released]);
    assert!(link.acc.wants_close());
    assert_eq!(link.req.state(), State::Sta13);
    link.req.transport_closed(link.now);
    assert!(link.req.wants_close());
    link.nothing_pending();
}

#[test]
fn release_response_without_a_request_fails() {
    let mut link = Link::established();
    assert_eq!(
        link.acc.release_response(link.now),
        Err(AssociationError::InvalidState {
            what: "answer a release request",
            state: State::Sta6,
        })
    );
    link.req.release(link.now).unwrap();
    assert!(matches!(
        link.req.release(link.now),
        Err(AssociationError::InvalidState {
            state: State::Sta7,
            ..
        })
    ));
    assert_eq!(
        sent(&mut link.req),
        vec![RELEASE_RQ.to_vec()],
        "one A-RELEASE-RQ only"
    );
}

/// Both ends ask to release before either sees the other's A-RELEASE-RQ.
fn collision() -> Link {
    let mut link = Link::established();
    link.req.release(link.now).unwrap();
    link.acc.release(link.now).unwrap();
    let from_req = sent(&mut link.req);
    let from_acc = sent(&mut link.acc);
    assert_eq!(from_req, vec![RELEASE_RQ.to_vec()]);
    assert_eq!(from_acc, vec![RELEASE_RQ.to_vec()]);
    link.advance(Duration::from_millis(2));
    link.req.receive(&from_acc[0], link.now);
    link.acc.receive(&from_req[0], link.now);
    // AR-8 on both: Sta9 for the requestor, Sta10 for the acceptor.
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::ReleaseRequested]
    );
    assert_eq!(
        events(&mut link.acc),
        vec![AssociationEvent::ReleaseRequested]
    );
    assert_eq!(link.req.state(), State::Sta9);
    assert_eq!(link.acc.state(), State::Sta10);
    assert!(!link.req.has_transmit() && !link.acc.has_transmit());
    link
}

fn finish_collision(mut link: Link) {
    // AR-3 on the requestor: confirmation, close.
    assert_eq!(link.acc_to_req(), vec![RELEASE_RP.to_vec()]);
    assert_eq!(events(&mut link.req), vec![AssociationEvent::Released]);
    assert!(link.req.wants_close());
    assert_eq!(link.req.state(), State::Sta1);
    // AR-5 on the acceptor once the requestor has closed.
    assert!(!link.acc.wants_close());
    link.acc.transport_closed(link.now);
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    link.nothing_pending();
}

#[test]
fn release_collision_acceptor_answers_after_confirmation() {
    let mut link = collision();
    // Sta9 -> AR-9: the requestor's user answers first.
    link.req.release_response(link.now).unwrap();
    assert_eq!(link.req.state(), State::Sta11);
    assert_eq!(link.req.deadline(), Some(link.now + ACSE));
    assert_eq!(link.req_to_acc(), vec![RELEASE_RP.to_vec()]);
    // Sta10 -> AR-10: the acceptor gets its confirmation, then answers (Sta12 -> AR-4).
    assert_eq!(events(&mut link.acc), vec![AssociationEvent::Released]);
    assert_eq!(link.acc.state(), State::Sta12);
    assert!(!link.acc.has_transmit());
    link.acc.release_response(link.now).unwrap();
    assert_eq!(link.acc.state(), State::Sta13);
    assert_eq!(link.acc.deadline(), Some(link.now + ARTIM));
    finish_collision(link);
}

#[test]
fn release_collision_acceptor_answers_the_indication_at_once() {
    // A user that answers ReleaseRequested as soon as it sees it (as the server does) must
    // not be stuck in Sta10: the answer is sent once the A-RELEASE-RP has come (AR-10).
    let mut link = collision();
    link.acc.release_response(link.now).unwrap();
    assert_eq!(link.acc.state(), State::Sta10);
    assert!(
        !link.acc.has_transmit(),
        "no A-RELEASE-RP before the requestor's"
    );
    link.req.release_response(link.now).unwrap();
    assert_eq!(link.req_to_acc(), vec![RELEASE_RP.to_vec()]);
    assert_eq!(events(&mut link.acc), vec![AssociationEvent::Released]);
    assert_eq!(link.acc.state(), State::Sta13);
    finish_collision(link);
}

#[test]
fn release_collision_requestor_times_out_if_acceptor_never_answers() {
    let mut link = collision();
    link.req.release_response(link.now).unwrap();
    link.req_to_acc();
    assert_eq!(events(&mut link.acc), vec![AssociationEvent::Released]);
    // The acceptor's user never answers: the requestor's bounded wait in Sta11 ends it.
    let at = link.now + ACSE;
    expire(&mut link.req, at);
    assert_eq!(sent(&mut link.req), vec![abort_pdu(0, 0)]);
    assert!(link.req.wants_close());
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::TimedOut(
            "the peer did not answer the A-RELEASE-RQ within the ACSE timeout".into()
        )]
    );
}

// ---------------------------------------------------------------------------------------
// Abort
// ---------------------------------------------------------------------------------------

fn user_abort(from_requestor: bool, peer_closes: bool) {
    let mut link = Link::established();
    let (aborter, peer) = if from_requestor {
        (&mut link.req, &mut link.acc)
    } else {
        (&mut link.acc, &mut link.req)
    };
    aborter.abort(link.now);
    // AA-1: A-ABORT (service-user, reason 0), ARTIM, Sta13.
    assert_eq!(aborter.state(), State::Sta13);
    assert_eq!(aborter.deadline(), Some(link.now + ARTIM));
    let pdus = sent(aborter);
    assert_eq!(pdus, vec![abort_pdu(0, 0)]);
    assert!(!aborter.wants_close());
    assert_eq!(events(aborter), vec![]);
    peer.receive(&pdus[0], link.now);
    // AA-3: the peer reports who aborted and closes.
    assert_eq!(
        events(peer),
        vec![AssociationEvent::Aborted(AAbort {
            source: AbortSource::ServiceUser,
            reason: AbortReason::NotSpecified,
        })]
    );
    assert!(peer.wants_close());
    assert_eq!(peer.state(), State::Sta1);
    assert!(!peer.has_transmit());
    if peer_closes {
        aborter.transport_closed(link.now + TICK);
    } else {
        expire(aborter, link.now + ARTIM);
    }
    assert!(aborter.wants_close());
    assert_eq!(aborter.state(), State::Sta1);
    assert!(!aborter.has_transmit());
    assert_eq!(events(aborter), vec![]);
}

#[test]
fn abort_from_requestor() {
    user_abort(true, true);
    user_abort(true, false);
}

#[test]
fn abort_from_acceptor() {
    user_abort(false, true);
    user_abort(false, false);
}

#[test]
fn abort_while_awaiting_the_answer_to_the_request() {
    // Sta3 (acceptor) and Sta5 (requestor): AA-1 as well.
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    link.deliver_rq();
    link.acc.abort(link.now);
    assert_eq!(link.acc_to_req(), vec![abort_pdu(0, 0)]);
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::Aborted(AAbort {
            source: AbortSource::ServiceUser,
            reason: AbortReason::NotSpecified,
        })]
    );
    assert!(link.req.wants_close());

    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    link.req.abort(link.now);
    // The A-ASSOCIATE-RQ was queued first; the A-ABORT follows it.
    let pdus = link.req_to_acc();
    assert_eq!(pdus.len(), 2);
    assert_eq!(pdus[1], abort_pdu(0, 0));
    assert_eq!(
        events(&mut link.acc),
        vec![
            AssociationEvent::Requested(Box::new(link.req.associate_rq().unwrap().clone())),
            AssociationEvent::Aborted(AAbort {
                source: AbortSource::ServiceUser,
                reason: AbortReason::NotSpecified,
            })
        ]
    );
    assert!(link.acc.wants_close());
}

/// Feeds `bytes` to an established acceptor; checks the A-ABORT it answers with, that the
/// requestor reports it, and that the acceptor closes at ARTIM. Returns the acceptor's
/// ProviderAborted text.
fn provider_abort_established(bytes: &[u8], reason: u8) -> String {
    let mut link = Link::established();
    link.advance(Duration::from_secs(1));
    link.acc.receive(bytes, link.now);
    // AA-8: A-ABORT (service-provider, reason), A-P-ABORT indication, ARTIM, Sta13.
    assert_eq!(link.acc.state(), State::Sta13);
    assert_eq!(link.acc.deadline(), Some(link.now + ARTIM));
    assert!(!link.acc.wants_close());
    let why = match events(&mut link.acc).as_slice() {
        [AssociationEvent::ProviderAborted(why)] => why.clone(),
        other => panic!("expected ProviderAborted, got {other:?}"),
    };
    assert_eq!(link.acc_to_req(), vec![abort_pdu(2, reason)], "{why}");
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::Aborted(AAbort {
            source: AbortSource::ServiceProvider,
            reason: AbortReason::from_value(reason),
        })]
    );
    assert!(link.req.wants_close());
    // Whatever else arrives is ignored; ARTIM closes.
    link.acc.receive(&RELEASE_RQ, link.now);
    assert!(!link.acc.has_transmit());
    assert_eq!(events(&mut link.acc), vec![]);
    let at = link.now + ARTIM;
    expire(&mut link.acc, at);
    assert!(link.acc.wants_close());
    assert!(!link.acc.has_transmit());
    why
}

#[test]
fn provider_abort_on_garbage() {
    let why = provider_abort_established(&[0xFF; 64], 1);
    assert_eq!(
        why,
        "invalid PDU from the peer: unknown PDU type 0xFF (not a DICOM peer?)"
    );
}

#[test]
fn provider_abort_on_http_request() {
    let why = provider_abort_established(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n", 1);
    assert!(why.contains("unknown PDU type 0x47"), "{why}");
}

#[test]
fn provider_abort_on_unknown_pdu_type() {
    // A well-framed PDU of type 0x08: unrecognized PDU (reason 1), refused on its first byte.
    let why = provider_abort_established(&[0x08, 0, 0, 0, 0, 4, 0, 0, 0, 0], 1);
    assert!(why.contains("unknown PDU type 0x08"), "{why}");
    let why = provider_abort_established(&[0x08], 1);
    assert!(why.contains("unknown PDU type 0x08"), "{why}");
}

#[test]
fn provider_abort_on_p_data_for_a_context_not_accepted() {
    // Context 5 was proposed and rejected; context 9 was never proposed. Invalid PDU
    // parameter value (reason 6).
    let command = echo_rq(1).encode(false).unwrap();
    for id in [MR_CTX, 9] {
        let why = provider_abort_established(&p_data(id, 0x03, &command), 6);
        assert_eq!(
            why,
            format!("a PDV on presentation context {id} which was not accepted")
        );
    }
}

#[test]
fn provider_abort_on_unexpected_pdu() {
    // A well-formed PDU the table refuses in Sta6: unexpected PDU (reason 2).
    let rj = reject_pdu(AAssociateRj {
        result: RejectResult::Permanent,
        reason: RejectReason::UserNoReasonGiven,
    });
    let why = provider_abort_established(&rj, 2);
    assert_eq!(why, "the peer sent a PDU that is not valid in this state");
    // So is an A-RELEASE-RP nobody asked for.
    provider_abort_established(&RELEASE_RP, 2);
}

#[test]
fn provider_abort_on_oversized_or_misframed_pdu() {
    // A P-DATA-TF longer than the 16384 we announced: refused from its header alone.
    let mut header = vec![0x04, 0];
    header.extend_from_slice(&16385u32.to_be_bytes());
    let why = provider_abort_established(&header, 6);
    assert!(why.contains("16385"), "{why}");
    // A fixed-size PDU with the wrong length.
    let why = provider_abort_established(&[0x05, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0], 6);
    assert!(why.contains("A-RELEASE-RQ"), "{why}");
    // A message that does not start with a command.
    let why = provider_abort_established(&p_data(ECHO_CTX, 0x02, b"data"), 6);
    assert!(why.starts_with("invalid message from the peer"), "{why}");
}

#[test]
fn provider_abort_while_awaiting_the_associate_ac() {
    // Sta5 + Evt19: AA-8 on the requestor.
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    sent(&mut link.req);
    link.req
        .receive(b"HTTP/1.1 400 Bad Request\r\n\r\n", link.now);
    assert_eq!(sent(&mut link.req), vec![abort_pdu(2, 1)]);
    match events(&mut link.req).as_slice() {
        [AssociationEvent::ProviderAborted(why)] => {
            assert!(why.contains("unknown PDU type 0x48"), "{why}")
        }
        other => panic!("expected ProviderAborted, got {other:?}"),
    }
    assert_eq!(link.req.state(), State::Sta13);
    assert_eq!(link.req.deadline(), Some(link.now + ARTIM));
}

/// Feeds `bytes` to an acceptor in Sta2 (no association yet). PS3.8 Table 9-10 answers
/// every PDU there but A-ASSOCIATE-RQ and A-ABORT, and an invalid one, with AA-1: an
/// A-ABORT whose source is the service-user (0, reason 0: Table 9-26 reasons go with source
/// 2 only), ARTIM restarted, Sta13; the connection closes at ARTIM. No event: the
/// acceptor's user has heard of nothing yet. `framed`: the bytes were a well-formed PDU,
/// so the reader can go on; otherwise it gives up on the stream.
fn abort_in_sta2(bytes: &[u8], framed: bool) {
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    link.advance(Duration::from_secs(3));
    link.acc.receive(bytes, link.now);
    assert_eq!(sent(&mut link.acc), vec![abort_pdu(0, 0)]);
    assert_eq!(link.acc.state(), State::Sta13);
    assert_eq!(
        link.acc.deadline(),
        Some(link.now + ARTIM),
        "AA-1 restarts ARTIM"
    );
    assert!(!link.acc.wants_close());
    assert_eq!(events(&mut link.acc), vec![]);
    // The A-ASSOCIATE-RQ arriving now (Sta13 + Evt6) gets AA-7, an A-ABORT from the
    // provider, unexpected PDU; after bytes that could not be framed it is not even read.
    link.advance(Duration::from_secs(1));
    link.req_to_acc();
    let expected = if framed {
        vec![abort_pdu(2, 2)]
    } else {
        vec![]
    };
    assert_eq!(sent(&mut link.acc), expected);
    assert_eq!(events(&mut link.acc), vec![]);
    // AA-7 leaves ARTIM alone: the peer cannot postpone the close by talking.
    let at = link.now - Duration::from_secs(1) + ARTIM;
    expire(&mut link.acc, at);
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    assert!(!link.acc.has_transmit());
}

#[test]
fn garbage_before_association() {
    abort_in_sta2(&[0xFF; 64], false);
    abort_in_sta2(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n", false);
    abort_in_sta2(&[0x08, 0, 0, 0, 0, 4, 0, 0, 0, 0], false);
}

#[test]
fn p_data_before_association() {
    abort_in_sta2(&p_data(1, 0x03, &echo_rq(1).encode(false).unwrap()), true);
}

#[test]
fn associate_rq_declaring_4_gb() {
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    // Refused after its 6-byte header: nothing is buffered for the body.
    link.acc
        .receive(&[0x01, 0, 0xFF, 0xFF, 0xFF, 0xFF], link.now);
    assert_eq!(sent(&mut link.acc), vec![abort_pdu(0, 0)]);
    assert_eq!(link.acc.state(), State::Sta13);
    assert!(link.acc.read_hint() >= 1);
    abort_in_sta2(&[0x01, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0], false);
}

#[test]
fn release_rq_before_association() {
    abort_in_sta2(&RELEASE_RQ, true);
}

#[test]
fn a_abort_before_association_just_closes() {
    // Sta2 + Evt16 is AA-2: close, nothing sent.
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    link.acc.receive(&abort_pdu(0, 0), link.now);
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    assert!(!link.acc.has_transmit());
    assert_eq!(events(&mut link.acc), vec![]);
}

#[test]
fn a_second_associate_rq_is_aborted() {
    // Sta6 + Evt6: AA-8, unexpected PDU.
    let mut link = Link::established();
    let rq = requestor_params(16384).build_rq().unwrap();
    let bytes = dimse_core::pdu::Pdu::AAssociateRq(rq).encode().unwrap();
    link.acc.receive(&bytes, link.now);
    assert_eq!(sent(&mut link.acc), vec![abort_pdu(2, 2)]);
    assert!(matches!(
        events(&mut link.acc).as_slice(),
        [AssociationEvent::ProviderAborted(_)]
    ));
    // Sta13 + Evt6: AA-7, another A-ABORT (service-provider).
    link.acc.receive(&bytes, link.now);
    assert_eq!(sent(&mut link.acc), vec![abort_pdu(2, 2)]);
    assert_eq!(events(&mut link.acc), vec![]);
    // Sta13 + Evt16: AA-2, close at once.
    link.acc.receive(&abort_pdu(0, 0), link.now);
    assert!(link.acc.wants_close());
    assert!(!link.acc.has_transmit());
}

// ---------------------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------------------

#[test]
fn artim_closes_an_acceptor_that_gets_no_associate_rq() {
    let now = Instant::now();
    let mut acc = Association::acceptor(timeouts(), 16384, Limits::default(), now);
    // Half a PDU header does not stop ARTIM.
    acc.receive(&[0x01, 0x00, 0x00], now + Duration::from_secs(4));
    assert_eq!(acc.state(), State::Sta2);
    expire(&mut acc, now + ARTIM);
    // Evt18 in Sta2: AA-2, close without a PDU and without an event.
    assert!(acc.wants_close());
    assert_eq!(acc.state(), State::Sta1);
    assert!(!acc.has_transmit());
    assert_eq!(events(&mut acc), vec![]);
    assert_eq!(acc.deadline(), None);
}

#[test]
fn acse_timeout_awaiting_associate_ac() {
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    sent(&mut link.req);
    let at = link.now + ACSE;
    link.advance(Duration::from_secs(7));
    expire(&mut link.req, at);
    // A-ABORT (service-user), close, and the reason for the user.
    assert_eq!(sent(&mut link.req), vec![abort_pdu(0, 0)]);
    assert!(link.req.wants_close());
    assert_eq!(link.req.state(), State::Sta1);
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::TimedOut(
            "the peer did not answer the A-ASSOCIATE-RQ within the ACSE timeout".into()
        )]
    );
    assert_eq!(link.req.deadline(), None);
}

#[test]
fn acse_timeout_awaiting_release_rp() {
    let mut link = Link::established();
    link.advance(Duration::from_secs(2));
    link.req.release(link.now).unwrap();
    assert_eq!(link.req_to_acc(), vec![RELEASE_RQ.to_vec()]);
    assert_eq!(
        events(&mut link.acc),
        vec![AssociationEvent::ReleaseRequested]
    );
    // Data still arriving in Sta7 (AR-6) does not extend the wait.
    let at = link.now + ACSE;
    link.advance(Duration::from_secs(20));
    let rsp: Command = CEchoRsp {
        message_id_being_responded_to: 1,
        status: Status::SUCCESS,
        ..Default::default()
    }
    .into();
    link.acc
        .send_message(ECHO_CTX, rsp.encode(false).unwrap().into(), None, link.now)
        .unwrap();
    link.acc_to_req();
    assert!(matches!(
        events(&mut link.req).as_slice(),
        [AssociationEvent::Message(_)]
    ));
    expire(&mut link.req, at);
    assert_eq!(sent(&mut link.req), vec![abort_pdu(0, 0)]);
    assert!(link.req.wants_close());
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::TimedOut(
            "the peer did not answer the A-RELEASE-RQ within the ACSE timeout".into()
        )]
    );
}

#[test]
fn artim_after_abort_when_the_peer_never_closes() {
    // After our A-ASSOCIATE-RJ and A-ABORT the peer is expected to close: ARTIM bounds it.
    // (The RJ case is in association_rejected_for_each_reason.)
    let mut link = Link::established();
    link.advance(Duration::from_secs(5));
    link.req.abort(link.now);
    assert_eq!(sent(&mut link.req), vec![abort_pdu(0, 0)]);
    // Whatever the peer still sends is ignored (AA-6) and does not postpone the close.
    link.advance(Duration::from_secs(9));
    link.req.receive(&RELEASE_RP, link.now);
    link.req.receive(
        &p_data(ECHO_CTX, 0x03, &echo_rq(2).encode(false).unwrap()),
        link.now,
    );
    assert!(!link.req.has_transmit());
    assert_eq!(events(&mut link.req), vec![]);
    let at = link.now - Duration::from_secs(9) + ARTIM;
    expire(&mut link.req, at);
    assert!(link.req.wants_close());
    assert!(!link.req.has_transmit());
}

#[test]
fn handle_timeout_before_or_without_deadline_does_nothing() {
    let mut link = Link::established();
    assert_eq!(link.req.deadline(), None);
    link.req
        .handle_timeout(link.now + Duration::from_secs(3600));
    link.acc
        .handle_timeout(link.now + Duration::from_secs(3600));
    assert!(link.req.is_established() && link.acc.is_established());
    link.nothing_pending();
}

// ---------------------------------------------------------------------------------------
// Transport close, idle timeout
// ---------------------------------------------------------------------------------------

#[test]
fn peer_closes_mid_pdu() {
    let mut link = Link::established();
    link.req
        .send_message(
            CT_CTX,
            store_rq(1).encode(true).unwrap().into(),
            Some(payload(3000)),
            link.now,
        )
        .unwrap();
    let bytes = sent(&mut link.req).concat();
    // The command and half the data set's PDU, then the connection drops.
    link.acc.receive(&bytes[..bytes.len() / 2], link.now);
    assert_eq!(events(&mut link.acc), vec![]);
    link.acc.transport_closed(link.now);
    // AA-4: A-P-ABORT indication; nothing can be sent any more.
    assert_eq!(
        events(&mut link.acc),
        vec![AssociationEvent::ProviderAborted(
            "the peer closed the connection".into()
        )]
    );
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    assert!(!link.acc.has_transmit());
    assert_eq!(link.acc.deadline(), None);
    // A second close report changes nothing.
    link.acc.transport_closed(link.now);
    assert_eq!(events(&mut link.acc), vec![]);
}

#[test]
fn peer_closes_mid_associate_rq() {
    let mut link = Link::connect(&requestor_params(16384), acceptor_params(16384));
    let rq = sent(&mut link.req).concat();
    link.acc.receive(&rq[..rq.len() / 2], link.now);
    link.acc.transport_closed(link.now);
    // AA-5 in Sta2: close, no event (no association was ever indicated).
    assert!(link.acc.wants_close());
    assert_eq!(link.acc.state(), State::Sta1);
    assert_eq!(events(&mut link.acc), vec![]);
    assert_eq!(link.acc.deadline(), None);
}

#[test]
fn idle_timeout_aborts() {
    let mut link = Link::established();
    link.advance(Duration::from_secs(60));
    link.req.idle_timeout(link.now);
    assert_eq!(sent(&mut link.req), vec![abort_pdu(0, 0)]);
    assert!(link.req.wants_close(), "no ARTIM wait for a silent peer");
    assert_eq!(
        events(&mut link.req),
        vec![AssociationEvent::ProviderAborted(
            "no data from the peer within the network timeout".into()
        )]
    );
    // Once closed, a second one is a no-op.
    link.req.idle_timeout(link.now);
    link.req.abort(link.now);
    assert!(!link.req.has_transmit());
    assert_eq!(events(&mut link.req), vec![]);

    // The acceptor in Sta2 has nothing to abort: it closes and says why.
    let now = Instant::now();
    let mut acc = Association::acceptor(timeouts(), 16384, Limits::default(), now);
    acc.idle_timeout(now + Duration::from_secs(1));
    assert!(acc.wants_close());
    assert!(!acc.has_transmit());
    assert!(matches!(
        events(&mut acc).as_slice(),
        [AssociationEvent::ProviderAborted(_)]
    ));

    // In Sta13 (after our own A-ABORT) it only closes: no second PDU, no event.
    let mut link = Link::established();
    link.req.abort(link.now);
    sent(&mut link.req);
    link.req.idle_timeout(link.now + TICK);
    assert!(link.req.wants_close());
    assert!(!link.req.has_transmit());
    assert_eq!(events(&mut link.req), vec![]);
}

// ---------------------------------------------------------------------------------------
// read_hint
// ---------------------------------------------------------------------------------------

#[test]
fn read_hint_is_never_zero_nor_past_the_next_pdu() {
    let mut link = Link::connect(&requestor_params(4096), acceptor_params(4096));
    // The A-ASSOCIATE-RQ, fed byte by byte to the acceptor.
    let rq = sent(&mut link.req).concat();
    assert_eq!(link.acc.read_hint(), 6, "a PDU header first");
    for (fed, byte) in rq.iter().enumerate() {
        let hint = link.acc.read_hint();
        assert!(hint >= 1);
        assert!(
            hint <= rq.len() - fed,
            "hint {hint} after {fed} of {}",
            rq.len()
        );
        if fed < 6 {
            assert_eq!(hint, 6 - fed);
        } else {
            assert_eq!(hint, rq.len() - fed, "exactly the rest of the PDU");
        }
        link.acc.receive(std::slice::from_ref(byte), link.now);
    }
    assert_eq!(link.acc.read_hint(), 6);
    let rq = match events(&mut link.acc).as_slice() {
        [AssociationEvent::Requested(rq)] => (**rq).clone(),
        other => panic!("expected Requested, got {other:?}"),
    };
    let (ac, negotiated) = negotiation::accept(&rq, &link.acc_params, &mut DefaultHooks).unwrap();
    link.acc.accept(ac, negotiated, link.now).unwrap();
    link.acc_to_req();
    events(&mut link.req);
    events(&mut link.acc);

    // A stream of several PDUs, read the way the driver reads: at most read_hint() bytes
    // at a time. No read may cross a PDU boundary.
    for id in 1..=3u16 {
        link.req
            .send_message(
                CT_CTX,
                store_rq(id).encode(true).unwrap().into(),
                Some(payload(usize::from(id) * 5000)),
                link.now,
            )
            .unwrap();
    }
    let pdus = sent(&mut link.req);
    let mut boundaries = Vec::new();
    let mut end = 0;
    for p in &pdus {
        end += p.len();
        boundaries.push(end);
    }
    let stream = pdus.concat();
    let mut pos = 0;
    let mut reads = 0;
    while pos < stream.len() {
        let hint = link.acc.read_hint();
        assert!(hint >= 1);
        let next_boundary = *boundaries.iter().find(|&&b| b > pos).unwrap();
        assert!(
            pos + hint <= next_boundary,
            "a read of {hint} at {pos} crosses the PDU ending at {next_boundary}"
        );
        // Short reads happen too: take a bit less than offered, now and then.
        let take = if reads % 3 == 2 && hint > 1 {
            hint / 2
        } else {
            hint
        };
        link.acc.receive(&stream[pos..pos + take], link.now);
        pos += take;
        reads += 1;
    }
    let ev = events(&mut link.acc);
    assert_eq!(ev.len(), 3);
    for (i, e) in ev.iter().enumerate() {
        let AssociationEvent::Message(m) = e else {
            panic!("expected Message, got {e:?}")
        };
        let id = u16::try_from(i + 1).unwrap();
        assert_eq!(decode(m), store_rq(id));
        assert_eq!(m.dataset_bytes(), Some(payload(usize::from(id) * 5000)));
    }
    // A header announcing more than we accept: the hint does not follow it.
    link.acc
        .receive(&[0x04, 0, 0x7F, 0xFF, 0xFF, 0xFF], link.now);
    let hint = link.acc.read_hint();
    assert!((1..=6).contains(&hint), "{hint}");
    // And after the abort, still at least one byte.
    assert_eq!(sent(&mut link.acc), vec![abort_pdu(2, 6)]);
    assert!(link.acc.read_hint() >= 1);
}

#[test]
fn read_buffer_and_process_received_work_like_receive() {
    let mut link = Link::established();
    link.req
        .send_message(
            ECHO_CTX,
            echo_rq(9).encode(false).unwrap().into(),
            None,
            link.now,
        )
        .unwrap();
    let bytes = sent(&mut link.req).concat();
    let (a, b) = bytes.split_at(5);
    link.acc.read_buffer().extend_from_slice(a);
    link.acc.process_received(link.now);
    assert_eq!(link.acc.read_hint(), 1);
    link.acc.read_buffer().extend_from_slice(b);
    // Not processed yet: the hint stays positive although the PDU is complete.
    assert_eq!(link.acc.read_hint(), 1);
    assert_eq!(events(&mut link.acc), vec![]);
    link.acc.process_received(link.now);
    match events(&mut link.acc).as_slice() {
        [AssociationEvent::Message(m)] => assert_eq!(decode(m), echo_rq(9)),
        other => panic!("expected Message, got {other:?}"),
    }
    assert_eq!(link.acc.read_hint(), 6);
}

// ---------------------------------------------------------------------------------------
// Limits, several PDVs in one PDU
// ---------------------------------------------------------------------------------------

#[test]
fn limits_are_enforced() {
    // A data set over Limits::max_dataset_length: A-ABORT, invalid PDU parameter value.
    let rq = requestor_params(16384).build_rq().unwrap();
    let now = Instant::now();
    let limits = Limits {
        max_dataset_length: 1000,
        ..Limits::default()
    };
    let mut link = Link::connect_rq(rq.clone(), acceptor_params(16384));
    link.acc = Association::acceptor(timeouts(), 16384, limits, link.now);
    link.establish();
    link.req
        .send_message(
            CT_CTX,
            store_rq(1).encode(true).unwrap().into(),
            Some(payload(1000)),
            link.now,
        )
        .unwrap();
    link.req_to_acc();
    assert!(matches!(
        events(&mut link.acc).as_slice(),
        [AssociationEvent::Message(m)] if m.dataset.as_ref().map(|d| d.len()) == Some(1000)
    ));
    link.req
        .send_message(
            CT_CTX,
            store_rq(2).encode(true).unwrap().into(),
            Some(payload(1001)),
            link.now,
        )
        .unwrap();
    link.req_to_acc();
    match events(&mut link.acc).as_slice() {
        [AssociationEvent::ProviderAborted(why)] => {
            assert!(why.contains("1000-byte limit on data sets"), "{why}")
        }
        other => panic!("expected ProviderAborted, got {other:?}"),
    }
    assert_eq!(sent(&mut link.acc), vec![abort_pdu(2, 6)]);

    // An A-ASSOCIATE-RQ over Limits::max_associate_length, in Sta2: AA-1.
    let encoded = dimse_core::pdu::Pdu::AAssociateRq(rq).encode().unwrap();
    let limits = Limits {
        max_associate_length: u32::try_from(encoded.len() - 7).unwrap(),
        ..Limits::default()
    };
    let mut acc = Association::acceptor(timeouts(), 16384, limits, now);
    acc.receive(&encoded[..6], now);
    assert_eq!(sent(&mut acc), vec![abort_pdu(0, 0)]);
    assert_eq!(acc.state(), State::Sta13);
    // One byte more and it fits.
    let limits = Limits {
        max_associate_length: u32::try_from(encoded.len() - 6).unwrap(),
        ..Limits::default()
    };
    let mut acc = Association::acceptor(timeouts(), 16384, limits, now);
    acc.receive(&encoded, now);
    assert!(matches!(
        events(&mut acc).as_slice(),
        [AssociationEvent::Requested(_)]
    ));
}

#[test]
fn several_pdvs_in_one_p_data_tf() {
    // Some peers put the command and the data set (or several messages) in one PDU.
    let mut link = Link::established();
    let command = store_rq(4).encode(true).unwrap();
    let dataset = payload(300);
    let echo = echo_rq(5).encode(false).unwrap();
    let mut body = Vec::new();
    for (control, data) in [
        (0x03, &command[..]),
        (0x02, &dataset[..]),
        (0x03, &echo[..]),
    ] {
        body.extend_from_slice(&u32::try_from(data.len() + 2).unwrap().to_be_bytes());
        body.push(CT_CTX);
        body.push(control);
        body.extend_from_slice(data);
    }
    // The echo on its own context in the same PDU is a fourth PDV.
    body.extend_from_slice(&u32::try_from(echo.len() + 2).unwrap().to_be_bytes());
    body.push(ECHO_CTX);
    body.push(0x03);
    body.extend_from_slice(&echo);
    let mut pdu = vec![0x04, 0];
    pdu.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    pdu.extend_from_slice(&body);
    link.acc.receive(&pdu, link.now);
    let ev = events(&mut link.acc);
    assert_eq!(ev.len(), 3, "{ev:?}");
    let messages: Vec<&ReceivedMessage> = ev
        .iter()
        .map(|e| match e {
            AssociationEvent::Message(m) => m,
            other => panic!("expected Message, got {other:?}"),
        })
        .collect();
    assert_eq!(decode(messages[0]), store_rq(4));
    assert_eq!(messages[0].dataset_bytes(), Some(dataset));
    assert_eq!(
        (messages[1].context_id, decode(messages[1])),
        (CT_CTX, echo_rq(5))
    );
    assert_eq!(
        (messages[2].context_id, decode(messages[2])),
        (ECHO_CTX, echo_rq(5))
    );
    assert!(!link.acc.has_transmit());
}

// ---------------------------------------------------------------------------------------
// A data set sent in parts; PDU observation
// ---------------------------------------------------------------------------------------

#[test]
fn data_set_sent_in_parts_arrives_as_one_message() {
    let mut link = Link::connect(&requestor_params(2048), acceptor_params(1024));
    link.establish();
    let dataset = payload(10_000);
    let command = Bytes::from(store_rq(1).encode(true).unwrap());
    link.req
        .send_message(CT_CTX, command, None, link.now)
        .unwrap();
    // Parts of any size; an empty middle part sends nothing, the last one ends it.
    let cuts = [0, 3000, 3000, 9999, 10_000];
    for w in cuts.windows(2) {
        let last = w[1] == dataset.len();
        link.req
            .send_dataset_part(CT_CTX, dataset.slice(w[0]..w[1]), last, link.now)
            .unwrap();
    }
    let pdus = sent(&mut link.req);
    assert!(p_data_lengths(&pdus).iter().all(|&l| l <= 1024));
    let last_bits: Vec<u8> = pdus.iter().map(|p| p[11] & 0x02).collect();
    assert_eq!(
        last_bits.iter().filter(|&&b| b != 0).count(),
        2,
        "only the command's and the data set's final fragment are last: {last_bits:?}"
    );
    assert_eq!(pdus[pdus.len() - 1][11], 0x02);
    link.acc.receive(&pdus.concat(), link.now);
    let message = match events(&mut link.acc).as_slice() {
        [AssociationEvent::Message(m)] => m.clone(),
        other => panic!("expected one Message, got {other:?}"),
    };
    assert_eq!(message.dataset_bytes(), Some(dataset));

    // An empty last part is one empty last fragment.
    link.req
        .send_message(
            CT_CTX,
            store_rq(2).encode(true).unwrap().into(),
            None,
            link.now,
        )
        .unwrap();
    link.req
        .send_dataset_part(CT_CTX, Bytes::new(), true, link.now)
        .unwrap();
    let pdus = sent(&mut link.req);
    assert_eq!(pdus.len(), 2);
    assert_eq!(pdus[1], p_data(CT_CTX, 0x02, &[]));
    // Not on a context that was not accepted, nor before the association is established.
    assert!(link
        .req
        .send_dataset_part(99, Bytes::new(), true, link.now)
        .is_err());
}

#[test]
fn observed_pdus_are_reported_in_order_only_when_asked() {
    let mut link = Link::established();
    link.acc.observe_pdus(true);
    link.req
        .send_message(
            CT_CTX,
            Bytes::from(echo_rq(1).encode(false).unwrap()),
            None,
            link.now,
        )
        .unwrap();
    let pdus = link.req_to_acc();
    let notes: Vec<AssociationEvent> = events(&mut link.acc);
    let AssociationEvent::Pdu(note) = &notes[0] else {
        panic!("expected the PDU first, got {notes:?}")
    };
    assert!(!note.sent);
    assert_eq!(note.pdu_type, 0x04);
    assert_eq!(note.length as usize, pdus[0].len() - 6);
    assert!(matches!(notes[1], AssociationEvent::Message(_)));
    link.acc
        .send_message(
            CT_CTX,
            Bytes::from(echo_rq(2).encode(false).unwrap()),
            None,
            link.now,
        )
        .unwrap();
    let sent_pdus = link.acc_to_req();
    match events(&mut link.acc).as_slice() {
        [AssociationEvent::Pdu(n)] => {
            assert!(n.sent);
            assert_eq!(n.pdu_type, 0x04);
            assert_eq!(n.length as usize, sent_pdus[0].len() - 6);
        }
        other => panic!("expected one sent PDU, got {other:?}"),
    }
    // The requestor was not asked: it reports messages only.
    assert!(events(&mut link.req)
        .iter()
        .all(|e| !matches!(e, AssociationEvent::Pdu(_))));
    link.acc.observe_pdus(false);
    link.req
        .send_message(
            CT_CTX,
            Bytes::from(echo_rq(3).encode(false).unwrap()),
            None,
            link.now,
        )
        .unwrap();
    link.req_to_acc();
    assert!(matches!(
        events(&mut link.acc).as_slice(),
        [AssociationEvent::Message(_)]
    ));
}
