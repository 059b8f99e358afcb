//! Fragmentation of messages into P-DATA-TF PDUs ([`Fragmenter`]) and their reassembly
//! ([`MessageAssembler`]), PS3.8 Annex E and PS3.7 8.1.

// clippy.toml allows unwrap in #[test] functions; this crate is all test code, helpers and
// proptest bodies included, so the same applies everywhere in it.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use dimse_core::message::command::{CEchoRq, CStoreRq};
use dimse_core::message::fragment::{PDataFragment, Payload, DEFAULT_MAX_COMMAND_LENGTH};
use dimse_core::message::{
    Command, CommandError, CommandSet, Fragmenter, MessageAssembler, Priority, ReassemblyError,
    ReceivedMessage,
};
use dimse_core::pdu::{Pdu, PduReader, PresentationDataValue, UNLIMITED_SEND_CLAMP};
use proptest::prelude::*;

const COMMAND: u8 = 0x01;
const LAST: u8 = 0x02;

fn store_command(message_id: u16) -> Bytes {
    Bytes::from(
        Command::from(CStoreRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            message_id,
            priority: Priority::Medium,
            affected_sop_instance_uid: "1.2.826.0.1.3680043.2.1125.1.12345".into(),
            ..Default::default()
        })
        .encode(true)
        .unwrap(),
    )
}

fn echo_command(message_id: u16) -> Bytes {
    Bytes::from(
        Command::from(CEchoRq {
            affected_sop_class_uid: "1.2.840.10008.1.1".into(),
            message_id,
        })
        .encode(false)
        .unwrap(),
    )
}

fn data(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn pdv(context_id: u8, control: u8, data: &[u8]) -> PresentationDataValue {
    PresentationDataValue {
        context_id,
        control,
        data: Bytes::copy_from_slice(data),
    }
}

/// Checks one fragment's PDU: its header fields, that its length fits `limit`, and that a
/// receiver announcing `peer_max` decodes it as one P-DATA-TF with one PDV. Returns the PDV.
fn check_fragment(f: &PDataFragment, peer_max: u32, limit: u32) -> PresentationDataValue {
    let h = f.header;
    assert_eq!(h[0], 0x04, "P-DATA-TF");
    assert_eq!(h[1], 0x00, "reserved");
    let pdu_len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
    let pdv_len = u32::from_be_bytes([h[6], h[7], h[8], h[9]]);
    assert!(
        pdu_len <= limit,
        "PDU length {pdu_len} over the peer's {limit}"
    );
    assert_eq!(pdu_len as usize, f.data.len() + 6);
    assert_eq!(pdv_len as usize, f.data.len() + 2);
    assert_eq!(f.control(), h[11]);
    assert_eq!(f.len(), 12 + f.data.len());

    let mut wire = Vec::new();
    f.encode_into(&mut wire);
    assert_eq!(wire.len(), f.len());
    let mut buf = BytesMut::from(&wire[..]);
    let Some(Pdu::PDataTf(p)) = PduReader::new(peer_max).read(&mut buf).unwrap() else {
        panic!("not a P-DATA-TF");
    };
    assert!(buf.is_empty());
    assert_eq!(p.values.len(), 1);
    let v = p.values.into_iter().next().unwrap();
    assert_eq!(v.context_id, h[10]);
    assert_eq!(v.control, h[11]);
    assert_eq!(v.data, f.data);
    v
}

#[test]
fn fragment_sizes_never_exceed_the_peer_maximum() {
    for peer_max in [0u32, 7, 8, 100, 16384, 1 << 20] {
        let limit = if peer_max == 0 {
            UNLIMITED_SEND_CLAMP
        } else {
            peer_max
        };
        let fragmenter = Fragmenter::new(peer_max);
        let mf = fragmenter.max_fragment();
        assert_eq!(mf, limit as usize - 6, "peer maximum {peer_max}");
        let mut sizes = vec![0, 1, mf - 1, mf, mf + 1, 2 * mf, 3 * mf + 1];
        if mf > 1 {
            sizes.push(mf / 2);
        }
        for size in sizes {
            let dataset = data(size);
            let frags: Vec<PDataFragment> = fragmenter.split(5, 0, dataset.clone()).collect();
            let expected_count = size.div_ceil(mf).max(1);
            assert_eq!(frags.len(), expected_count, "{size} bytes, max {peer_max}");
            let mut joined = Vec::new();
            for (i, f) in frags.iter().enumerate() {
                let v = check_fragment(f, peer_max, limit);
                let last = i + 1 == frags.len();
                if !last {
                    assert_eq!(f.data.len(), mf, "every fragment but the last is full");
                }
                assert_eq!(v.control, if last { LAST } else { 0 });
                joined.extend_from_slice(&v.data);
            }
            assert_eq!(joined, dataset);
        }
    }
}

#[test]
fn unlimited_is_clamped_and_tiny_maximums_still_progress() {
    assert_eq!(
        Fragmenter::new(0).max_fragment(),
        UNLIMITED_SEND_CLAMP as usize - 6
    );
    // 7 is the smallest maximum that carries a byte: 6 bytes of PDV header, 1 of data.
    assert_eq!(Fragmenter::new(7).max_fragment(), 1);
    assert_eq!(Fragmenter::new(8).max_fragment(), 2);
    // Smaller announcements cannot be honoured; the fragmenter still terminates.
    for peer_max in 1..=6 {
        let f = Fragmenter::new(peer_max);
        assert_eq!(f.max_fragment(), 1);
        assert_eq!(f.split(1, 0, data(3)).count(), 3);
    }
}

#[test]
fn control_header_bits() {
    // Command in 3 fragments, data set in 2: PS3.8 E.2, bit 0 = command, bit 1 = last.
    let fragmenter = Fragmenter::new(100);
    let mf = fragmenter.max_fragment();
    let command = data(2 * mf + 10);
    let dataset = data(mf + 1);
    let controls: Vec<u8> = fragmenter
        .fragments(3, command.clone(), Some(dataset.clone()))
        .map(|f| f.control())
        .collect();
    assert_eq!(
        controls,
        [COMMAND, COMMAND, COMMAND | LAST, 0x00, LAST],
        "0x01 0x01 0x03 0x00 0x02"
    );
    // Without a data set the command's last fragment ends the message.
    let controls: Vec<u8> = fragmenter
        .fragments(3, command, None)
        .map(|f| f.control())
        .collect();
    assert_eq!(controls, [0x01, 0x01, 0x03]);
    // Short command and data set: one fragment each.
    let controls: Vec<u8> = fragmenter
        .fragments(3, data(10), Some(data(10)))
        .map(|f| f.control())
        .collect();
    assert_eq!(controls, [0x03, 0x02]);
    // Every fragment carries the context ID.
    assert!(fragmenter
        .fragments(9, data(300), Some(data(300)))
        .all(|f| f.header[10] == 9));
}

#[test]
fn empty_data_set_is_one_empty_last_fragment() {
    let fragmenter = Fragmenter::new(16384);
    let command = store_command(1);
    let frags: Vec<PDataFragment> = fragmenter
        .fragments(7, command.clone(), Some(Bytes::new()))
        .collect();
    assert_eq!(frags.len(), 2);
    assert_eq!(frags[0].control(), 0x03);
    assert_eq!(frags[0].data, command);
    // The whole PDU, byte for byte: type 4, length 6, PDV length 2, context 7, control 2.
    let mut wire = Vec::new();
    frags[1].encode_into(&mut wire);
    assert_eq!(
        wire,
        [0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0x07, 0x02]
    );

    let mut assembler = MessageAssembler::default();
    let mut out = Vec::new();
    for f in frags {
        let v = check_fragment(&f, 16384, 16384);
        out.push(assembler.push(v).unwrap());
    }
    assert_eq!(out[0], None);
    assert_eq!(
        out[1],
        Some(ReceivedMessage {
            context_id: 7,
            command: CommandSet::decode(&command).unwrap(),
            dataset: Some(Bytes::new().into()),
        })
    );
    assert!(!assembler.in_progress());
}

#[test]
fn data_set_exactly_a_multiple_of_the_fragment_size() {
    let fragmenter = Fragmenter::new(100);
    let mf = fragmenter.max_fragment();
    assert_eq!(mf, 94);
    for n in 1..=4 {
        let dataset = data(n * mf);
        let frags: Vec<PDataFragment> = fragmenter.split(1, 0, dataset.clone()).collect();
        // No empty fragment after the last full one.
        assert_eq!(frags.len(), n);
        assert!(frags.iter().all(|f| f.data.len() == mf));
        let controls: Vec<u8> = frags.iter().map(PDataFragment::control).collect();
        let mut expected = vec![0x00; n - 1];
        expected.push(LAST);
        assert_eq!(controls, expected);
        // PDU length exactly the peer's maximum.
        for f in &frags {
            assert_eq!(&f.header[2..6], &100u32.to_be_bytes());
        }
    }
}

#[test]
fn encode_message_is_the_fragments_back_to_back() {
    let fragmenter = Fragmenter::new(64);
    let command = store_command(3);
    let dataset = data(500);
    let wire = fragmenter.encode_message(1, command.clone(), Some(dataset.clone()));
    let mut expected = Vec::new();
    for f in fragmenter.fragments(1, command.clone(), Some(dataset.clone())) {
        f.encode_into(&mut expected);
    }
    assert_eq!(wire, expected);

    // A receiver reads it PDU by PDU and reassembles the message.
    let reader = PduReader::new(64);
    let mut buf = BytesMut::from(&wire[..]);
    let mut assembler = MessageAssembler::default();
    let mut messages = Vec::new();
    while let Some(pdu) = reader.read(&mut buf).unwrap() {
        let Pdu::PDataTf(p) = pdu else {
            panic!("not a P-DATA-TF")
        };
        for v in p.values {
            messages.extend(assembler.push(v).unwrap());
        }
    }
    assert!(buf.is_empty());
    assert_eq!(
        messages,
        [ReceivedMessage {
            context_id: 1,
            command: CommandSet::decode(&command).unwrap(),
            dataset: Some(dataset.into()),
        }]
    );
}

#[test]
fn command_set_spread_over_several_fragments() {
    // 2-byte fragments: the command set arrives in dozens of pieces.
    let fragmenter = Fragmenter::new(8);
    let command = echo_command(77);
    let frags: Vec<PDataFragment> = fragmenter.fragments(5, command.clone(), None).collect();
    assert_eq!(frags.len(), command.len().div_ceil(2));
    let mut assembler = MessageAssembler::default();
    let (last, rest) = frags.split_last().unwrap();
    for f in rest {
        assert_eq!(f.control(), COMMAND);
        assert_eq!(assembler.push(check_fragment(f, 8, 8)).unwrap(), None);
        assert!(assembler.in_progress());
    }
    let message = assembler.push(check_fragment(last, 8, 8)).unwrap().unwrap();
    assert_eq!(message.context_id, 5);
    assert_eq!(message.dataset, None);
    assert_eq!(message.command, CommandSet::decode(&command).unwrap());
    let decoded = Command::from_command_set(&message.command).unwrap();
    assert_eq!(decoded.command.message_id(), Some(77));
    assert!(!assembler.in_progress());

    // Split by hand, with an empty fragment in the middle.
    let mut assembler = MessageAssembler::default();
    assert_eq!(
        assembler.push(pdv(5, COMMAND, &command[..10])).unwrap(),
        None
    );
    assert_eq!(assembler.push(pdv(5, COMMAND, &[])).unwrap(), None);
    let message = assembler
        .push(pdv(5, COMMAND | LAST, &command[10..]))
        .unwrap()
        .unwrap();
    assert_eq!(message.command, CommandSet::decode(&command).unwrap());
}

#[test]
fn data_before_command() {
    let mut assembler = MessageAssembler::default();
    for control in [0x00, LAST] {
        assert_eq!(
            assembler.push(pdv(1, control, &[1, 2])),
            Err(ReassemblyError::DataBeforeCommand)
        );
        assert!(!assembler.in_progress());
    }
    // A data fragment while the command is still incomplete.
    let command = store_command(1);
    assert_eq!(
        assembler.push(pdv(1, COMMAND, &command[..20])).unwrap(),
        None
    );
    assert_eq!(
        assembler.push(pdv(1, LAST, &[1, 2])),
        Err(ReassemblyError::DataBeforeCommand)
    );
    assert!(!assembler.in_progress());
    // The assembler is usable again after the error.
    assert_eq!(
        assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap(),
        None
    );
    let message = assembler.push(pdv(1, LAST, &[9, 9])).unwrap().unwrap();
    assert_eq!(message.dataset_bytes(), Some(Bytes::from_static(&[9, 9])));
}

#[test]
fn command_while_data_is_expected() {
    let mut assembler = MessageAssembler::default();
    let command = store_command(1);
    assert_eq!(
        assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap(),
        None
    );
    assert!(assembler.in_progress());
    // Part of the data set, then a command.
    assert_eq!(assembler.push(pdv(1, 0x00, &[1, 2, 3])).unwrap(), None);
    for control in [COMMAND, COMMAND | LAST] {
        let mut a = MessageAssembler::default();
        a.push(pdv(1, COMMAND | LAST, &command)).unwrap();
        assert_eq!(
            a.push(pdv(1, control, &echo_command(2))),
            Err(ReassemblyError::CommandInsteadOfData)
        );
        assert!(!a.in_progress());
    }
    assert_eq!(
        assembler.push(pdv(1, COMMAND | LAST, &echo_command(2))),
        Err(ReassemblyError::CommandInsteadOfData)
    );
    assert!(!assembler.in_progress());
    // After the reset, a message without data set comes through whole.
    let message = assembler
        .push(pdv(1, COMMAND | LAST, &echo_command(2)))
        .unwrap()
        .unwrap();
    assert_eq!(message.dataset, None);
}

#[test]
fn context_mismatch() {
    let command = store_command(1);
    // Within the command set.
    let mut assembler = MessageAssembler::default();
    assembler.push(pdv(1, COMMAND, &command[..8])).unwrap();
    assert_eq!(
        assembler.push(pdv(3, COMMAND | LAST, &command[8..])),
        Err(ReassemblyError::ContextMismatch {
            expected: 1,
            got: 3
        })
    );
    assert!(!assembler.in_progress());
    // Between the command set and its data set.
    assembler.push(pdv(5, COMMAND | LAST, &command)).unwrap();
    assert_eq!(
        assembler.push(pdv(7, LAST, &[0])),
        Err(ReassemblyError::ContextMismatch {
            expected: 5,
            got: 7
        })
    );
    // Within the data set.
    assembler.push(pdv(5, COMMAND | LAST, &command)).unwrap();
    assembler.push(pdv(5, 0x00, &[0, 1])).unwrap();
    assert_eq!(
        assembler.push(pdv(9, LAST, &[2])),
        Err(ReassemblyError::ContextMismatch {
            expected: 5,
            got: 9
        })
    );
    assert!(!assembler.in_progress());
}

#[test]
fn data_set_size_limit() {
    let command = store_command(1);
    let limit = 10;
    // Exactly the limit, in two fragments: accepted.
    let mut assembler = MessageAssembler::new(limit);
    assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assembler.push(pdv(1, 0x00, &[0; 6])).unwrap();
    let message = assembler.push(pdv(1, LAST, &[1; 4])).unwrap().unwrap();
    assert_eq!(
        message.dataset_bytes().as_deref(),
        Some(&[0, 0, 0, 0, 0, 0, 1, 1, 1, 1][..])
    );
    // The count restarts with each message: a second message of 6 + 4 bytes passes too.
    assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assembler.push(pdv(1, 0x00, &[0; 6])).unwrap();
    assert!(assembler.push(pdv(1, LAST, &[1; 4])).unwrap().is_some());
    // One byte over, across fragments.
    assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assembler.push(pdv(1, 0x00, &[0; 6])).unwrap();
    assert_eq!(
        assembler.push(pdv(1, LAST, &[1; 5])),
        Err(ReassemblyError::TooLarge {
            what: "data sets",
            limit
        })
    );
    assert!(!assembler.in_progress());
    // One byte over, in one fragment; then the count restarts after the error.
    assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assert!(matches!(
        assembler.push(pdv(1, LAST, &[0; 11])),
        Err(ReassemblyError::TooLarge { .. })
    ));
    assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assert!(assembler.push(pdv(1, LAST, &[0; 10])).unwrap().is_some());
}

#[test]
fn command_set_size_limit() {
    let mut assembler = MessageAssembler::default();
    let chunk = vec![0u8; 16 * 1024];
    for _ in 0..DEFAULT_MAX_COMMAND_LENGTH / chunk.len() {
        assert_eq!(assembler.push(pdv(1, COMMAND, &chunk)).unwrap(), None);
    }
    assert_eq!(
        assembler.push(pdv(1, COMMAND, &[0])),
        Err(ReassemblyError::TooLarge {
            what: "command sets",
            limit: DEFAULT_MAX_COMMAND_LENGTH
        })
    );
    assert!(!assembler.in_progress());
}

#[test]
fn invalid_command_set_is_an_error() {
    let mut assembler = MessageAssembler::default();
    let e = assembler
        .push(pdv(1, COMMAND | LAST, &[0x00, 0x00, 0x10, 0x01, 0x02]))
        .unwrap_err();
    assert_eq!(
        e,
        ReassemblyError::Command(CommandError::Truncated { offset: 0 })
    );
    assert!(!assembler.in_progress());
    // Spread over two fragments.
    let mut command = echo_command(1).to_vec();
    command[8] ^= 0x40; // group length
    assembler.push(pdv(1, COMMAND, &command[..30])).unwrap();
    assert!(matches!(
        assembler.push(pdv(1, COMMAND | LAST, &command[30..])),
        Err(ReassemblyError::Command(
            CommandError::GroupLengthMismatch { .. }
        ))
    ));
    assert!(!assembler.in_progress());
}

#[test]
fn messages_back_to_back_on_different_contexts() {
    let fragmenter = Fragmenter::new(50);
    let mut assembler = MessageAssembler::default();
    let messages = [
        (1u8, echo_command(1), None),
        (3, store_command(2), Some(data(200))),
        (5, store_command(3), Some(Bytes::new())),
        (1, echo_command(4), None),
    ];
    let mut got = Vec::new();
    for (ctx, command, dataset) in &messages {
        for f in fragmenter.fragments(*ctx, command.clone(), dataset.clone()) {
            got.extend(assembler.push(check_fragment(&f, 50, 50)).unwrap());
        }
    }
    let expected: Vec<ReceivedMessage> = messages
        .iter()
        .map(|(ctx, command, dataset)| ReceivedMessage {
            context_id: *ctx,
            command: CommandSet::decode(command).unwrap(),
            dataset: dataset.clone().map(Payload::from),
        })
        .collect();
    assert_eq!(got, expected);
}

fn peer_max() -> impl Strategy<Value = u32> {
    prop_oneof![
        7u32..64,
        64u32..2048,
        Just(0),
        Just(8),
        Just(16384),
        Just(1 << 20),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reassembly_gives_back_the_message(
        max in peer_max(),
        ctx in any::<u8>(),
        message_id in any::<u16>(),
        dataset_len in prop::option::of(0usize..5000),
    ) {
        let fragmenter = Fragmenter::new(max);
        let limit = if max == 0 { UNLIMITED_SEND_CLAMP } else { max };
        let dataset = dataset_len.map(data);
        let command = if dataset.is_some() {
            store_command(message_id)
        } else {
            echo_command(message_id)
        };
        let frags: Vec<PDataFragment> =
            fragmenter.fragments(ctx, command.clone(), dataset.clone()).collect();
        let mf = fragmenter.max_fragment();
        let expected_count = command.len().div_ceil(mf)
            + dataset.as_ref().map_or(0, |d| d.len().div_ceil(mf).max(1));
        prop_assert_eq!(frags.len(), expected_count);

        let mut assembler = MessageAssembler::default();
        let mut result = None;
        for (i, f) in frags.iter().enumerate() {
            let v = check_fragment(f, max, limit);
            let out = assembler.push(v).unwrap();
            if i + 1 < frags.len() {
                prop_assert_eq!(out, None);
                prop_assert!(assembler.in_progress());
            } else {
                result = out;
            }
        }
        prop_assert!(!assembler.in_progress());
        prop_assert_eq!(
            result,
            Some(ReceivedMessage {
                context_id: ctx,
                command: CommandSet::decode(&command).unwrap(),
                dataset: dataset.map(Payload::from),
            })
        );
    }

    #[test]
    fn reassembly_from_a_byte_stream_in_arbitrary_chunks(
        max in 7u32..200,
        dataset_len in 0usize..2000,
        chunk in 1usize..300,
    ) {
        // The sender's bytes arrive in chunks of any size; the reader and the assembler
        // together give back the message.
        let fragmenter = Fragmenter::new(max);
        let command = store_command(9);
        let dataset = data(dataset_len);
        let wire = fragmenter.encode_message(3, command.clone(), Some(dataset.clone()));
        let reader = PduReader::new(max);
        let mut assembler = MessageAssembler::new(dataset_len);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(pdu) = reader.read(&mut buf).unwrap() {
                let Pdu::PDataTf(p) = pdu else { panic!("not a P-DATA-TF") };
                for v in p.values {
                    got.extend(assembler.push(v).unwrap());
                }
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(
            got,
            vec![ReceivedMessage {
                context_id: 3,
                command: CommandSet::decode(&command).unwrap(),
                dataset: Some(dataset.into()),
            }]
        );
    }
}

#[test]
fn payload_keeps_parts_and_compares_by_content() {
    let whole = Payload::from(Bytes::from_static(b"abcdefgh"));
    let split = Payload::from_parts([
        Bytes::from_static(b"abc"),
        Bytes::new(),
        Bytes::from_static(b"de"),
        Bytes::from_static(b"fgh"),
    ]);
    assert_eq!(split.parts().len(), 3, "empty parts are dropped");
    assert_eq!(split.len(), 8);
    assert_eq!(split, whole);
    assert_ne!(split, Payload::from(Bytes::from_static(b"abcdefgX")));
    assert_ne!(split, Payload::from(Bytes::from_static(b"abcdefg")));
    assert_eq!(split.to_bytes(), Bytes::from_static(b"abcdefgh"));
    assert_eq!(split.prefix(4), Bytes::from_static(b"abcd"));
    assert_eq!(split.prefix(2), Bytes::from_static(b"ab"));
    assert_eq!(split.prefix(100), Bytes::from_static(b"abcdefgh"));
    let mut out = [0u8; 8];
    split.copy_to_slice(&mut out);
    assert_eq!(&out, b"abcdefgh");
    assert!(Payload::default().is_empty());
    assert_eq!(Payload::default().to_bytes(), Bytes::new());
}

#[test]
fn reassembled_data_set_is_not_joined() {
    let mut assembler = MessageAssembler::new(usize::MAX);
    let command = CStoreRq {
        affected_sop_class_uid: "1.2".into(),
        message_id: 1,
        affected_sop_instance_uid: "1.2.3".into(),
        ..Default::default()
    };
    let command = Command::CStoreRq(command).encode(true).unwrap();
    assembler.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assembler.push(pdv(1, 0x00, &[1; 6])).unwrap();
    assembler.push(pdv(1, 0x00, &[2; 6])).unwrap();
    let message = assembler.push(pdv(1, LAST, &[3; 4])).unwrap().unwrap();
    let payload = message.dataset.unwrap();
    assert_eq!(payload.parts().len(), 3);
    assert_eq!(payload.len(), 16);
}

#[test]
fn data_sets_above_the_threshold_are_passed_on_in_parts() {
    use dimse_core::message::Assembled;
    let command = Command::CStoreRq(CStoreRq {
        affected_sop_class_uid: "1.2".into(),
        message_id: 9,
        affected_sop_instance_uid: "1.2.3".into(),
        ..Default::default()
    })
    .encode(true)
    .unwrap();
    // Threshold 10: a 6-byte data set comes whole; a 30-byte one in parts.
    let mut assembler = MessageAssembler::new(12).with_stream_threshold(10);
    assert_eq!(
        assembler
            .push_assembled(pdv(1, COMMAND | LAST, &command))
            .unwrap(),
        None
    );
    match assembler.push_assembled(pdv(1, LAST, &[7; 6])).unwrap() {
        Some(Assembled::Message(m)) => assert_eq!(m.dataset_bytes().unwrap().len(), 6),
        other => panic!("{other:?}"),
    }
    assembler
        .push_assembled(pdv(1, COMMAND | LAST, &command))
        .unwrap();
    assert_eq!(assembler.push_assembled(pdv(1, 0, &[1; 8])).unwrap(), None);
    let mut got = Vec::new();
    match assembler.push_assembled(pdv(1, 0, &[2; 8])).unwrap() {
        Some(Assembled::Started {
            context_id: 1,
            command: c,
            head,
        }) => {
            assert_eq!(c.get_us(0x0110), Some(9));
            got.extend_from_slice(&head.to_bytes());
        }
        other => panic!("{other:?}"),
    }
    // Past the threshold the 12-byte memory limit no longer applies: nothing is held.
    for (n, last) in [(6u8, false), (8, true)] {
        match assembler
            .push_assembled(pdv(1, if last { LAST } else { 0 }, &[n; 7]))
            .unwrap()
        {
            Some(Assembled::Part { data, last: l }) => {
                assert_eq!(l, last);
                got.extend_from_slice(&data);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got.len(), 30);
    assert_eq!(&got[..8], &[1; 8]);
    assert_eq!(&got[23..], &[8; 7]);
    assert!(!assembler.in_progress());
    // The plain push() refuses what it would have to stream.
    let mut plain = MessageAssembler::new(usize::MAX).with_stream_threshold(4);
    plain.push(pdv(1, COMMAND | LAST, &command)).unwrap();
    assert!(plain.push(pdv(1, 0, &[0; 6])).is_err());
}
