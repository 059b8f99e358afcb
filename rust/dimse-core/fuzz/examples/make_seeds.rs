//! Writes the seed corpus (`corpus/<target>/seed-*`) with our own encoders, so that the
//! fuzzers start from valid PDUs and command sets instead of having to discover the
//! length fields and item layouts. Run from `rust/dimse-core/fuzz`:
//! `cargo run --example make_seeds`. The output is deterministic; re-running it after a
//! codec change refreshes the seeds.

use std::path::Path;

use bytes::Bytes;
use dimse_core::message::command::*;
use dimse_core::message::element::Tag;
use dimse_core::message::{Command, CommandSet, Status};
use dimse_core::pdu::*;

const VERIFICATION: &str = "1.2.840.10008.1.1";
const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn ae(title: &str) -> AeTitle {
    AeTitle::new(title).expect("valid AE title")
}

fn associate_rq() -> Pdu {
    Pdu::AAssociateRq(AAssociateRq {
        protocol_version: PROTOCOL_VERSION,
        called_ae_title: ae("ANY-SCP"),
        calling_ae_title: ae("FUZZ"),
        application_context_name: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![
            PresentationContextRq {
                id: 1,
                abstract_syntax: VERIFICATION.into(),
                transfer_syntaxes: vec![IMPLICIT_LE.into()],
            },
            PresentationContextRq {
                id: 3,
                abstract_syntax: CT_IMAGE.into(),
                transfer_syntaxes: vec![EXPLICIT_LE.into(), IMPLICIT_LE.into()],
            },
        ],
        user_information: UserInformation {
            items: vec![
                UserItem::MaximumLength {
                    maximum_length: 16384,
                },
                UserItem::ImplementationClassUid {
                    uid: "1.2.826.0.1.3680043.9.1".into(),
                },
                UserItem::AsynchronousOperationsWindow {
                    invoked: 1,
                    performed: 1,
                },
                UserItem::RoleSelection {
                    sop_class_uid: CT_IMAGE.into(),
                    scu_role: true,
                    scp_role: true,
                },
                UserItem::ImplementationVersionName {
                    name: "DIMSE_FUZZ".into(),
                },
                UserItem::SopClassExtendedNegotiation {
                    sop_class_uid: STUDY_ROOT_FIND.into(),
                    info: Bytes::from_static(&[1, 1, 0]),
                },
                UserItem::SopClassCommonExtendedNegotiation {
                    sop_class_uid: CT_IMAGE.into(),
                    service_class_uid: "1.2.840.10008.4.2".into(),
                    related_general_sop_classes: vec!["1.2.840.10008.5.1.4.1.1.2.1".into()],
                },
                UserItem::UserIdentityRq {
                    identity_type: UserIdentityType::UsernameAndPasscode,
                    positive_response_requested: true,
                    primary: Bytes::from_static(b"user"),
                    secondary: Bytes::from_static(b"secret"),
                },
                UserItem::Unknown {
                    item_type: 0x5F,
                    data: Bytes::from_static(b"xy"),
                },
            ],
        },
    })
}

fn associate_ac() -> Pdu {
    Pdu::AAssociateAc(AAssociateAc {
        protocol_version: PROTOCOL_VERSION,
        called_ae_title: ae("ANY-SCP"),
        calling_ae_title: ae("FUZZ"),
        application_context_name: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![
            PresentationContextAc {
                id: 1,
                result: PresentationContextResult::Acceptance,
                transfer_syntax: Some(IMPLICIT_LE.into()),
            },
            PresentationContextAc {
                id: 3,
                result: PresentationContextResult::AbstractSyntaxNotSupported,
                transfer_syntax: Some(String::new()),
            },
            PresentationContextAc {
                id: 5,
                result: PresentationContextResult::UserRejection,
                transfer_syntax: None,
            },
        ],
        user_information: UserInformation {
            items: vec![
                UserItem::MaximumLength { maximum_length: 0 },
                UserItem::ImplementationClassUid {
                    uid: "1.2.826.0.1.3680043.9.2".into(),
                },
                UserItem::UserIdentityAc {
                    server_response: Bytes::from_static(b"ok"),
                },
            ],
        },
    })
}

fn echo_rq() -> Command {
    CEchoRq {
        affected_sop_class_uid: VERIFICATION.into(),
        message_id: 1,
    }
    .into()
}

fn store_rq() -> Command {
    CStoreRq {
        affected_sop_class_uid: CT_IMAGE.into(),
        message_id: 7,
        priority: Priority::High,
        affected_sop_instance_uid: "1.2.826.0.1.3680043.9.1.123456789.1".into(),
        move_originator_ae_title: Some("MOVER".into()),
        move_originator_message_id: Some(3),
    }
    .into()
}

/// Typed commands and whether a data set follows, one per shape of PS3.7 field list.
fn commands() -> Vec<(&'static str, Command, bool)> {
    vec![
        ("c-echo-rq", echo_rq(), false),
        (
            "c-echo-rsp",
            CEchoRsp {
                affected_sop_class_uid: Some(VERIFICATION.into()),
                message_id_being_responded_to: 1,
                status: Status::SUCCESS,
                ..Default::default()
            }
            .into(),
            false,
        ),
        ("c-store-rq", store_rq(), true),
        (
            "c-store-rsp",
            CStoreRsp {
                affected_sop_class_uid: Some(CT_IMAGE.into()),
                message_id_being_responded_to: 7,
                status: Status::PROCESSING_FAILURE,
                offending_element: Some(vec![Tag(0x0010, 0x0010)]),
                error_comment: Some("no room".into()),
                error_id: Some(2),
                affected_sop_instance_uid: Some("1.2.3.4".into()),
            }
            .into(),
            false,
        ),
        (
            "c-find-rq",
            CFindRq {
                affected_sop_class_uid: STUDY_ROOT_FIND.into(),
                message_id: 2,
                priority: Priority::Low,
            }
            .into(),
            true,
        ),
        (
            "c-find-rsp",
            CFindRsp {
                affected_sop_class_uid: Some(STUDY_ROOT_FIND.into()),
                message_id_being_responded_to: 2,
                status: Status::PENDING,
                ..Default::default()
            }
            .into(),
            true,
        ),
        (
            "c-move-rq",
            CMoveRq {
                affected_sop_class_uid: "1.2.840.10008.5.1.4.1.2.2.2".into(),
                message_id: 4,
                move_destination: "STORE-SCP".into(),
                priority: Priority::Medium,
            }
            .into(),
            true,
        ),
        (
            "c-get-rsp",
            CGetRsp {
                message_id_being_responded_to: 5,
                status: Status::PENDING,
                remaining: Some(3),
                completed: Some(1),
                failed: Some(0),
                warning: Some(0),
                ..Default::default()
            }
            .into(),
            false,
        ),
        (
            "c-cancel-rq",
            CCancelRq {
                message_id_being_responded_to: 2,
            }
            .into(),
            false,
        ),
        (
            "n-get-rq",
            NGetRq {
                requested_sop_class_uid: "1.2.840.10008.5.1.1.16".into(),
                message_id: 9,
                requested_sop_instance_uid: "1.2.840.10008.5.1.1.17".into(),
                attribute_identifier_list: Some(vec![Tag(0x2110, 0x0010), Tag(0x2110, 0x0020)]),
            }
            .into(),
            false,
        ),
        (
            "n-event-report-rq",
            NEventReportRq {
                affected_sop_class_uid: "1.2.840.10008.1.20.1".into(),
                message_id: 10,
                affected_sop_instance_uid: "1.2.840.10008.1.20.1.1".into(),
                event_type_id: 1,
            }
            .into(),
            true,
        ),
        (
            "n-action-rsp",
            NActionRsp {
                message_id_being_responded_to: 11,
                status: Status::SUCCESS,
                action_type_id: Some(1),
                ..Default::default()
            }
            .into(),
            false,
        ),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn encode(pdu: &Pdu) -> Vec<u8> {
    pdu.encode().expect("valid PDU")
}

fn p_data(values: Vec<PresentationDataValue>) -> Pdu {
    Pdu::PDataTf(PDataTf { values })
}

fn pdv(context_id: u8, control: u8, data: &[u8]) -> PresentationDataValue {
    PresentationDataValue {
        context_id,
        control,
        data: Bytes::copy_from_slice(data),
    }
}

fn command_bytes(c: &Command, has_dataset: bool) -> Vec<u8> {
    c.encode(has_dataset).expect("valid command")
}

fn pdu_reader_seeds(root: &Path) {
    let dir = root.join("pdu_reader");
    let echo = command_bytes(&echo_rq(), false);
    let store = command_bytes(&store_rq(), true);
    let pdus = [
        ("associate-rq", encode(&associate_rq())),
        ("associate-ac", encode(&associate_ac())),
        (
            "associate-rj",
            encode(&Pdu::AAssociateRj(AAssociateRj {
                result: RejectResult::Permanent,
                reason: RejectReason::UserCalledAeTitleNotRecognized,
            })),
        ),
        ("release-rq", encode(&Pdu::AReleaseRq)),
        ("release-rp", encode(&Pdu::AReleaseRp)),
        (
            "abort",
            encode(&Pdu::AAbort(AAbort {
                source: AbortSource::ServiceProvider,
                reason: AbortReason::UnexpectedPdu,
            })),
        ),
        (
            "p-data-echo",
            encode(&p_data(vec![pdv(
                1,
                control::COMMAND | control::LAST,
                &echo,
            )])),
        ),
        (
            "p-data-store",
            encode(&p_data(vec![
                pdv(3, control::COMMAND | control::LAST, &store),
                pdv(3, 0, b"\x08\x00\x16\x00"),
                pdv(3, control::LAST, b"\x10\x00\x10\x00"),
            ])),
        ),
    ];
    // Config byte 0 (default limits); chunk sizes: one byte at a time for the small
    // PDUs, mixed sizes for the stream of several.
    for (name, bytes) in &pdus {
        let mut seed = vec![0, 0, 0];
        seed.extend_from_slice(bytes);
        write(&dir, name, &seed);
    }
    let mut stream = vec![0, 2, 5, 60, 200];
    for (_, bytes) in &pdus[..] {
        stream.extend_from_slice(bytes);
    }
    write(&dir, "stream", &stream);
    // Small limits reach the "too long" paths: P-DATA-TF 16 bytes (config bits 0-1 = 1),
    // A-ASSOCIATE 256 bytes (bits 2-3 = 2).
    let mut limited = vec![0b0001, 0, 9];
    limited.extend_from_slice(&pdus[6].1);
    write(&dir, "limited-p-data", &limited);
    let mut limited = vec![0b1000, 0, 9];
    limited.extend_from_slice(&pdus[0].1);
    write(&dir, "limited-associate", &limited);
}

fn command_set_seeds(root: &Path) {
    let dir = root.join("command_set");
    for (name, command, has_dataset) in commands() {
        write(&dir, name, &command_bytes(&command, has_dataset));
    }
    // A command set with an unknown and a retired element: kept as raw bytes.
    let mut cs = CommandSet::decode(&command_bytes(&echo_rq(), false)).expect("decodes");
    cs.set_raw(0x0850, &[1, 0]).expect("retired US");
    cs.set_raw(0x7777, b"xy").expect("unknown element");
    write(&dir, "unknown-elements", &cs.encode());
    // Builder program (first byte non-zero): op, element LE, length, value.
    let mut program = vec![1];
    for (op, el, value) in [
        (0u8, 0x0100u16, &b"\x30\x00"[..]),
        (1, 0x0002, b"1.2.840.10008.1.1"),
        (2, 0x0110, b"\x07\x00"),
        (3, 0x0901, b"\x10\x00\x10\x00"),
        (4, 0x0110, b""),
        (1, 0x0600, b"DEST"),
    ] {
        program.push(op);
        program.extend_from_slice(&el.to_le_bytes());
        program.push(value.len() as u8);
        program.extend_from_slice(value);
    }
    write(&dir, "builder", &program);
}

/// One PDV in the reassembly target's format.
fn pdv_record(out: &mut Vec<u8>, context_index: u8, control: u8, data: &[u8]) {
    out.push(context_index | (control << 2));
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
}

fn reassembly_seeds(root: &Path) {
    let dir = root.join("reassembly");
    let echo = command_bytes(&echo_rq(), false);
    let store = command_bytes(&store_rq(), true);
    let (c, l) = (control::COMMAND, control::LAST);

    // Echo, then a store with its command and data set in several fragments each.
    let mut seed = vec![0];
    pdv_record(&mut seed, 0, c | l, &echo);
    let (a, b) = store.split_at(40);
    pdv_record(&mut seed, 1, c, a);
    pdv_record(&mut seed, 1, c | l, b);
    pdv_record(&mut seed, 1, 0, b"\x08\x00\x16\x00\x1a\x00\x00\x00");
    pdv_record(&mut seed, 1, 0, b"");
    pdv_record(&mut seed, 1, l, b"1.2.840.10008.5.1.4.1.1.2\0");
    write(&dir, "echo-store", &seed);

    // The same with a 16-byte data set limit, and with reserved control bits set.
    seed[0] = 2;
    write(&dir, "echo-store-limited", &seed);
    let mut noisy = vec![0];
    pdv_record(&mut noisy, 2, c | l | 0b1100, &store);
    pdv_record(&mut noisy, 2, l | 0b110000, b"");
    write(&dir, "reserved-bits", &noisy);

    // Error paths: data first, interleaved contexts.
    let mut bad = vec![0];
    pdv_record(&mut bad, 0, l, b"data");
    pdv_record(&mut bad, 0, c, &store[..20]);
    pdv_record(&mut bad, 3, c | l, &store[20..]);
    write(&dir, "errors", &bad);

    // Fragmenter mode: peer maximum length, context ID, flags, extra element length.
    for (name, max, flags, extra, dataset) in [
        ("fragment-tiny", 8u16, 1u8, 10u8, &b"0123456789abcdef"[..]),
        ("fragment-no-data", 20, 0, 64, b""),
        ("fragment-empty-data", 0, 1, 0, b""),
        ("fragment-1024", 1024, 1, 200, &[0x55; 3000][..]),
    ] {
        let mut seed = vec![0x80];
        seed.extend_from_slice(&max.to_le_bytes());
        seed.extend_from_slice(&[7, flags, extra]);
        seed.extend(std::iter::repeat_n(b'x', usize::from(extra)));
        seed.extend_from_slice(dataset);
        write(&dir, name, &seed);
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    pdu_reader_seeds(&root);
    command_set_seeds(&root);
    reassembly_seeds(&root);
    println!("seeds written under {}", root.display());
}
