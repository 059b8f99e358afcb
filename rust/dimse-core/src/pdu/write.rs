//! Encoding PDUs (PS3.8 9.3). Values we build (UIDs, AE titles, user identity fields) are
//! checked against what their length fields can hold; nothing is silently truncated.

use super::*;

/// Why a PDU could not be encoded. These are local mistakes (a caller's value does not
/// fit the standard), never a peer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{what} is {length} bytes, more than the {max} its length field can hold")]
    TooLong {
        what: &'static str,
        length: usize,
        max: usize,
    },
    #[error("AE title {title:?}: {reason}")]
    InvalidAeTitle { title: String, reason: String },
    #[error("{what}: {reason}")]
    InvalidValue { what: &'static str, reason: String },
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Starts an item (type, reserved, 2-byte length placeholder); returns where the body starts.
fn begin_item(out: &mut Vec<u8>, item_type: u8) -> usize {
    out.extend_from_slice(&[item_type, 0, 0, 0]);
    out.len()
}

/// Patches the 2-byte length of the item whose body started at `start`.
fn end_item(out: &mut [u8], start: usize, what: &'static str) -> Result<(), EncodeError> {
    let len = out.len() - start;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        length: len,
        max: u16::MAX as usize,
    })?;
    out[start - 2..start].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

fn put_item(
    out: &mut Vec<u8>,
    item_type: u8,
    body: &[u8],
    what: &'static str,
) -> Result<(), EncodeError> {
    let start = begin_item(out, item_type);
    out.extend_from_slice(body);
    end_item(out, start, what)
}

/// A field preceded by its 2-byte length.
fn put_sized(out: &mut Vec<u8>, field: &[u8], what: &'static str) -> Result<(), EncodeError> {
    let len = u16::try_from(field.len()).map_err(|_| EncodeError::TooLong {
        what,
        length: field.len(),
        max: u16::MAX as usize,
    })?;
    put_u16(out, len);
    out.extend_from_slice(field);
    Ok(())
}

impl Pdu {
    /// Encodes the PDU.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Encodes the PDU, refusing a P-DATA-TF longer than the peer accepts (its Maximum
    /// Length sub-item, 0 = unlimited): we never send a PDU larger than that.
    pub fn encode_for_peer(&self, peer_maximum_length: u32) -> Result<Vec<u8>, EncodeError> {
        let out = self.encode()?;
        let body = out.len() - PDU_HEADER_LEN;
        let limit = send_limit(peer_maximum_length) as usize;
        if matches!(self, Pdu::PDataTf(_)) && body > limit {
            return Err(EncodeError::TooLong {
                what: "P-DATA-TF",
                length: body,
                max: limit,
            });
        }
        Ok(out)
    }

    /// Appends the encoded PDU to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[self.pdu_type(), 0, 0, 0, 0, 0]);
        match self {
            Pdu::AAssociateRq(rq) => {
                put_fixed(
                    out,
                    rq.protocol_version,
                    &rq.called_ae_title,
                    &rq.calling_ae_title,
                );
                put_item(
                    out,
                    item_type::APPLICATION_CONTEXT,
                    rq.application_context_name.as_bytes(),
                    "application context name",
                )?;
                for pc in &rq.presentation_contexts {
                    let s = begin_item(out, item_type::PRESENTATION_CONTEXT_RQ);
                    out.extend_from_slice(&[pc.id, 0, 0, 0]);
                    put_item(
                        out,
                        item_type::ABSTRACT_SYNTAX,
                        pc.abstract_syntax.as_bytes(),
                        "abstract syntax name",
                    )?;
                    for ts in &pc.transfer_syntaxes {
                        put_item(
                            out,
                            item_type::TRANSFER_SYNTAX,
                            ts.as_bytes(),
                            "transfer syntax name",
                        )?;
                    }
                    end_item(out, s, "presentation context item")?;
                }
                put_user_information(out, &rq.user_information)?;
            }
            Pdu::AAssociateAc(ac) => {
                put_fixed(
                    out,
                    ac.protocol_version,
                    &ac.called_ae_title,
                    &ac.calling_ae_title,
                );
                put_item(
                    out,
                    item_type::APPLICATION_CONTEXT,
                    ac.application_context_name.as_bytes(),
                    "application context name",
                )?;
                for pc in &ac.presentation_contexts {
                    let s = begin_item(out, item_type::PRESENTATION_CONTEXT_AC);
                    out.extend_from_slice(&[pc.id, 0, pc.result.value(), 0]);
                    if let Some(ts) = &pc.transfer_syntax {
                        put_item(
                            out,
                            item_type::TRANSFER_SYNTAX,
                            ts.as_bytes(),
                            "transfer syntax name",
                        )?;
                    }
                    end_item(out, s, "presentation context item")?;
                }
                put_user_information(out, &ac.user_information)?;
            }
            Pdu::AAssociateRj(rj) => {
                let result = match rj.result {
                    RejectResult::Permanent => 1,
                    RejectResult::Transient => 2,
                };
                let (source, reason) = rj.reason.values();
                out.extend_from_slice(&[0, result, source, reason]);
            }
            Pdu::PDataTf(p) => {
                for pdv in &p.values {
                    let len =
                        u32::try_from(pdv.data.len() + 2).map_err(|_| EncodeError::TooLong {
                            what: "PDV",
                            length: pdv.data.len(),
                            max: u32::MAX as usize - 2,
                        })?;
                    put_u32(out, len);
                    out.push(pdv.context_id);
                    out.push(pdv.control);
                    out.extend_from_slice(&pdv.data);
                }
            }
            Pdu::AReleaseRq | Pdu::AReleaseRp => out.extend_from_slice(&[0; 4]),
            Pdu::AAbort(a) => {
                out.extend_from_slice(&[0, 0, a.source.value(), a.reason.value()]);
            }
        }
        let len = out.len() - start - PDU_HEADER_LEN;
        let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLong {
            what: self.name(),
            length: len,
            max: u32::MAX as usize,
        })?;
        out[start + 2..start + 6].copy_from_slice(&len32.to_be_bytes());
        Ok(())
    }
}

/// protocol version(2), reserved(2), called(16), calling(16), reserved(32): PS3.8 9.3.2.
fn put_fixed(out: &mut Vec<u8>, version: u16, called: &AeTitle, calling: &AeTitle) {
    put_u16(out, version);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&called.0);
    out.extend_from_slice(&calling.0);
    out.extend_from_slice(&[0; 32]);
}

fn put_user_information(out: &mut Vec<u8>, info: &UserInformation) -> Result<(), EncodeError> {
    let s = begin_item(out, item_type::USER_INFORMATION);
    for item in &info.items {
        match item {
            UserItem::MaximumLength { maximum_length } => put_item(
                out,
                item_type::MAXIMUM_LENGTH,
                &maximum_length.to_be_bytes(),
                "maximum length",
            )?,
            UserItem::ImplementationClassUid { uid } => put_item(
                out,
                item_type::IMPLEMENTATION_CLASS_UID,
                uid.as_bytes(),
                "implementation class UID",
            )?,
            UserItem::AsynchronousOperationsWindow { invoked, performed } => {
                let s = begin_item(out, item_type::ASYNCHRONOUS_OPERATIONS_WINDOW);
                put_u16(out, *invoked);
                put_u16(out, *performed);
                end_item(out, s, "asynchronous operations window")?;
            }
            UserItem::RoleSelection {
                sop_class_uid,
                scu_role,
                scp_role,
            } => {
                let s = begin_item(out, item_type::ROLE_SELECTION);
                put_sized(
                    out,
                    sop_class_uid.as_bytes(),
                    "role selection SOP class UID",
                )?;
                out.push(u8::from(*scu_role));
                out.push(u8::from(*scp_role));
                end_item(out, s, "role selection")?;
            }
            UserItem::ImplementationVersionName { name } => put_item(
                out,
                item_type::IMPLEMENTATION_VERSION_NAME,
                name.as_bytes(),
                "implementation version name",
            )?,
            UserItem::SopClassExtendedNegotiation {
                sop_class_uid,
                info,
            } => {
                let s = begin_item(out, item_type::SOP_CLASS_EXTENDED_NEGOTIATION);
                put_sized(
                    out,
                    sop_class_uid.as_bytes(),
                    "extended negotiation SOP class UID",
                )?;
                out.extend_from_slice(info);
                end_item(out, s, "SOP class extended negotiation")?;
            }
            UserItem::SopClassCommonExtendedNegotiation {
                sop_class_uid,
                service_class_uid,
                related_general_sop_classes,
            } => {
                let s = begin_item(out, item_type::SOP_CLASS_COMMON_EXTENDED_NEGOTIATION);
                put_sized(
                    out,
                    sop_class_uid.as_bytes(),
                    "common extended negotiation SOP class UID",
                )?;
                put_sized(out, service_class_uid.as_bytes(), "service class UID")?;
                let mut related = Vec::new();
                for uid in related_general_sop_classes {
                    put_sized(
                        &mut related,
                        uid.as_bytes(),
                        "related general SOP class UID",
                    )?;
                }
                put_sized(out, &related, "related general SOP class identification")?;
                end_item(out, s, "SOP class common extended negotiation")?;
            }
            UserItem::UserIdentityRq {
                identity_type,
                positive_response_requested,
                primary,
                secondary,
            } => {
                let s = begin_item(out, item_type::USER_IDENTITY_RQ);
                out.push(identity_type.value());
                out.push(u8::from(*positive_response_requested));
                put_sized(out, primary, "user identity primary field")?;
                put_sized(out, secondary, "user identity secondary field")?;
                end_item(out, s, "user identity")?;
            }
            UserItem::UserIdentityAc { server_response } => {
                let s = begin_item(out, item_type::USER_IDENTITY_AC);
                put_sized(out, server_response, "user identity server response")?;
                end_item(out, s, "user identity response")?;
            }
            UserItem::Unknown { item_type, data } => {
                put_item(out, *item_type, data, "user information sub-item")?
            }
        }
    }
    end_item(out, s, "user information item")
}
