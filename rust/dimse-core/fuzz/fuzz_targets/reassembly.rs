//! Message reassembly from PDVs, and fragmentation back into them.
//!
//! Byte 0 chooses the mode and the data set limit:
//! - bit 7 clear: the rest is a sequence of PDVs, each `h, len_lo, len_hi, data[len]`
//!   (h bits 0-1: one of four presentation context IDs, bits 2-7: the message control
//!   header, whose bits 2-5 are reserved noise the assembler must ignore). They are pushed
//!   into a [`MessageAssembler`] and checked against a model of PS3.8 Annex E: a message
//!   it returns holds exactly the bytes of its fragments, and every error it reports is
//!   justified by the PDVs so far.
//! - bit 7 set: a command set and data set built from the input go through [`Fragmenter`]
//!   for a peer maximum length taken from the input, each fragment through the PDU codec,
//!   and back through the assembler; the message must come out unchanged.
#![no_main]

use bytes::Bytes;
use dimse_core::message::command_set::{DATA_SET_ABSENT, DATA_SET_PRESENT};
use dimse_core::message::element::tags;
use dimse_core::message::fragment::DEFAULT_MAX_COMMAND_LENGTH;
use dimse_core::message::{
    CommandSet, Fragmenter, MessageAssembler, ReassemblyError, ReceivedMessage,
};
use dimse_core::pdu::{self, Pdu, PresentationDataValue};
use libfuzzer_sys::fuzz_target;

const CONTEXTS: [u8; 4] = [1, 3, 5, 255];

/// What the assembler should have buffered, rebuilt from the PDVs it accepted.
#[derive(Default)]
struct Model {
    context_id: Option<u8>,
    command: Vec<u8>,
    data: Vec<u8>,
    /// The last command fragment is in and announced a data set.
    awaiting_data: bool,
}

fn check_pdvs(max_dataset: usize, mut input: &[u8]) {
    let mut asm = MessageAssembler::new(max_dataset);
    let mut model = Model::default();
    while let [h, lo, hi, rest @ ..] = input {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (data, rest) = rest.split_at(len);
        input = rest;
        let pdv = PresentationDataValue {
            context_id: CONTEXTS[usize::from(h & 3)],
            control: h >> 2,
            data: Bytes::copy_from_slice(data),
        };
        let result = asm.push(pdv.clone());
        match result {
            Err(e) => {
                justify(&e, &model, &pdv, max_dataset);
                assert!(!asm.in_progress(), "an error must reset the assembler");
                model = Model::default();
            }
            Ok(done) => {
                assert_eq!(
                    pdv.is_command(),
                    !model.awaiting_data,
                    "a command fragment was accepted while data was expected, or the reverse"
                );
                if let Some(expected) = model.context_id {
                    assert_eq!(pdv.context_id, expected, "context IDs interleaved");
                }
                model.context_id = Some(pdv.context_id);
                if pdv.is_command() {
                    model.command.extend_from_slice(data);
                } else {
                    model.data.extend_from_slice(data);
                }
                match done {
                    None => {
                        assert!(asm.in_progress());
                        if pdv.is_command() && pdv.is_last() {
                            let cs = CommandSet::decode(&model.command)
                                .expect("a command that completed must decode");
                            assert!(cs.has_dataset(), "a command without data set must complete");
                            model.awaiting_data = true;
                        }
                    }
                    Some(message) => {
                        check_message(&message, &model, &pdv);
                        assert!(!asm.in_progress());
                        model = Model::default();
                    }
                }
            }
        }
    }
}

fn check_message(message: &ReceivedMessage, model: &Model, last: &PresentationDataValue) {
    assert!(last.is_last(), "only a last fragment completes a message");
    assert_eq!(Some(message.context_id), model.context_id);
    let command = CommandSet::decode(&model.command).expect("the command decoded once already");
    assert_eq!(message.command, command);
    match &message.dataset {
        None => {
            assert!(last.is_command() && !command.has_dataset());
            assert!(model.data.is_empty());
        }
        Some(dataset) => {
            assert!(!last.is_command() && command.has_dataset());
            assert_eq!(
                dataset.to_bytes()[..],
                model.data[..],
                "data set bytes differ from the PDVs"
            );
        }
    }
}

/// Asserts that the PDVs so far, ending with `pdv`, deserve the error.
fn justify(e: &ReassemblyError, model: &Model, pdv: &PresentationDataValue, max_dataset: usize) {
    match e {
        ReassemblyError::DataBeforeCommand => {
            assert!(!pdv.is_command() && !model.awaiting_data, "{e}")
        }
        ReassemblyError::CommandInsteadOfData => {
            assert!(pdv.is_command() && model.awaiting_data, "{e}")
        }
        ReassemblyError::ContextMismatch { expected, got } => {
            assert_eq!(model.context_id, Some(*expected), "{e}");
            assert_eq!(pdv.context_id, *got, "{e}");
            assert_ne!(expected, got, "{e}");
        }
        ReassemblyError::TooLarge { limit, .. } if model.awaiting_data => {
            assert_eq!(*limit, max_dataset);
            assert!(model.data.len() + pdv.data.len() > max_dataset, "{e}");
        }
        ReassemblyError::TooLarge { limit, .. } => {
            assert_eq!(*limit, DEFAULT_MAX_COMMAND_LENGTH);
            assert!(
                model.command.len() + pdv.data.len() > DEFAULT_MAX_COMMAND_LENGTH,
                "{e}"
            );
        }
        ReassemblyError::Command(err) => {
            assert!(pdv.is_command() && pdv.is_last(), "{e}");
            let mut all = model.command.clone();
            all.extend_from_slice(&pdv.data);
            assert_eq!(CommandSet::decode(&all).as_ref(), Err(err));
        }
    }
}

fn check_fragmenter(input: &[u8]) {
    let [lo, hi, context_id, flags, extra_len, rest @ ..] = input else {
        return;
    };
    let peer_maximum_length = u32::from(u16::from_le_bytes([*lo, *hi]));
    let has_dataset = flags & 1 != 0;
    // An unknown element pads the command set so that it too needs several fragments.
    let extra_len = usize::from(*extra_len & !1).min(rest.len() & !1);
    let (extra, dataset) = rest.split_at(extra_len);

    let mut command = CommandSet::new();
    command
        .set_us(tags::COMMAND_FIELD, 0x0001)
        .and_then(|()| {
            command.set_us(
                tags::COMMAND_DATA_SET_TYPE,
                if has_dataset {
                    DATA_SET_PRESENT
                } else {
                    DATA_SET_ABSENT
                },
            )
        })
        .and_then(|()| command.set_raw(0x7776, extra))
        .expect("valid by construction");
    let dataset = has_dataset.then(|| Bytes::copy_from_slice(dataset));

    let fragmenter = Fragmenter::new(peer_maximum_length);
    let limit = pdu::send_limit(peer_maximum_length) as usize;
    let mut asm = MessageAssembler::default();
    let mut received = None;
    for fragment in
        fragmenter.fragments(*context_id, Bytes::from(command.encode()), dataset.clone())
    {
        assert!(received.is_none(), "a fragment follows the last one");
        assert!(fragment.data.len() <= fragmenter.max_fragment());
        let pdu_length = u32::from_be_bytes([
            fragment.header[2],
            fragment.header[3],
            fragment.header[4],
            fragment.header[5],
        ]) as usize;
        assert_eq!(pdu_length + 6, fragment.len());
        // Only a peer announcing room for less than one byte gets oversized PDUs.
        if limit > 6 {
            assert!(
                pdu_length <= limit,
                "PDU of {pdu_length} bytes for a limit of {limit}"
            );
        }
        let mut wire = Vec::new();
        fragment.encode_into(&mut wire);
        let Ok(Pdu::PDataTf(p)) = pdu::read::decode(Bytes::from(wire)) else {
            panic!("a fragment is not a P-DATA-TF");
        };
        let [pdv] = &p.values[..] else {
            panic!("a fragment holds {} PDVs", p.values.len());
        };
        assert_eq!(pdv.context_id, *context_id);
        assert_eq!(pdv.control, fragment.control());
        assert_eq!(pdv.data, fragment.data);
        received = asm
            .push(pdv.clone())
            .expect("our own fragments must reassemble");
    }
    let message = received.expect("the last fragment completes the message");
    assert_eq!(message.context_id, *context_id);
    assert_eq!(message.command, command);
    assert_eq!(message.dataset_bytes(), dataset);
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    if mode & 0x80 != 0 {
        check_fragmenter(rest);
    } else {
        // Small limits reach the "too large" path with small inputs.
        let max_dataset = [usize::MAX, 0, 16, 1024][usize::from(mode & 3)];
        check_pdvs(max_dataset, rest);
    }
});
