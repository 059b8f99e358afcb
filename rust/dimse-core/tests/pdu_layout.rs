//! Byte-exact layouts of every PDU, item and sub-item (PS3.8 9.3 and Annex D; PS3.7
//! Annex D.3.3) and of the command set of every DIMSE message (PS3.7 chapters 9 and 10,
//! Annex E).
//!
//! Every expected byte string below is written out by hand from the standard, with its
//! lengths counted by hand: nothing here is produced by the encoder under test. Each test
//! decodes the hand-written bytes and checks the fields, then encodes the value and compares
//! the result with the same bytes.

// clippy.toml allows unwrap in #[test] functions; this crate is all test code, helpers and
// proptest bodies included, so the same applies everywhere in it.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use dimse_core::message::command::*;
use dimse_core::message::{Command, CommandSet, DecodedCommand, Priority, Status, Tag};
use dimse_core::pdu::{
    self, AAbort, AAssociateAc, AAssociateRj, AAssociateRq, AbortReason, AbortSource, AeTitle,
    PDataTf, Pdu, PduReader, PresentationContextAc, PresentationContextResult,
    PresentationContextRq, PresentationDataValue, RejectReason, RejectResult, UserIdentityType,
    UserInformation, UserItem,
};

/// Concatenates hand-written pieces.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Decodes `bytes` (two ways: the one-shot decoder and the incremental reader), checks the
/// value, and checks that encoding the value gives the same bytes.
fn check_pdu(bytes: &[u8], expected: &Pdu) {
    let decoded = pdu::read::decode(Bytes::copy_from_slice(bytes)).unwrap();
    assert_eq!(&decoded, expected);

    let mut buf = BytesMut::from(bytes);
    buf.extend_from_slice(&[0x07, 0x00]); // the start of a following PDU stays in the buffer
    let read = PduReader::new(0).read(&mut buf).unwrap();
    assert_eq!(read.as_ref(), Some(expected));
    assert_eq!(&buf[..], &[0x07, 0x00]);

    assert_eq!(
        expected.encode().unwrap(),
        bytes,
        "encoding {}",
        expected.name()
    );
}

fn ae(s: &str) -> AeTitle {
    AeTitle::new(s).unwrap()
}

// ---------------------------------------------------------------------------------------
// A-ASSOCIATE-RQ (PS3.8 9.3.2, Tables 9-11..9-14, Annex D)
// ---------------------------------------------------------------------------------------

/// The fixed fields of an A-ASSOCIATE-RQ/AC after the PDU header (PS3.8 Table 9-11):
/// protocol version 0x0001, 2 reserved bytes, called AE "ANY-SCP", calling AE "ECHOSCU"
/// (16 bytes each, space padded), 32 reserved bytes. 68 bytes.
const FIXED: &[u8] = &[
    0x00, 0x01, // protocol version
    0x00, 0x00, // reserved
    b'A', b'N', b'Y', b'-', b'S', b'C', b'P', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ',
    b' ', // called AE title
    b'E', b'C', b'H', b'O', b'S', b'C', b'U', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ',
    b' ', // calling AE title
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, // reserved (32)
];

/// Application context item (PS3.8 9.3.2.1): type 0x10, reserved, length 21, the DICOM
/// application context name. 25 bytes.
const APP_CONTEXT: &[u8] = &[
    0x10, 0x00, 0x00, 0x15, b'1', b'.', b'2', b'.', b'8', b'4', b'0', b'.', b'1', b'0', b'0', b'0',
    b'8', b'.', b'3', b'.', b'1', b'.', b'1', b'.', b'1',
];

fn full_rq_bytes() -> Vec<u8> {
    cat(&[
        // PDU header: type 0x01, reserved, length 425 = 68 + 25 + 73 + 60 + 199.
        &[0x01, 0x00, 0x00, 0x00, 0x01, 0xA9],
        FIXED,
        APP_CONTEXT,
        // Presentation context item (9.3.2.2): type 0x20, length 69; ID 1, 3 reserved.
        &[0x20, 0x00, 0x00, 0x45, 0x01, 0x00, 0x00, 0x00],
        // Abstract syntax sub-item (9.3.2.2.1): type 0x30, length 17.
        &[0x30, 0x00, 0x00, 0x11],
        b"1.2.840.10008.1.1",
        // Transfer syntax sub-items (9.3.2.2.2): type 0x40, lengths 17 and 19.
        &[0x40, 0x00, 0x00, 0x11],
        b"1.2.840.10008.1.2",
        &[0x40, 0x00, 0x00, 0x13],
        b"1.2.840.10008.1.2.1",
        // Second presentation context: length 56; ID 3.
        &[0x20, 0x00, 0x00, 0x38, 0x03, 0x00, 0x00, 0x00],
        &[0x30, 0x00, 0x00, 0x19],
        b"1.2.840.10008.5.1.4.1.1.2",
        &[0x40, 0x00, 0x00, 0x13],
        b"1.2.840.10008.1.2.1",
        // User information item (9.3.2.3): type 0x50, length 195.
        &[0x50, 0x00, 0x00, 0xC3],
        // 0x51 maximum length (PS3.8 D.1): 16384.
        &[0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00],
        // 0x52 implementation class UID (PS3.7 D.3.3.2): length 9.
        &[0x52, 0x00, 0x00, 0x09],
        b"1.2.3.4.5",
        // 0x53 asynchronous operations window (D.3.3.3): invoked 5, performed 3.
        &[0x53, 0x00, 0x00, 0x04, 0x00, 0x05, 0x00, 0x03],
        // 0x54 SCP/SCU role selection (D.3.3.4): length 21 = 2 + 17 + 1 + 1.
        &[0x54, 0x00, 0x00, 0x15, 0x00, 0x11],
        b"1.2.840.10008.1.1",
        &[0x01, 0x00], // SCU role supported, SCP role not
        // 0x55 implementation version name (D.3.3.2): length 9.
        &[0x55, 0x00, 0x00, 0x09],
        b"DIMSE_010",
        // 0x56 SOP class extended negotiation (D.3.3.5): length 32 = 2 + 27 + 3.
        &[0x56, 0x00, 0x00, 0x20, 0x00, 0x1B],
        b"1.2.840.10008.5.1.4.1.2.1.1",
        &[0x01, 0x01, 0x01], // service-class-application-information
        // 0x57 SOP class common extended negotiation (D.3.3.6): length 62.
        &[0x57, 0x00, 0x00, 0x3E, 0x00, 0x19],
        b"1.2.840.10008.5.1.4.1.1.2",
        &[0x00, 0x11],
        b"1.2.840.10008.4.2",
        &[0x00, 0x0E, 0x00, 0x05], // related general SOP class identification: 14 bytes
        b"1.2.3",
        &[0x00, 0x05],
        b"1.2.4",
        // 0x58 user identity negotiation RQ (D.3.3.7.1): length 16; type 2 (username
        // and passcode), positive response requested, primary "user", secondary "secret".
        &[0x58, 0x00, 0x00, 0x10, 0x02, 0x01, 0x00, 0x04],
        b"user",
        &[0x00, 0x06],
        b"secret",
        // An unknown sub-item 0x5F: kept as it is.
        &[0x5F, 0x00, 0x00, 0x02, 0xDE, 0xAD],
    ])
}

fn full_rq_value() -> AAssociateRq {
    AAssociateRq {
        protocol_version: 1,
        called_ae_title: ae("ANY-SCP"),
        calling_ae_title: ae("ECHOSCU"),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![
            PresentationContextRq {
                id: 1,
                abstract_syntax: "1.2.840.10008.1.1".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2".into(), "1.2.840.10008.1.2.1".into()],
            },
            PresentationContextRq {
                id: 3,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2.1".into()],
            },
        ],
        user_information: UserInformation {
            items: vec![
                UserItem::MaximumLength {
                    maximum_length: 16384,
                },
                UserItem::ImplementationClassUid {
                    uid: "1.2.3.4.5".into(),
                },
                UserItem::AsynchronousOperationsWindow {
                    invoked: 5,
                    performed: 3,
                },
                UserItem::RoleSelection {
                    sop_class_uid: "1.2.840.10008.1.1".into(),
                    scu_role: true,
                    scp_role: false,
                },
                UserItem::ImplementationVersionName {
                    name: "DIMSE_010".into(),
                },
                UserItem::SopClassExtendedNegotiation {
                    sop_class_uid: "1.2.840.10008.5.1.4.1.2.1.1".into(),
                    info: Bytes::from_static(&[1, 1, 1]),
                },
                UserItem::SopClassCommonExtendedNegotiation {
                    sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                    service_class_uid: "1.2.840.10008.4.2".into(),
                    related_general_sop_classes: vec!["1.2.3".into(), "1.2.4".into()],
                },
                UserItem::UserIdentityRq {
                    identity_type: UserIdentityType::UsernameAndPasscode,
                    positive_response_requested: true,
                    primary: Bytes::from_static(b"user"),
                    secondary: Bytes::from_static(b"secret"),
                },
                UserItem::Unknown {
                    item_type: 0x5F,
                    data: Bytes::from_static(&[0xDE, 0xAD]),
                },
            ],
        },
    }
}

#[test]
fn a_associate_rq_full() {
    let bytes = full_rq_bytes();
    assert_eq!(bytes.len(), 6 + 425);
    let value = full_rq_value();
    check_pdu(&bytes, &Pdu::AAssociateRq(value.clone()));

    // The accessors read the sub-items.
    let ui = &value.user_information;
    assert_eq!(ui.maximum_length(), Some(16384));
    assert_eq!(ui.implementation_class_uid(), Some("1.2.3.4.5"));
    assert_eq!(ui.implementation_version_name(), Some("DIMSE_010"));
    assert_eq!(ui.asynchronous_operations_window(), Some((5, 3)));
    assert_eq!(value.called_ae_title.as_str(), "ANY-SCP");
    assert_eq!(value.calling_ae_title.as_str(), "ECHOSCU");
}

/// A minimal A-ASSOCIATE-RQ around the given user information sub-items: the fixed
/// fields, the application context, one presentation context (ID 1, Verification,
/// Implicit VR Little Endian) and a user information item holding `sub_items`. The
/// framing lengths are the only computed bytes: 68 + 25 + 38 + 4 + sub_items.
fn rq_with_user_items(sub_items: &[u8]) -> Vec<u8> {
    let ui_len = u16::try_from(sub_items.len()).unwrap();
    let pdu_len = 68 + 25 + 38 + 4 + u32::from(ui_len);
    cat(&[
        &[0x01, 0x00],
        &pdu_len.to_be_bytes(),
        FIXED,
        APP_CONTEXT,
        // Presentation context: length 34 = 4 + (4 + 17) + (4 + 5).
        &[0x20, 0x00, 0x00, 0x22, 0x01, 0x00, 0x00, 0x00],
        &[0x30, 0x00, 0x00, 0x11],
        b"1.2.840.10008.1.1",
        &[0x40, 0x00, 0x00, 0x05],
        b"1.2.3",
        &[0x50, 0x00],
        &ui_len.to_be_bytes(),
        sub_items,
    ])
}

fn rq_with_items(items: Vec<UserItem>) -> Pdu {
    Pdu::AAssociateRq(AAssociateRq {
        protocol_version: 1,
        called_ae_title: ae("ANY-SCP"),
        calling_ae_title: ae("ECHOSCU"),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: "1.2.840.10008.1.1".into(),
            transfer_syntaxes: vec!["1.2.3".into()],
        }],
        user_information: UserInformation { items },
    })
}

/// Checks one or more sub-items (hand-written bytes) against their values.
fn check_sub_items(sub_items: &[u8], items: Vec<UserItem>) {
    check_pdu(&rq_with_user_items(sub_items), &rq_with_items(items));
}

#[test]
fn a_associate_rq_minimal_framing() {
    // An empty user information item is allowed (its sub-items are each optional here).
    let bytes = rq_with_user_items(&[]);
    assert_eq!(&bytes[..6], &[0x01, 0x00, 0x00, 0x00, 0x00, 0x87]); // 135
    assert_eq!(&bytes[bytes.len() - 4..], &[0x50, 0x00, 0x00, 0x00]);
    check_pdu(&bytes, &rq_with_items(vec![]));
}

#[test]
fn sub_item_0x51_maximum_length() {
    check_sub_items(
        &[0x51, 0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00],
        vec![UserItem::MaximumLength {
            maximum_length: 65536,
        }],
    );
    check_sub_items(
        &[0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00],
        vec![UserItem::MaximumLength { maximum_length: 0 }],
    );
    check_sub_items(
        &[0x51, 0x00, 0x00, 0x04, 0xFF, 0xFF, 0xFF, 0xFF],
        vec![UserItem::MaximumLength {
            maximum_length: u32::MAX,
        }],
    );
}

#[test]
fn sub_item_0x52_implementation_class_uid() {
    check_sub_items(
        &cat(&[&[0x52, 0x00, 0x00, 0x0E], b"1.2.826.0.1.36"]),
        vec![UserItem::ImplementationClassUid {
            uid: "1.2.826.0.1.36".into(),
        }],
    );
}

#[test]
fn sub_item_0x52_padded_uid_is_read_without_padding() {
    // Some peers pad UIDs with a NUL; the padding is not part of the UID. The re-encoded
    // item is then 1 byte shorter, so this is a decode-only check.
    let bytes = rq_with_user_items(&cat(&[&[0x52, 0x00, 0x00, 0x06], b"1.2.3\0"]));
    let Pdu::AAssociateRq(rq) = pdu::read::decode(Bytes::from(bytes)).unwrap() else {
        panic!("not an A-ASSOCIATE-RQ");
    };
    assert_eq!(
        rq.user_information.implementation_class_uid(),
        Some("1.2.3")
    );
}

#[test]
fn sub_item_0x53_asynchronous_operations_window() {
    check_sub_items(
        &[0x53, 0x00, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xFE],
        vec![UserItem::AsynchronousOperationsWindow {
            invoked: 0,
            performed: 0xFFFE,
        }],
    );
}

#[test]
fn sub_item_0x54_role_selection_every_role_pair() {
    for (scu, scp) in [(0u8, 0u8), (0, 1), (1, 0), (1, 1)] {
        check_sub_items(
            &cat(&[
                &[0x54, 0x00, 0x00, 0x1F, 0x00, 0x1B],
                b"1.2.840.10008.5.1.4.1.2.1.3",
                &[scu, scp],
            ]),
            vec![UserItem::RoleSelection {
                sop_class_uid: "1.2.840.10008.5.1.4.1.2.1.3".into(),
                scu_role: scu == 1,
                scp_role: scp == 1,
            }],
        );
    }
}

#[test]
fn sub_item_0x55_implementation_version_name() {
    check_sub_items(
        &cat(&[&[0x55, 0x00, 0x00, 0x10], b"SIXTEEN_CHARS_OK"]),
        vec![UserItem::ImplementationVersionName {
            name: "SIXTEEN_CHARS_OK".into(),
        }],
    );
}

#[test]
fn sub_item_0x56_sop_class_extended_negotiation() {
    // Query/retrieve extended negotiation: relational queries, date-time matching,
    // fuzzy matching, timezone adjustment (PS3.4 C.5.1.1): 4 bytes.
    check_sub_items(
        &cat(&[
            &[0x56, 0x00, 0x00, 0x21, 0x00, 0x1B],
            b"1.2.840.10008.5.1.4.1.2.2.1",
            &[0x01, 0x00, 0x01, 0x00],
        ]),
        vec![UserItem::SopClassExtendedNegotiation {
            sop_class_uid: "1.2.840.10008.5.1.4.1.2.2.1".into(),
            info: Bytes::from_static(&[1, 0, 1, 0]),
        }],
    );
    // Without application information.
    check_sub_items(
        &cat(&[&[0x56, 0x00, 0x00, 0x07, 0x00, 0x05], b"1.2.3"]),
        vec![UserItem::SopClassExtendedNegotiation {
            sop_class_uid: "1.2.3".into(),
            info: Bytes::new(),
        }],
    );
}

#[test]
fn sub_item_0x57_sop_class_common_extended_negotiation() {
    // No related general SOP classes: the related identification length is 0. Length
    // 12 = 2 + 3 + 2 + 3 + 2.
    check_sub_items(
        &cat(&[
            &[0x57, 0x00, 0x00, 0x0C, 0x00, 0x03],
            b"1.2",
            &[0x00, 0x03],
            b"1.3",
            &[0x00, 0x00],
        ]),
        vec![UserItem::SopClassCommonExtendedNegotiation {
            sop_class_uid: "1.2".into(),
            service_class_uid: "1.3".into(),
            related_general_sop_classes: vec![],
        }],
    );
    // One related general SOP class. Length 17 = 2 + 3 + 2 + 3 + 2 + (2 + 3).
    check_sub_items(
        &cat(&[
            &[0x57, 0x00, 0x00, 0x11, 0x00, 0x03],
            b"1.2",
            &[0x00, 0x03],
            b"1.3",
            &[0x00, 0x05, 0x00, 0x03],
            b"1.4",
        ]),
        vec![UserItem::SopClassCommonExtendedNegotiation {
            sop_class_uid: "1.2".into(),
            service_class_uid: "1.3".into(),
            related_general_sop_classes: vec!["1.4".into()],
        }],
    );
}

#[test]
fn sub_item_0x58_user_identity_rq_every_type() {
    let types = [
        (1u8, UserIdentityType::Username),
        (2, UserIdentityType::UsernameAndPasscode),
        (3, UserIdentityType::Kerberos),
        (4, UserIdentityType::Saml),
        (5, UserIdentityType::Jwt),
        (9, UserIdentityType::Other(9)),
    ];
    for (t, identity_type) in types {
        for response in [0u8, 1] {
            // Primary "abc", secondary empty: length 1 + 1 + 2 + 3 + 2 = 9.
            check_sub_items(
                &cat(&[
                    &[0x58, 0x00, 0x00, 0x09, t, response, 0x00, 0x03],
                    b"abc",
                    &[0x00, 0x00],
                ]),
                vec![UserItem::UserIdentityRq {
                    identity_type,
                    positive_response_requested: response == 1,
                    primary: Bytes::from_static(b"abc"),
                    secondary: Bytes::new(),
                }],
            );
        }
    }
}

#[test]
fn sub_item_0x59_user_identity_ac() {
    check_sub_items(
        &cat(&[&[0x59, 0x00, 0x00, 0x07, 0x00, 0x05], b"token"]),
        vec![UserItem::UserIdentityAc {
            server_response: Bytes::from_static(b"token"),
        }],
    );
    check_sub_items(
        &[0x59, 0x00, 0x00, 0x02, 0x00, 0x00],
        vec![UserItem::UserIdentityAc {
            server_response: Bytes::new(),
        }],
    );
}

#[test]
fn sub_item_unknown_is_kept() {
    check_sub_items(
        &[
            0x5A, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, // unknown 0x5A, 3 bytes
            0xA0, 0x00, 0x00, 0x00, // unknown 0xA0, empty
            0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x10, 0x00, // a known one after them
        ],
        vec![
            UserItem::Unknown {
                item_type: 0x5A,
                data: Bytes::from_static(&[1, 2, 3]),
            },
            UserItem::Unknown {
                item_type: 0xA0,
                data: Bytes::new(),
            },
            UserItem::MaximumLength {
                maximum_length: 4096,
            },
        ],
    );
}

// ---------------------------------------------------------------------------------------
// A-ASSOCIATE-AC (PS3.8 9.3.3, Tables 9-17..9-19)
// ---------------------------------------------------------------------------------------

fn full_ac_bytes() -> Vec<u8> {
    cat(&[
        // PDU header: type 0x02, length 303 = 68 + 25 + 90 + 120.
        &[0x02, 0x00, 0x00, 0x00, 0x01, 0x2F],
        FIXED,
        APP_CONTEXT,
        // Presentation context items (9.3.3.2): type 0x21, ID, reserved, result, reserved.
        // ID 1, acceptance (0), transfer syntax: length 25.
        &[0x21, 0x00, 0x00, 0x19, 0x01, 0x00, 0x00, 0x00],
        &[0x40, 0x00, 0x00, 0x11],
        b"1.2.840.10008.1.2",
        // ID 3, user rejection (1), transfer syntax echoed anyway: length 25.
        &[0x21, 0x00, 0x00, 0x19, 0x03, 0x00, 0x01, 0x00],
        &[0x40, 0x00, 0x00, 0x11],
        b"1.2.840.10008.1.2",
        // ID 5, no reason (2), empty transfer syntax sub-item: length 8.
        &[0x21, 0x00, 0x00, 0x08, 0x05, 0x00, 0x02, 0x00],
        &[0x40, 0x00, 0x00, 0x00],
        // ID 7, abstract syntax not supported (3), empty transfer syntax sub-item.
        &[0x21, 0x00, 0x00, 0x08, 0x07, 0x00, 0x03, 0x00],
        &[0x40, 0x00, 0x00, 0x00],
        // ID 9, transfer syntaxes not supported (4), no transfer syntax sub-item: length 4.
        &[0x21, 0x00, 0x00, 0x04, 0x09, 0x00, 0x04, 0x00],
        // User information item: length 116.
        &[0x50, 0x00, 0x00, 0x74],
        &[0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00], // unlimited
        &[0x52, 0x00, 0x00, 0x09],
        b"1.2.3.4.5",
        &[0x53, 0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x01],
        &[0x54, 0x00, 0x00, 0x15, 0x00, 0x11],
        b"1.2.840.10008.1.1",
        &[0x01, 0x01],
        &[0x55, 0x00, 0x00, 0x09],
        b"DIMSE_010",
        &[0x56, 0x00, 0x00, 0x1E, 0x00, 0x1B],
        b"1.2.840.10008.5.1.4.1.2.1.1",
        &[0x01],
        // 0x59 user identity server response (D.3.3.7.2): length 7.
        &[0x59, 0x00, 0x00, 0x07, 0x00, 0x05],
        b"token",
        // Unknown 0x7E, empty.
        &[0x7E, 0x00, 0x00, 0x00],
    ])
}

fn full_ac_value() -> AAssociateAc {
    let pc = |id, result, ts: Option<&str>| PresentationContextAc {
        id,
        result,
        transfer_syntax: ts.map(str::to_owned),
    };
    AAssociateAc {
        protocol_version: 1,
        called_ae_title: ae("ANY-SCP"),
        calling_ae_title: ae("ECHOSCU"),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![
            pc(
                1,
                PresentationContextResult::Acceptance,
                Some("1.2.840.10008.1.2"),
            ),
            pc(
                3,
                PresentationContextResult::UserRejection,
                Some("1.2.840.10008.1.2"),
            ),
            pc(5, PresentationContextResult::NoReason, Some("")),
            pc(
                7,
                PresentationContextResult::AbstractSyntaxNotSupported,
                Some(""),
            ),
            pc(
                9,
                PresentationContextResult::TransferSyntaxesNotSupported,
                None,
            ),
        ],
        user_information: UserInformation {
            items: vec![
                UserItem::MaximumLength { maximum_length: 0 },
                UserItem::ImplementationClassUid {
                    uid: "1.2.3.4.5".into(),
                },
                UserItem::AsynchronousOperationsWindow {
                    invoked: 1,
                    performed: 1,
                },
                UserItem::RoleSelection {
                    sop_class_uid: "1.2.840.10008.1.1".into(),
                    scu_role: true,
                    scp_role: true,
                },
                UserItem::ImplementationVersionName {
                    name: "DIMSE_010".into(),
                },
                UserItem::SopClassExtendedNegotiation {
                    sop_class_uid: "1.2.840.10008.5.1.4.1.2.1.1".into(),
                    info: Bytes::from_static(&[1]),
                },
                UserItem::UserIdentityAc {
                    server_response: Bytes::from_static(b"token"),
                },
                UserItem::Unknown {
                    item_type: 0x7E,
                    data: Bytes::new(),
                },
            ],
        },
    }
}

#[test]
fn a_associate_ac_full() {
    let bytes = full_ac_bytes();
    assert_eq!(bytes.len(), 6 + 303);
    check_pdu(&bytes, &Pdu::AAssociateAc(full_ac_value()));
}

#[test]
fn presentation_context_result_values() {
    // PS3.8 Table 9-18.
    let table = [
        (0u8, PresentationContextResult::Acceptance),
        (1, PresentationContextResult::UserRejection),
        (2, PresentationContextResult::NoReason),
        (3, PresentationContextResult::AbstractSyntaxNotSupported),
        (4, PresentationContextResult::TransferSyntaxesNotSupported),
    ];
    for (v, r) in table {
        assert_eq!(r.value(), v);
        assert_eq!(PresentationContextResult::from_value(v), Some(r));
    }
    assert_eq!(PresentationContextResult::from_value(5), None);
}

#[test]
fn a_associate_ac_without_contexts() {
    // An acceptor may accept none of the contexts' abstract syntaxes and still send an AC
    // with only the application context and user information: 68 + 25 + 12 = 105.
    let bytes = cat(&[
        &[0x02, 0x00, 0x00, 0x00, 0x00, 0x69],
        FIXED,
        APP_CONTEXT,
        &[0x50, 0x00, 0x00, 0x08],
        &[0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x80, 0x00],
    ]);
    check_pdu(
        &bytes,
        &Pdu::AAssociateAc(AAssociateAc {
            protocol_version: 1,
            called_ae_title: ae("ANY-SCP"),
            calling_ae_title: ae("ECHOSCU"),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: vec![],
            user_information: UserInformation {
                items: vec![UserItem::MaximumLength {
                    maximum_length: 32768,
                }],
            },
        }),
    );
}

// ---------------------------------------------------------------------------------------
// A-ASSOCIATE-RJ (PS3.8 9.3.4, Table 9-21)
// ---------------------------------------------------------------------------------------

#[test]
fn a_associate_rj_every_result_source_reason() {
    let results = [(1u8, RejectResult::Permanent), (2, RejectResult::Transient)];
    let reasons = [
        (1u8, 1u8, RejectReason::UserNoReasonGiven),
        (1, 2, RejectReason::UserApplicationContextNameNotSupported),
        (1, 3, RejectReason::UserCallingAeTitleNotRecognized),
        (1, 7, RejectReason::UserCalledAeTitleNotRecognized),
        (2, 1, RejectReason::AcseNoReasonGiven),
        (2, 2, RejectReason::AcseProtocolVersionNotSupported),
        (3, 1, RejectReason::PresentationTemporaryCongestion),
        (3, 2, RejectReason::PresentationLocalLimitExceeded),
        // Reserved values are kept.
        (
            1,
            4,
            RejectReason::Reserved {
                source: 1,
                reason: 4,
            },
        ),
        (
            3,
            0,
            RejectReason::Reserved {
                source: 3,
                reason: 0,
            },
        ),
    ];
    for (r, result) in results {
        for (s, d, reason) in reasons {
            // type 0x03, reserved, length 4, reserved, result, source, reason/diag.
            let bytes = [0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, r, s, d];
            check_pdu(&bytes, &Pdu::AAssociateRj(AAssociateRj { result, reason }));
            assert_eq!(reason.values(), (s, d));
            assert_eq!(RejectReason::from_values(s, d), reason);
        }
    }
}

// ---------------------------------------------------------------------------------------
// P-DATA-TF (PS3.8 9.3.5, Annex E)
// ---------------------------------------------------------------------------------------

#[test]
fn p_data_tf_several_pdvs_every_control_header() {
    let bytes = [
        0x04, 0x00, 0x00, 0x00, 0x00, 0x1E, // type 0x04, length 30
        0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0xAA, 0xBB, // ctx 1, data, not last
        0x00, 0x00, 0x00, 0x03, 0x01, 0x01, 0xCC, // ctx 1, command, not last
        0x00, 0x00, 0x00, 0x02, 0x03, 0x02, // ctx 3, data, last, empty
        0x00, 0x00, 0x00, 0x05, 0xFF, 0x03, 0x01, 0x02, 0x03, // ctx 255, command, last
    ];
    let pdv = |context_id, control, data: &'static [u8]| PresentationDataValue {
        context_id,
        control,
        data: Bytes::from_static(data),
    };
    let value = PDataTf {
        values: vec![
            pdv(1, 0x00, &[0xAA, 0xBB]),
            pdv(1, 0x01, &[0xCC]),
            pdv(3, 0x02, &[]),
            pdv(255, 0x03, &[1, 2, 3]),
        ],
    };
    check_pdu(&bytes, &Pdu::PDataTf(value.clone()));
    let flags: Vec<(bool, bool)> = value
        .values
        .iter()
        .map(|v| (v.is_command(), v.is_last()))
        .collect();
    assert_eq!(
        flags,
        [(false, false), (true, false), (false, true), (true, true)]
    );
}

#[test]
fn p_data_tf_reserved_control_bits_are_kept_and_ignored() {
    // Bits 2-7 are reserved (PS3.8 E.2): not tested, but kept so the PDU re-encodes.
    let bytes = [
        0x04, 0x00, 0x00, 0x00, 0x00, 0x07, // length 7
        0x00, 0x00, 0x00, 0x03, 0x07, 0xFC, 0x42, // ctx 7, control 0xFC: data, not last
    ];
    let value = PDataTf {
        values: vec![PresentationDataValue {
            context_id: 7,
            control: 0xFC,
            data: Bytes::from_static(&[0x42]),
        }],
    };
    check_pdu(&bytes, &Pdu::PDataTf(value.clone()));
    assert!(!value.values[0].is_command());
    assert!(!value.values[0].is_last());
}

// ---------------------------------------------------------------------------------------
// A-RELEASE-RQ/RP (PS3.8 9.3.6, 9.3.7) and A-ABORT (9.3.8, Table 9-26)
// ---------------------------------------------------------------------------------------

#[test]
fn a_release_rq_and_rp() {
    check_pdu(
        &[0x05, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00],
        &Pdu::AReleaseRq,
    );
    check_pdu(
        &[0x06, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00],
        &Pdu::AReleaseRp,
    );
}

#[test]
fn a_release_reserved_bytes_are_not_tested() {
    let decoded = pdu::read::decode(Bytes::from_static(&[
        0x05, 0xFF, 0x00, 0x00, 0x00, 0x04, 0x12, 0x34, 0x56, 0x78,
    ]))
    .unwrap();
    assert_eq!(decoded, Pdu::AReleaseRq);
}

#[test]
fn a_abort_every_source_and_reason() {
    let sources = [
        (0u8, AbortSource::ServiceUser),
        (1, AbortSource::Reserved),
        (2, AbortSource::ServiceProvider),
    ];
    let reasons = [
        (0u8, AbortReason::NotSpecified),
        (1, AbortReason::UnrecognizedPdu),
        (2, AbortReason::UnexpectedPdu),
        (3, AbortReason::Reserved(3)),
        (4, AbortReason::UnrecognizedPduParameter),
        (5, AbortReason::UnexpectedPduParameter),
        (6, AbortReason::InvalidPduParameterValue),
        (7, AbortReason::Reserved(7)),
    ];
    for (s, source) in sources {
        assert_eq!(source.value(), s);
        for (r, reason) in reasons {
            assert_eq!(reason.value(), r);
            assert_eq!(AbortReason::from_value(r), reason);
            // type 0x07, reserved, length 4, reserved (2), source, reason/diag.
            let bytes = [0x07, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, s, r];
            check_pdu(&bytes, &Pdu::AAbort(AAbort { source, reason }));
        }
    }
}

#[test]
fn pdu_type_bytes_and_names() {
    let all = [
        (Pdu::AAssociateRq(full_rq_value()), 0x01, "A-ASSOCIATE-RQ"),
        (Pdu::AAssociateAc(full_ac_value()), 0x02, "A-ASSOCIATE-AC"),
        (
            Pdu::AAssociateRj(AAssociateRj {
                result: RejectResult::Permanent,
                reason: RejectReason::UserNoReasonGiven,
            }),
            0x03,
            "A-ASSOCIATE-RJ",
        ),
        (Pdu::PDataTf(PDataTf::default()), 0x04, "P-DATA-TF"),
        (Pdu::AReleaseRq, 0x05, "A-RELEASE-RQ"),
        (Pdu::AReleaseRp, 0x06, "A-RELEASE-RP"),
        (
            Pdu::AAbort(AAbort {
                source: AbortSource::ServiceUser,
                reason: AbortReason::NotSpecified,
            }),
            0x07,
            "A-ABORT",
        ),
    ];
    for (pdu, t, name) in all {
        assert_eq!(pdu.pdu_type(), t);
        assert_eq!(pdu.name(), name);
        assert_eq!(pdu.encode().unwrap()[0], t);
    }
}

// ---------------------------------------------------------------------------------------
// Command sets (PS3.7 6.3, chapters 9 and 10, Annex E), Implicit VR Little Endian.
//
// Element: group (2, LE) = 00 00, element (2, LE), value length (4, LE), value. UI values
// are padded to an even length with NUL, AE and LO with a space. Command Group Length
// (0000,0000) UL comes first and counts the bytes after it. Command Data Set Type
// (0000,0800) is 0x0101 without a data set and 0x0001 (what we write) with one.
// ---------------------------------------------------------------------------------------

/// Decodes the hand-written command set, checks the typed value, and checks that the
/// typed value and the raw command set both encode back to the same bytes.
fn check_command(bytes: &[u8], command: Command, has_dataset: bool) {
    let name = command.name();
    let decoded = Command::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        decoded,
        DecodedCommand {
            command: command.clone(),
            has_dataset
        }
    );
    assert_eq!(command.encode(has_dataset).unwrap(), bytes, "{name}");
    let cs = CommandSet::decode(bytes).unwrap();
    assert_eq!(cs.encode(), bytes, "{name} (raw command set)");
    assert_eq!(cs.encoded_len(), bytes.len());
}

#[test]
fn command_c_echo_rq() {
    // PS3.7 Table 9.3-12. Group length 56 = 26 + 10 + 10 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00],
        b"1.2.840.10008.1.1\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00], // CommandField
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // MessageID 1
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01], // no data set
    ]);
    check_command(
        &bytes,
        CEchoRq {
            affected_sop_class_uid: "1.2.840.10008.1.1".into(),
            message_id: 1,
        }
        .into(),
        false,
    );
}

#[test]
fn command_c_echo_rsp() {
    // PS3.7 Table 9.3-13. Group length 66 = 26 + 4 * 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00],
        b"1.2.840.10008.1.1\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x80], // 0x8030
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // responding to 1
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00], // Status success
    ]);
    check_command(
        &bytes,
        CEchoRsp {
            affected_sop_class_uid: Some("1.2.840.10008.1.1".into()),
            message_id_being_responded_to: 1,
            status: Status::SUCCESS,
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_c_store_rq() {
    // PS3.7 Table 9.3-1. Group length 118 = 34 + 10 + 10 + 10 + 10 + 18 + 16 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x76, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1A, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.1.2\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // 0x0001
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00], // MessageID 7
        &[0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00], // MEDIUM
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // data set
        &[0x00, 0x00, 0x00, 0x10, 0x0A, 0x00, 0x00, 0x00],
        b"1.2.3.4.5\0",
        &[0x00, 0x00, 0x30, 0x10, 0x08, 0x00, 0x00, 0x00],
        b"MOVESCU ", // AE padded with a space
        &[0x00, 0x00, 0x31, 0x10, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00],
    ]);
    check_command(
        &bytes,
        CStoreRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            message_id: 7,
            priority: Priority::Medium,
            affected_sop_instance_uid: "1.2.3.4.5".into(),
            move_originator_ae_title: Some("MOVESCU".into()),
            move_originator_message_id: Some(3),
        }
        .into(),
        true,
    );
}

#[test]
fn command_c_store_rsp() {
    // PS3.7 Table 9.3-2 with the Annex C elements. Group length 130 =
    // 34 + 10 + 10 + 10 + 10 + 12 + 16 + 10 + 18.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1A, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.1.2\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x80], // 0x8001
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0xB0], // 0xB000
        // OffendingElement (0010,0010) AT: group LE, element LE.
        &[
            0x00, 0x00, 0x01, 0x09, 0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x09, 0x08, 0x00, 0x00, 0x00],
        b"Coerced ", // LO padded with a space
        &[0x00, 0x00, 0x03, 0x09, 0x02, 0x00, 0x00, 0x00, 0x2A, 0x00], // ErrorID 42
        &[0x00, 0x00, 0x00, 0x10, 0x0A, 0x00, 0x00, 0x00],
        b"1.2.3.4.5\0",
    ]);
    check_command(
        &bytes,
        CStoreRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.2".into()),
            message_id_being_responded_to: 7,
            status: Status(0xB000),
            offending_element: Some(vec![Tag(0x0010, 0x0010)]),
            error_comment: Some("Coerced".into()),
            error_id: Some(42),
            affected_sop_instance_uid: Some("1.2.3.4.5".into()),
        }
        .into(),
        false,
    );
}

#[test]
fn command_c_find_rq() {
    // PS3.7 Table 9.3-3. Group length 76 = 36 + 4 * 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4C, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1C, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.2.1.1\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x00], // 0x0020
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00],
        &[0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00], // LOW
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
    ]);
    check_command(
        &bytes,
        CFindRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.2.1.1".into(),
            message_id: 2,
            priority: Priority::Low,
        }
        .into(),
        true,
    );
}

#[test]
fn command_c_find_rsp() {
    // PS3.7 Table 9.3-4, pending with an identifier. Group length 76.
    let pending = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4C, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1C, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.2.1.1\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x80], // 0x8020
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0xFF], // 0xFF00
    ]);
    check_command(
        &pending,
        CFindRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.2.1.1".into()),
            message_id_being_responded_to: 2,
            status: Status::PENDING,
            ..Default::default()
        }
        .into(),
        true,
    );
    // The final success response: no identifier, no SOP class. Group length 40.
    let done = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x80],
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
    ]);
    check_command(
        &done,
        CFindRsp {
            message_id_being_responded_to: 2,
            status: Status::SUCCESS,
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_c_get_rq() {
    // PS3.7 Table 9.3-5. Group length 76.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4C, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1C, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.2.1.3\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x10, 0x00], // 0x0010
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00],
        &[0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // HIGH
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
    ]);
    check_command(
        &bytes,
        CGetRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.2.1.3".into(),
            message_id: 3,
            priority: Priority::High,
        }
        .into(),
        true,
    );
}

#[test]
fn command_c_get_rsp() {
    // PS3.7 Table 9.3-6, pending. Group length 116 = 36 + 8 * 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x74, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1C, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.2.1.3\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x10, 0x80], // 0x8010
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0xFF],
        &[0x00, 0x00, 0x20, 0x10, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00], // remaining 5
        &[0x00, 0x00, 0x21, 0x10, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00], // completed 2
        &[0x00, 0x00, 0x22, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00], // failed 0
        &[0x00, 0x00, 0x23, 0x10, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // warning 1
    ]);
    check_command(
        &bytes,
        CGetRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.2.1.3".into()),
            message_id_being_responded_to: 3,
            status: Status::PENDING,
            remaining: Some(5),
            completed: Some(2),
            failed: Some(0),
            warning: Some(1),
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_c_move_rq() {
    // PS3.7 Table 9.3-7. Group length 94 = 36 + 10 + 10 + 18 + 10 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x5E, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1C, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.2.2.2\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x21, 0x00], // 0x0021
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00],
        &[0x00, 0x00, 0x00, 0x06, 0x0A, 0x00, 0x00, 0x00],
        b"STORE_SCP ", // MoveDestination, AE padded with a space
        &[0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
    ]);
    check_command(
        &bytes,
        CMoveRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.2.2.2".into(),
            message_id: 4,
            move_destination: "STORE_SCP".into(),
            priority: Priority::Medium,
        }
        .into(),
        true,
    );
}

#[test]
fn command_c_move_rsp() {
    // PS3.7 Table 9.3-8, failure with an error comment. Group length 134 =
    // 36 + 4 * 10 + 28 + 3 * 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x86, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x1C, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.4.1.2.2.2\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x21, 0x80], // 0x8021
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x01, 0xA8], // 0xA801
        &[0x00, 0x00, 0x02, 0x09, 0x14, 0x00, 0x00, 0x00],
        b"Unknown destination ",
        &[0x00, 0x00, 0x21, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x22, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x23, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
    ]);
    check_command(
        &bytes,
        CMoveRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.2.2.2".into()),
            message_id_being_responded_to: 4,
            status: Status::MOVE_DESTINATION_UNKNOWN,
            error_comment: Some("Unknown destination".into()),
            completed: Some(0),
            failed: Some(0),
            warning: Some(0),
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_c_cancel_rq() {
    // PS3.7 Tables 9.3-9..9.3-11. Group length 30.
    let bytes = [
        0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x1E, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0xFF, 0x0F, // 0x0FFF
        0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00, // responding to 5
        0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
    ];
    check_command(
        &bytes,
        CCancelRq {
            message_id_being_responded_to: 5,
        }
        .into(),
        false,
    );
}

#[test]
fn command_n_event_report_rq() {
    // PS3.7 Table 10.3-1. Group length 98 = 28 + 10 + 10 + 10 + 30 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x62, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x14, 0x00, 0x00, 0x00],
        b"1.2.840.10008.1.20.1", // 20 characters: no padding
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01], // 0x0100
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x00, 0x10, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.1.20.1.1",
        &[0x00, 0x00, 0x02, 0x10, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // EventTypeID 1
    ]);
    check_command(
        &bytes,
        NEventReportRq {
            affected_sop_class_uid: "1.2.840.10008.1.20.1".into(),
            message_id: 8,
            affected_sop_instance_uid: "1.2.840.10008.1.20.1.1".into(),
            event_type_id: 1,
        }
        .into(),
        true,
    );
}

#[test]
fn command_n_event_report_rsp() {
    // PS3.7 Table 10.3-2. Group length 108 = 28 + 4 * 10 + 30 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x6C, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x14, 0x00, 0x00, 0x00],
        b"1.2.840.10008.1.20.1",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x81], // 0x8100
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x10, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.1.20.1.1",
        &[0x00, 0x00, 0x02, 0x10, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
    ]);
    check_command(
        &bytes,
        NEventReportRsp {
            affected_sop_class_uid: Some("1.2.840.10008.1.20.1".into()),
            message_id_being_responded_to: 8,
            status: Status::SUCCESS,
            affected_sop_instance_uid: Some("1.2.840.10008.1.20.1.1".into()),
            event_type_id: Some(1),
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_n_get_rq() {
    // PS3.7 Table 10.3-3. Group length 90 = 30 + 10 + 10 + 10 + 14 + 16.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x5A, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x03, 0x00, 0x16, 0x00, 0x00, 0x00], // RequestedSOPClassUID
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x10, 0x01], // 0x0110
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x09, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x01, 0x10, 0x06, 0x00, 0x00, 0x00], // RequestedSOPInstanceUID
        b"1.2.3\0",
        // AttributeIdentifierList: (0008,0016), (0010,0010).
        &[0x00, 0x00, 0x05, 0x10, 0x08, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x16, 0x00, 0x10, 0x00, 0x10, 0x00],
    ]);
    check_command(
        &bytes,
        NGetRq {
            requested_sop_class_uid: "1.2.840.10008.5.1.1.9".into(),
            message_id: 9,
            requested_sop_instance_uid: "1.2.3".into(),
            attribute_identifier_list: Some(vec![Tag(0x0008, 0x0016), Tag(0x0010, 0x0010)]),
        }
        .into(),
        false,
    );
}

#[test]
fn command_n_get_rsp() {
    // PS3.7 Table 10.3-4. Group length 84 = 30 + 4 * 10 + 14.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x10, 0x81], // 0x8110
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x09, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
    ]);
    check_command(
        &bytes,
        NGetRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.1.9".into()),
            message_id_being_responded_to: 9,
            status: Status::SUCCESS,
            affected_sop_instance_uid: Some("1.2.3".into()),
            ..Default::default()
        }
        .into(),
        true,
    );
}

#[test]
fn command_n_set_rq() {
    // PS3.7 Table 10.3-5. Group length 74 = 30 + 3 * 10 + 14.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4A, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x03, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x01], // 0x0120
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0A, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x01, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
    ]);
    check_command(
        &bytes,
        NSetRq {
            requested_sop_class_uid: "1.2.840.10008.5.1.1.9".into(),
            message_id: 10,
            requested_sop_instance_uid: "1.2.3".into(),
        }
        .into(),
        true,
    );
}

#[test]
fn command_n_set_rsp() {
    // PS3.7 Table 10.3-6, warning 0x0107 with the attribute list. Group length 96 =
    // 30 + 4 * 10 + 14 + 12.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x81], // 0x8120
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0A, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x07, 0x01], // 0x0107
        &[0x00, 0x00, 0x00, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
        &[
            0x00, 0x00, 0x05, 0x10, 0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00,
        ],
    ]);
    check_command(
        &bytes,
        NSetRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.1.9".into()),
            message_id_being_responded_to: 10,
            status: Status::ATTRIBUTE_LIST_ERROR,
            affected_sop_instance_uid: Some("1.2.3".into()),
            attribute_identifier_list: Some(vec![Tag(0x0010, 0x0010)]),
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_n_action_rq() {
    // PS3.7 Table 10.3-7. Group length 84 = 30 + 3 * 10 + 14 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x03, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x01], // 0x0130
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0B, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x01, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
        &[0x00, 0x00, 0x08, 0x10, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00], // ActionTypeID 1
    ]);
    check_command(
        &bytes,
        NActionRq {
            requested_sop_class_uid: "1.2.840.10008.5.1.1.9".into(),
            message_id: 11,
            requested_sop_instance_uid: "1.2.3".into(),
            action_type_id: 1,
        }
        .into(),
        true,
    );
}

#[test]
fn command_n_action_rsp() {
    // PS3.7 Table 10.3-8. Group length 94 = 30 + 4 * 10 + 14 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x5E, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x81], // 0x8130
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0B, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
        &[0x00, 0x00, 0x08, 0x10, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
    ]);
    check_command(
        &bytes,
        NActionRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.1.9".into()),
            message_id_being_responded_to: 11,
            status: Status::SUCCESS,
            affected_sop_instance_uid: Some("1.2.3".into()),
            action_type_id: Some(1),
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_n_create_rq() {
    // PS3.7 Table 10.3-9, without the optional instance UID. Group length 60 = 30 + 3 * 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x40, 0x01], // 0x0140
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0C, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
    ]);
    check_command(
        &bytes,
        NCreateRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.1.9".into(),
            message_id: 12,
            affected_sop_instance_uid: None,
        }
        .into(),
        true,
    );
}

#[test]
fn command_n_create_rsp() {
    // PS3.7 Table 10.3-10. Group length 86 = 30 + 4 * 10 + 16.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x56, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x40, 0x81], // 0x8140
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0C, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x10, 0x08, 0x00, 0x00, 0x00],
        b"1.2.3.4\0",
    ]);
    check_command(
        &bytes,
        NCreateRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.1.9".into()),
            message_id_being_responded_to: 12,
            status: Status::SUCCESS,
            affected_sop_instance_uid: Some("1.2.3.4".into()),
            ..Default::default()
        }
        .into(),
        true,
    );
}

#[test]
fn command_n_delete_rq() {
    // PS3.7 Table 10.3-11. Group length 74 = 30 + 3 * 10 + 14.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4A, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x03, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x50, 0x01], // 0x0150
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0D, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x01, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
    ]);
    check_command(
        &bytes,
        NDeleteRq {
            requested_sop_class_uid: "1.2.840.10008.5.1.1.9".into(),
            message_id: 13,
            requested_sop_instance_uid: "1.2.3".into(),
        }
        .into(),
        false,
    );
}

#[test]
fn command_n_delete_rsp() {
    // PS3.7 Table 10.3-12, failure 0x0112. Group length 84 = 30 + 4 * 10 + 14.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00],
        b"1.2.840.10008.5.1.1.9\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x50, 0x81], // 0x8150
        &[0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x0D, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01],
        &[0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x12, 0x01], // 0x0112
        &[0x00, 0x00, 0x00, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
    ]);
    check_command(
        &bytes,
        NDeleteRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.1.9".into()),
            message_id_being_responded_to: 13,
            status: Status::NO_SUCH_SOP_INSTANCE,
            affected_sop_instance_uid: Some("1.2.3".into()),
            ..Default::default()
        }
        .into(),
        false,
    );
}

#[test]
fn command_data_set_type_any_value_but_0101_means_present() {
    // A peer may write any value other than 0x0101 for "a data set follows" (PS3.7 E.1):
    // a C-STORE-RQ with 0xFEFE decodes with a data set. Group length 76 =
    // 12 + 4 * 10 + 14 + 10.
    let bytes = cat(&[
        &[
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4C, 0x00, 0x00, 0x00,
        ],
        &[0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00],
        b"1.2\0",
        &[0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00],
        &[0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00],
        &[0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0xFE, 0xFE],
        &[0x00, 0x00, 0x00, 0x10, 0x06, 0x00, 0x00, 0x00],
        b"1.2.3\0",
        // (0000,2000) is not a PS3.7 element: the raw command set keeps it.
        &[0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00, 0x00, 0xAB, 0xCD],
    ]);
    let decoded = Command::decode(&bytes).unwrap();
    assert!(decoded.has_dataset);
    assert_eq!(
        decoded.command,
        Command::CStoreRq(CStoreRq {
            affected_sop_class_uid: "1.2".into(),
            message_id: 7,
            priority: Priority::Medium,
            affected_sop_instance_uid: "1.2.3".into(),
            ..Default::default()
        })
    );
    let cs = CommandSet::decode(&bytes).unwrap();
    assert_eq!(cs.get(0x2000), Some(&[0xAB, 0xCD][..]));
    assert_eq!(cs.get_us(0x0800), Some(0xFEFE));
    assert_eq!(cs.encode(), bytes);
    // A group length that disagrees with the bytes that follow is refused.
    let mut wrong = bytes.clone();
    wrong[8] = 0x4E;
    assert!(CommandSet::decode(&wrong).is_err());
}
