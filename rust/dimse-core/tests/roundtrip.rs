//! Property tests: arbitrary values of every PDU, every user information sub-item, every
//! typed DIMSE message and the raw command set survive encode -> decode unchanged, and
//! the decoded value re-encodes to the same bytes.
//!
//! The generators produce the values the codecs promise to keep: e.g. UIDs without the
//! trailing NUL/space padding the decoder strips, canonical enum values (a reserved reason
//! the standard names is decoded as its named variant), and an accepted presentation
//! context always has a transfer syntax.

// clippy.toml allows unwrap in #[test] functions; this crate is all test code, helpers and
// proptest bodies included, so the same applies everywhere in it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use dimse_core::message::command::*;
use dimse_core::message::element::{self, Vr};
use dimse_core::message::{Command, CommandSet, DecodedCommand, Priority, Status, Tag};
use dimse_core::pdu::{
    self, AAbort, AAssociateAc, AAssociateRj, AAssociateRq, AbortReason, AbortSource, AeTitle,
    PDataTf, Pdu, PduReader, PresentationContextAc, PresentationContextResult,
    PresentationContextRq, PresentationDataValue, RejectReason, RejectResult, UserIdentityType,
    UserInformation, UserItem,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

const CASES: u32 = 256;

// ---------------------------------------------------------------------------------------
// PDU generators
// ---------------------------------------------------------------------------------------

/// A UID as carried in a PDU (unpadded): digits and dots, possibly empty.
fn pdu_uid() -> impl Strategy<Value = String> {
    "[0-9.]{0,64}"
}

fn nonempty_pdu_uid() -> impl Strategy<Value = String> {
    "[0-9][0-9.]{0,63}"
}

fn small_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn ae_title() -> impl Strategy<Value = AeTitle> {
    // The fixed fields are kept as raw bytes, so any 16 bytes survive.
    any::<[u8; 16]>().prop_map(AeTitle)
}

fn maximum_length() -> impl Strategy<Value = UserItem> {
    any::<u32>().prop_map(|maximum_length| UserItem::MaximumLength { maximum_length })
}

fn implementation_class_uid() -> impl Strategy<Value = UserItem> {
    pdu_uid().prop_map(|uid| UserItem::ImplementationClassUid { uid })
}

fn asynchronous_operations_window() -> impl Strategy<Value = UserItem> {
    (any::<u16>(), any::<u16>()).prop_map(|(invoked, performed)| {
        UserItem::AsynchronousOperationsWindow { invoked, performed }
    })
}

fn role_selection() -> impl Strategy<Value = UserItem> {
    (pdu_uid(), any::<bool>(), any::<bool>()).prop_map(|(sop_class_uid, scu_role, scp_role)| {
        UserItem::RoleSelection {
            sop_class_uid,
            scu_role,
            scp_role,
        }
    })
}

fn implementation_version_name() -> impl Strategy<Value = UserItem> {
    // Kept as text, without trimming: any string survives.
    "\\PC{0,16}".prop_map(|name| UserItem::ImplementationVersionName { name })
}

fn sop_class_extended_negotiation() -> impl Strategy<Value = UserItem> {
    (pdu_uid(), small_bytes(40)).prop_map(|(sop_class_uid, info)| {
        UserItem::SopClassExtendedNegotiation {
            sop_class_uid,
            info,
        }
    })
}

fn sop_class_common_extended_negotiation() -> impl Strategy<Value = UserItem> {
    (pdu_uid(), pdu_uid(), vec(pdu_uid(), 0..4)).prop_map(
        |(sop_class_uid, service_class_uid, related_general_sop_classes)| {
            UserItem::SopClassCommonExtendedNegotiation {
                sop_class_uid,
                service_class_uid,
                related_general_sop_classes,
            }
        },
    )
}

fn user_identity_rq() -> impl Strategy<Value = UserItem> {
    (any::<u8>(), any::<bool>(), small_bytes(64), small_bytes(64)).prop_map(
        |(t, positive_response_requested, primary, secondary)| UserItem::UserIdentityRq {
            identity_type: UserIdentityType::from_value(t),
            positive_response_requested,
            primary,
            secondary,
        },
    )
}

fn user_identity_ac() -> impl Strategy<Value = UserItem> {
    small_bytes(64).prop_map(|server_response| UserItem::UserIdentityAc { server_response })
}

fn unknown_user_item() -> impl Strategy<Value = UserItem> {
    (
        any::<u8>().prop_filter("a known sub-item type", |t| !(0x51..=0x59).contains(t)),
        small_bytes(40),
    )
        .prop_map(|(item_type, data)| UserItem::Unknown { item_type, data })
}

fn user_item() -> impl Strategy<Value = UserItem> {
    prop_oneof![
        maximum_length(),
        implementation_class_uid(),
        asynchronous_operations_window(),
        role_selection(),
        implementation_version_name(),
        sop_class_extended_negotiation(),
        sop_class_common_extended_negotiation(),
        user_identity_rq(),
        user_identity_ac(),
        unknown_user_item(),
    ]
}

fn user_information() -> impl Strategy<Value = UserInformation> {
    vec(user_item(), 0..8).prop_map(|items| UserInformation { items })
}

fn context_rq() -> impl Strategy<Value = PresentationContextRq> {
    (any::<u8>(), pdu_uid(), vec(pdu_uid(), 1..4)).prop_map(
        |(id, abstract_syntax, transfer_syntaxes)| PresentationContextRq {
            id,
            abstract_syntax,
            transfer_syntaxes,
        },
    )
}

fn context_result() -> impl Strategy<Value = PresentationContextResult> {
    (0u8..=4).prop_map(|v| PresentationContextResult::from_value(v).unwrap())
}

fn context_ac() -> impl Strategy<Value = PresentationContextAc> {
    (
        any::<u8>(),
        context_result(),
        nonempty_pdu_uid(),
        option::of(pdu_uid()),
    )
        .prop_map(|(id, result, accepted, other)| PresentationContextAc {
            id,
            result,
            // An accepted context must name its transfer syntax; a rejected one may carry
            // any, an empty one, or none.
            transfer_syntax: if result == PresentationContextResult::Acceptance {
                Some(accepted)
            } else {
                other
            },
        })
}

fn associate_rq() -> impl Strategy<Value = AAssociateRq> {
    (
        any::<u16>(),
        ae_title(),
        ae_title(),
        pdu_uid(),
        vec(context_rq(), 1..5),
        user_information(),
    )
        .prop_map(
            |(
                protocol_version,
                called_ae_title,
                calling_ae_title,
                application_context_name,
                presentation_contexts,
                user_information,
            )| AAssociateRq {
                protocol_version,
                called_ae_title,
                calling_ae_title,
                application_context_name,
                presentation_contexts,
                user_information,
            },
        )
}

fn associate_ac() -> impl Strategy<Value = AAssociateAc> {
    (
        any::<u16>(),
        ae_title(),
        ae_title(),
        pdu_uid(),
        vec(context_ac(), 0..5),
        user_information(),
    )
        .prop_map(
            |(
                protocol_version,
                called_ae_title,
                calling_ae_title,
                application_context_name,
                presentation_contexts,
                user_information,
            )| AAssociateAc {
                protocol_version,
                called_ae_title,
                calling_ae_title,
                application_context_name,
                presentation_contexts,
                user_information,
            },
        )
}

fn associate_rj() -> impl Strategy<Value = AAssociateRj> {
    (any::<bool>(), any::<u8>(), any::<u8>()).prop_map(|(permanent, source, reason)| AAssociateRj {
        result: if permanent {
            RejectResult::Permanent
        } else {
            RejectResult::Transient
        },
        reason: RejectReason::from_values(source, reason),
    })
}

fn pdv() -> impl Strategy<Value = PresentationDataValue> {
    (any::<u8>(), any::<u8>(), small_bytes(64)).prop_map(|(context_id, control, data)| {
        PresentationDataValue {
            context_id,
            control,
            data,
        }
    })
}

fn p_data_tf() -> impl Strategy<Value = PDataTf> {
    vec(pdv(), 1..6).prop_map(|values| PDataTf { values })
}

fn a_abort() -> impl Strategy<Value = AAbort> {
    (0u8..3, any::<u8>()).prop_map(|(s, r)| AAbort {
        source: [
            AbortSource::ServiceUser,
            AbortSource::Reserved,
            AbortSource::ServiceProvider,
        ][usize::from(s)],
        reason: AbortReason::from_value(r),
    })
}

fn any_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        associate_rq().prop_map(Pdu::AAssociateRq),
        associate_ac().prop_map(Pdu::AAssociateAc),
        associate_rj().prop_map(Pdu::AAssociateRj),
        p_data_tf().prop_map(Pdu::PDataTf),
        Just(Pdu::AReleaseRq),
        Just(Pdu::AReleaseRp),
        a_abort().prop_map(Pdu::AAbort),
    ]
}

/// encode -> decode (one-shot and incremental) -> equal, and the decoded value re-encodes
/// to the same bytes.
fn pdu_round_trip(value: &Pdu) -> Result<(), TestCaseError> {
    let bytes = value.encode().unwrap();
    prop_assert_eq!(bytes[0], value.pdu_type());
    let length = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
    prop_assert_eq!(length, bytes.len() - 6);

    let decoded = pdu::read::decode(Bytes::from(bytes.clone())).unwrap();
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(decoded.encode().unwrap(), bytes.clone());

    // Incrementally, with the next PDU's first bytes already in the buffer.
    let mut buf = BytesMut::from(&bytes[..]);
    buf.extend_from_slice(&[0x05, 0x00, 0x00]);
    let read = PduReader::new(0).read(&mut buf).unwrap();
    prop_assert_eq!(read.as_ref(), Some(value));
    prop_assert_eq!(&buf[..], &[0x05, 0x00, 0x00]);
    Ok(())
}

/// A user item in both an A-ASSOCIATE-RQ and an A-ASSOCIATE-AC.
fn user_item_round_trip(item: UserItem) -> Result<(), TestCaseError> {
    let items = vec![
        UserItem::MaximumLength {
            maximum_length: 16384,
        },
        item,
    ];
    let rq = Pdu::AAssociateRq(AAssociateRq {
        protocol_version: 1,
        called_ae_title: AeTitle::new("CALLED").unwrap(),
        calling_ae_title: AeTitle::new("CALLING").unwrap(),
        application_context_name: pdu::APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: "1.2.840.10008.1.1".into(),
            transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
        }],
        user_information: UserInformation {
            items: items.clone(),
        },
    });
    pdu_round_trip(&rq)?;
    let ac = Pdu::AAssociateAc(AAssociateAc {
        protocol_version: 1,
        called_ae_title: AeTitle::new("CALLED").unwrap(),
        calling_ae_title: AeTitle::new("CALLING").unwrap(),
        application_context_name: pdu::APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![PresentationContextAc {
            id: 1,
            result: PresentationContextResult::Acceptance,
            transfer_syntax: Some("1.2.840.10008.1.2".into()),
        }],
        user_information: UserInformation { items },
    });
    pdu_round_trip(&ac)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_associate_rq_round_trips(v in associate_rq()) {
        pdu_round_trip(&Pdu::AAssociateRq(v))?;
    }

    #[test]
    fn a_associate_ac_round_trips(v in associate_ac()) {
        pdu_round_trip(&Pdu::AAssociateAc(v))?;
    }

    #[test]
    fn a_associate_rj_round_trips(v in associate_rj()) {
        let bytes = Pdu::AAssociateRj(v).encode().unwrap();
        prop_assert_eq!(bytes.len(), 10);
        pdu_round_trip(&Pdu::AAssociateRj(v))?;
    }

    #[test]
    fn p_data_tf_round_trips(v in p_data_tf()) {
        let expected_len: usize = v.values.iter().map(|p| 6 + p.data.len()).sum();
        let bytes = Pdu::PDataTf(v.clone()).encode().unwrap();
        prop_assert_eq!(bytes.len(), 6 + expected_len);
        pdu_round_trip(&Pdu::PDataTf(v))?;
    }

    #[test]
    fn a_abort_round_trips(v in a_abort()) {
        pdu_round_trip(&Pdu::AAbort(v))?;
    }

    #[test]
    fn any_pdu_round_trips(v in any_pdu()) {
        pdu_round_trip(&v)?;
    }

    #[test]
    fn several_pdus_in_one_buffer(pdus in vec(any_pdu(), 1..5)) {
        let mut buf = BytesMut::new();
        for p in &pdus {
            buf.extend_from_slice(&p.encode().unwrap());
        }
        let reader = PduReader::new(0);
        let mut got = Vec::new();
        while let Some(p) = reader.read(&mut buf).unwrap() {
            got.push(p);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, pdus);
    }

    #[test]
    fn user_item_0x51_round_trips(item in maximum_length()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x52_round_trips(item in implementation_class_uid()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x53_round_trips(item in asynchronous_operations_window()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x54_round_trips(item in role_selection()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x55_round_trips(item in implementation_version_name()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x56_round_trips(item in sop_class_extended_negotiation()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x57_round_trips(item in sop_class_common_extended_negotiation()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x58_round_trips(item in user_identity_rq()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_0x59_round_trips(item in user_identity_ac()) {
        user_item_round_trip(item)?;
    }

    #[test]
    fn user_item_unknown_round_trips(item in unknown_user_item()) {
        user_item_round_trip(item)?;
    }
}

// ---------------------------------------------------------------------------------------
// Command generators
// ---------------------------------------------------------------------------------------

/// A UI value: 1 to 64 digits and dots (PS3.5 6.2).
fn uid() -> impl Strategy<Value = String> {
    "[0-9][0-9.]{0,63}"
}

/// An AE value: 1 to 16 characters without backslash or control characters, and without
/// leading or trailing spaces (insignificant, so not kept).
fn ae() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]([A-Za-z0-9_. -]{0,14}[A-Za-z0-9_.-])?"
}

/// An LO value (Error Comment): up to 64 characters, no backslash, no leading or trailing
/// spaces; non-ASCII characters included.
fn lo() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9:;,()é-]([A-Za-z0-9 :;,()é-]{0,62}[A-Za-z0-9:;,()é-])?",
    ]
}

fn tags() -> impl Strategy<Value = Vec<Tag>> {
    vec(
        (any::<u16>(), any::<u16>()).prop_map(|(g, e)| Tag(g, e)),
        0..5,
    )
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Medium),
        Just(Priority::High)
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        any::<u16>().prop_map(Status),
        Just(Status::SUCCESS),
        Just(Status::PENDING),
        Just(Status::PENDING_WARNING),
        Just(Status::CANCEL),
        Just(Status(0xB000)),
        Just(Status(0xA700)),
    ]
}

/// The common optional elements of every response (PS3.7 Annex C).
type RspCommon = (
    Option<String>,
    u16,
    Status,
    Option<Vec<Tag>>,
    Option<String>,
    Option<u16>,
);

fn rsp_common() -> impl Strategy<Value = RspCommon> {
    (
        option::of(uid()),
        any::<u16>(),
        status(),
        option::of(tags()),
        option::of(lo()),
        option::of(any::<u16>()),
    )
}

fn opt_u16() -> impl Strategy<Value = Option<u16>> {
    option::of(any::<u16>())
}

fn c_store_rq() -> impl Strategy<Value = Command> {
    (
        uid(),
        any::<u16>(),
        priority(),
        uid(),
        option::of(ae()),
        opt_u16(),
    )
        .prop_map(|(a, b, c, d, e, f)| {
            CStoreRq {
                affected_sop_class_uid: a,
                message_id: b,
                priority: c,
                affected_sop_instance_uid: d,
                move_originator_ae_title: e,
                move_originator_message_id: f,
            }
            .into()
        })
}

fn c_store_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid())).prop_map(|((a, b, c, d, e, f), g)| {
        CStoreRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
        }
        .into()
    })
}

fn c_find_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), priority()).prop_map(|(a, b, c)| {
        CFindRq {
            affected_sop_class_uid: a,
            message_id: b,
            priority: c,
        }
        .into()
    })
}

fn c_find_rsp() -> impl Strategy<Value = Command> {
    rsp_common().prop_map(|(a, b, c, d, e, f)| {
        CFindRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
        }
        .into()
    })
}

fn c_get_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), priority()).prop_map(|(a, b, c)| {
        CGetRq {
            affected_sop_class_uid: a,
            message_id: b,
            priority: c,
        }
        .into()
    })
}

type SubOps = (Option<u16>, Option<u16>, Option<u16>, Option<u16>);

fn sub_ops() -> impl Strategy<Value = SubOps> {
    (opt_u16(), opt_u16(), opt_u16(), opt_u16())
}

fn c_get_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), sub_ops()).prop_map(|((a, b, c, d, e, f), (g, h, i, j))| {
        CGetRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            // PS3.7 9.1.3.1.6: a pending response carries the remaining count.
            remaining: if c.is_pending() {
                Some(g.unwrap_or(0))
            } else {
                g
            },
            completed: h,
            failed: i,
            warning: j,
        }
        .into()
    })
}

fn c_move_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), ae(), priority()).prop_map(|(a, b, c, d)| {
        CMoveRq {
            affected_sop_class_uid: a,
            message_id: b,
            move_destination: c,
            priority: d,
        }
        .into()
    })
}

fn c_move_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), sub_ops()).prop_map(|((a, b, c, d, e, f), (g, h, i, j))| {
        CMoveRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            remaining: if c.is_pending() {
                Some(g.unwrap_or(0))
            } else {
                g
            },
            completed: h,
            failed: i,
            warning: j,
        }
        .into()
    })
}

fn c_echo_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>()).prop_map(|(a, b)| {
        CEchoRq {
            affected_sop_class_uid: a,
            message_id: b,
        }
        .into()
    })
}

fn c_echo_rsp() -> impl Strategy<Value = Command> {
    rsp_common().prop_map(|(a, b, c, d, e, f)| {
        CEchoRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
        }
        .into()
    })
}

fn c_cancel_rq() -> impl Strategy<Value = Command> {
    any::<u16>().prop_map(|a| {
        CCancelRq {
            message_id_being_responded_to: a,
        }
        .into()
    })
}

fn n_event_report_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), uid(), any::<u16>()).prop_map(|(a, b, c, d)| {
        NEventReportRq {
            affected_sop_class_uid: a,
            message_id: b,
            affected_sop_instance_uid: c,
            event_type_id: d,
        }
        .into()
    })
}

fn n_event_report_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid()), opt_u16()).prop_map(|((a, b, c, d, e, f), g, h)| {
        NEventReportRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
            event_type_id: h,
        }
        .into()
    })
}

fn n_get_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), uid(), option::of(tags())).prop_map(|(a, b, c, d)| {
        NGetRq {
            requested_sop_class_uid: a,
            message_id: b,
            requested_sop_instance_uid: c,
            attribute_identifier_list: d,
        }
        .into()
    })
}

fn n_get_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid()), option::of(tags())).prop_map(|((a, b, c, d, e, f), g, h)| {
        NGetRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
            attribute_identifier_list: h,
        }
        .into()
    })
}

fn n_set_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), uid()).prop_map(|(a, b, c)| {
        NSetRq {
            requested_sop_class_uid: a,
            message_id: b,
            requested_sop_instance_uid: c,
        }
        .into()
    })
}

fn n_set_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid()), option::of(tags())).prop_map(|((a, b, c, d, e, f), g, h)| {
        NSetRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
            attribute_identifier_list: h,
        }
        .into()
    })
}

fn n_action_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), uid(), any::<u16>()).prop_map(|(a, b, c, d)| {
        NActionRq {
            requested_sop_class_uid: a,
            message_id: b,
            requested_sop_instance_uid: c,
            action_type_id: d,
        }
        .into()
    })
}

fn n_action_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid()), opt_u16()).prop_map(|((a, b, c, d, e, f), g, h)| {
        NActionRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
            action_type_id: h,
        }
        .into()
    })
}

fn n_create_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), option::of(uid())).prop_map(|(a, b, c)| {
        NCreateRq {
            affected_sop_class_uid: a,
            message_id: b,
            affected_sop_instance_uid: c,
        }
        .into()
    })
}

fn n_create_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid())).prop_map(|((a, b, c, d, e, f), g)| {
        NCreateRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
        }
        .into()
    })
}

fn n_delete_rq() -> impl Strategy<Value = Command> {
    (uid(), any::<u16>(), uid()).prop_map(|(a, b, c)| {
        NDeleteRq {
            requested_sop_class_uid: a,
            message_id: b,
            requested_sop_instance_uid: c,
        }
        .into()
    })
}

fn n_delete_rsp() -> impl Strategy<Value = Command> {
    (rsp_common(), option::of(uid())).prop_map(|((a, b, c, d, e, f), g)| {
        NDeleteRsp {
            affected_sop_class_uid: a,
            message_id_being_responded_to: b,
            status: c,
            offending_element: d,
            error_comment: e,
            error_id: f,
            affected_sop_instance_uid: g,
        }
        .into()
    })
}

/// Whether a data set follows, as the message's rules allow: from its Data Set row, and for
/// C-FIND-RSP from its status (PS3.7 9.1.2.1.5: only a pending response has one).
fn data_set_for(command: &Command, choice: bool) -> bool {
    match command {
        Command::CFindRsp(m) => m.status.is_pending(),
        _ => match command.data_set_rule() {
            DataSetRule::Never => false,
            DataSetRule::Always => true,
            DataSetRule::Optional => choice,
        },
    }
}

/// Typed encode -> typed decode, and the raw layer in between.
fn command_round_trip(command: Command, choice: bool) -> Result<(), TestCaseError> {
    let has_dataset = data_set_for(&command, choice);
    let bytes = command.encode(has_dataset).unwrap();

    // The raw command set: group length first, equal to the bytes that follow.
    prop_assert_eq!(&bytes[..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
    let group_length = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    prop_assert_eq!(group_length as usize, bytes.len() - 12);
    let cs = CommandSet::decode(&bytes).unwrap();
    prop_assert_eq!(cs.command_field(), Some(command.command_field()));
    prop_assert_eq!(cs.has_dataset(), has_dataset);
    prop_assert_eq!(cs.encode(), bytes.clone());

    let decoded = Command::decode(&bytes).unwrap();
    prop_assert_eq!(
        decoded,
        DecodedCommand {
            command: command.clone(),
            has_dataset
        }
    );
    prop_assert_eq!(Command::from_command_set(&cs).unwrap().command, command);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn c_store_rq_round_trips(c in c_store_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_store_rsp_round_trips(c in c_store_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_find_rq_round_trips(c in c_find_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_find_rsp_round_trips(c in c_find_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_get_rq_round_trips(c in c_get_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_get_rsp_round_trips(c in c_get_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_move_rq_round_trips(c in c_move_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_move_rsp_round_trips(c in c_move_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_echo_rq_round_trips(c in c_echo_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_echo_rsp_round_trips(c in c_echo_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn c_cancel_rq_round_trips(c in c_cancel_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_event_report_rq_round_trips(c in n_event_report_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_event_report_rsp_round_trips(c in n_event_report_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_get_rq_round_trips(c in n_get_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_get_rsp_round_trips(c in n_get_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_set_rq_round_trips(c in n_set_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_set_rsp_round_trips(c in n_set_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_action_rq_round_trips(c in n_action_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_action_rsp_round_trips(c in n_action_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_create_rq_round_trips(c in n_create_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_create_rsp_round_trips(c in n_create_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_delete_rq_round_trips(c in n_delete_rq(), d in any::<bool>()) { command_round_trip(c, d)?; }
    #[test]
    fn n_delete_rsp_round_trips(c in n_delete_rsp(), d in any::<bool>()) { command_round_trip(c, d)?; }
}

#[test]
fn the_generators_cover_all_23_command_fields() {
    // One value of each generator: 23 distinct Command Field values.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategies: Vec<BoxedStrategy<Command>> = vec![
        c_store_rq().boxed(),
        c_store_rsp().boxed(),
        c_find_rq().boxed(),
        c_find_rsp().boxed(),
        c_get_rq().boxed(),
        c_get_rsp().boxed(),
        c_move_rq().boxed(),
        c_move_rsp().boxed(),
        c_echo_rq().boxed(),
        c_echo_rsp().boxed(),
        c_cancel_rq().boxed(),
        n_event_report_rq().boxed(),
        n_event_report_rsp().boxed(),
        n_get_rq().boxed(),
        n_get_rsp().boxed(),
        n_set_rq().boxed(),
        n_set_rsp().boxed(),
        n_action_rq().boxed(),
        n_action_rsp().boxed(),
        n_create_rq().boxed(),
        n_create_rsp().boxed(),
        n_delete_rq().boxed(),
        n_delete_rsp().boxed(),
    ];
    let mut fields: Vec<u16> = strategies
        .iter()
        .map(|s| s.new_tree(&mut runner).unwrap().current().command_field())
        .collect();
    fields.sort_unstable();
    fields.dedup();
    assert_eq!(
        fields,
        [
            0x0001, 0x0010, 0x0020, 0x0021, 0x0030, 0x0100, 0x0110, 0x0120, 0x0130, 0x0140, 0x0150,
            0x0FFF, 0x8001, 0x8010, 0x8020, 0x8021, 0x8030, 0x8100, 0x8110, 0x8120, 0x8130, 0x8140,
            0x8150
        ]
    );
}

// ---------------------------------------------------------------------------------------
// The raw command set
// ---------------------------------------------------------------------------------------

/// Arbitrary elements of group 0000 (known or not, Command Group Length excluded), each
/// with an even-length value that fits its VR when the element is known.
fn raw_elements() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
    let element = prop_oneof![
        // Known elements, often.
        proptest::sample::select(
            element::ELEMENTS
                .iter()
                .map(|e| e.element)
                .filter(|&e| e != 0)
                .collect::<Vec<_>>()
        ),
        1u16..=u16::MAX,
    ];
    vec((element, vec(any::<u8>(), 0..40)), 0..16).prop_map(|raw| {
        raw.into_iter()
            .map(|(el, mut value)| {
                let size = match element::lookup(el).map(|e| e.vr) {
                    Some(Vr::US) => 2,
                    Some(Vr::UL) => 4,
                    Some(Vr::AT) => value.len() / 4 * 4,
                    _ => value.len() / 2 * 2,
                };
                value.resize(size, 0x5A);
                (el, value)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn raw_command_set_round_trips(elements in raw_elements()) {
        let mut cs = CommandSet::new();
        let mut expected = BTreeMap::new();
        for (el, value) in &elements {
            cs.set_raw(*el, value).unwrap();
            expected.insert(*el, value.clone()); // the last value set wins
        }
        let bytes = cs.encode();
        prop_assert_eq!(bytes.len(), cs.encoded_len());
        let body: usize = expected.values().map(|v| 8 + v.len()).sum();
        prop_assert_eq!(bytes.len(), 12 + body);

        let decoded = CommandSet::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &cs);
        let got: Vec<(u16, Vec<u8>)> = decoded.iter().map(|(e, v)| (e, v.to_vec())).collect();
        let want: Vec<(u16, Vec<u8>)> = expected.into_iter().collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn raw_command_set_removal(elements in raw_elements(), pick in any::<prop::sample::Index>()) {
        let mut cs = CommandSet::new();
        for (el, value) in &elements {
            cs.set_raw(*el, value).unwrap();
        }
        if cs.is_empty() {
            return Ok(());
        }
        let victim = cs.iter().nth(pick.index(cs.len())).unwrap().0;
        let before = cs.len();
        prop_assert!(cs.remove(victim));
        prop_assert!(!cs.contains(victim));
        prop_assert_eq!(cs.len(), before - 1);
        let decoded = CommandSet::decode(&cs.encode()).unwrap();
        prop_assert_eq!(decoded.get(victim), None);
        prop_assert_eq!(decoded, cs);
    }
}
