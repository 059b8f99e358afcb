//! One [`Association`] (either role) driven by a program of peer PDUs, raw bytes, user
//! calls and clock jumps: the PS3.8 state machine, the PDU reader and the message
//! assembler together, in every state the program reaches.
//!
//! Byte 0: bit 0 the role (set: acceptor), bits 1-2 the limits (stream threshold,
//! largest data set, our Maximum Length). The rest is a sequence of operations, each an
//! opcode byte followed by its operands (missing operands read as zero):
//!
//! | op % 18 | operation |
//! |---|---|
//! | 0 | raw bytes from the peer: length byte, bytes |
//! | 1 | a well-formed A-ASSOCIATE-RQ (acceptor) or the A-ASSOCIATE-AC answering ours (requestor) |
//! | 2 | A-ASSOCIATE-RJ with result, source, reason bytes |
//! | 3 | P-DATA-TF: PDV count, then per PDV context, control header, length, bytes |
//! | 4 | P-DATA-TF with a valid C-ECHO-RQ (or a C-STORE-RQ announcing a data set) |
//! | 5, 6 | A-RELEASE-RQ, A-RELEASE-RP |
//! | 7 | A-ABORT with source and reason bytes |
//! | 8 | user: accept the A-ASSOCIATE-RQ received (negotiated for real) |
//! | 9 | user: reject |
//! | 10 | user: send a C-ECHO-RQ (or a C-STORE with a data set) on a context byte |
//! | 11 | user: release; 12: answer a release; 13: abort |
//! | 14 | the clock moves on by a byte of seconds; a due deadline fires |
//! | 15 | network timeout; 16: the transport closed; 17: a data set part |
//!
//! Checked besides "no panic, no hang": every PDU we queue decodes with our own reader;
//! the association is established at most once and delivers messages only while
//! established; once it asks for the transport to close it keeps asking; a deadline is
//! never in the past after it fired.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use dimse_core::association::{Association, AssociationEvent, Limits, Transmit};
use dimse_core::message::command::{CEchoRq, CStoreRq};
use dimse_core::message::{Command, Priority};
use dimse_core::negotiation::{self, AcceptorParams, DefaultHooks, RequestorParams};
use dimse_core::pdu::{self, AAssociateRj, AeTitle, Pdu, RejectReason, RejectResult};
use dimse_core::uid::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION};
use dimse_core::ul::Timeouts;
use libfuzzer_sys::fuzz_target;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

fn aet(s: &str) -> AeTitle {
    AeTitle::new(s).expect("valid by construction")
}

fn requestor_params(max_pdu: u32) -> RequestorParams {
    let mut p = RequestorParams::new(aet("FUZZSCU"), aet("ANY-SCP"));
    p.max_pdu_length = max_pdu;
    let _ = p.add_context(VERIFICATION, &[IMPLICIT_VR_LITTLE_ENDIAN]);
    let _ = p.add_context(CT, &[EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]);
    p
}

fn acceptor_params(max_pdu: u32) -> AcceptorParams {
    let mut p = AcceptorParams::new(aet("ANY-SCP"));
    p.max_pdu_length = max_pdu;
    p.add_context(VERIFICATION, &[IMPLICIT_VR_LITTLE_ENDIAN]);
    p.add_context(CT, &[IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]);
    p
}

/// Reads operands; past the end of the input every byte is zero.
struct Program<'a> {
    bytes: &'a [u8],
}

impl Program<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes {
            [b, rest @ ..] => {
                self.bytes = rest;
                *b
            }
            [] => 0,
        }
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }
}

fn echo_command(message_id: u16) -> Vec<u8> {
    Command::from(CEchoRq {
        affected_sop_class_uid: VERIFICATION.into(),
        message_id,
    })
    .encode(false)
    .expect("valid by construction")
}

fn store_command(message_id: u16) -> Vec<u8> {
    Command::from(CStoreRq {
        affected_sop_class_uid: CT.into(),
        message_id,
        priority: Priority::Medium,
        affected_sop_instance_uid: "1.2.3.4".into(),
        move_originator_ae_title: None,
        move_originator_message_id: None,
    })
    .encode(true)
    .expect("valid by construction")
}

fn p_data(values: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (context_id, control, data) in values {
        let len = u32::try_from(data.len() + 2).expect("small");
        body.extend_from_slice(&len.to_be_bytes());
        body.push(*context_id);
        body.push(*control);
        body.extend_from_slice(data);
    }
    let mut pdu = vec![0x04, 0];
    pdu.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    pdu.extend_from_slice(&body);
    pdu
}

/// What the checks remember across operations.
#[derive(Default)]
struct Seen {
    established: u32,
    closing: bool,
    requested: Option<pdu::AAssociateRq>,
}

fn drain(assoc: &mut Association, seen: &mut Seen) {
    while let Some(t) = assoc.poll_transmit() {
        let wire = match t {
            Transmit::Pdu(b) => b,
            Transmit::Fragment(f) => {
                let mut out = Vec::with_capacity(f.len());
                f.encode_into(&mut out);
                Bytes::from(out)
            }
        };
        if let Err(e) = pdu::read::decode(wire.clone()) {
            panic!("we queued a PDU our own reader refuses ({e}): {wire:02x?}");
        }
    }
    while let Some(event) = assoc.poll_event() {
        match event {
            AssociationEvent::Established(_) => {
                seen.established += 1;
                assert_eq!(seen.established, 1, "established twice");
            }
            AssociationEvent::Requested(rq) => {
                assert_eq!(seen.established, 0, "an A-ASSOCIATE-RQ after establishment");
                seen.requested = Some(*rq);
            }
            AssociationEvent::Message(_)
            | AssociationEvent::DataSetStarted { .. }
            | AssociationEvent::DataSetPart { .. } => {
                assert_eq!(seen.established, 1, "a message outside an association");
            }
            _ => {}
        }
    }
    if seen.closing {
        assert!(assoc.wants_close(), "the association took back its close");
    }
    seen.closing = assoc.wants_close();
}

fuzz_target!(|data: &[u8]| {
    let [setup, rest @ ..] = data else {
        return;
    };
    let acceptor = setup & 1 != 0;
    let (limits, max_pdu) = match (setup >> 1) & 3 {
        0 => (Limits::default(), 16384),
        1 => (
            Limits {
                stream_threshold: 16,
                ..Limits::default()
            },
            16384,
        ),
        2 => (
            Limits {
                max_dataset_length: 64,
                ..Limits::default()
            },
            64,
        ),
        _ => (
            Limits {
                max_associate_length: 256,
                stream_threshold: 0,
                ..Limits::default()
            },
            0,
        ),
    };
    let timeouts = Timeouts {
        artim: Duration::from_secs(10),
        acse: Duration::from_secs(30),
    };
    let mut now = Instant::now();
    let rq_params = requestor_params(max_pdu);
    let Ok(our_rq) = rq_params.build_rq() else {
        return;
    };
    let ac_params = acceptor_params(max_pdu);
    let mut assoc = if acceptor {
        Association::acceptor(timeouts, max_pdu, limits, now)
    } else {
        let mut a = Association::requestor(our_rq.clone(), timeouts, limits, now);
        a.transport_connected(now);
        a
    };
    let mut seen = Seen::default();
    drain(&mut assoc, &mut seen);
    let mut program = Program { bytes: rest };
    // Bounded: every operation consumes at least its opcode byte.
    while !program.bytes.is_empty() {
        let op = program.byte() % 18;
        match op {
            0 => {
                let n = usize::from(program.byte());
                let bytes = program.take(n).to_vec();
                assoc.receive(&bytes, now);
            }
            1 => {
                let pdu = if acceptor {
                    Pdu::AAssociateRq(our_rq.clone())
                } else {
                    match negotiation::accept(&our_rq, &ac_params, &mut DefaultHooks) {
                        Ok((ac, _)) => Pdu::AAssociateAc(ac),
                        Err(rj) => Pdu::AAssociateRj(rj),
                    }
                };
                if let Ok(bytes) = pdu.encode() {
                    assoc.receive(&bytes, now);
                }
            }
            2 => {
                let (result, source, reason) = (program.byte(), program.byte(), program.byte());
                assoc.receive(&[0x03, 0, 0, 0, 0, 4, 0, result, source, reason], now);
            }
            3 => {
                let count = usize::from(program.byte() % 4);
                let mut owned = Vec::new();
                for _ in 0..count {
                    let context_id = [1, 3, 5, program.byte()][usize::from(program.byte() & 3)];
                    let control = program.byte();
                    let len = usize::from(program.byte());
                    owned.push((context_id, control, program.take(len).to_vec()));
                }
                let values: Vec<(u8, u8, &[u8])> = owned
                    .iter()
                    .map(|(c, h, d)| (*c, *h, d.as_slice()))
                    .collect();
                assoc.receive(&p_data(&values), now);
            }
            4 => {
                let message_id = u16::from(program.byte());
                let bytes = if program.byte() & 1 == 0 {
                    p_data(&[(1, 0x03, &echo_command(message_id))])
                } else {
                    let len = usize::from(program.byte());
                    let dataset = program.take(len).to_vec();
                    p_data(&[(3, 0x03, &store_command(message_id)), (3, 0x02, &dataset)])
                };
                assoc.receive(&bytes, now);
            }
            5 => assoc.receive(&[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0], now),
            6 => assoc.receive(&[0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0], now),
            7 => {
                let (source, reason) = (program.byte(), program.byte());
                assoc.receive(&[0x07, 0, 0, 0, 0, 4, 0, 0, source, reason], now);
            }
            8 => {
                let outcome = match &seen.requested {
                    Some(rq) => negotiation::accept(rq, &ac_params, &mut DefaultHooks),
                    None => negotiation::accept(&our_rq, &ac_params, &mut DefaultHooks),
                };
                match outcome {
                    Ok((ac, negotiated)) => {
                        let _ = assoc.accept(ac, negotiated, now);
                    }
                    Err(rj) => {
                        let _ = assoc.reject(rj, now);
                    }
                }
            }
            9 => {
                let _ = assoc.reject(
                    AAssociateRj {
                        result: RejectResult::Permanent,
                        reason: RejectReason::UserNoReasonGiven,
                    },
                    now,
                );
            }
            10 => {
                let context_id = program.byte();
                let message_id = u16::from(program.byte());
                let _ = if context_id & 1 == 0 {
                    assoc.send_message(context_id | 1, Bytes::from(echo_command(message_id)), None, now)
                } else {
                    let len = usize::from(program.byte()) * 64;
                    assoc.send_message(
                        context_id,
                        Bytes::from(store_command(message_id)),
                        Some(Bytes::from(vec![0u8; len])),
                        now,
                    )
                };
            }
            11 => {
                let _ = assoc.release(now);
            }
            12 => {
                let _ = assoc.release_response(now);
            }
            13 => assoc.abort(now),
            14 => {
                now += Duration::from_secs(u64::from(program.byte()));
                if assoc.deadline().is_some_and(|d| now >= d) {
                    assoc.handle_timeout(now);
                    if let Some(d) = assoc.deadline() {
                        assert!(d > now || assoc.wants_close(), "a deadline that fired stayed due");
                    }
                }
            }
            15 => assoc.idle_timeout(now),
            16 => assoc.transport_closed(now),
            _ => {
                let context_id = program.byte();
                let len = usize::from(program.byte());
                let part = Bytes::copy_from_slice(program.take(len));
                let last = program.byte() & 1 != 0;
                let _ = assoc.send_dataset_part(context_id, part, last, now);
            }
        }
        drain(&mut assoc, &mut seen);
    }
});
