//! The Upper Layer PDUs of PS3.8 9.3 and their items: types, a decoder ([`read`]) and an
//! encoder ([`write`]).
//!
//! Lengths: a PDU has a 6-byte header (type, reserved, 4-byte big-endian length of what
//! follows); items and sub-items have a 4-byte header (type, reserved, 2-byte length);
//! PDV items have a 4-byte length (PS3.8 9.3.5.1).

pub mod read;
pub mod write;

use bytes::Bytes;

pub use read::{PduError, PduReader};
pub use write::EncodeError;

/// PDU types (PS3.8 Table 9-11 and the PDU structures of 9.3).
pub mod pdu_type {
    pub const A_ASSOCIATE_RQ: u8 = 0x01;
    pub const A_ASSOCIATE_AC: u8 = 0x02;
    pub const A_ASSOCIATE_RJ: u8 = 0x03;
    pub const P_DATA_TF: u8 = 0x04;
    pub const A_RELEASE_RQ: u8 = 0x05;
    pub const A_RELEASE_RP: u8 = 0x06;
    pub const A_ABORT: u8 = 0x07;
}

/// Item and sub-item types (PS3.8 9.3.2, Annex D; PS3.7 Annex D.3.3).
pub mod item_type {
    pub const APPLICATION_CONTEXT: u8 = 0x10;
    pub const PRESENTATION_CONTEXT_RQ: u8 = 0x20;
    pub const PRESENTATION_CONTEXT_AC: u8 = 0x21;
    pub const ABSTRACT_SYNTAX: u8 = 0x30;
    pub const TRANSFER_SYNTAX: u8 = 0x40;
    pub const USER_INFORMATION: u8 = 0x50;
    pub const MAXIMUM_LENGTH: u8 = 0x51;
    pub const IMPLEMENTATION_CLASS_UID: u8 = 0x52;
    pub const ASYNCHRONOUS_OPERATIONS_WINDOW: u8 = 0x53;
    pub const ROLE_SELECTION: u8 = 0x54;
    pub const IMPLEMENTATION_VERSION_NAME: u8 = 0x55;
    pub const SOP_CLASS_EXTENDED_NEGOTIATION: u8 = 0x56;
    pub const SOP_CLASS_COMMON_EXTENDED_NEGOTIATION: u8 = 0x57;
    pub const USER_IDENTITY_RQ: u8 = 0x58;
    pub const USER_IDENTITY_AC: u8 = 0x59;
}

/// The DICOM application context name (PS3.7 Annex A.2.1).
pub const APPLICATION_CONTEXT_NAME: &str = "1.2.840.10008.3.1.1.1";

/// The only protocol version (PS3.8 9.3.2: bit 0 set).
pub const PROTOCOL_VERSION: u16 = 0x0001;

/// Bytes of a PDU header: type (1), reserved (1), length (4).
pub const PDU_HEADER_LEN: usize = 6;
/// Bytes of a PDV item header: item length (4), presentation context ID (1), message
/// control header (1).
pub const PDV_HEADER_LEN: usize = 6;

/// What "unlimited" (a maximum length of 0, PS3.8 D.1) becomes when we send: PDUs no
/// larger than this. Large enough that per-PDU overhead is negligible.
pub const UNLIMITED_SEND_CLAMP: u32 = 4 * 1024 * 1024;
/// What "unlimited" becomes when we receive: a P-DATA-TF declaring more is refused before
/// anything is buffered.
pub const UNLIMITED_RECEIVE_CLAMP: u32 = 64 * 1024 * 1024;
/// The default limit on A-ASSOCIATE-RQ/AC PDUs: 128 presentation contexts with a dozen
/// transfer syntaxes each fit several times over.
pub const DEFAULT_MAX_ASSOCIATE_LENGTH: u32 = 1024 * 1024;

/// Resolves a maximum length as a peer announced it (0 = unlimited) into the largest
/// P-DATA-TF length field we may send.
pub fn send_limit(peer_maximum_length: u32) -> u32 {
    if peer_maximum_length == 0 {
        UNLIMITED_SEND_CLAMP
    } else {
        peer_maximum_length
    }
}

/// An Application Entity title as carried in the A-ASSOCIATE-RQ/AC fixed fields: 16 bytes,
/// space padded (PS3.8 9.3.2). Kept as the raw bytes so that a PDU re-encodes exactly;
/// [`AeTitle::as_str`] gives the title without its insignificant spaces.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AeTitle(pub [u8; 16]);

impl AeTitle {
    /// Builds a title from text: 1 to 16 characters of the default repertoire without
    /// backslash or control characters, not all spaces (PS3.5 6.2, AE).
    pub fn new(title: &str) -> Result<Self, EncodeError> {
        let invalid = |reason: &str| EncodeError::InvalidAeTitle {
            title: title.to_owned(),
            reason: reason.to_owned(),
        };
        if title.len() > 16 {
            return Err(invalid("longer than 16 characters"));
        }
        if title.trim_matches(' ').is_empty() {
            return Err(invalid("empty or all spaces"));
        }
        if title
            .bytes()
            .any(|b| !b.is_ascii() || b.is_ascii_control() || b == b'\\')
        {
            return Err(invalid(
                "only ASCII without backslash or control characters",
            ));
        }
        let mut raw = [b' '; 16];
        raw[..title.len()].copy_from_slice(title.as_bytes());
        Ok(AeTitle(raw))
    }

    /// The title without leading and trailing spaces (and trailing NULs, which some peers
    /// send); non-ASCII bytes are replaced.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        let trimmed = trim_ae(&self.0);
        String::from_utf8_lossy(trimmed)
    }

    /// Whether the title is blank (16 spaces): not a valid title, but sent by some peers in
    /// fields the receiver does not test.
    pub fn is_blank(&self) -> bool {
        trim_ae(&self.0).is_empty()
    }
}

fn trim_ae(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |p| p + 1);
    let start = raw[..end].iter().position(|&b| b != b' ').unwrap_or(end);
    &raw[start..end]
}

impl std::fmt::Debug for AeTitle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AeTitle({:?})", self.as_str())
    }
}

impl Default for AeTitle {
    fn default() -> Self {
        AeTitle([b' '; 16])
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AeTitle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for AeTitle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() && s.len() <= 16 {
            // Blank titles appear in fields the receiver does not test; keep them.
            return Ok(AeTitle::default());
        }
        AeTitle::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A presentation context as proposed in an A-ASSOCIATE-RQ (item 0x20, PS3.8 9.3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PresentationContextRq {
    /// Odd, 1 to 255.
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntaxes: Vec<String>,
}

/// Result/reason of a presentation context in an A-ASSOCIATE-AC (PS3.8 Table 9-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PresentationContextResult {
    Acceptance,
    UserRejection,
    /// No reason (provider rejection).
    NoReason,
    AbstractSyntaxNotSupported,
    TransferSyntaxesNotSupported,
}

impl PresentationContextResult {
    pub fn value(self) -> u8 {
        match self {
            Self::Acceptance => 0,
            Self::UserRejection => 1,
            Self::NoReason => 2,
            Self::AbstractSyntaxNotSupported => 3,
            Self::TransferSyntaxesNotSupported => 4,
        }
    }

    pub fn from_value(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Acceptance,
            1 => Self::UserRejection,
            2 => Self::NoReason,
            3 => Self::AbstractSyntaxNotSupported,
            4 => Self::TransferSyntaxesNotSupported,
            _ => return None,
        })
    }
}

/// A presentation context as answered in an A-ASSOCIATE-AC (item 0x21, PS3.8 9.3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PresentationContextAc {
    pub id: u8,
    pub result: PresentationContextResult,
    /// The accepted transfer syntax. PS3.8 says the sub-item is present but not significant
    /// when the context is rejected; peers send it empty or leave it out, so both decode
    /// (`Some("")` and `None`) and re-encode as they came.
    pub transfer_syntax: Option<String>,
}

/// One sub-item of the User Information item (PS3.8 Annex D, PS3.7 Annex D.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type"))]
pub enum UserItem {
    /// 0x51: the largest P-DATA-TF length field the sender will receive; 0 = unlimited.
    MaximumLength { maximum_length: u32 },
    /// 0x52.
    ImplementationClassUid { uid: String },
    /// 0x53: 0 = unlimited; without the item both are 1 (PS3.7 D.3.3.3).
    AsynchronousOperationsWindow { invoked: u16, performed: u16 },
    /// 0x54 (PS3.7 D.3.3.4).
    RoleSelection {
        sop_class_uid: String,
        scu_role: bool,
        scp_role: bool,
    },
    /// 0x55: 1 to 16 characters.
    ImplementationVersionName { name: String },
    /// 0x56 (PS3.7 D.3.3.5).
    SopClassExtendedNegotiation { sop_class_uid: String, info: Bytes },
    /// 0x57 (PS3.7 D.3.3.6).
    SopClassCommonExtendedNegotiation {
        sop_class_uid: String,
        service_class_uid: String,
        related_general_sop_classes: Vec<String>,
    },
    /// 0x58 (PS3.7 D.3.3.7.1).
    UserIdentityRq {
        identity_type: UserIdentityType,
        positive_response_requested: bool,
        primary: Bytes,
        secondary: Bytes,
    },
    /// 0x59 (PS3.7 D.3.3.7.2).
    UserIdentityAc { server_response: Bytes },
    /// A sub-item this implementation does not know: kept, so that it can be re-encoded,
    /// and otherwise ignored (PS3.7 D.3.3: unsupported sub-items are ignored).
    Unknown { item_type: u8, data: Bytes },
}

/// User Identity Type (PS3.7 Table D.3-14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum UserIdentityType {
    Username,
    UsernameAndPasscode,
    Kerberos,
    Saml,
    Jwt,
    /// A value this implementation does not know; kept so that it can be answered.
    Other(u8),
}

impl UserIdentityType {
    pub fn value(self) -> u8 {
        match self {
            Self::Username => 1,
            Self::UsernameAndPasscode => 2,
            Self::Kerberos => 3,
            Self::Saml => 4,
            Self::Jwt => 5,
            Self::Other(v) => v,
        }
    }

    pub fn from_value(v: u8) -> Self {
        match v {
            1 => Self::Username,
            2 => Self::UsernameAndPasscode,
            3 => Self::Kerberos,
            4 => Self::Saml,
            5 => Self::Jwt,
            other => Self::Other(other),
        }
    }
}

/// The User Information item (0x50): its sub-items in the order received or built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UserInformation {
    pub items: Vec<UserItem>,
}

impl UserInformation {
    /// The Maximum Length sub-item's value, if present.
    pub fn maximum_length(&self) -> Option<u32> {
        self.items.iter().find_map(|i| match i {
            UserItem::MaximumLength { maximum_length } => Some(*maximum_length),
            _ => None,
        })
    }

    pub fn implementation_class_uid(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            UserItem::ImplementationClassUid { uid } => Some(uid.as_str()),
            _ => None,
        })
    }

    pub fn implementation_version_name(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            UserItem::ImplementationVersionName { name } => Some(name.as_str()),
            _ => None,
        })
    }

    /// (invoked, performed), if the 0x53 sub-item is present.
    pub fn asynchronous_operations_window(&self) -> Option<(u16, u16)> {
        self.items.iter().find_map(|i| match i {
            UserItem::AsynchronousOperationsWindow { invoked, performed } => {
                Some((*invoked, *performed))
            }
            _ => None,
        })
    }
}

/// A-ASSOCIATE-RQ (PS3.8 9.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AAssociateRq {
    pub protocol_version: u16,
    pub called_ae_title: AeTitle,
    pub calling_ae_title: AeTitle,
    pub application_context_name: String,
    pub presentation_contexts: Vec<PresentationContextRq>,
    pub user_information: UserInformation,
}

/// A-ASSOCIATE-AC (PS3.8 9.3.3). The AE title fields are reserved: the acceptor echoes
/// the request's and the requestor does not test them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AAssociateAc {
    pub protocol_version: u16,
    pub called_ae_title: AeTitle,
    pub calling_ae_title: AeTitle,
    pub application_context_name: String,
    pub presentation_contexts: Vec<PresentationContextAc>,
    pub user_information: UserInformation,
}

/// A-ASSOCIATE-RJ result (PS3.8 9.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RejectResult {
    Permanent,
    Transient,
}

/// A-ASSOCIATE-RJ source and reason (PS3.8 9.3.4, Table 9-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RejectReason {
    /// Source 1, DICOM UL service-user.
    UserNoReasonGiven,
    UserApplicationContextNameNotSupported,
    UserCallingAeTitleNotRecognized,
    UserCalledAeTitleNotRecognized,
    /// Source 2, DICOM UL service-provider (ACSE related function).
    AcseNoReasonGiven,
    AcseProtocolVersionNotSupported,
    /// Source 3, DICOM UL service-provider (Presentation related function).
    PresentationTemporaryCongestion,
    PresentationLocalLimitExceeded,
    /// A source/reason pair the standard reserves: kept so that it can be reported.
    Reserved {
        source: u8,
        reason: u8,
    },
}

impl RejectReason {
    /// (source, reason/diag.) bytes.
    pub fn values(self) -> (u8, u8) {
        match self {
            Self::UserNoReasonGiven => (1, 1),
            Self::UserApplicationContextNameNotSupported => (1, 2),
            Self::UserCallingAeTitleNotRecognized => (1, 3),
            Self::UserCalledAeTitleNotRecognized => (1, 7),
            Self::AcseNoReasonGiven => (2, 1),
            Self::AcseProtocolVersionNotSupported => (2, 2),
            Self::PresentationTemporaryCongestion => (3, 1),
            Self::PresentationLocalLimitExceeded => (3, 2),
            Self::Reserved { source, reason } => (source, reason),
        }
    }

    pub fn from_values(source: u8, reason: u8) -> Self {
        match (source, reason) {
            (1, 1) => Self::UserNoReasonGiven,
            (1, 2) => Self::UserApplicationContextNameNotSupported,
            (1, 3) => Self::UserCallingAeTitleNotRecognized,
            (1, 7) => Self::UserCalledAeTitleNotRecognized,
            (2, 1) => Self::AcseNoReasonGiven,
            (2, 2) => Self::AcseProtocolVersionNotSupported,
            (3, 1) => Self::PresentationTemporaryCongestion,
            (3, 2) => Self::PresentationLocalLimitExceeded,
            (source, reason) => Self::Reserved { source, reason },
        }
    }
}

/// A-ASSOCIATE-RJ (PS3.8 9.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AAssociateRj {
    pub result: RejectResult,
    pub reason: RejectReason,
}

/// A-ABORT source (PS3.8 9.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AbortSource {
    ServiceUser,
    Reserved,
    ServiceProvider,
}

impl AbortSource {
    pub fn value(self) -> u8 {
        match self {
            Self::ServiceUser => 0,
            Self::Reserved => 1,
            Self::ServiceProvider => 2,
        }
    }
}

/// A-ABORT reason when the source is the service provider (PS3.8 Table 9-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AbortReason {
    NotSpecified,
    UnrecognizedPdu,
    UnexpectedPdu,
    UnrecognizedPduParameter,
    UnexpectedPduParameter,
    InvalidPduParameterValue,
    /// A value the standard reserves (3, 7..).
    Reserved(u8),
}

impl AbortReason {
    pub fn value(self) -> u8 {
        match self {
            Self::NotSpecified => 0,
            Self::UnrecognizedPdu => 1,
            Self::UnexpectedPdu => 2,
            Self::UnrecognizedPduParameter => 4,
            Self::UnexpectedPduParameter => 5,
            Self::InvalidPduParameterValue => 6,
            Self::Reserved(v) => v,
        }
    }

    pub fn from_value(v: u8) -> Self {
        match v {
            0 => Self::NotSpecified,
            1 => Self::UnrecognizedPdu,
            2 => Self::UnexpectedPdu,
            4 => Self::UnrecognizedPduParameter,
            5 => Self::UnexpectedPduParameter,
            6 => Self::InvalidPduParameterValue,
            other => Self::Reserved(other),
        }
    }
}

/// A-ABORT (PS3.8 9.3.8). The reason is significant only when the source is the service
/// provider; a service-user abort carries 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AAbort {
    pub source: AbortSource,
    pub reason: AbortReason,
}

/// Message Control Header bits of a PDV (PS3.8 Annex E.2).
pub mod control {
    /// Bit 0: the fragment is (part of) a command set, else a data set.
    pub const COMMAND: u8 = 0x01;
    /// Bit 1: the last fragment of the command or data set.
    pub const LAST: u8 = 0x02;
}

/// A Presentation Data Value item (PS3.8 9.3.5.1): one fragment of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PresentationDataValue {
    pub context_id: u8,
    /// The message control header; receivers test only bits 0 and 1 (PS3.8 E.2).
    pub control: u8,
    pub data: Bytes,
}

impl PresentationDataValue {
    pub fn is_command(&self) -> bool {
        self.control & control::COMMAND != 0
    }

    pub fn is_last(&self) -> bool {
        self.control & control::LAST != 0
    }
}

/// P-DATA-TF (PS3.8 9.3.5): one or more PDVs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PDataTf {
    pub values: Vec<PresentationDataValue>,
}

/// Any of the seven PDUs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "pdu"))]
pub enum Pdu {
    AAssociateRq(AAssociateRq),
    AAssociateAc(AAssociateAc),
    AAssociateRj(AAssociateRj),
    PDataTf(PDataTf),
    AReleaseRq,
    AReleaseRp,
    AAbort(AAbort),
}

impl Pdu {
    /// The PDU type byte.
    pub fn pdu_type(&self) -> u8 {
        match self {
            Pdu::AAssociateRq(_) => pdu_type::A_ASSOCIATE_RQ,
            Pdu::AAssociateAc(_) => pdu_type::A_ASSOCIATE_AC,
            Pdu::AAssociateRj(_) => pdu_type::A_ASSOCIATE_RJ,
            Pdu::PDataTf(_) => pdu_type::P_DATA_TF,
            Pdu::AReleaseRq => pdu_type::A_RELEASE_RQ,
            Pdu::AReleaseRp => pdu_type::A_RELEASE_RP,
            Pdu::AAbort(_) => pdu_type::A_ABORT,
        }
    }

    /// The PDU's name in PS3.8, e.g. "A-ASSOCIATE-RQ".
    pub fn name(&self) -> &'static str {
        pdu_name(self.pdu_type())
    }
}

#[cfg(feature = "serde")]
impl Pdu {
    /// Deserializes the PDU whose serde tag is `name` (e.g. "AAssociateRq") from its fields
    /// alone: faster than the tagged enum, which buffers its whole input to find the tag.
    pub fn deserialize_named<'de, D: serde::Deserializer<'de>>(
        name: &str,
        fields: D,
    ) -> Result<Pdu, D::Error> {
        use serde::Deserialize;
        match name {
            "AAssociateRq" => AAssociateRq::deserialize(fields).map(Pdu::AAssociateRq),
            "AAssociateAc" => AAssociateAc::deserialize(fields).map(Pdu::AAssociateAc),
            "AAssociateRj" => AAssociateRj::deserialize(fields).map(Pdu::AAssociateRj),
            "PDataTf" => PDataTf::deserialize(fields).map(Pdu::PDataTf),
            "AAbort" => AAbort::deserialize(fields).map(Pdu::AAbort),
            "AReleaseRq" => Ok(Pdu::AReleaseRq),
            "AReleaseRp" => Ok(Pdu::AReleaseRp),
            other => Err(<D::Error as serde::de::Error>::custom(format!(
                "unknown PDU {other:?}; expected one of AAssociateRq, AAssociateAc, \
                 AAssociateRj, PDataTf, AReleaseRq, AReleaseRp, AAbort"
            ))),
        }
    }
}

/// The name of a PDU type, or "unknown PDU".
pub fn pdu_name(t: u8) -> &'static str {
    match t {
        pdu_type::A_ASSOCIATE_RQ => "A-ASSOCIATE-RQ",
        pdu_type::A_ASSOCIATE_AC => "A-ASSOCIATE-AC",
        pdu_type::A_ASSOCIATE_RJ => "A-ASSOCIATE-RJ",
        pdu_type::P_DATA_TF => "P-DATA-TF",
        pdu_type::A_RELEASE_RQ => "A-RELEASE-RQ",
        pdu_type::A_RELEASE_RP => "A-RELEASE-RP",
        pdu_type::A_ABORT => "A-ABORT",
        _ => "unknown PDU",
    }
}
