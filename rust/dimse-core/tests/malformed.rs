//! Malformed input: truncations, lengths that overflow or overrun their container, PDUs
//! larger than the configured maximum (refused from the 6-byte header alone), fixed-size
//! PDUs of the wrong size, invalid field values, and random bytes. Nothing may panic; each
//! error maps to the A-ABORT reason PS3.8 Table 9-26 calls for.

// clippy.toml allows unwrap in #[test] functions; this crate is all test code, helpers and
// proptest bodies included, so the same applies everywhere in it.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use dimse_core::message::{Command, CommandError, CommandSet};
use dimse_core::pdu::{
    self, AAbort, AAssociateAc, AAssociateRj, AAssociateRq, AbortReason, AbortSource, AeTitle,
    PDataTf, Pdu, PduError, PduReader, PresentationContextAc, PresentationContextResult,
    PresentationContextRq, PresentationDataValue, RejectReason, RejectResult, UserIdentityType,
    UserInformation, UserItem, DEFAULT_MAX_ASSOCIATE_LENGTH, UNLIMITED_RECEIVE_CLAMP,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn rq() -> AAssociateRq {
    AAssociateRq {
        protocol_version: 1,
        called_ae_title: AeTitle::new("ANY-SCP").unwrap(),
        calling_ae_title: AeTitle::new("ECHOSCU").unwrap(),
        application_context_name: pdu::APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![
            PresentationContextRq {
                id: 1,
                abstract_syntax: "1.2.840.10008.1.1".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2".into(), "1.2.840.10008.1.2.1".into()],
            },
            PresentationContextRq {
                id: 3,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
            },
        ],
        user_information: UserInformation {
            items: all_user_items(),
        },
    }
}

fn all_user_items() -> Vec<UserItem> {
    vec![
        UserItem::MaximumLength {
            maximum_length: 16384,
        },
        UserItem::ImplementationClassUid {
            uid: "1.2.3.4".into(),
        },
        UserItem::AsynchronousOperationsWindow {
            invoked: 2,
            performed: 3,
        },
        UserItem::RoleSelection {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            scu_role: false,
            scp_role: true,
        },
        UserItem::ImplementationVersionName {
            name: "DIMSE".into(),
        },
        UserItem::SopClassExtendedNegotiation {
            sop_class_uid: "1.2.3".into(),
            info: Bytes::from_static(&[1, 0, 1]),
        },
        UserItem::SopClassCommonExtendedNegotiation {
            sop_class_uid: "1.2.3".into(),
            service_class_uid: "1.2.4".into(),
            related_general_sop_classes: vec!["1.2.5".into(), "1.2.6".into()],
        },
        UserItem::UserIdentityRq {
            identity_type: UserIdentityType::UsernameAndPasscode,
            positive_response_requested: true,
            primary: Bytes::from_static(b"user"),
            secondary: Bytes::from_static(b"pass"),
        },
        UserItem::UserIdentityAc {
            server_response: Bytes::from_static(b"ok"),
        },
        UserItem::Unknown {
            item_type: 0x5A,
            data: Bytes::from_static(&[9, 9]),
        },
    ]
}

fn ac() -> AAssociateAc {
    AAssociateAc {
        protocol_version: 1,
        called_ae_title: AeTitle::new("ANY-SCP").unwrap(),
        calling_ae_title: AeTitle::new("ECHOSCU").unwrap(),
        application_context_name: pdu::APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![
            PresentationContextAc {
                id: 1,
                result: PresentationContextResult::Acceptance,
                transfer_syntax: Some("1.2.840.10008.1.2".into()),
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
            items: all_user_items(),
        },
    }
}

fn pdata() -> PDataTf {
    PDataTf {
        values: vec![
            PresentationDataValue {
                context_id: 1,
                control: 0x03,
                data: Bytes::from_static(&[1, 2, 3, 4, 5, 6]),
            },
            PresentationDataValue {
                context_id: 1,
                control: 0x00,
                data: Bytes::new(),
            },
            PresentationDataValue {
                context_id: 3,
                control: 0x02,
                data: Bytes::from_static(&[7; 9]),
            },
        ],
    }
}

/// A valid PDU of every type.
fn samples() -> Vec<Pdu> {
    vec![
        Pdu::AAssociateRq(rq()),
        Pdu::AAssociateAc(ac()),
        Pdu::AAssociateRj(AAssociateRj {
            result: RejectResult::Transient,
            reason: RejectReason::PresentationTemporaryCongestion,
        }),
        Pdu::PDataTf(pdata()),
        Pdu::AReleaseRq,
        Pdu::AReleaseRp,
        Pdu::AAbort(AAbort {
            source: AbortSource::ServiceProvider,
            reason: AbortReason::UnexpectedPdu,
        }),
    ]
}

/// `bytes` with its PDU length field set to what follows the header.
fn patch_pdu_length(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(bytes.len() - 6).unwrap();
    bytes[2..6].copy_from_slice(&len.to_be_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<Pdu, PduError> {
    pdu::read::decode(Bytes::copy_from_slice(bytes))
}

// ---------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------

#[test]
fn every_truncation_point_needs_more_bytes() {
    let reader = PduReader::new(0);
    for sample in samples() {
        let bytes = sample.encode().unwrap();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(
                reader.read(&mut buf),
                Ok(None),
                "{} cut at {cut}",
                sample.name()
            );
            assert_eq!(buf.len(), cut, "the buffer is left untouched");
        }
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(reader.read(&mut buf), Ok(Some(sample.clone())));
        assert!(buf.is_empty());
    }
}

#[test]
fn every_truncated_body_is_an_error() {
    // The body cut at every point, with the header's length patched to match: the PDU is
    // complete as far as its header says, and its content must be refused.
    let reader = PduReader::new(0);
    for sample in samples() {
        let bytes = sample.encode().unwrap();
        for cut in 6..bytes.len() {
            let truncated = patch_pdu_length(bytes[..cut].to_vec());
            let result = reader.decode(Bytes::from(truncated));
            let body = cut - 6;
            match (&sample, result) {
                (Pdu::PDataTf(p), Ok(Pdu::PDataTf(got))) => {
                    // Cut between two PDVs: the PDU is a valid P-DATA-TF with the PDVs
                    // before the cut, nothing else.
                    let boundaries: Vec<usize> = p
                        .values
                        .iter()
                        .scan(0, |at, v| {
                            *at += 6 + v.data.len();
                            Some(*at)
                        })
                        .collect();
                    let n = boundaries.iter().position(|&b| b == body);
                    let n = n.unwrap_or_else(|| panic!("P-DATA-TF cut at {body} decoded"));
                    assert_eq!(got.values, p.values[..=n]);
                }
                (_, Ok(pdu)) => panic!("{} cut at {cut} decoded as {pdu:?}", sample.name()),
                (_, Err(e)) => {
                    assert_eq!(
                        e.abort_reason(),
                        AbortReason::InvalidPduParameterValue,
                        "{} cut at {cut}: {e}",
                        sample.name()
                    );
                    match sample {
                        Pdu::AAssociateRj(_)
                        | Pdu::AReleaseRq
                        | Pdu::AReleaseRp
                        | Pdu::AAbort(_) => assert_eq!(
                            e,
                            PduError::InvalidLength {
                                pdu: sample.name(),
                                length: body as u32,
                                expected: 4
                            }
                        ),
                        _ => assert!(
                            matches!(
                                e,
                                PduError::Truncated { .. }
                                    | PduError::MissingItem { .. }
                                    | PduError::InvalidValue { .. }
                            ),
                            "{} cut at {cut}: {e:?}",
                            sample.name()
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn truncated_without_patching_is_truncated() {
    for sample in samples() {
        let bytes = sample.encode().unwrap();
        for cut in 0..bytes.len() {
            let e = decode(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(e, PduError::Truncated { available, .. } if available == cut),
                "{} cut at {cut}: {e:?}",
                sample.name()
            );
        }
    }
}

#[test]
fn trailing_bytes_after_a_complete_pdu_are_refused_by_decode() {
    let mut bytes = Pdu::AReleaseRq.encode().unwrap();
    bytes.push(0);
    assert!(matches!(decode(&bytes), Err(PduError::InvalidValue { .. })));
}

// ---------------------------------------------------------------------------------------
// Declared lengths: over the maximum, overflowing, past the end
// ---------------------------------------------------------------------------------------

#[test]
fn associate_rq_declaring_4_gb_is_refused_from_the_header() {
    let reader = PduReader::new(16384);
    let mut buf = BytesMut::from(&[0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    let e = reader.read(&mut buf).unwrap_err();
    assert_eq!(
        e,
        PduError::TooLong {
            pdu: "A-ASSOCIATE-RQ",
            length: u32::MAX,
            max: DEFAULT_MAX_ASSOCIATE_LENGTH
        }
    );
    assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
    // The same for an AC, and for any length just over the limit.
    let mut buf = BytesMut::from(&[0x02, 0x00, 0x00, 0x10, 0x00, 0x01][..]);
    assert_eq!(
        reader.read(&mut buf),
        Err(PduError::TooLong {
            pdu: "A-ASSOCIATE-AC",
            length: DEFAULT_MAX_ASSOCIATE_LENGTH + 1,
            max: DEFAULT_MAX_ASSOCIATE_LENGTH
        })
    );
    // At the limit, the reader waits for the body.
    let mut buf = BytesMut::from(&[0x01, 0x00, 0x00, 0x10, 0x00, 0x00][..]);
    assert_eq!(reader.read(&mut buf), Ok(None));
}

#[test]
fn max_associate_length_is_configurable() {
    let reader = PduReader {
        max_pdu_length: 0,
        max_associate_length: 100,
    };
    let mut buf = BytesMut::from(&[0x01, 0x00, 0x00, 0x00, 0x00, 0x65][..]);
    assert_eq!(
        reader.read(&mut buf),
        Err(PduError::TooLong {
            pdu: "A-ASSOCIATE-RQ",
            length: 101,
            max: 100
        })
    );
}

#[test]
fn p_data_tf_over_max_pdu_length_is_refused_from_the_header() {
    let reader = PduReader::new(16384);
    // 16384 is accepted (the body is awaited), 16385 is refused.
    let mut ok = BytesMut::from(&[0x04, 0x00, 0x00, 0x00, 0x40, 0x00][..]);
    assert_eq!(reader.read(&mut ok), Ok(None));
    let mut over = BytesMut::from(&[0x04, 0x00, 0x00, 0x00, 0x40, 0x01][..]);
    let e = reader.read(&mut over).unwrap_err();
    assert_eq!(
        e,
        PduError::TooLong {
            pdu: "P-DATA-TF",
            length: 16385,
            max: 16384
        }
    );
    assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
    assert_eq!(over.len(), 6, "nothing consumed");

    // A maximum of 0 (unlimited) is clamped on receive.
    let reader = PduReader::new(0);
    let mut at = BytesMut::from(&[0x04, 0x00][..]);
    at.extend_from_slice(&UNLIMITED_RECEIVE_CLAMP.to_be_bytes());
    assert_eq!(reader.read(&mut at), Ok(None));
    let mut over = BytesMut::from(&[0x04, 0x00][..]);
    over.extend_from_slice(&(UNLIMITED_RECEIVE_CLAMP + 1).to_be_bytes());
    assert_eq!(
        reader.read(&mut over),
        Err(PduError::TooLong {
            pdu: "P-DATA-TF",
            length: UNLIMITED_RECEIVE_CLAMP + 1,
            max: UNLIMITED_RECEIVE_CLAMP
        })
    );
    let mut huge = BytesMut::from(&[0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xFF][..]);
    assert!(matches!(
        reader.read(&mut huge),
        Err(PduError::TooLong { .. })
    ));
    // A full P-DATA-TF over the limit is refused by decode too.
    let big = Pdu::PDataTf(PDataTf {
        values: vec![PresentationDataValue {
            context_id: 1,
            control: 3,
            data: Bytes::from(vec![0; 100]),
        }],
    })
    .encode()
    .unwrap();
    assert!(matches!(
        PduReader::new(105).decode(Bytes::from(big.clone())),
        Err(PduError::TooLong {
            length: 106,
            max: 105,
            ..
        })
    ));
    assert!(PduReader::new(106).decode(Bytes::from(big)).is_ok());
}

#[test]
fn http_request_is_an_unknown_pdu_from_the_first_byte() {
    let reader = PduReader::new(16384);
    let http = b"GET / HTTP/1.1\r\n";
    for n in 1..=http.len() {
        let mut buf = BytesMut::from(&http[..n]);
        let e = reader.read(&mut buf).unwrap_err();
        assert_eq!(e, PduError::UnknownPduType(b'G'));
        assert_eq!(e.abort_reason(), AbortReason::UnrecognizedPdu);
    }
    assert_eq!(decode(http), Err(PduError::UnknownPduType(b'G')));
    // An empty buffer is simply not enough yet.
    assert_eq!(reader.read(&mut BytesMut::new()), Ok(None));
}

#[test]
fn every_unknown_pdu_type_is_refused() {
    let reader = PduReader::new(0);
    for t in (0u8..=255).filter(|t| !(1..=7).contains(t)) {
        let mut buf = BytesMut::from(&[t][..]);
        assert_eq!(reader.read(&mut buf), Err(PduError::UnknownPduType(t)));
        let e = decode(&[t, 0, 0, 0, 0, 4, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e, PduError::UnknownPduType(t));
        assert_eq!(e.abort_reason(), AbortReason::UnrecognizedPdu);
    }
    for t in 1u8..=7 {
        let mut buf = BytesMut::from(&[t][..]);
        assert_eq!(reader.read(&mut buf), Ok(None), "type {t}");
    }
}

#[test]
fn fixed_size_pdus_with_a_length_other_than_4() {
    let reader = PduReader::new(0);
    let fixed = [
        (0x03u8, "A-ASSOCIATE-RJ"),
        (0x05, "A-RELEASE-RQ"),
        (0x06, "A-RELEASE-RP"),
        (0x07, "A-ABORT"),
    ];
    for (t, name) in fixed {
        for length in [0u32, 1, 3, 5, 6, 100, u32::MAX] {
            let expected = PduError::InvalidLength {
                pdu: name,
                length,
                expected: 4,
            };
            // From the header alone...
            let mut header = BytesMut::from(&[t, 0][..]);
            header.extend_from_slice(&length.to_be_bytes());
            let e = reader.read(&mut header).unwrap_err();
            assert_eq!(e, expected);
            assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
            // ...and with the body the header announces.
            if length <= 100 {
                let mut whole = vec![t, 0];
                whole.extend_from_slice(&length.to_be_bytes());
                whole.resize(6 + length as usize, 0);
                assert_eq!(decode(&whole), Err(expected));
            }
        }
    }
}

/// A minimal A-ASSOCIATE-RQ with its variable items replaced by `variable` (the header
/// length is patched).
fn rq_with_variable_items(variable: &[u8]) -> Vec<u8> {
    let mut bytes = Pdu::AAssociateRq(rq()).encode().unwrap();
    bytes.truncate(6 + 68);
    bytes.extend_from_slice(variable);
    patch_pdu_length(bytes)
}

const APP_CONTEXT: &[u8] = b"\x10\x00\x00\x151.2.840.10008.3.1.1.1";
const PC: &[u8] =
    b"\x20\x00\x00\x22\x01\x00\x00\x00\x30\x00\x00\x111.2.840.10008.1.1\x40\x00\x00\x051.2.3";

fn user_info(sub_items: &[u8]) -> Vec<u8> {
    let mut v = vec![0x50, 0x00];
    v.extend_from_slice(&u16::try_from(sub_items.len()).unwrap().to_be_bytes());
    v.extend_from_slice(sub_items);
    v
}

#[test]
fn the_hand_built_rq_is_valid() {
    let ok = rq_with_variable_items(&[APP_CONTEXT, PC, &user_info(&[])].concat());
    assert!(matches!(decode(&ok), Ok(Pdu::AAssociateRq(_))));
}

#[test]
fn item_lengths_past_the_end() {
    let truncated = |variable: Vec<u8>| {
        let e = decode(&rq_with_variable_items(&variable)).unwrap_err();
        assert!(matches!(e, PduError::Truncated { .. }), "{e:?}");
        assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
    };
    // The application context item claims 0xFFFF bytes.
    truncated([&b"\x10\x00\xFF\xFF"[..], &APP_CONTEXT[4..], PC].concat());
    // The presentation context item claims one byte more than there is.
    let mut pc = PC.to_vec();
    pc[3] += 1;
    truncated([APP_CONTEXT, &pc].concat());
    // A sub-item of the presentation context overruns the item.
    let mut pc = PC.to_vec();
    pc[11] = 0x30; // abstract syntax length 48 in a 34-byte item
    truncated([APP_CONTEXT, &pc, &user_info(&[])].concat());
    // The user information item claims more than the PDU holds.
    let mut ui = user_info(&[0x51, 0, 0, 4, 0, 0, 0x40, 0]);
    ui[3] = 0xFF;
    truncated([APP_CONTEXT, PC, &ui].concat());
    // A sub-item overruns the user information item.
    truncated([APP_CONTEXT, PC, &user_info(&[0x52, 0, 0, 9, b'1'])].concat());
    // An item header cut short: 3 bytes left.
    truncated([APP_CONTEXT, PC, &[0x50, 0x00, 0x00]].concat());
    // Fields inside sub-items overrun the sub-item.
    for sub in [
        &[0x54, 0, 0, 4, 0x00, 0x09, 0x31, 0x32][..], // role selection UID length 9
        &[0x56, 0, 0, 2, 0x00, 0x05][..],             // extended negotiation UID length 5
        &[0x57, 0, 0, 4, 0x00, 0x00, 0x00, 0x07][..], // service class UID length 7
        &[0x57, 0, 0, 6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04][..], // related list length 4
        &[0x57, 0, 0, 8, 0, 0, 0, 0, 0, 2, 0, 5][..], // a related UID of 5 in 2 bytes
        &[0x57, 0, 0, 2, 0x00, 0x00][..],             // the service class UID is missing
        &[0x58, 0, 0, 1, 0x01][..],                   // user identity without its flags
        &[0x58, 0, 0, 6, 0x01, 0x00, 0x00, 0x08, 0x61, 0x62][..], // primary length 8
        &[0x58, 0, 0, 4, 0x01, 0x00, 0x00, 0x00][..], // the secondary length is missing
        &[0x59, 0, 0, 3, 0x00, 0x05, 0x61][..],       // server response length 5
        &[0x59, 0, 0, 0][..],                         // server response length missing
    ] {
        truncated([APP_CONTEXT, PC, &user_info(sub)].concat());
    }
}

#[test]
fn sub_items_with_wrong_fixed_sizes_or_extra_bytes() {
    let invalid = |sub: &[u8]| {
        let e = decode(&rq_with_variable_items(
            &[APP_CONTEXT, PC, &user_info(sub)].concat(),
        ))
        .unwrap_err();
        assert!(
            matches!(e, PduError::InvalidValue { .. }),
            "{sub:02X?}: {e:?}"
        );
        assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
    };
    invalid(&[0x51, 0, 0, 2, 0x40, 0x00]); // maximum length of 2 bytes
    invalid(&[0x51, 0, 0, 5, 0, 0, 0x40, 0, 0]);
    invalid(&[0x53, 0, 0, 2, 0, 1]); // window of 2 bytes
    invalid(&[0x54, 0, 0, 6, 0, 1, b'1', 1, 1, 0]); // a byte after the roles
    invalid(&[0x54, 0, 0, 4, 0, 1, b'1', 1]); // one role byte missing
    invalid(&[0x57, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0xEE]); // a byte after the related list
    invalid(&[0x58, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0xEE]); // a byte after the secondary
    invalid(&[0x59, 0, 0, 3, 0, 0, 0xEE]); // a byte after the response
}

#[test]
fn missing_and_unexpected_items() {
    let check = |variable: Vec<u8>, reason: AbortReason| {
        let e = decode(&rq_with_variable_items(&variable)).unwrap_err();
        assert_eq!(e.abort_reason(), reason, "{e:?}");
        e
    };
    let missing = AbortReason::InvalidPduParameterValue;
    let unexpected = AbortReason::UnexpectedPduParameter;
    let ui = user_info(&[]);
    // Without the application context, user information, or any presentation context.
    assert!(matches!(
        check([PC, &ui].concat(), missing),
        PduError::MissingItem { .. }
    ));
    assert!(matches!(
        check([APP_CONTEXT, PC].concat(), missing),
        PduError::MissingItem { .. }
    ));
    assert!(matches!(
        check([APP_CONTEXT, &ui].concat(), missing),
        PduError::MissingItem { .. }
    ));
    // Two application contexts, two user information items.
    assert_eq!(
        check([APP_CONTEXT, APP_CONTEXT, PC, &ui].concat(), unexpected),
        PduError::UnexpectedItem {
            item_type: 0x10,
            context: "A-ASSOCIATE-RQ"
        }
    );
    assert!(matches!(
        check([APP_CONTEXT, PC, &ui, &ui].concat(), unexpected),
        PduError::UnexpectedItem {
            item_type: 0x50,
            ..
        }
    ));
    // An AC presentation context in an RQ.
    let ac_item = b"\x21\x00\x00\x04\x01\x00\x00\x00";
    assert!(matches!(
        check([APP_CONTEXT, PC, ac_item, &ui].concat(), unexpected),
        PduError::UnexpectedItem {
            item_type: 0x21,
            ..
        }
    ));
    // A context without transfer syntax, without abstract syntax, with two abstract
    // syntaxes, with a foreign sub-item.
    let no_ts = b"\x20\x00\x00\x19\x01\x00\x00\x00\x30\x00\x00\x111.2.840.10008.1.1";
    assert!(matches!(
        check([APP_CONTEXT, no_ts, &ui].concat(), missing),
        PduError::MissingItem { .. }
    ));
    let no_as = b"\x20\x00\x00\x0D\x01\x00\x00\x00\x40\x00\x00\x051.2.3";
    assert!(matches!(
        check([APP_CONTEXT, no_as, &ui].concat(), missing),
        PduError::MissingItem { .. }
    ));
    // Length 19 = 4 + 5 + 5 + 5.
    let two_as =
        b"\x20\x00\x00\x13\x01\x00\x00\x00\x30\x00\x00\x011\x30\x00\x00\x012\x40\x00\x00\x013";
    assert!(matches!(
        check([APP_CONTEXT, two_as, &ui].concat(), unexpected),
        PduError::UnexpectedItem {
            item_type: 0x30,
            ..
        }
    ));
    let foreign = b"\x20\x00\x00\x0E\x01\x00\x00\x00\x30\x00\x00\x011\x51\x00\x00\x01\x00";
    assert!(matches!(
        check([APP_CONTEXT, foreign, &ui].concat(), unexpected),
        PduError::UnexpectedItem {
            item_type: 0x51,
            ..
        }
    ));
    // A presentation context item shorter than its 4 fixed bytes.
    assert!(matches!(
        check(
            [APP_CONTEXT, &b"\x20\x00\x00\x02\x01\x00"[..], &ui].concat(),
            missing
        ),
        PduError::Truncated { .. }
    ));
    // Unknown items of the variable field are skipped.
    let unknown = b"\x99\x00\x00\x02\xAB\xCD";
    let ok = decode(&rq_with_variable_items(
        &[unknown, APP_CONTEXT, PC, unknown, &ui].concat(),
    ));
    assert!(matches!(ok, Ok(Pdu::AAssociateRq(_))));
}

#[test]
fn invalid_field_values() {
    // A-ASSOCIATE-RJ result other than 1 or 2.
    for result in [0u8, 3, 0xFF] {
        let e = decode(&[0x03, 0, 0, 0, 0, 4, 0, result, 1, 1]).unwrap_err();
        assert!(matches!(e, PduError::InvalidValue { .. }));
        assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
    }
    // A-ABORT source other than 0, 1, 2.
    for source in [3u8, 0xFF] {
        let e = decode(&[0x07, 0, 0, 0, 0, 4, 0, 0, source, 0]).unwrap_err();
        assert!(matches!(e, PduError::InvalidValue { .. }));
    }
    // Presentation context result 5 in an AC; an accepted context without a transfer
    // syntax, or with an empty one.
    let mut ac_bytes = Pdu::AAssociateAc(AAssociateAc {
        presentation_contexts: vec![],
        ..ac()
    })
    .encode()
    .unwrap();
    ac_bytes.truncate(6 + 68);
    let with_context = |item: &[u8]| {
        let mut v = ac_bytes.clone();
        v.extend_from_slice(APP_CONTEXT);
        v.extend_from_slice(item);
        v.extend_from_slice(&user_info(&[]));
        decode(&patch_pdu_length(v))
    };
    let e = with_context(b"\x21\x00\x00\x04\x01\x00\x05\x00").unwrap_err();
    assert!(matches!(e, PduError::InvalidValue { .. }), "{e:?}");
    let e = with_context(b"\x21\x00\x00\x04\x01\x00\x00\x00").unwrap_err();
    assert!(matches!(e, PduError::MissingItem { .. }), "{e:?}");
    let e = with_context(b"\x21\x00\x00\x08\x01\x00\x00\x00\x40\x00\x00\x00").unwrap_err();
    assert!(matches!(e, PduError::MissingItem { .. }), "{e:?}");
    // Two transfer syntaxes, or an abstract syntax, in an AC context.
    let e = with_context(b"\x21\x00\x00\x0E\x01\x00\x00\x00\x40\x00\x00\x011\x40\x00\x00\x012")
        .unwrap_err();
    assert!(
        matches!(
            e,
            PduError::UnexpectedItem {
                item_type: 0x40,
                ..
            }
        ),
        "{e:?}"
    );
    let e = with_context(b"\x21\x00\x00\x09\x01\x00\x00\x00\x30\x00\x00\x011").unwrap_err();
    assert!(
        matches!(
            e,
            PduError::UnexpectedItem {
                item_type: 0x30,
                ..
            }
        ),
        "{e:?}"
    );
    // An RQ context in an AC.
    let e = with_context(PC).unwrap_err();
    assert!(
        matches!(
            e,
            PduError::UnexpectedItem {
                item_type: 0x20,
                ..
            }
        ),
        "{e:?}"
    );
    // An A-ASSOCIATE-RQ/AC shorter than its 68 fixed bytes.
    for t in [0x01u8, 0x02] {
        let mut v = vec![t, 0, 0, 0, 0, 67];
        v.resize(6 + 67, b' ');
        assert!(matches!(
            decode(&v),
            Err(PduError::Truncated { needed: 68, .. })
        ));
    }
}

#[test]
fn pdv_lengths() {
    let p_data = |pdvs: &[u8]| {
        let mut v = vec![0x04, 0x00, 0, 0, 0, 0];
        v.extend_from_slice(pdvs);
        decode(&patch_pdu_length(v))
    };
    // PDV length 0 and 1: less than the context ID and control header.
    for len in [0u8, 1] {
        let e = p_data(&[0, 0, 0, len, 1, 3]).unwrap_err();
        assert!(matches!(e, PduError::InvalidValue { .. }), "{e:?}");
        assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
    }
    // PDV length 2 is an empty fragment.
    assert_eq!(
        p_data(&[0, 0, 0, 2, 1, 3]),
        Ok(Pdu::PDataTf(PDataTf {
            values: vec![PresentationDataValue {
                context_id: 1,
                control: 3,
                data: Bytes::new()
            }]
        }))
    );
    // Past the end: by one, by a lot, and u32::MAX.
    for len in [5u32, 0x0100_0000, u32::MAX] {
        let mut pdv = len.to_be_bytes().to_vec();
        pdv.extend_from_slice(&[1, 3, 0xAA, 0xBB]);
        let e = p_data(&pdv).unwrap_err();
        assert!(matches!(e, PduError::Truncated { .. }), "{len}: {e:?}");
    }
    // A second PDV past the end, and a PDV header cut short.
    let e = p_data(&[0, 0, 0, 3, 1, 3, 0xAA, 0, 0, 0, 9, 1, 3]).unwrap_err();
    assert!(matches!(e, PduError::Truncated { .. }), "{e:?}");
    let e = p_data(&[0, 0, 0, 3, 1, 3, 0xAA, 0, 0]).unwrap_err();
    assert!(matches!(e, PduError::Truncated { .. }), "{e:?}");
    // No PDV at all.
    let e = p_data(&[]).unwrap_err();
    assert!(matches!(e, PduError::MissingItem { .. }), "{e:?}");
}

#[test]
fn abort_reasons_of_every_error() {
    let cases = [
        (PduError::UnknownPduType(0x08), AbortReason::UnrecognizedPdu),
        (
            PduError::TooLong {
                pdu: "P-DATA-TF",
                length: 2,
                max: 1,
            },
            AbortReason::InvalidPduParameterValue,
        ),
        (
            PduError::InvalidLength {
                pdu: "A-ABORT",
                length: 5,
                expected: 4,
            },
            AbortReason::InvalidPduParameterValue,
        ),
        (
            PduError::Truncated {
                context: "x",
                needed: 2,
                available: 1,
            },
            AbortReason::InvalidPduParameterValue,
        ),
        (
            PduError::UnexpectedItem {
                item_type: 0x21,
                context: "A-ASSOCIATE-RQ",
            },
            AbortReason::UnexpectedPduParameter,
        ),
        (
            PduError::MissingItem {
                item: "x",
                context: "y",
            },
            AbortReason::InvalidPduParameterValue,
        ),
        (
            PduError::InvalidValue {
                what: "x",
                detail: "y".into(),
            },
            AbortReason::InvalidPduParameterValue,
        ),
    ];
    for (e, reason) in cases {
        assert_eq!(e.abort_reason(), reason, "{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Command sets
// ---------------------------------------------------------------------------------------

#[test]
fn command_set_truncation_is_an_error() {
    let bytes = Command::from(dimse_core::message::command::CStoreRq {
        affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        message_id: 1,
        priority: Default::default(),
        affected_sop_instance_uid: "1.2.3.4".into(),
        move_originator_ae_title: Some("MOVER".into()),
        move_originator_message_id: Some(9),
    })
    .encode(true)
    .unwrap();
    for cut in 0..bytes.len() {
        assert!(CommandSet::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        assert!(Command::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // Even at an element boundary with the group length patched, a C-STORE-RQ without
    // its last mandatory element is refused by the typed decoder.
    let cut = bytes.len() - 10 - 14; // without (0000,1031) and (0000,1030) "MOVER\x20"
    let mut short = bytes[..cut].to_vec();
    let gl = u32::try_from(short.len() - 12).unwrap();
    short[8..12].copy_from_slice(&gl.to_le_bytes());
    assert!(CommandSet::decode(&short).is_ok());
    let mut no_instance = bytes[..cut - 16].to_vec(); // without (0000,1000) "1.2.3.4\0"
    let gl = u32::try_from(no_instance.len() - 12).unwrap();
    no_instance[8..12].copy_from_slice(&gl.to_le_bytes());
    assert_eq!(
        Command::decode(&no_instance),
        Err(CommandError::MissingElement {
            message: "C-STORE-RQ",
            keyword: "AffectedSOPInstanceUID"
        })
    );
}

#[test]
fn command_set_invalid_string_values() {
    // A UI that is not text: the typed decoder refuses it. Group length 40 = 4 * 10.
    let bytes = [
        0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0xFF, 0xFE, // not UTF-8
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00, //
        0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, //
        0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
    ];
    assert!(CommandSet::decode(&bytes).is_ok());
    assert!(matches!(
        Command::decode(&bytes),
        Err(CommandError::InvalidValue {
            keyword: "AffectedSOPClassUID",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Random bytes: no panic anywhere
// ---------------------------------------------------------------------------------------

/// Bytes that look like a PDU: a known type and a matching length, random body.
fn pdu_like() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=7, vec(any::<u8>(), 0..300)).prop_map(|(t, body)| {
        let mut v = vec![t, 0];
        v.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        v.extend_from_slice(&body);
        v
    })
}

/// A valid A-ASSOCIATE-RQ/AC with random bytes overwritten in its variable part.
fn mutated_associate() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    )
        .prop_map(|(is_rq, edits)| {
            let pdu = if is_rq {
                Pdu::AAssociateRq(rq())
            } else {
                Pdu::AAssociateAc(ac())
            };
            let mut bytes = pdu.encode().unwrap();
            let variable = bytes.len() - 74;
            for (at, value) in edits {
                let i = 74 + at.index(variable);
                bytes[i] = value;
            }
            bytes
        })
}

/// A valid command set with random bytes overwritten (the group length left alone).
fn mutated_command() -> impl Strategy<Value = Vec<u8>> {
    vec((any::<prop::sample::Index>(), any::<u8>()), 1..6).prop_map(|edits| {
        let mut bytes = Command::from(dimse_core::message::command::CMoveRsp {
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.2.2.2".into()),
            message_id_being_responded_to: 4,
            status: dimse_core::message::Status::PENDING,
            offending_element: Some(vec![dimse_core::message::Tag(0x10, 0x10)]),
            error_comment: Some("a comment".into()),
            error_id: Some(1),
            remaining: Some(3),
            completed: Some(1),
            failed: Some(0),
            warning: Some(0),
        })
        .encode(false)
        .unwrap();
        let n = bytes.len() - 12;
        for (at, value) in edits {
            bytes[12 + at.index(n)] = value;
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_into_the_reader(bytes in vec(any::<u8>(), 0..400), max in any::<u32>()) {
        let reader = PduReader::new(max);
        let mut buf = BytesMut::from(&bytes[..]);
        let before = buf.len();
        match reader.read(&mut buf) {
            Ok(None) => prop_assert_eq!(buf.len(), before),
            Ok(Some(p)) => prop_assert!(buf.len() < before, "{:?}", p),
            Err(_) => {}
        }
    }

    #[test]
    fn pdu_like_bytes_into_the_reader_and_decoder(bytes in pdu_like()) {
        let reader = PduReader::new(0);
        let mut buf = BytesMut::from(&bytes[..]);
        let read = reader.read(&mut buf);
        let decoded = pdu::read::decode(Bytes::from(bytes.clone()));
        // Both paths agree; whatever decodes re-encodes to a PDU that decodes the same.
        prop_assert_eq!(read.clone().map(Option::unwrap), decoded.clone());
        if let Ok(p) = decoded {
            let again = p.encode().unwrap();
            prop_assert_eq!(pdu::read::decode(Bytes::from(again)), Ok(p));
        }
    }

    #[test]
    fn random_bytes_into_decode(bytes in vec(any::<u8>(), 0..400)) {
        let _ = pdu::read::decode(Bytes::from(bytes));
    }

    #[test]
    fn mutated_associate_pdus_never_panic(bytes in mutated_associate()) {
        if let Ok(p) = pdu::read::decode(Bytes::from(bytes)) {
            let again = p.encode().unwrap();
            prop_assert_eq!(pdu::read::decode(Bytes::from(again)), Ok(p));
        }
    }

    #[test]
    fn random_bytes_into_command_decoders(bytes in vec(any::<u8>(), 0..200)) {
        let _ = CommandSet::decode(&bytes);
        let _ = Command::decode(&bytes);
    }

    #[test]
    fn command_like_bytes_into_command_decoders(
        elements in vec((any::<u16>(), vec(any::<u8>(), 0..12)), 0..10),
    ) {
        // Well-framed elements of group 0000 (with a correct group length), random
        // element numbers and values: deep into the typed decoder.
        let mut body = Vec::new();
        for (el, value) in &elements {
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&el.to_le_bytes());
            body.extend_from_slice(&u32::try_from(value.len()).unwrap().to_le_bytes());
            body.extend_from_slice(value);
        }
        let mut bytes = vec![0, 0, 0, 0, 4, 0, 0, 0];
        bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(cs) = CommandSet::decode(&bytes) {
            prop_assert_eq!(cs.encode(), bytes.clone());
        }
        let _ = Command::decode(&bytes);
    }

    #[test]
    fn mutated_command_sets_never_panic(bytes in mutated_command()) {
        if let Ok(d) = Command::decode(&bytes) {
            // What decodes is consistent with the raw layer.
            let cs = CommandSet::decode(&bytes).unwrap();
            prop_assert_eq!(cs.command_field(), Some(d.command.command_field()));
        }
    }
}
