//! Decoding PDUs (PS3.8 9.3), incrementally and without trusting any length.
//!
//! [`PduReader::read`] is the sans-io entry point: given the bytes received so far it
//! returns `Ok(None)` (need more), one PDU (and consumes its bytes), or an error. Every
//! declared length is checked against what remains of its container and, for the PDU
//! itself, against a configured maximum as soon as the 6-byte header is in, before any
//! buffer is sized for the body: an HTTP request or a forged 4 GB length is refused after
//! six bytes.
//!
//! Lenient choices, each because real peers do it: reserved fields are not tested;
//! UIDs may carry a trailing NUL or space (removed); items of the A-ASSOCIATE variable
//! field may come in any order; unknown user-information sub-items are kept as
//! [`UserItem::Unknown`]; unknown items of the variable field itself are skipped; a
//! rejected presentation context may carry an empty transfer syntax sub-item or none; a
//! non-zero role byte means "supported". Strict choices: a PDU of unknown type, lengths
//! that overrun their container, a missing mandatory item, and a fixed-length PDU
//! (A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT) whose length is not 4.

use bytes::{Buf, Bytes, BytesMut};

use super::*;

/// Why bytes from a peer are not a valid PDU. [`PduError::abort_reason`] gives the
/// A-ABORT reason to send back (PS3.8 Table 9-26).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("unknown PDU type 0x{0:02X} (not a DICOM peer?)")]
    UnknownPduType(u8),
    #[error("{pdu} declares a length of {length} bytes, more than the {max} accepted")]
    TooLong {
        pdu: &'static str,
        length: u32,
        max: u32,
    },
    #[error("{pdu} must have a length of {expected}, not {length}")]
    InvalidLength {
        pdu: &'static str,
        length: u32,
        expected: u32,
    },
    #[error("{context} is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        context: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("item type 0x{item_type:02X} is not expected in {context}")]
    UnexpectedItem {
        item_type: u8,
        context: &'static str,
    },
    #[error("{context} lacks its mandatory {item}")]
    MissingItem {
        item: &'static str,
        context: &'static str,
    },
    #[error("{what}: {detail}")]
    InvalidValue { what: &'static str, detail: String },
}

impl PduError {
    /// The provider reason of the A-ABORT that answers this error.
    pub fn abort_reason(&self) -> AbortReason {
        match self {
            PduError::UnknownPduType(_) => AbortReason::UnrecognizedPdu,
            PduError::UnexpectedItem { .. } => AbortReason::UnexpectedPduParameter,
            PduError::TooLong { .. }
            | PduError::InvalidLength { .. }
            | PduError::Truncated { .. }
            | PduError::MissingItem { .. }
            | PduError::InvalidValue { .. } => AbortReason::InvalidPduParameterValue,
        }
    }
}

/// The incremental PDU reader: limits plus the sans-io decode step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduReader {
    /// The largest P-DATA-TF length field accepted: the Maximum Length we announced
    /// (0 = unlimited, clamped to [`UNLIMITED_RECEIVE_CLAMP`]).
    pub max_pdu_length: u32,
    /// The largest A-ASSOCIATE-RQ/AC length field accepted.
    pub max_associate_length: u32,
}

impl Default for PduReader {
    fn default() -> Self {
        PduReader::new(0)
    }
}

impl PduReader {
    pub fn new(max_pdu_length: u32) -> Self {
        PduReader {
            max_pdu_length,
            max_associate_length: DEFAULT_MAX_ASSOCIATE_LENGTH,
        }
    }

    fn limit_for(&self, pdu_type: u8) -> Result<(u32, bool), PduError> {
        // (limit, exact): the fixed-size PDUs must be exactly 4 bytes long.
        match pdu_type {
            pdu_type::A_ASSOCIATE_RQ | pdu_type::A_ASSOCIATE_AC => {
                Ok((self.max_associate_length, false))
            }
            pdu_type::P_DATA_TF => Ok((
                if self.max_pdu_length == 0 {
                    UNLIMITED_RECEIVE_CLAMP
                } else {
                    self.max_pdu_length
                },
                false,
            )),
            pdu_type::A_ASSOCIATE_RJ
            | pdu_type::A_RELEASE_RQ
            | pdu_type::A_RELEASE_RP
            | pdu_type::A_ABORT => Ok((4, true)),
            other => Err(PduError::UnknownPduType(other)),
        }
    }

    /// Checks a PDU header and returns the PDU's total size (header included). Call it as
    /// soon as 6 bytes are in to learn how much to read, or to refuse the PDU early.
    pub fn check_header(&self, header: &[u8]) -> Result<Option<usize>, PduError> {
        let Some(h) = header.get(..PDU_HEADER_LEN) else {
            // Refuse an unknown type from its first byte: no need to wait for more.
            if let Some(&t) = header.first() {
                self.limit_for(t)?;
            }
            return Ok(None);
        };
        let pdu_type = h[0];
        let length = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
        let (limit, exact) = self.limit_for(pdu_type)?;
        if exact && length != limit {
            return Err(PduError::InvalidLength {
                pdu: pdu_name(pdu_type),
                length,
                expected: limit,
            });
        }
        if length > limit {
            return Err(PduError::TooLong {
                pdu: pdu_name(pdu_type),
                length,
                max: limit,
            });
        }
        Ok(Some(PDU_HEADER_LEN + length as usize))
    }

    /// Decodes one PDU from the front of `buf`, consuming it. `Ok(None)` means more bytes
    /// are needed; `buf` is then untouched.
    pub fn read(&self, buf: &mut BytesMut) -> Result<Option<Pdu>, PduError> {
        let Some(total) = self.check_header(buf)? else {
            return Ok(None);
        };
        if buf.len() < total {
            return Ok(None);
        }
        let pdu = buf.split_to(total).freeze();
        decode_checked(pdu).map(Some)
    }

    /// Decodes exactly one complete PDU held in `bytes`, with this reader's limits.
    pub fn decode(&self, bytes: Bytes) -> Result<Pdu, PduError> {
        let total = self.check_header(&bytes)?.ok_or(PduError::Truncated {
            context: "PDU header",
            needed: PDU_HEADER_LEN,
            available: bytes.len(),
        })?;
        if bytes.len() != total {
            return Err(if bytes.len() < total {
                PduError::Truncated {
                    context: pdu_name(bytes[0]),
                    needed: total,
                    available: bytes.len(),
                }
            } else {
                PduError::InvalidValue {
                    what: pdu_name(bytes[0]),
                    detail: format!("{} bytes follow the PDU", bytes.len() - total),
                }
            });
        }
        decode_checked(bytes)
    }
}

/// Decodes one complete PDU (header included) whose header was checked.
fn decode_checked(mut pdu: Bytes) -> Result<Pdu, PduError> {
    let pdu_type = pdu[0];
    pdu.advance(PDU_HEADER_LEN);
    let body = pdu;
    match pdu_type {
        pdu_type::A_ASSOCIATE_RQ => decode_associate_rq(&body).map(Pdu::AAssociateRq),
        pdu_type::A_ASSOCIATE_AC => decode_associate_ac(&body).map(Pdu::AAssociateAc),
        pdu_type::A_ASSOCIATE_RJ => {
            // reserved(1), result(1), source(1), reason/diag(1): PS3.8 9.3.4.
            let result = match body[1] {
                1 => RejectResult::Permanent,
                2 => RejectResult::Transient,
                other => {
                    return Err(PduError::InvalidValue {
                        what: "A-ASSOCIATE-RJ result",
                        detail: format!("{other} is neither 1 (permanent) nor 2 (transient)"),
                    })
                }
            };
            Ok(Pdu::AAssociateRj(AAssociateRj {
                result,
                reason: RejectReason::from_values(body[2], body[3]),
            }))
        }
        pdu_type::P_DATA_TF => decode_p_data(body).map(Pdu::PDataTf),
        pdu_type::A_RELEASE_RQ => Ok(Pdu::AReleaseRq),
        pdu_type::A_RELEASE_RP => Ok(Pdu::AReleaseRp),
        pdu_type::A_ABORT => {
            // reserved(2), source(1), reason/diag(1): PS3.8 9.3.8.
            let source = match body[2] {
                0 => AbortSource::ServiceUser,
                1 => AbortSource::Reserved,
                2 => AbortSource::ServiceProvider,
                other => {
                    return Err(PduError::InvalidValue {
                        what: "A-ABORT source",
                        detail: format!("{other} is not 0, 1 or 2"),
                    })
                }
            };
            Ok(Pdu::AAbort(AAbort {
                source,
                reason: AbortReason::from_value(body[3]),
            }))
        }
        other => Err(PduError::UnknownPduType(other)),
    }
}

/// Decodes exactly one complete PDU with the default limits (P-DATA-TF up to the
/// unlimited clamp).
pub fn decode(bytes: Bytes) -> Result<Pdu, PduError> {
    PduReader::default().decode(bytes)
}

fn decode_p_data(mut body: Bytes) -> Result<PDataTf, PduError> {
    let mut values = Vec::with_capacity(2);
    while !body.is_empty() {
        // item-length(4), PC-ID(1), message control header(1), fragment: PS3.8 9.3.5.1.
        if body.len() < 4 {
            return Err(PduError::Truncated {
                context: "PDV item",
                needed: 4,
                available: body.len(),
            });
        }
        let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        if len < 2 {
            return Err(PduError::InvalidValue {
                what: "PDV item length",
                detail: format!("{len} is less than the 2 bytes of its header"),
            });
        }
        if len > body.len() - 4 {
            return Err(PduError::Truncated {
                context: "PDV item",
                needed: len,
                available: body.len() - 4,
            });
        }
        body.advance(4);
        let mut item = body.split_to(len);
        let context_id = item[0];
        let control = item[1];
        item.advance(2);
        values.push(PresentationDataValue {
            context_id,
            control,
            data: item,
        });
    }
    if values.is_empty() {
        return Err(PduError::MissingItem {
            item: "presentation data value",
            context: "P-DATA-TF",
        });
    }
    Ok(PDataTf { values })
}

/// Splits `data` into (item type, item body) pairs with 2-byte lengths (PS3.8 9.3.2).
fn items<'a>(
    mut data: &'a [u8],
    context: &'static str,
) -> impl Iterator<Item = Result<(u8, &'a [u8]), PduError>> + 'a {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        if data.len() < 4 {
            let available = data.len();
            data = &[];
            return Some(Err(PduError::Truncated {
                context,
                needed: 4,
                available,
            }));
        }
        let t = data[0];
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        if len > data.len() - 4 {
            let available = data.len() - 4;
            data = &[];
            return Some(Err(PduError::Truncated {
                context,
                needed: len,
                available,
            }));
        }
        let body = &data[4..4 + len];
        data = &data[4 + len..];
        Some(Ok((t, body)))
    })
}

/// Text from an item. Valid UTF-8 is kept as it is (so a PDU re-encodes exactly); anything
/// else has each non-ASCII byte replaced by '?', one byte for one, so that re-encoding never
/// outgrows the item's 2-byte length (a lossy U+FFFD would triple it).
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes
            .iter()
            .map(|&b| if b.is_ascii() { b as char } else { '?' })
            .collect(),
    }
}

/// A UID from an item: UIDs in PDUs are not padded (PS3.8 9.3.2.2.1), but some peers add
/// a NUL or a space; both are removed. Garbled bytes become '?' (see [`text`]), so such a
/// UID simply matches nothing.
fn uid(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |p| p + 1);
    text(&bytes[..end])
}

fn u16_at(b: &[u8], at: usize, context: &'static str) -> Result<u16, PduError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(PduError::Truncated {
            context,
            needed: at + 2,
            available: b.len(),
        })
}

/// A field preceded by a 2-byte length, at `at`; returns the field and the offset after it.
fn sized<'a>(b: &'a [u8], at: usize, context: &'static str) -> Result<(&'a [u8], usize), PduError> {
    let len = u16_at(b, at, context)? as usize;
    let start = at + 2;
    b.get(start..start + len)
        .map(|f| (f, start + len))
        .ok_or(PduError::Truncated {
            context,
            needed: start + len,
            available: b.len(),
        })
}

/// The fixed part of A-ASSOCIATE-RQ/AC: protocol version(2), reserved(2), called AE(16),
/// calling AE(16), reserved(32): 68 bytes, then the variable items (PS3.8 9.3.2).
fn fixed_fields(body: &[u8], context: &'static str) -> Result<(u16, AeTitle, AeTitle), PduError> {
    if body.len() < 68 {
        return Err(PduError::Truncated {
            context,
            needed: 68,
            available: body.len(),
        });
    }
    let version = u16::from_be_bytes([body[0], body[1]]);
    let mut called = [0u8; 16];
    called.copy_from_slice(&body[4..20]);
    let mut calling = [0u8; 16];
    calling.copy_from_slice(&body[20..36]);
    Ok((version, AeTitle(called), AeTitle(calling)))
}

/// The variable items of A-ASSOCIATE-RQ/AC: one application context item, presentation
/// context items of `pc_type` (the other PDU's type is an error), one user information
/// item, in any order (PS3.8 9.3.2, 9.3.3).
fn decode_variable_items<T>(
    data: &[u8],
    context: &'static str,
    pc_type: u8,
    decode_pc: fn(&[u8]) -> Result<T, PduError>,
) -> Result<(String, Vec<T>, UserInformation), PduError> {
    let mut application_context = None;
    let mut contexts = Vec::new();
    let mut user = None;
    for item in items(data, context) {
        let (t, body) = item?;
        let duplicate = PduError::UnexpectedItem {
            item_type: t,
            context,
        };
        match t {
            item_type::APPLICATION_CONTEXT => {
                if application_context.is_some() {
                    return Err(duplicate);
                }
                application_context = Some(uid(body));
            }
            item_type::USER_INFORMATION => {
                if user.is_some() {
                    return Err(duplicate);
                }
                user = Some(decode_user_information(body)?);
            }
            t if t == pc_type => contexts.push(decode_pc(body)?),
            item_type::PRESENTATION_CONTEXT_RQ | item_type::PRESENTATION_CONTEXT_AC => {
                return Err(duplicate)
            }
            _ => {} // Unknown variable items are skipped.
        }
    }
    let application_context = application_context.ok_or(PduError::MissingItem {
        item: "application context item (0x10)",
        context,
    })?;
    let user = user.ok_or(PduError::MissingItem {
        item: "user information item (0x50)",
        context,
    })?;
    Ok((application_context, contexts, user))
}

fn decode_associate_rq(body: &[u8]) -> Result<AAssociateRq, PduError> {
    const CONTEXT: &str = "A-ASSOCIATE-RQ";
    let (protocol_version, called, calling) = fixed_fields(body, CONTEXT)?;
    let (application_context_name, presentation_contexts, user_information) =
        decode_variable_items(
            &body[68..],
            CONTEXT,
            item_type::PRESENTATION_CONTEXT_RQ,
            decode_context_rq,
        )?;
    if presentation_contexts.is_empty() {
        return Err(PduError::MissingItem {
            item: "presentation context item (0x20)",
            context: CONTEXT,
        });
    }
    Ok(AAssociateRq {
        protocol_version,
        called_ae_title: called,
        calling_ae_title: calling,
        application_context_name,
        presentation_contexts,
        user_information,
    })
}

fn decode_associate_ac(body: &[u8]) -> Result<AAssociateAc, PduError> {
    const CONTEXT: &str = "A-ASSOCIATE-AC";
    let (protocol_version, called, calling) = fixed_fields(body, CONTEXT)?;
    let (application_context_name, presentation_contexts, user_information) =
        decode_variable_items(
            &body[68..],
            CONTEXT,
            item_type::PRESENTATION_CONTEXT_AC,
            decode_context_ac,
        )?;
    Ok(AAssociateAc {
        protocol_version,
        called_ae_title: called,
        calling_ae_title: calling,
        application_context_name,
        presentation_contexts,
        user_information,
    })
}

/// Item 0x20: PC-ID(1), reserved(3), then one 0x30 and one or more 0x40 (PS3.8 9.3.2.2).
fn decode_context_rq(data: &[u8]) -> Result<PresentationContextRq, PduError> {
    const CONTEXT: &str = "presentation context item (0x20)";
    if data.len() < 4 {
        return Err(PduError::Truncated {
            context: CONTEXT,
            needed: 4,
            available: data.len(),
        });
    }
    let mut abstract_syntax = None;
    let mut transfer_syntaxes = Vec::new();
    for item in items(&data[4..], CONTEXT) {
        let (t, body) = item?;
        match t {
            item_type::ABSTRACT_SYNTAX => {
                if abstract_syntax.replace(uid(body)).is_some() {
                    return Err(PduError::UnexpectedItem {
                        item_type: t,
                        context: CONTEXT,
                    });
                }
            }
            item_type::TRANSFER_SYNTAX => transfer_syntaxes.push(uid(body)),
            _ => {
                return Err(PduError::UnexpectedItem {
                    item_type: t,
                    context: CONTEXT,
                })
            }
        }
    }
    let abstract_syntax = abstract_syntax.ok_or(PduError::MissingItem {
        item: "abstract syntax sub-item (0x30)",
        context: CONTEXT,
    })?;
    if transfer_syntaxes.is_empty() {
        return Err(PduError::MissingItem {
            item: "transfer syntax sub-item (0x40)",
            context: CONTEXT,
        });
    }
    Ok(PresentationContextRq {
        id: data[0],
        abstract_syntax,
        transfer_syntaxes,
    })
}

/// Item 0x21: PC-ID(1), reserved(1), result/reason(1), reserved(1), one 0x40 (PS3.8 9.3.3.2).
fn decode_context_ac(data: &[u8]) -> Result<PresentationContextAc, PduError> {
    const CONTEXT: &str = "presentation context item (0x21)";
    if data.len() < 4 {
        return Err(PduError::Truncated {
            context: CONTEXT,
            needed: 4,
            available: data.len(),
        });
    }
    let result =
        PresentationContextResult::from_value(data[2]).ok_or_else(|| PduError::InvalidValue {
            what: "presentation context result",
            detail: format!("{} is not 0..=4 (PS3.8 Table 9-18)", data[2]),
        })?;
    let mut transfer_syntax = None;
    for item in items(&data[4..], CONTEXT) {
        let (t, body) = item?;
        if t != item_type::TRANSFER_SYNTAX || transfer_syntax.is_some() {
            return Err(PduError::UnexpectedItem {
                item_type: t,
                context: CONTEXT,
            });
        }
        transfer_syntax = Some(uid(body));
    }
    if result == PresentationContextResult::Acceptance
        && transfer_syntax.as_deref().is_none_or(str::is_empty)
    {
        return Err(PduError::MissingItem {
            item: "transfer syntax of an accepted context",
            context: CONTEXT,
        });
    }
    Ok(PresentationContextAc {
        id: data[0],
        result,
        transfer_syntax,
    })
}

fn decode_user_information(data: &[u8]) -> Result<UserInformation, PduError> {
    let mut out = Vec::with_capacity(4);
    for item in items(data, "user information item (0x50)") {
        let (t, body) = item?;
        out.push(decode_user_item(t, body)?);
    }
    Ok(UserInformation { items: out })
}

fn decode_user_item(t: u8, b: &[u8]) -> Result<UserItem, PduError> {
    let exact = |n: usize, context: &'static str| {
        if b.len() == n {
            Ok(())
        } else {
            Err(PduError::InvalidValue {
                what: context,
                detail: format!("item length {} instead of {n}", b.len()),
            })
        }
    };
    Ok(match t {
        item_type::MAXIMUM_LENGTH => {
            exact(4, "maximum length sub-item (0x51)")?;
            UserItem::MaximumLength {
                maximum_length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            }
        }
        item_type::IMPLEMENTATION_CLASS_UID => UserItem::ImplementationClassUid { uid: uid(b) },
        item_type::ASYNCHRONOUS_OPERATIONS_WINDOW => {
            exact(4, "asynchronous operations window sub-item (0x53)")?;
            UserItem::AsynchronousOperationsWindow {
                invoked: u16::from_be_bytes([b[0], b[1]]),
                performed: u16::from_be_bytes([b[2], b[3]]),
            }
        }
        item_type::ROLE_SELECTION => {
            // uid-length(2), SOP class UID, SCU-role(1), SCP-role(1): PS3.7 D.3.3.4.
            const C: &str = "SCP/SCU role selection sub-item (0x54)";
            let (sop, at) = sized(b, 0, C)?;
            if b.len() != at + 2 {
                return Err(PduError::InvalidValue {
                    what: C,
                    detail: format!("{} bytes where {} were expected", b.len(), at + 2),
                });
            }
            UserItem::RoleSelection {
                sop_class_uid: uid(sop),
                scu_role: b[at] != 0,
                scp_role: b[at + 1] != 0,
            }
        }
        item_type::IMPLEMENTATION_VERSION_NAME => {
            UserItem::ImplementationVersionName { name: text(b) }
        }
        item_type::SOP_CLASS_EXTENDED_NEGOTIATION => {
            const C: &str = "SOP class extended negotiation sub-item (0x56)";
            let (sop, at) = sized(b, 0, C)?;
            UserItem::SopClassExtendedNegotiation {
                sop_class_uid: uid(sop),
                info: Bytes::copy_from_slice(&b[at..]),
            }
        }
        item_type::SOP_CLASS_COMMON_EXTENDED_NEGOTIATION => {
            const C: &str = "SOP class common extended negotiation sub-item (0x57)";
            let (sop, at) = sized(b, 0, C)?;
            let (service, at) = sized(b, at, C)?;
            let (related, end) = sized(b, at, C)?;
            if end != b.len() {
                return Err(PduError::InvalidValue {
                    what: C,
                    detail: format!("{} bytes follow its last field", b.len() - end),
                });
            }
            let mut related_general_sop_classes = Vec::new();
            let mut at = 0;
            while at < related.len() {
                let (one, next) = sized(related, at, C)?;
                related_general_sop_classes.push(uid(one));
                at = next;
            }
            UserItem::SopClassCommonExtendedNegotiation {
                sop_class_uid: uid(sop),
                service_class_uid: uid(service),
                related_general_sop_classes,
            }
        }
        item_type::USER_IDENTITY_RQ => {
            // type(1), positive-response-requested(1), primary-length(2), primary,
            // secondary-length(2), secondary: PS3.7 D.3.3.7.1.
            const C: &str = "user identity sub-item (0x58)";
            if b.len() < 2 {
                return Err(PduError::Truncated {
                    context: C,
                    needed: 2,
                    available: b.len(),
                });
            }
            let (primary, at) = sized(b, 2, C)?;
            let (secondary, end) = sized(b, at, C)?;
            if end != b.len() {
                return Err(PduError::InvalidValue {
                    what: C,
                    detail: format!("{} bytes follow its last field", b.len() - end),
                });
            }
            UserItem::UserIdentityRq {
                identity_type: UserIdentityType::from_value(b[0]),
                positive_response_requested: b[1] != 0,
                primary: Bytes::copy_from_slice(primary),
                secondary: Bytes::copy_from_slice(secondary),
            }
        }
        item_type::USER_IDENTITY_AC => {
            const C: &str = "user identity sub-item (0x59)";
            let (response, end) = sized(b, 0, C)?;
            if end != b.len() {
                return Err(PduError::InvalidValue {
                    what: C,
                    detail: format!("{} bytes follow its last field", b.len() - end),
                });
            }
            UserItem::UserIdentityAc {
                server_response: Bytes::copy_from_slice(response),
            }
        }
        other => UserItem::Unknown {
            item_type: other,
            data: Bytes::copy_from_slice(b),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by reading the fuzz harness: invalid UTF-8 in a UID must not make a decoded
    /// PDU too long to re-encode.
    #[test]
    fn garbled_uid_reencodes_within_its_length() {
        let mut raw = vec![0x01, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        raw.extend_from_slice(&[b'A'; 16]);
        raw.extend_from_slice(&[b'B'; 16]);
        raw.extend_from_slice(&[0; 32]);
        let app = b"1.2.840.10008.3.1.1.1";
        raw.extend_from_slice(&[0x10, 0, 0, app.len() as u8]);
        raw.extend_from_slice(app);
        let pc_body: Vec<u8> = [
            &[1u8, 0, 0, 0][..],
            &[0x30, 0, 0, 3],
            b"1.2",
            &[0x40, 0, 0, 3],
            b"1.2",
        ]
        .concat();
        raw.extend_from_slice(&[0x20, 0, 0, pc_body.len() as u8]);
        raw.extend_from_slice(&pc_body);
        let garbled = vec![0xFF; 30_000];
        let mut user = vec![0x52, 0];
        user.extend_from_slice(&(garbled.len() as u16).to_be_bytes());
        user.extend_from_slice(&garbled);
        raw.push(0x50);
        raw.push(0);
        raw.extend_from_slice(&(user.len() as u16).to_be_bytes());
        raw.extend_from_slice(&user);
        let len = (raw.len() - 6) as u32;
        raw[2..6].copy_from_slice(&len.to_be_bytes());
        let pdu = decode(Bytes::from(raw.clone())).unwrap();
        let Pdu::AAssociateRq(rq) = &pdu else {
            panic!("not an RQ")
        };
        assert_eq!(
            rq.user_information.implementation_class_uid().map(str::len),
            Some(30_000)
        );
        assert_eq!(pdu.encode().unwrap().len(), raw.len());
    }
}
