//! Association negotiation (PS3.8 7.1, PS3.7 Annex D.3.3), sans-io.
//!
//! The requestor describes what it proposes in [`RequestorParams`] and builds the
//! A-ASSOCIATE-RQ with [`RequestorParams::build_rq`]; the acceptor answers it with
//! [`accept`], which returns either the A-ASSOCIATE-AC and what was agreed, or the
//! A-ASSOCIATE-RJ to send; the requestor reads the AC with [`process_ac`]. Both sides end
//! with the same [`Negotiated`] view of every presentation context, so the message layer
//! can look up contexts and roles without caring which side it is on.
//!
//! Nothing here does I/O or keeps state between calls: the decisions a user makes while
//! negotiating (user identity, extended negotiation, the asynchronous operations window)
//! come in through [`AcceptorHooks`].

use bytes::Bytes;

use crate::pdu::{
    AAssociateAc, AAssociateRj, AAssociateRq, AeTitle, PresentationContextAc,
    PresentationContextResult, PresentationContextRq, RejectReason, RejectResult, UserIdentityType,
    UserInformation, UserItem, APPLICATION_CONTEXT_NAME, PROTOCOL_VERSION,
};
use crate::uid;

/// The Maximum Length (0x51) we announce unless told otherwise: 64 KiB. Peers commonly
/// default to 16 KiB; a larger value lets a peer that can send bigger PDUs pay less
/// per-PDU overhead, and costs a receive buffer of this size per association at most.
pub const DEFAULT_MAX_PDU_LENGTH: u32 = 64 * 1024;

/// The most presentation contexts one association can carry: IDs are the odd numbers
/// 1 to 255 (PS3.8 9.3.2.2).
pub const MAX_CONTEXTS: usize = 128;

/// The longest UID (PS3.5 9.1).
const MAX_UID_LENGTH: usize = 64;

/// The longest Implementation Version Name (PS3.7 D.3.3.2).
const MAX_VERSION_NAME_LENGTH: usize = 16;

/// A SCP/SCU Role Selection proposal (0x54, PS3.7 D.3.3.4) for one SOP class: the roles
/// the requestor offers to play for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RoleProposal {
    pub sop_class_uid: String,
    pub scu_role: bool,
    pub scp_role: bool,
}

/// The requestor's user identity (0x58, PS3.7 D.3.3.7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UserIdentity {
    pub identity_type: UserIdentityType,
    /// Whether the acceptor is asked to answer with a 0x59 sub-item.
    pub positive_response_requested: bool,
    /// The username, Kerberos ticket, SAML assertion or JSON Web Token.
    pub primary: Bytes,
    /// The passcode: only with [`UserIdentityType::UsernameAndPasscode`].
    pub secondary: Bytes,
}

/// SOP Class Extended Negotiation (0x56, PS3.7 D.3.3.5): application information whose
/// meaning the SOP class's service class defines (PS3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExtendedNegotiation {
    pub sop_class_uid: String,
    pub info: Bytes,
}

/// SOP Class Common Extended Negotiation (0x57, PS3.7 D.3.3.6). Only the requestor sends
/// it; there is no answer in the A-ASSOCIATE-AC.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CommonExtendedNegotiation {
    pub sop_class_uid: String,
    pub service_class_uid: String,
    pub related_general_sop_classes: Vec<String>,
}

/// Why an association could not be proposed, or why an A-ASSOCIATE-AC cannot be used.
///
/// The first group are caller mistakes, found by [`RequestorParams::add_context`] and
/// [`RequestorParams::build_rq`]; the second group ([`NegotiationError::is_peer_error`])
/// are A-ASSOCIATE-ACs that contradict the request, found by [`process_ac`], after which
/// the association should be aborted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error(
        "no presentation context to propose: add at least one (an A-ASSOCIATE-RQ carries \
         one or more, PS3.8 9.3.2)"
    )]
    NoContexts,
    #[error(
        "{count} presentation contexts: at most {MAX_CONTEXTS} fit in one association (IDs \
         are the odd numbers 1 to 255, PS3.8 9.3.2.2); propose fewer or use several \
         associations"
    )]
    TooManyContexts { count: usize },
    #[error("presentation context ID {id} is even: IDs must be odd, 1 to 255 (PS3.8 9.3.2.2)")]
    EvenContextId { id: u8 },
    #[error("presentation context ID {id} is used twice: give each context its own odd ID")]
    DuplicateContextId { id: u8 },
    #[error(
        "presentation context {id} ({abstract_syntax}) has no transfer syntax: propose at \
         least one"
    )]
    NoTransferSyntax { id: u8, abstract_syntax: String },
    #[error("{what} {value:?} is not a valid UID: {reason} (PS3.5 9.1)")]
    InvalidUid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("implementation version name {name:?}: {reason} (PS3.7 D.3.3.2)")]
    InvalidImplementationVersionName { name: String, reason: &'static str },
    #[error("the {which} AE title is blank: set a title of 1 to 16 characters")]
    BlankAeTitle { which: &'static str },
    #[error("role selection for {sop_class_uid}: {reason} (PS3.7 D.3.3.4)")]
    InvalidRoleProposal {
        sop_class_uid: String,
        reason: &'static str,
    },
    #[error("user identity: {reason} (PS3.7 D.3.3.7.1)")]
    InvalidUserIdentity { reason: &'static str },

    #[error("the A-ASSOCIATE-AC answers presentation context ID {id}, which was never proposed")]
    UnproposedContextId { id: u8 },
    #[error("the A-ASSOCIATE-AC answers presentation context ID {id} more than once")]
    DuplicateAnswer { id: u8 },
    #[error(
        "the A-ASSOCIATE-AC accepts presentation context {id} ({abstract_syntax}) without a \
         transfer syntax"
    )]
    AcceptedWithoutTransferSyntax { id: u8, abstract_syntax: String },
    #[error(
        "the A-ASSOCIATE-AC accepts presentation context {id} ({abstract_syntax}) with \
         transfer syntax {transfer_syntax}, which was not proposed for it"
    )]
    UnproposedTransferSyntax {
        id: u8,
        abstract_syntax: String,
        transfer_syntax: String,
    },
}

impl NegotiationError {
    /// Whether the error is the peer's (an A-ASSOCIATE-AC that contradicts the request)
    /// rather than the caller's.
    pub fn is_peer_error(&self) -> bool {
        matches!(
            self,
            Self::UnproposedContextId { .. }
                | Self::DuplicateAnswer { .. }
                | Self::AcceptedWithoutTransferSyntax { .. }
                | Self::UnproposedTransferSyntax { .. }
        )
    }
}

/// Checks a UID we are about to send: 1 to 64 characters, digits and dots, no empty
/// component (PS3.5 9.1). Leading zeros in a component are not refused: they are invalid
/// too, but legacy private UIDs carry them and peers accept them.
fn check_uid(what: &'static str, value: &str) -> Result<(), NegotiationError> {
    let invalid = |reason| NegotiationError::InvalidUid {
        what,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("it is empty"));
    }
    if value.len() > MAX_UID_LENGTH {
        return Err(invalid("longer than 64 characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid("only digits and dots are allowed"));
    }
    if value.split('.').any(str::is_empty) {
        return Err(invalid("a component between dots is empty"));
    }
    Ok(())
}

fn check_context(pc: &PresentationContextRq) -> Result<(), NegotiationError> {
    if pc.id % 2 == 0 {
        return Err(NegotiationError::EvenContextId { id: pc.id });
    }
    check_uid("abstract syntax", &pc.abstract_syntax)?;
    if pc.transfer_syntaxes.is_empty() {
        return Err(NegotiationError::NoTransferSyntax {
            id: pc.id,
            abstract_syntax: pc.abstract_syntax.clone(),
        });
    }
    for ts in &pc.transfer_syntaxes {
        check_uid("transfer syntax", ts)?;
    }
    Ok(())
}

/// What the requestor proposes (PS3.8 7.1.1, PS3.7 D.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RequestorParams {
    pub calling_ae_title: AeTitle,
    pub called_ae_title: AeTitle,
    pub contexts: Vec<PresentationContextRq>,
    /// Our Maximum Length (0x51): the largest P-DATA-TF length field we accept;
    /// 0 = unlimited. Defaults to [`DEFAULT_MAX_PDU_LENGTH`].
    pub max_pdu_length: u32,
    /// Defaults to [`uid::IMPLEMENTATION_CLASS_UID`].
    pub implementation_class_uid: String,
    /// Defaults to [`uid::IMPLEMENTATION_VERSION_NAME`].
    pub implementation_version_name: Option<String>,
    /// (max invoked, max performed), 0 = unlimited; `None` leaves item 0x53 out, which
    /// means (1, 1): synchronous operation (PS3.7 D.3.3.3).
    pub async_ops: Option<(u16, u16)>,
    pub roles: Vec<RoleProposal>,
    pub extended: Vec<ExtendedNegotiation>,
    pub common_extended: Vec<CommonExtendedNegotiation>,
    pub user_identity: Option<UserIdentity>,
}

impl RequestorParams {
    /// Parameters with no context yet, our implementation identity and a Maximum Length
    /// of [`DEFAULT_MAX_PDU_LENGTH`].
    pub fn new(calling: AeTitle, called: AeTitle) -> Self {
        RequestorParams {
            calling_ae_title: calling,
            called_ae_title: called,
            contexts: Vec::new(),
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            implementation_class_uid: uid::IMPLEMENTATION_CLASS_UID.to_owned(),
            implementation_version_name: Some(uid::IMPLEMENTATION_VERSION_NAME.to_owned()),
            async_ops: None,
            roles: Vec::new(),
            extended: Vec::new(),
            common_extended: Vec::new(),
            user_identity: None,
        }
    }

    /// Adds a context with the next free odd ID (1, 3, ... 255) and returns the ID. The
    /// UIDs are checked here already, so that the error points at the call that added them.
    pub fn add_context(
        &mut self,
        abstract_syntax: &str,
        transfer_syntaxes: &[&str],
    ) -> Result<u8, NegotiationError> {
        if self.contexts.len() >= MAX_CONTEXTS {
            return Err(NegotiationError::TooManyContexts {
                count: self.contexts.len() + 1,
            });
        }
        let id = (1..=255u8)
            .step_by(2)
            .find(|id| self.contexts.iter().all(|pc| pc.id != *id))
            .ok_or(NegotiationError::TooManyContexts {
                count: self.contexts.len() + 1,
            })?;
        let pc = PresentationContextRq {
            id,
            abstract_syntax: abstract_syntax.to_owned(),
            transfer_syntaxes: transfer_syntaxes
                .iter()
                .map(|ts| (*ts).to_owned())
                .collect(),
        };
        check_context(&pc)?;
        self.contexts.push(pc);
        Ok(id)
    }

    /// Validates the parameters and builds the A-ASSOCIATE-RQ (PS3.8 9.3.2). User
    /// information sub-items go in the order of their types (0x51, 0x52, 0x53, 0x54...,
    /// 0x55, 0x56..., 0x57..., 0x58), the order PS3.7 Annex D.3.3 lists them in and
    /// peers expect.
    pub fn build_rq(&self) -> Result<AAssociateRq, NegotiationError> {
        if self.calling_ae_title.is_blank() {
            return Err(NegotiationError::BlankAeTitle { which: "calling" });
        }
        if self.called_ae_title.is_blank() {
            return Err(NegotiationError::BlankAeTitle { which: "called" });
        }
        if self.contexts.is_empty() {
            return Err(NegotiationError::NoContexts);
        }
        if self.contexts.len() > MAX_CONTEXTS {
            return Err(NegotiationError::TooManyContexts {
                count: self.contexts.len(),
            });
        }
        let mut seen = [false; 256];
        for pc in &self.contexts {
            check_context(pc)?;
            let slot = &mut seen[usize::from(pc.id)];
            if *slot {
                return Err(NegotiationError::DuplicateContextId { id: pc.id });
            }
            *slot = true;
        }

        check_uid("implementation class UID", &self.implementation_class_uid)?;
        if let Some(name) = &self.implementation_version_name {
            check_version_name(name)?;
        }

        for (i, role) in self.roles.iter().enumerate() {
            check_uid("role selection SOP class UID", &role.sop_class_uid)?;
            let invalid = |reason| NegotiationError::InvalidRoleProposal {
                sop_class_uid: role.sop_class_uid.clone(),
                reason,
            };
            if !role.scu_role && !role.scp_role {
                return Err(invalid("proposes neither the SCU nor the SCP role"));
            }
            // One item per SOP class (PS3.7 D.3.3.4): a second would leave the acceptor
            // to guess which one counts.
            if self.roles[..i]
                .iter()
                .any(|r| r.sop_class_uid == role.sop_class_uid)
            {
                return Err(invalid("proposed twice; keep one proposal per SOP class"));
            }
            if !self
                .contexts
                .iter()
                .any(|pc| pc.abstract_syntax == role.sop_class_uid)
            {
                return Err(invalid(
                    "no proposed presentation context has this abstract syntax",
                ));
            }
        }
        for ext in &self.extended {
            check_uid("extended negotiation SOP class UID", &ext.sop_class_uid)?;
        }
        for common in &self.common_extended {
            check_uid(
                "common extended negotiation SOP class UID",
                &common.sop_class_uid,
            )?;
            check_uid("service class UID", &common.service_class_uid)?;
            for related in &common.related_general_sop_classes {
                check_uid("related general SOP class UID", related)?;
            }
        }
        if let Some(identity) = &self.user_identity {
            check_user_identity(identity)?;
        }

        let mut items = Vec::with_capacity(
            4 + self.roles.len() + self.extended.len() + self.common_extended.len(),
        );
        items.push(UserItem::MaximumLength {
            maximum_length: self.max_pdu_length,
        });
        items.push(UserItem::ImplementationClassUid {
            uid: self.implementation_class_uid.clone(),
        });
        if let Some((invoked, performed)) = self.async_ops {
            items.push(UserItem::AsynchronousOperationsWindow { invoked, performed });
        }
        items.extend(self.roles.iter().map(|r| UserItem::RoleSelection {
            sop_class_uid: r.sop_class_uid.clone(),
            scu_role: r.scu_role,
            scp_role: r.scp_role,
        }));
        if let Some(name) = &self.implementation_version_name {
            items.push(UserItem::ImplementationVersionName { name: name.clone() });
        }
        items.extend(
            self.extended
                .iter()
                .map(|e| UserItem::SopClassExtendedNegotiation {
                    sop_class_uid: e.sop_class_uid.clone(),
                    info: e.info.clone(),
                }),
        );
        items.extend(self.common_extended.iter().map(|c| {
            UserItem::SopClassCommonExtendedNegotiation {
                sop_class_uid: c.sop_class_uid.clone(),
                service_class_uid: c.service_class_uid.clone(),
                related_general_sop_classes: c.related_general_sop_classes.clone(),
            }
        }));
        if let Some(identity) = &self.user_identity {
            items.push(UserItem::UserIdentityRq {
                identity_type: identity.identity_type,
                positive_response_requested: identity.positive_response_requested,
                primary: identity.primary.clone(),
                secondary: identity.secondary.clone(),
            });
        }

        Ok(AAssociateRq {
            protocol_version: PROTOCOL_VERSION,
            called_ae_title: self.called_ae_title,
            calling_ae_title: self.calling_ae_title,
            application_context_name: APPLICATION_CONTEXT_NAME.to_owned(),
            presentation_contexts: self.contexts.clone(),
            user_information: UserInformation { items },
        })
    }
}

/// 1 to 16 characters of the ISO 646 basic G0 set (PS3.7 D.3.3.2.3).
fn check_version_name(name: &str) -> Result<(), NegotiationError> {
    let invalid = |reason| NegotiationError::InvalidImplementationVersionName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty; leave it out instead"));
    }
    if name.len() > MAX_VERSION_NAME_LENGTH {
        return Err(invalid("longer than 16 characters"));
    }
    if name.bytes().any(|b| !(0x20..0x7F).contains(&b)) {
        return Err(invalid("only printable ASCII characters are allowed"));
    }
    Ok(())
}

fn check_user_identity(identity: &UserIdentity) -> Result<(), NegotiationError> {
    let invalid = |reason| NegotiationError::InvalidUserIdentity { reason };
    if identity.primary.is_empty() {
        return Err(invalid(
            "the primary field is empty; it carries the username or the token",
        ));
    }
    // Both fields have 2-byte length fields.
    if identity.primary.len() > usize::from(u16::MAX) {
        return Err(invalid("the primary field is longer than 65535 bytes"));
    }
    if identity.secondary.len() > usize::from(u16::MAX) {
        return Err(invalid("the secondary field is longer than 65535 bytes"));
    }
    // Only "username and passcode" has a secondary field (PS3.7 Table D.3-14).
    if !identity.secondary.is_empty()
        && identity.identity_type != UserIdentityType::UsernameAndPasscode
    {
        return Err(invalid(
            "a secondary field (passcode) is only sent with identity type 2, username \
             and passcode",
        ));
    }
    Ok(())
}

/// One presentation context after negotiation, as both sides see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NegotiatedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub result: PresentationContextResult,
    /// The accepted transfer syntax; `None` unless accepted.
    pub transfer_syntax: Option<String>,
    /// Whether the requestor may act as SCU (invoke operations) on this context; the
    /// acceptor is then SCP. Both role flags are false unless the context was accepted.
    pub requestor_is_scu: bool,
    /// Whether the requestor may act as SCP (perform operations, e.g. the C-STORE
    /// sub-operations of a C-GET) on this context; the acceptor is then SCU.
    pub requestor_is_scp: bool,
}

impl NegotiatedContext {
    pub fn is_accepted(&self) -> bool {
        self.result == PresentationContextResult::Acceptance
    }
}

/// What both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Negotiated {
    pub calling_ae_title: AeTitle,
    pub called_ae_title: AeTitle,
    /// Every proposed context, in proposal order.
    pub contexts: Vec<NegotiatedContext>,
    /// The peer's Maximum Length (0x51; 0 = unlimited, also when the item is missing):
    /// the largest P-DATA-TF we may send.
    pub peer_max_pdu_length: u32,
    /// Our Maximum Length: the largest P-DATA-TF we accept.
    pub our_max_pdu_length: u32,
    pub peer_implementation_class_uid: Option<String>,
    pub peer_implementation_version_name: Option<String>,
    /// The effective (invoked, performed) window for the requestor (0 = unlimited);
    /// (1, 1) when either side left item 0x53 out (PS3.7 D.3.3.3).
    pub async_ops: (u16, u16),
    /// The requestor's identity, as proposed.
    pub user_identity: Option<UserIdentity>,
    /// The acceptor's server response (0x59), if one was sent.
    pub user_identity_response: Option<Bytes>,
    /// The acceptor's SOP Class Extended Negotiation answers (0x56 in the AC).
    pub extended: Vec<ExtendedNegotiation>,
    /// The SOP Class Common Extended Negotiation items: on the acceptor side those its
    /// hook accepted, on the requestor side those proposed (the AC carries no answer).
    pub common_extended: Vec<CommonExtendedNegotiation>,
}

impl Negotiated {
    /// The accepted contexts, in proposal order.
    pub fn accepted(&self) -> impl Iterator<Item = &NegotiatedContext> {
        self.contexts.iter().filter(|c| c.is_accepted())
    }

    /// The context with this ID, accepted or not.
    pub fn context(&self, id: u8) -> Option<&NegotiatedContext> {
        self.contexts.iter().find(|c| c.id == id)
    }

    /// The first accepted context for this abstract syntax (and, if given, transfer
    /// syntax).
    pub fn find_context(
        &self,
        abstract_syntax: &str,
        transfer_syntax: Option<&str>,
    ) -> Option<&NegotiatedContext> {
        self.accepted().find(|c| {
            c.abstract_syntax == abstract_syntax
                && transfer_syntax.is_none_or(|ts| c.transfer_syntax.as_deref() == Some(ts))
        })
    }
}

/// One abstract syntax the acceptor supports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SupportedContext {
    pub abstract_syntax: String,
    /// In our order of preference: the first of these the requestor proposed is chosen.
    pub transfer_syntaxes: Vec<String>,
    /// Accept the requestor as SCU (the usual case: we perform its requests).
    pub scu_role: bool,
    /// Accept the requestor as SCP, i.e. we act as SCU: e.g. the C-STORE sub-operations
    /// of a C-GET, which the requestor must propose with a role selection item.
    pub scp_role: bool,
}

impl SupportedContext {
    /// A context accepting the requestor as SCU only.
    pub fn new(abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Self {
        SupportedContext {
            abstract_syntax: abstract_syntax.to_owned(),
            transfer_syntaxes: transfer_syntaxes
                .iter()
                .map(|ts| (*ts).to_owned())
                .collect(),
            scu_role: true,
            scp_role: false,
        }
    }
}

/// What the acceptor supports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AcceptorParams {
    pub ae_title: AeTitle,
    /// Reject requests whose called AE title is not ours.
    pub require_called_aet: bool,
    /// Calling AE titles accepted; empty = any.
    pub allowed_calling_aets: Vec<String>,
    /// Several entries for one abstract syntax merge: their transfer syntaxes in order,
    /// and a role supported if any entry supports it.
    pub contexts: Vec<SupportedContext>,
    /// Our Maximum Length (0x51), 0 = unlimited. Defaults to [`DEFAULT_MAX_PDU_LENGTH`].
    pub max_pdu_length: u32,
    pub implementation_class_uid: String,
    pub implementation_version_name: Option<String>,
    /// Reject requests without a User Identity sub-item (0x58); what a present one is
    /// worth is decided by [`AcceptorHooks::user_identity`].
    pub require_user_identity: bool,
    /// Which abstract syntaxes each calling AE title may use (None: any supported one).
    pub permissions: Option<Permissions>,
}

/// Which abstract syntaxes (SOP classes, services) each calling AE title may use. A
/// context for one it may not use is refused as a user rejection (PS3.8 9.3.3.2 result
/// 1); a calling AE title not listed, without a default, is not recognized (A-ASSOCIATE-RJ
/// permanent, service-user, reason 3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Permissions {
    /// Calling AE title (without its insignificant spaces) to abstract syntax UIDs.
    pub by_calling_ae: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// For calling AE titles not listed (None: they are refused).
    pub default: Option<std::collections::BTreeSet<String>>,
}

impl Permissions {
    /// The abstract syntaxes `calling` may use; None: the AE title is not recognized.
    pub fn for_calling_ae(&self, calling: &str) -> Option<&std::collections::BTreeSet<String>> {
        self.by_calling_ae
            .get(calling.trim_matches(' '))
            .or(self.default.as_ref())
    }
}

impl AcceptorParams {
    /// Parameters with no supported context, any called and calling AE title, our
    /// implementation identity and a Maximum Length of [`DEFAULT_MAX_PDU_LENGTH`].
    pub fn new(ae_title: AeTitle) -> Self {
        AcceptorParams {
            ae_title,
            require_called_aet: false,
            allowed_calling_aets: Vec::new(),
            contexts: Vec::new(),
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            implementation_class_uid: uid::IMPLEMENTATION_CLASS_UID.to_owned(),
            implementation_version_name: Some(uid::IMPLEMENTATION_VERSION_NAME.to_owned()),
            require_user_identity: false,
            permissions: None,
        }
    }

    /// Adds a supported abstract syntax (requestor as SCU only) and returns it, so that
    /// its roles can be changed.
    pub fn add_context(
        &mut self,
        abstract_syntax: &str,
        transfer_syntaxes: &[&str],
    ) -> &mut SupportedContext {
        let index = self.contexts.len();
        self.contexts
            .push(SupportedContext::new(abstract_syntax, transfer_syntaxes));
        &mut self.contexts[index]
    }

    /// Everything supported for one abstract syntax, merged over all its entries.
    fn supported(&self, abstract_syntax: &str) -> Option<Supported<'_>> {
        let mut found: Option<Supported<'_>> = None;
        for sc in self
            .contexts
            .iter()
            .filter(|sc| sc.abstract_syntax == abstract_syntax)
        {
            let s = found.get_or_insert_with(|| Supported {
                transfer_syntaxes: Vec::new(),
                scu_role: false,
                scp_role: false,
            });
            for ts in &sc.transfer_syntaxes {
                if !s.transfer_syntaxes.contains(&ts.as_str()) {
                    s.transfer_syntaxes.push(ts);
                }
            }
            s.scu_role |= sc.scu_role;
            s.scp_role |= sc.scp_role;
        }
        found
    }
}

struct Supported<'a> {
    transfer_syntaxes: Vec<&'a str>,
    scu_role: bool,
    scp_role: bool,
}

/// The answer of the user identity hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum UserIdentityVerdict {
    /// Accept; `response` is the server response sent in a 0x59 sub-item when the
    /// requestor asked for a positive response (PS3.7 D.3.3.7.2): empty for a username,
    /// the server ticket, assertion or token otherwise. `None` sends no 0x59.
    Accept { response: Option<Bytes> },
    /// Reject the association: permanent, service-user, no reason given (PS3.7 D.3.3.7).
    Reject,
}

/// The decisions the acceptor's user makes during negotiation (the Python layer maps its
/// EVT_USER_ID, EVT_SOP_EXTENDED, EVT_SOP_COMMON and EVT_ASYNC_OPS handlers onto these).
/// Each is called only when the request carries the matching sub-items.
pub trait AcceptorHooks {
    /// Decides on the requestor's user identity (0x58).
    fn user_identity(&mut self, identity: &UserIdentity) -> UserIdentityVerdict {
        let _ = identity;
        UserIdentityVerdict::Accept { response: None }
    }

    /// Answers SOP Class Extended Negotiation (0x56): the items to send back. Answers for
    /// SOP classes that were not proposed are dropped (PS3.7 D.3.3.5 only allows replies).
    fn sop_extended(&mut self, proposed: &[ExtendedNegotiation]) -> Vec<ExtendedNegotiation> {
        let _ = proposed;
        Vec::new()
    }

    /// Chooses which SOP Class Common Extended Negotiation items (0x57) to accept. Purely
    /// informational: PS3.7 D.3.3.6 defines no answer in the A-ASSOCIATE-AC.
    fn sop_common_extended(
        &mut self,
        proposed: &[CommonExtendedNegotiation],
    ) -> Vec<CommonExtendedNegotiation> {
        proposed.to_vec()
    }

    /// Answers the Asynchronous Operations Window (0x53) with (invoked, performed) for the
    /// requestor. Values above the proposal are lowered to it (PS3.7 D.3.3.3). The
    /// default, (1, 1), is synchronous operation.
    fn async_ops(&mut self, invoked: u16, performed: u16) -> (u16, u16) {
        let _ = (invoked, performed);
        (1, 1)
    }
}

/// The hooks' defaults: accept any identity without response, no extended negotiation,
/// synchronous operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultHooks;

impl AcceptorHooks for DefaultHooks {}

fn reject(result: RejectResult, reason: RejectReason) -> AAssociateRj {
    AAssociateRj { result, reason }
}

/// The A-ASSOCIATE-RJ for a server at its association limit: transient, service-provider
/// (presentation related function), local limit exceeded (PS3.8 9.3.4).
pub fn reject_local_limit() -> AAssociateRj {
    reject(
        RejectResult::Transient,
        RejectReason::PresentationLocalLimitExceeded,
    )
}

/// The A-ASSOCIATE-RJ for a client the server does not serve (its address): permanent,
/// service-user, no reason given (PS3.8 9.3.4 has no reason code for an address).
pub fn reject_not_allowed() -> AAssociateRj {
    reject(RejectResult::Permanent, RejectReason::UserNoReasonGiven)
}

/// What about `rq` made [`accept`] answer `rj`, in words, for the log.
pub fn rejection_cause(rq: &AAssociateRq, params: &AcceptorParams, rj: &AAssociateRj) -> String {
    let calling = rq.calling_ae_title.as_str();
    let called = rq.called_ae_title.as_str();
    match rj.reason {
        RejectReason::AcseProtocolVersionNotSupported => format!(
            "protocol version 0x{:04x} (bit 0, version 1, not set)",
            rq.protocol_version
        ),
        RejectReason::UserApplicationContextNameNotSupported => format!(
            "application context '{}' is not DICOM's",
            rq.application_context_name
        ),
        RejectReason::UserCalledAeTitleNotRecognized => format!(
            "called AE title '{called}' is not ours ('{}')",
            params.ae_title.as_str()
        ),
        RejectReason::UserCallingAeTitleNotRecognized => {
            format!("calling AE title '{calling}' is not allowed")
        }
        RejectReason::UserNoReasonGiven => match user_identity_of(&rq.user_information) {
            None => format!("'{calling}' sent no user identity, which is required"),
            Some(id) => format!(
                "the user identity of '{calling}' ({:?}, '{}') was refused",
                id.identity_type,
                String::from_utf8_lossy(&id.primary)
            ),
        },
        other => format!("{other:?}"),
    }
}

/// The A-ASSOCIATE-RJ for a server that is temporarily overloaded: transient,
/// service-provider (presentation related function), temporary congestion (PS3.8 9.3.4).
pub fn reject_congestion() -> AAssociateRj {
    reject(
        RejectResult::Transient,
        RejectReason::PresentationTemporaryCongestion,
    )
}

/// A window value answered or received, limited to what was proposed: PS3.7 D.3.3.3 has
/// the acceptor's value equal to or less than the requestor's, where 0 is unlimited.
fn clamp_window(proposed: u16, answered: u16) -> u16 {
    if proposed == 0 || (answered != 0 && answered <= proposed) {
        answered
    } else {
        proposed
    }
}

/// The first role selection item the request carries for each SOP class (PS3.7 D.3.3.4
/// allows one per SOP class; a peer sending two gets the first honoured).
fn proposed_roles(info: &UserInformation) -> Vec<RoleProposal> {
    let mut roles: Vec<RoleProposal> = Vec::new();
    for item in &info.items {
        if let UserItem::RoleSelection {
            sop_class_uid,
            scu_role,
            scp_role,
        } = item
        {
            if !roles.iter().any(|r| &r.sop_class_uid == sop_class_uid) {
                roles.push(RoleProposal {
                    sop_class_uid: sop_class_uid.clone(),
                    scu_role: *scu_role,
                    scp_role: *scp_role,
                });
            }
        }
    }
    roles
}

fn user_identity_of(info: &UserInformation) -> Option<UserIdentity> {
    info.items.iter().find_map(|item| match item {
        UserItem::UserIdentityRq {
            identity_type,
            positive_response_requested,
            primary,
            secondary,
        } => Some(UserIdentity {
            identity_type: *identity_type,
            positive_response_requested: *positive_response_requested,
            primary: primary.clone(),
            secondary: secondary.clone(),
        }),
        _ => None,
    })
}

fn extended_of(info: &UserInformation) -> Vec<ExtendedNegotiation> {
    info.items
        .iter()
        .filter_map(|item| match item {
            UserItem::SopClassExtendedNegotiation {
                sop_class_uid,
                info,
            } => Some(ExtendedNegotiation {
                sop_class_uid: sop_class_uid.clone(),
                info: info.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn common_extended_of(info: &UserInformation) -> Vec<CommonExtendedNegotiation> {
    info.items
        .iter()
        .filter_map(|item| match item {
            UserItem::SopClassCommonExtendedNegotiation {
                sop_class_uid,
                service_class_uid,
                related_general_sop_classes,
            } => Some(CommonExtendedNegotiation {
                sop_class_uid: sop_class_uid.clone(),
                service_class_uid: service_class_uid.clone(),
                related_general_sop_classes: related_general_sop_classes.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The requestor's roles for one abstract syntax: a role holds when the requestor
/// proposed it and the acceptor grants it (`granted`). Without a role item the requestor
/// proposes the SCU role only (PS3.7 D.3.3.4).
fn roles_for(proposal: Option<&RoleProposal>, granted: (bool, bool)) -> (bool, bool) {
    match proposal {
        None => (granted.0, false),
        Some(p) => (p.scu_role && granted.0, p.scp_role && granted.1),
    }
}

/// The acceptor's decision on an A-ASSOCIATE-RQ (PS3.8 7.1.1, PS3.7 D.3.3): the
/// A-ASSOCIATE-AC to send and what was agreed, or the A-ASSOCIATE-RJ to send.
///
/// Rejections are checked in this order: protocol version, application context name,
/// called AE title, calling AE title, user identity. Each presentation context is then
/// answered on its own: an even or duplicated ID gets "no reason" (provider rejection),
/// an unsupported abstract syntax result 3, no common transfer syntax result 4, and a
/// requestor left with neither role result 1 (user rejection). An association whose
/// contexts are all rejected is still accepted, as PS3.8 allows; the caller may release
/// it.
pub fn accept(
    rq: &AAssociateRq,
    params: &AcceptorParams,
    hooks: &mut dyn AcceptorHooks,
) -> Result<(AAssociateAc, Negotiated), AAssociateRj> {
    // PS3.8 9.3.2: the protocol version is a bit field, and bit 0 is the version we
    // implement; other bits may be set by later versions and are ignored.
    if rq.protocol_version & PROTOCOL_VERSION == 0 {
        return Err(reject(
            RejectResult::Permanent,
            RejectReason::AcseProtocolVersionNotSupported,
        ));
    }
    // PS3.7 A.2.1: DICOM has one application context.
    if rq.application_context_name != APPLICATION_CONTEXT_NAME {
        return Err(reject(
            RejectResult::Permanent,
            RejectReason::UserApplicationContextNameNotSupported,
        ));
    }
    // AE titles compare without their insignificant leading and trailing spaces (PS3.5
    // 6.2, AE).
    if params.require_called_aet && rq.called_ae_title.as_str() != params.ae_title.as_str() {
        return Err(reject(
            RejectResult::Permanent,
            RejectReason::UserCalledAeTitleNotRecognized,
        ));
    }
    let calling = rq.calling_ae_title.as_str();
    let not_allowed = !params.allowed_calling_aets.is_empty()
        && !params
            .allowed_calling_aets
            .iter()
            .any(|aet| aet.trim_matches(' ') == calling);
    let permitted = match &params.permissions {
        None => None,
        Some(p) => match p.for_calling_ae(&calling) {
            Some(syntaxes) => Some(syntaxes),
            None => {
                return Err(reject(
                    RejectResult::Permanent,
                    RejectReason::UserCallingAeTitleNotRecognized,
                ))
            }
        },
    };
    if not_allowed {
        return Err(reject(
            RejectResult::Permanent,
            RejectReason::UserCallingAeTitleNotRecognized,
        ));
    }
    let info = &rq.user_information;
    let user_identity = user_identity_of(info);
    if user_identity.is_none() && params.require_user_identity {
        // PS3.7 D.3.3.7: the acceptor that needs an identity rejects without one,
        // permanent, service-user, no reason given.
        return Err(reject(
            RejectResult::Permanent,
            RejectReason::UserNoReasonGiven,
        ));
    }
    let mut user_identity_response = None;
    if let Some(identity) = &user_identity {
        match hooks.user_identity(identity) {
            // PS3.7 D.3.3.7: a rejected identity rejects the association, permanent,
            // service-user, no reason given.
            UserIdentityVerdict::Reject => {
                return Err(reject(
                    RejectResult::Permanent,
                    RejectReason::UserNoReasonGiven,
                ))
            }
            // PS3.7 D.3.3.7.2: the 0x59 sub-item only answers a request for it.
            // For a username (types 1 and 2) the server response is zero length: the
            // positive response is the item itself (PS3.7 D.3.3.7.2); only Kerberos,
            // SAML and JWT (3, 4, 5) carry a server response.
            UserIdentityVerdict::Accept { response } => {
                if identity.positive_response_requested {
                    user_identity_response = match identity.identity_type {
                        UserIdentityType::Username | UserIdentityType::UsernameAndPasscode => {
                            Some(Bytes::new())
                        }
                        _ => response,
                    };
                }
            }
        }
    }

    let roles = proposed_roles(info);
    let mut id_count = [0u16; 256];
    for pc in &rq.presentation_contexts {
        id_count[usize::from(pc.id)] += 1;
    }
    let mut ac_contexts = Vec::with_capacity(rq.presentation_contexts.len());
    let mut contexts = Vec::with_capacity(rq.presentation_contexts.len());
    for pc in &rq.presentation_contexts {
        let role = roles.iter().find(|r| r.sop_class_uid == pc.abstract_syntax);
        let (result, transfer_syntax, (scu, scp)) =
            if pc.id % 2 == 0 || id_count[usize::from(pc.id)] > 1 {
                // PS3.8 9.3.2.2: IDs are odd and unique. Every context sharing a duplicated
                // ID is refused, so that the answers for that ID cannot disagree.
                (PresentationContextResult::NoReason, None, (false, false))
            } else {
                match params.supported(&pc.abstract_syntax) {
                    // Supported, but not for this calling AE title: the user's decision.
                    Some(_) if permitted.is_some_and(|p| !p.contains(&pc.abstract_syntax)) => (
                        PresentationContextResult::UserRejection,
                        None,
                        (false, false),
                    ),
                    None => (
                        PresentationContextResult::AbstractSyntaxNotSupported,
                        None,
                        (false, false),
                    ),
                    Some(supported) => {
                        // Our preference order decides, not the requestor's: the acceptor
                        // selects the one transfer syntax (PS3.7 D.3.2, PS3.8 7.1.1.14).
                        let chosen = supported
                            .transfer_syntaxes
                            .iter()
                            .find(|ts| pc.transfer_syntaxes.iter().any(|p| p == **ts));
                        let roles = roles_for(role, (supported.scu_role, supported.scp_role));
                        match chosen {
                            None => (
                                PresentationContextResult::TransferSyntaxesNotSupported,
                                None,
                                (false, false),
                            ),
                            // PS3.7 D.3.3.4: a context on which the requestor can play no role
                            // is useless to both sides: reject it as the user.
                            Some(_) if roles == (false, false) => (
                                PresentationContextResult::UserRejection,
                                None,
                                (false, false),
                            ),
                            Some(ts) => (
                                PresentationContextResult::Acceptance,
                                Some((*ts).to_owned()),
                                roles,
                            ),
                        }
                    }
                }
            };
        ac_contexts.push(PresentationContextAc {
            id: pc.id,
            result,
            // PS3.8 9.3.3.2: the transfer syntax sub-item is always there but not
            // significant when the context is rejected. We echo the first proposed one:
            // a valid UID that no decoder trips over.
            transfer_syntax: transfer_syntax
                .clone()
                .or_else(|| pc.transfer_syntaxes.first().cloned()),
        });
        contexts.push(NegotiatedContext {
            id: pc.id,
            abstract_syntax: pc.abstract_syntax.clone(),
            result,
            transfer_syntax,
            requestor_is_scu: scu,
            requestor_is_scp: scp,
        });
    }

    // PS3.7 D.3.3.3: answer the window only if it was proposed; (1, 1) otherwise.
    let proposed_window = info.asynchronous_operations_window();
    let async_ops = match proposed_window {
        Some((invoked, performed)) => {
            let (i, p) = hooks.async_ops(invoked, performed);
            (clamp_window(invoked, i), clamp_window(performed, p))
        }
        None => (1, 1),
    };

    let proposed_extended = extended_of(info);
    let mut extended: Vec<ExtendedNegotiation> = Vec::new();
    if !proposed_extended.is_empty() {
        for answer in hooks.sop_extended(&proposed_extended) {
            if proposed_extended
                .iter()
                .any(|p| p.sop_class_uid == answer.sop_class_uid)
                && !extended
                    .iter()
                    .any(|e| e.sop_class_uid == answer.sop_class_uid)
            {
                extended.push(answer);
            }
        }
    }
    let proposed_common = common_extended_of(info);
    let common_extended = if proposed_common.is_empty() {
        Vec::new()
    } else {
        hooks
            .sop_common_extended(&proposed_common)
            .into_iter()
            .filter(|c| proposed_common.contains(c))
            .collect()
    };

    let mut items = Vec::with_capacity(4 + roles.len() + extended.len());
    items.push(UserItem::MaximumLength {
        maximum_length: params.max_pdu_length,
    });
    items.push(UserItem::ImplementationClassUid {
        uid: params.implementation_class_uid.clone(),
    });
    if proposed_window.is_some() {
        items.push(UserItem::AsynchronousOperationsWindow {
            invoked: async_ops.0,
            performed: async_ops.1,
        });
    }
    // PS3.7 D.3.3.4: one reply per role item offered, each role returned as 1 only if it
    // was proposed and we accept it. A SOP class without an accepted context gets no
    // reply: there is nothing to play a role on.
    for role in &roles {
        let Some(context) = contexts
            .iter()
            .find(|c| c.is_accepted() && c.abstract_syntax == role.sop_class_uid)
        else {
            continue;
        };
        items.push(UserItem::RoleSelection {
            sop_class_uid: role.sop_class_uid.clone(),
            scu_role: context.requestor_is_scu,
            scp_role: context.requestor_is_scp,
        });
    }
    if let Some(name) = &params.implementation_version_name {
        items.push(UserItem::ImplementationVersionName { name: name.clone() });
    }
    items.extend(
        extended
            .iter()
            .map(|e| UserItem::SopClassExtendedNegotiation {
                sop_class_uid: e.sop_class_uid.clone(),
                info: e.info.clone(),
            }),
    );
    if let Some(response) = &user_identity_response {
        items.push(UserItem::UserIdentityAc {
            server_response: response.clone(),
        });
    }

    let ac = AAssociateAc {
        protocol_version: PROTOCOL_VERSION,
        // PS3.8 9.3.3: reserved fields that carry the request's values.
        called_ae_title: rq.called_ae_title,
        calling_ae_title: rq.calling_ae_title,
        application_context_name: APPLICATION_CONTEXT_NAME.to_owned(),
        presentation_contexts: ac_contexts,
        user_information: UserInformation { items },
    };
    let negotiated = Negotiated {
        calling_ae_title: rq.calling_ae_title,
        called_ae_title: rq.called_ae_title,
        contexts,
        // PS3.8 D.1: a missing Maximum Length is read as no limit.
        peer_max_pdu_length: info.maximum_length().unwrap_or(0),
        our_max_pdu_length: params.max_pdu_length,
        peer_implementation_class_uid: info.implementation_class_uid().map(str::to_owned),
        peer_implementation_version_name: info.implementation_version_name().map(str::to_owned),
        async_ops,
        user_identity,
        user_identity_response,
        extended,
        common_extended,
    };
    Ok((ac, negotiated))
}

/// The requestor's view of the A-ASSOCIATE-AC answering `rq` (PS3.8 7.1.1, PS3.7 D.3.3).
///
/// Strict where a mistake would make us send on a context the acceptor does not expect:
/// an answer for a context ID we never proposed, two answers for one ID, an accepted
/// context without a transfer syntax or with one we did not propose. Lenient elsewhere,
/// as PS3.7 D.3.3 asks requestors to be: a proposed context left unanswered counts as
/// rejected by the provider; role replies for roles we did not propose are ignored; a
/// window larger than proposed is lowered to the proposal; answers to items we did not
/// send are ignored. Answers are matched by ID, not position: PS3.8 7.1.1.14 lets
/// them come in any order.
pub fn process_ac(rq: &AAssociateRq, ac: &AAssociateAc) -> Result<Negotiated, NegotiationError> {
    for (i, answer) in ac.presentation_contexts.iter().enumerate() {
        if !rq.presentation_contexts.iter().any(|pc| pc.id == answer.id) {
            return Err(NegotiationError::UnproposedContextId { id: answer.id });
        }
        if ac.presentation_contexts[..i]
            .iter()
            .any(|a| a.id == answer.id)
        {
            return Err(NegotiationError::DuplicateAnswer { id: answer.id });
        }
    }

    let rq_info = &rq.user_information;
    let ac_info = &ac.user_information;
    let proposed = proposed_roles(rq_info);
    let replied = proposed_roles(ac_info);

    let mut contexts = Vec::with_capacity(rq.presentation_contexts.len());
    for pc in &rq.presentation_contexts {
        let answer = ac.presentation_contexts.iter().find(|a| a.id == pc.id);
        let Some(answer) = answer.filter(|a| a.result == PresentationContextResult::Acceptance)
        else {
            contexts.push(NegotiatedContext {
                id: pc.id,
                abstract_syntax: pc.abstract_syntax.clone(),
                result: answer.map_or(PresentationContextResult::NoReason, |a| a.result),
                transfer_syntax: None,
                requestor_is_scu: false,
                requestor_is_scp: false,
            });
            continue;
        };
        let ts = match answer.transfer_syntax.as_deref() {
            None | Some("") => {
                return Err(NegotiationError::AcceptedWithoutTransferSyntax {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.clone(),
                })
            }
            Some(ts) => ts,
        };
        if !pc.transfer_syntaxes.iter().any(|p| p == ts) {
            return Err(NegotiationError::UnproposedTransferSyntax {
                id: pc.id,
                abstract_syntax: pc.abstract_syntax.clone(),
                transfer_syntax: ts.to_owned(),
            });
        }
        // PS3.7 D.3.3.4: without a reply to our role item the default roles apply, as
        // they do when we proposed none.
        let proposal = proposed
            .iter()
            .find(|r| r.sop_class_uid == pc.abstract_syntax);
        let reply = replied
            .iter()
            .find(|r| r.sop_class_uid == pc.abstract_syntax);
        let (scu, scp) = match (proposal, reply) {
            (Some(p), Some(r)) => roles_for(Some(p), (r.scu_role, r.scp_role)),
            // An accepted context without a role reply: the acceptor is SCP.
            _ => (true, false),
        };
        contexts.push(NegotiatedContext {
            id: pc.id,
            abstract_syntax: pc.abstract_syntax.clone(),
            result: PresentationContextResult::Acceptance,
            transfer_syntax: Some(ts.to_owned()),
            requestor_is_scu: scu,
            requestor_is_scp: scp,
        });
    }

    let async_ops = match (
        rq_info.asynchronous_operations_window(),
        ac_info.asynchronous_operations_window(),
    ) {
        (Some((pi, pp)), Some((ai, ap))) => (clamp_window(pi, ai), clamp_window(pp, ap)),
        // PS3.7 D.3.3.3: an absent window is (1, 1).
        _ => (1, 1),
    };

    let user_identity = user_identity_of(rq_info);
    let user_identity_response = if user_identity.is_some() {
        ac_info.items.iter().find_map(|item| match item {
            UserItem::UserIdentityAc { server_response } => Some(server_response.clone()),
            _ => None,
        })
    } else {
        None
    };

    let proposed_extended = extended_of(rq_info);
    let mut extended: Vec<ExtendedNegotiation> = Vec::new();
    for answer in extended_of(ac_info) {
        if proposed_extended
            .iter()
            .any(|p| p.sop_class_uid == answer.sop_class_uid)
            && !extended
                .iter()
                .any(|e| e.sop_class_uid == answer.sop_class_uid)
        {
            extended.push(answer);
        }
    }

    Ok(Negotiated {
        calling_ae_title: rq.calling_ae_title,
        called_ae_title: rq.called_ae_title,
        contexts,
        peer_max_pdu_length: ac_info.maximum_length().unwrap_or(0),
        our_max_pdu_length: rq_info.maximum_length().unwrap_or(0),
        peer_implementation_class_uid: ac_info.implementation_class_uid().map(str::to_owned),
        peer_implementation_version_name: ac_info.implementation_version_name().map(str::to_owned),
        async_ops,
        user_identity,
        user_identity_response,
        extended,
        common_extended: common_extended_of(rq_info),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{item_type, read, Pdu};

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
    const UNKNOWN: &str = "1.2.3.4.5.6";
    const IMPLICIT: &str = uid::IMPLICIT_VR_LITTLE_ENDIAN;
    const EXPLICIT: &str = uid::EXPLICIT_VR_LITTLE_ENDIAN;
    const JPEG: &str = "1.2.840.10008.1.2.4.50";

    fn aet(s: &str) -> AeTitle {
        AeTitle::new(s).unwrap()
    }

    fn requestor() -> RequestorParams {
        RequestorParams::new(aet("SCU"), aet("STORESCP"))
    }

    fn acceptor() -> AcceptorParams {
        let mut p = AcceptorParams::new(aet("STORESCP"));
        p.add_context(uid::VERIFICATION, &[IMPLICIT]);
        p.add_context(CT, &[EXPLICIT, IMPLICIT]);
        p
    }

    fn simple_rq() -> AAssociateRq {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.build_rq().unwrap()
    }

    fn item_code(item: &UserItem) -> u8 {
        match item {
            UserItem::MaximumLength { .. } => item_type::MAXIMUM_LENGTH,
            UserItem::ImplementationClassUid { .. } => item_type::IMPLEMENTATION_CLASS_UID,
            UserItem::AsynchronousOperationsWindow { .. } => {
                item_type::ASYNCHRONOUS_OPERATIONS_WINDOW
            }
            UserItem::RoleSelection { .. } => item_type::ROLE_SELECTION,
            UserItem::ImplementationVersionName { .. } => item_type::IMPLEMENTATION_VERSION_NAME,
            UserItem::SopClassExtendedNegotiation { .. } => {
                item_type::SOP_CLASS_EXTENDED_NEGOTIATION
            }
            UserItem::SopClassCommonExtendedNegotiation { .. } => {
                item_type::SOP_CLASS_COMMON_EXTENDED_NEGOTIATION
            }
            UserItem::UserIdentityRq { .. } => item_type::USER_IDENTITY_RQ,
            UserItem::UserIdentityAc { .. } => item_type::USER_IDENTITY_AC,
            UserItem::Unknown { item_type, .. } => *item_type,
        }
    }

    fn codes(info: &UserInformation) -> Vec<u8> {
        info.items.iter().map(item_code).collect()
    }

    fn role_items(info: &UserInformation) -> Vec<(String, bool, bool)> {
        info.items
            .iter()
            .filter_map(|i| match i {
                UserItem::RoleSelection {
                    sop_class_uid,
                    scu_role,
                    scp_role,
                } => Some((sop_class_uid.clone(), *scu_role, *scp_role)),
                _ => None,
            })
            .collect()
    }

    /// A JSON Web Token identity: the type that carries a server response (PS3.7 D.3.3.7.2).
    fn jwt(positive: bool) -> UserIdentity {
        UserIdentity {
            identity_type: UserIdentityType::Jwt,
            positive_response_requested: positive,
            primary: Bytes::from_static(b"header.payload.signature"),
            secondary: Bytes::new(),
        }
    }

    fn identity(positive: bool) -> UserIdentity {
        UserIdentity {
            identity_type: UserIdentityType::UsernameAndPasscode,
            positive_response_requested: positive,
            primary: Bytes::from_static(b"alice"),
            secondary: Bytes::from_static(b"secret"),
        }
    }

    /// Hooks that record their calls and answer as configured.
    #[derive(Default)]
    struct TestHooks {
        verdict: Option<UserIdentityVerdict>,
        extended_answers: Vec<ExtendedNegotiation>,
        common_accept: Option<Vec<CommonExtendedNegotiation>>,
        window: Option<(u16, u16)>,
        calls: Vec<&'static str>,
        seen_window: Option<(u16, u16)>,
        seen_identity: Option<UserIdentity>,
    }

    impl AcceptorHooks for TestHooks {
        fn user_identity(&mut self, identity: &UserIdentity) -> UserIdentityVerdict {
            self.calls.push("user_identity");
            self.seen_identity = Some(identity.clone());
            self.verdict
                .clone()
                .unwrap_or(UserIdentityVerdict::Accept { response: None })
        }
        fn sop_extended(&mut self, _: &[ExtendedNegotiation]) -> Vec<ExtendedNegotiation> {
            self.calls.push("sop_extended");
            self.extended_answers.clone()
        }
        fn sop_common_extended(
            &mut self,
            proposed: &[CommonExtendedNegotiation],
        ) -> Vec<CommonExtendedNegotiation> {
            self.calls.push("sop_common_extended");
            self.common_accept
                .clone()
                .unwrap_or_else(|| proposed.to_vec())
        }
        fn async_ops(&mut self, invoked: u16, performed: u16) -> (u16, u16) {
            self.calls.push("async_ops");
            self.seen_window = Some((invoked, performed));
            self.window.unwrap_or((1, 1))
        }
    }

    fn rj(
        rq: &AAssociateRq,
        params: &AcceptorParams,
        hooks: &mut dyn AcceptorHooks,
    ) -> AAssociateRj {
        match accept(rq, params, hooks) {
            Ok(_) => panic!("expected a rejection"),
            Err(rj) => rj,
        }
    }

    /// The A-ASSOCIATE-RJ on the wire: type 3, length 4, reserved, result, source, reason.
    fn rj_bytes(rj: AAssociateRj) -> Vec<u8> {
        Pdu::AAssociateRj(rj).encode().unwrap()
    }

    // ---- requestor: building the A-ASSOCIATE-RQ ----

    #[test]
    fn add_context_assigns_odd_ids_in_order_and_reuses_gaps() {
        let mut r = requestor();
        let ids: Vec<u8> = (0..4)
            .map(|_| r.add_context(CT, &[IMPLICIT]).unwrap())
            .collect();
        assert_eq!(ids, [1, 3, 5, 7]);
        r.contexts.retain(|pc| pc.id != 3);
        assert_eq!(r.add_context(MR, &[IMPLICIT]).unwrap(), 3);
        assert_eq!(r.add_context(MR, &[IMPLICIT]).unwrap(), 9);
    }

    #[test]
    fn add_context_stops_at_128_contexts() {
        let mut r = requestor();
        for i in 0..128u16 {
            let id = r.add_context(CT, &[IMPLICIT]).unwrap();
            assert_eq!(u16::from(id), 2 * i + 1);
        }
        assert_eq!(r.contexts.last().unwrap().id, 255);
        let err = r.add_context(CT, &[IMPLICIT]).unwrap_err();
        assert_eq!(err, NegotiationError::TooManyContexts { count: 129 });
        assert!(err.to_string().contains("at most 128"), "{err}");
        // 128 is allowed by build_rq.
        assert_eq!(r.build_rq().unwrap().presentation_contexts.len(), 128);
    }

    #[test]
    fn build_rq_refuses_more_than_128_contexts() {
        let mut r = requestor();
        r.contexts = (0..129u16)
            .map(|i| PresentationContextRq {
                id: (2 * i + 1) as u8,
                abstract_syntax: CT.into(),
                transfer_syntaxes: vec![IMPLICIT.into()],
            })
            .collect();
        assert_eq!(
            r.build_rq().unwrap_err(),
            NegotiationError::TooManyContexts { count: 129 }
        );
    }

    #[test]
    fn add_context_checks_uids_and_transfer_syntaxes() {
        let mut r = requestor();
        let err = r.add_context("1.2.x", &[IMPLICIT]).unwrap_err();
        assert!(err.to_string().contains("\"1.2.x\""), "{err}");
        assert!(matches!(
            r.add_context(CT, &[]).unwrap_err(),
            NegotiationError::NoTransferSyntax { id: 1, .. }
        ));
        assert!(r.contexts.is_empty(), "a refused context is not kept");
    }

    #[test]
    fn build_rq_fills_fixed_fields_and_defaults() {
        let rq = simple_rq();
        assert_eq!(rq.protocol_version, 1);
        assert_eq!(rq.application_context_name, APPLICATION_CONTEXT_NAME);
        assert_eq!(rq.calling_ae_title.as_str(), "SCU");
        assert_eq!(rq.called_ae_title.as_str(), "STORESCP");
        let info = &rq.user_information;
        assert_eq!(info.maximum_length(), Some(DEFAULT_MAX_PDU_LENGTH));
        assert_eq!(
            info.implementation_class_uid(),
            Some(uid::IMPLEMENTATION_CLASS_UID)
        );
        assert_eq!(
            info.implementation_version_name(),
            Some(uid::IMPLEMENTATION_VERSION_NAME)
        );
        // Without a window the item is left out (PS3.7 D.3.3.3).
        assert_eq!(codes(info), [0x51, 0x52, 0x55]);
    }

    #[test]
    fn build_rq_orders_user_items_by_type() {
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.add_context(MR, &[IMPLICIT]).unwrap();
        r.async_ops = Some((4, 2));
        r.roles = vec![
            RoleProposal {
                sop_class_uid: CT.into(),
                scu_role: true,
                scp_role: true,
            },
            RoleProposal {
                sop_class_uid: MR.into(),
                scu_role: false,
                scp_role: true,
            },
        ];
        r.extended = vec![ExtendedNegotiation {
            sop_class_uid: CT.into(),
            info: Bytes::from_static(&[1, 0]),
        }];
        r.common_extended = vec![CommonExtendedNegotiation {
            sop_class_uid: CT.into(),
            service_class_uid: "1.2.840.10008.4.2".into(),
            related_general_sop_classes: vec![MR.into()],
        }];
        r.user_identity = Some(identity(true));
        let rq = r.build_rq().unwrap();
        assert_eq!(
            codes(&rq.user_information),
            [0x51, 0x52, 0x53, 0x54, 0x54, 0x55, 0x56, 0x57, 0x58]
        );
        assert_eq!(
            rq.user_information.asynchronous_operations_window(),
            Some((4, 2))
        );
        assert_eq!(
            role_items(&rq.user_information),
            [(CT.to_owned(), true, true), (MR.to_owned(), false, true)]
        );
    }

    #[test]
    fn build_rq_rejects_invalid_uids_naming_the_value() {
        let long = format!("1.{}", "2".repeat(63));
        type Mutation = Box<dyn Fn(&mut RequestorParams)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "1.2.abc",
                Box::new(|r| r.contexts[0].abstract_syntax = "1.2.abc".into()),
            ),
            (
                "1..2",
                Box::new(|r| r.contexts[0].transfer_syntaxes.push("1..2".into())),
            ),
            (
                "1.2.",
                Box::new(|r| r.contexts[0].transfer_syntaxes[0] = "1.2.".into()),
            ),
            (
                long.as_str(),
                Box::new({
                    let long = long.clone();
                    move |r| r.contexts[0].abstract_syntax = long.clone()
                }),
            ),
            (
                "2.25.x",
                Box::new(|r| r.implementation_class_uid = "2.25.x".into()),
            ),
            (
                "1.2 3",
                Box::new(|r| {
                    r.roles.push(RoleProposal {
                        sop_class_uid: "1.2 3".into(),
                        scu_role: true,
                        scp_role: false,
                    })
                }),
            ),
            (
                "9.z",
                Box::new(|r| {
                    r.extended.push(ExtendedNegotiation {
                        sop_class_uid: "9.z".into(),
                        info: Bytes::new(),
                    })
                }),
            ),
            (
                "4.5.",
                Box::new(|r| {
                    r.common_extended.push(CommonExtendedNegotiation {
                        sop_class_uid: CT.into(),
                        service_class_uid: "1.2".into(),
                        related_general_sop_classes: vec!["4.5.".into()],
                    })
                }),
            ),
        ];
        for (value, mutate) in cases {
            let mut r = requestor();
            r.add_context(CT, &[IMPLICIT]).unwrap();
            mutate(&mut r);
            let err = r.build_rq().unwrap_err();
            assert!(
                matches!(&err, NegotiationError::InvalidUid { value: v, .. } if v == value),
                "{value}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{value:?}")), "{err}");
        }
        assert_eq!(long.len(), 65);
    }

    #[test]
    fn build_rq_rejects_bad_context_lists() {
        let mut r = requestor();
        assert_eq!(r.build_rq().unwrap_err(), NegotiationError::NoContexts);

        r.contexts = vec![PresentationContextRq {
            id: 2,
            abstract_syntax: CT.into(),
            transfer_syntaxes: vec![IMPLICIT.into()],
        }];
        assert_eq!(
            r.build_rq().unwrap_err(),
            NegotiationError::EvenContextId { id: 2 }
        );

        r.contexts[0].id = 5;
        r.contexts.push(r.contexts[0].clone());
        assert_eq!(
            r.build_rq().unwrap_err(),
            NegotiationError::DuplicateContextId { id: 5 }
        );

        r.contexts[1].id = 7;
        r.contexts[1].transfer_syntaxes.clear();
        assert!(matches!(
            r.build_rq().unwrap_err(),
            NegotiationError::NoTransferSyntax { id: 7, .. }
        ));
    }

    #[test]
    fn build_rq_rejects_blank_ae_titles() {
        let mut r = RequestorParams::new(AeTitle::default(), aet("X"));
        r.add_context(CT, &[IMPLICIT]).unwrap();
        assert_eq!(
            r.build_rq().unwrap_err(),
            NegotiationError::BlankAeTitle { which: "calling" }
        );
        r.calling_ae_title = aet("X");
        r.called_ae_title = AeTitle::default();
        assert_eq!(
            r.build_rq().unwrap_err(),
            NegotiationError::BlankAeTitle { which: "called" }
        );
    }

    #[test]
    fn build_rq_rejects_bad_role_proposals() {
        let role = |uid: &str, scu, scp| RoleProposal {
            sop_class_uid: uid.into(),
            scu_role: scu,
            scp_role: scp,
        };
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        for (roles, needle) in [
            (vec![role(CT, false, false)], "neither"),
            (vec![role(CT, true, false), role(CT, false, true)], "twice"),
            (
                vec![role(MR, false, true)],
                "no proposed presentation context",
            ),
        ] {
            r.roles = roles;
            let err = r.build_rq().unwrap_err();
            assert!(
                matches!(err, NegotiationError::InvalidRoleProposal { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(needle), "{err}");
        }
        r.roles = vec![role(CT, true, true)];
        assert!(r.build_rq().is_ok());
    }

    #[test]
    fn build_rq_checks_user_identity_and_version_name() {
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.user_identity = Some(UserIdentity {
            identity_type: UserIdentityType::Username,
            positive_response_requested: false,
            primary: Bytes::from_static(b"bob"),
            secondary: Bytes::from_static(b"pw"),
        });
        let err = r.build_rq().unwrap_err();
        assert!(err.to_string().contains("identity type 2"), "{err}");
        r.user_identity = Some(UserIdentity {
            identity_type: UserIdentityType::Jwt,
            positive_response_requested: true,
            primary: Bytes::new(),
            secondary: Bytes::new(),
        });
        assert!(matches!(
            r.build_rq().unwrap_err(),
            NegotiationError::InvalidUserIdentity { .. }
        ));
        r.user_identity = Some(identity(false));
        assert!(r.build_rq().is_ok());

        for bad in ["", "SEVENTEEN_CHARS_X", "tab\there"] {
            r.implementation_version_name = Some(bad.into());
            assert!(
                matches!(
                    r.build_rq().unwrap_err(),
                    NegotiationError::InvalidImplementationVersionName { .. }
                ),
                "{bad:?}"
            );
        }
        r.implementation_version_name = None;
        assert_eq!(
            codes(&r.build_rq().unwrap().user_information),
            [0x51, 0x52, 0x58]
        );
    }

    // ---- acceptor: rejections ----

    #[test]
    fn rejects_protocol_version_without_bit_0() {
        let mut rq = simple_rq();
        rq.protocol_version = 0x0002;
        let r = rj(&rq, &acceptor(), &mut DefaultHooks);
        assert_eq!(r.result, RejectResult::Permanent);
        assert_eq!(r.reason.values(), (2, 2));
        assert_eq!(rj_bytes(r), [0x03, 0, 0, 0, 0, 4, 0, 1, 2, 2]);
        // Only bit 0 is tested: other bits are ignored.
        for version in [0x0003, 0xFFFF, 0x8001] {
            rq.protocol_version = version;
            assert!(
                accept(&rq, &acceptor(), &mut DefaultHooks).is_ok(),
                "{version:#x}"
            );
        }
    }

    #[test]
    fn rejects_foreign_application_context() {
        let mut rq = simple_rq();
        rq.application_context_name = "1.2.840.10008.3.1.1.2".into();
        let r = rj(&rq, &acceptor(), &mut DefaultHooks);
        assert_eq!(r.result, RejectResult::Permanent);
        assert_eq!(r.reason.values(), (1, 2));
        assert_eq!(rj_bytes(r)[7..], [1, 1, 2]);
    }

    #[test]
    fn rejects_wrong_called_ae_title_only_when_required() {
        let mut rq = simple_rq();
        rq.called_ae_title = aet("OTHER");
        let mut params = acceptor();
        assert!(accept(&rq, &params, &mut DefaultHooks).is_ok());
        params.require_called_aet = true;
        let r = rj(&rq, &params, &mut DefaultHooks);
        assert_eq!(r.result, RejectResult::Permanent);
        assert_eq!(r.reason.values(), (1, 7));
        assert_eq!(rj_bytes(r)[7..], [1, 1, 7]);
        // Leading and trailing spaces are not significant.
        rq.called_ae_title = aet("  STORESCP ");
        assert!(accept(&rq, &params, &mut DefaultHooks).is_ok());
    }

    #[test]
    fn rejects_calling_ae_title_not_allowed() {
        let mut rq = simple_rq();
        let mut params = acceptor();
        params.allowed_calling_aets = vec!["MODALITY".into(), "SCU ".into()];
        assert!(accept(&rq, &params, &mut DefaultHooks).is_ok());
        rq.calling_ae_title = aet(" MODALITY");
        assert!(accept(&rq, &params, &mut DefaultHooks).is_ok());
        rq.calling_ae_title = aet("INTRUDER");
        let r = rj(&rq, &params, &mut DefaultHooks);
        assert_eq!(r.result, RejectResult::Permanent);
        assert_eq!(r.reason.values(), (1, 3));
        assert_eq!(rj_bytes(r)[7..], [1, 1, 3]);
        // An empty list allows anyone.
        params.allowed_calling_aets.clear();
        assert!(accept(&rq, &params, &mut DefaultHooks).is_ok());
    }

    #[test]
    fn permissions_refuse_contexts_and_unknown_callers() {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        let rq = r.build_rq().unwrap();
        let mut params = acceptor();
        let only_echo: std::collections::BTreeSet<String> =
            [uid::VERIFICATION.to_owned()].into_iter().collect();
        params.permissions = Some(Permissions {
            by_calling_ae: [("SCU".to_owned(), only_echo.clone())]
                .into_iter()
                .collect(),
            default: None,
        });
        let (ac, negotiated) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        let results: Vec<_> = ac
            .presentation_contexts
            .iter()
            .map(|pc| pc.result)
            .collect();
        // CT is supported but not for this caller: a user rejection, not "not supported".
        assert_eq!(
            results,
            [
                PresentationContextResult::Acceptance,
                PresentationContextResult::UserRejection
            ]
        );
        assert_eq!(negotiated.accepted().count(), 1);
        // Not listed, no default: not recognized.
        let mut stranger = rq.clone();
        stranger.calling_ae_title = aet("STRANGER");
        let r = rj(&stranger, &params, &mut DefaultHooks);
        assert_eq!(rj_bytes(r)[7..], [1, 1, 3]);
        assert_eq!(
            rejection_cause(&stranger, &params, &r),
            "calling AE title 'STRANGER' is not allowed"
        );
        // With a default, strangers get its syntaxes.
        params.permissions.as_mut().unwrap().default = Some(only_echo);
        assert!(accept(&stranger, &params, &mut DefaultHooks).is_ok());
    }

    #[test]
    fn required_user_identity() {
        let rq = simple_rq();
        let mut params = acceptor();
        params.require_user_identity = true;
        let r = rj(&rq, &params, &mut DefaultHooks);
        assert_eq!(rj_bytes(r)[7..], [1, 1, 1]);
        assert_eq!(
            rejection_cause(&rq, &params, &r),
            "'SCU' sent no user identity, which is required"
        );
        let mut with_id = requestor();
        with_id.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        with_id.user_identity = Some(identity(false));
        assert!(accept(&with_id.build_rq().unwrap(), &params, &mut DefaultHooks).is_ok());
    }

    #[test]
    fn rejection_causes_name_the_culprit() {
        let mut rq = simple_rq();
        let mut params = acceptor();
        params.require_called_aet = true;
        rq.called_ae_title = aet("ELSEWHERE");
        let r = rj(&rq, &params, &mut DefaultHooks);
        assert_eq!(
            rejection_cause(&rq, &params, &r),
            "called AE title 'ELSEWHERE' is not ours ('STORESCP')"
        );
        rq.protocol_version = 2;
        let r = rj(&rq, &params, &mut DefaultHooks);
        assert!(rejection_cause(&rq, &params, &r).contains("protocol version 0x0002"));
    }

    #[test]
    fn rejects_refused_user_identity() {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.user_identity = Some(identity(false));
        let rq = r.build_rq().unwrap();
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Reject),
            ..Default::default()
        };
        let r = rj(&rq, &acceptor(), &mut hooks);
        assert_eq!(r.result, RejectResult::Permanent);
        assert_eq!(r.reason.values(), (1, 1));
        assert_eq!(rj_bytes(r)[7..], [1, 1, 1]);
        assert_eq!(hooks.seen_identity, Some(identity(false)));
    }

    #[test]
    fn rejections_are_checked_in_order() {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.user_identity = Some(identity(false));
        let mut rq = r.build_rq().unwrap();
        rq.protocol_version = 2;
        rq.application_context_name = "1.2.3".into();
        rq.called_ae_title = aet("OTHER");
        rq.calling_ae_title = aet("INTRUDER");
        let mut params = acceptor();
        params.require_called_aet = true;
        params.allowed_calling_aets = vec!["SCU".into()];
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Reject),
            ..Default::default()
        };
        let mut reasons = Vec::new();
        for fix in 0..5 {
            match fix {
                0 => {}
                1 => rq.protocol_version = 1,
                2 => rq.application_context_name = APPLICATION_CONTEXT_NAME.into(),
                3 => rq.called_ae_title = aet("STORESCP"),
                _ => rq.calling_ae_title = aet("SCU"),
            }
            reasons.push(rj(&rq, &params, &mut hooks).reason.values());
        }
        assert_eq!(reasons, [(2, 2), (1, 2), (1, 7), (1, 3), (1, 1)]);
        // The identity hook runs only once everything before it passed.
        assert_eq!(hooks.calls, ["user_identity"]);
    }

    #[test]
    fn server_limit_rejections_are_transient_provider_rejections() {
        let r = reject_local_limit();
        assert_eq!(r.result, RejectResult::Transient);
        assert_eq!(r.reason.values(), (3, 2));
        assert_eq!(rj_bytes(r), [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2]);
        let r = reject_congestion();
        assert_eq!(r.result, RejectResult::Transient);
        assert_eq!(r.reason.values(), (3, 1));
        assert_eq!(rj_bytes(r), [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 1]);
    }

    // ---- acceptor: presentation contexts ----

    #[test]
    fn every_presentation_context_result() {
        let pc = |id: u8, abs: &str, ts: &[&str]| PresentationContextRq {
            id,
            abstract_syntax: abs.into(),
            transfer_syntaxes: ts.iter().map(|t| (*t).to_owned()).collect(),
        };
        let mut rq = simple_rq();
        rq.presentation_contexts = vec![
            pc(1, uid::VERIFICATION, &[IMPLICIT]), // accepted
            pc(3, MR, &[IMPLICIT]),                // user rejection: requestor SCU refused
            pc(4, uid::VERIFICATION, &[IMPLICIT]), // even ID
            pc(5, uid::VERIFICATION, &[IMPLICIT]), // duplicate ID...
            pc(5, CT, &[IMPLICIT]),                // ...both answered "no reason"
            pc(7, UNKNOWN, &[IMPLICIT]),           // abstract syntax not supported
            pc(9, CT, &[JPEG]),                    // no common transfer syntax
        ];
        let mut params = acceptor();
        params.add_context(MR, &[IMPLICIT]).scu_role = false;
        params.contexts.last_mut().unwrap().scp_role = true;
        let (ac, n) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        let values: Vec<(u8, u8)> = ac
            .presentation_contexts
            .iter()
            .map(|c| (c.id, c.result.value()))
            .collect();
        assert_eq!(
            values,
            [(1, 0), (3, 1), (4, 2), (5, 2), (5, 2), (7, 3), (9, 4)]
        );
        assert_eq!(
            ac.presentation_contexts[0].transfer_syntax.as_deref(),
            Some(IMPLICIT)
        );
        // Rejected contexts still carry a (non-significant) transfer syntax sub-item.
        assert_eq!(
            ac.presentation_contexts[6].transfer_syntax.as_deref(),
            Some(JPEG)
        );
        let results: Vec<_> = n.contexts.iter().map(|c| c.result).collect();
        assert_eq!(
            results,
            [
                PresentationContextResult::Acceptance,
                PresentationContextResult::UserRejection,
                PresentationContextResult::NoReason,
                PresentationContextResult::NoReason,
                PresentationContextResult::NoReason,
                PresentationContextResult::AbstractSyntaxNotSupported,
                PresentationContextResult::TransferSyntaxesNotSupported,
            ]
        );
        for c in &n.contexts[1..] {
            assert_eq!(c.transfer_syntax, None);
            assert!(!c.requestor_is_scu && !c.requestor_is_scp);
        }
        assert!(n.contexts[0].requestor_is_scu && !n.contexts[0].requestor_is_scp);
        assert_eq!(n.accepted().count(), 1);
    }

    #[test]
    fn transfer_syntax_follows_acceptor_preference() {
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT, JPEG, EXPLICIT]).unwrap();
        r.add_context(CT, &[JPEG, IMPLICIT]).unwrap();
        let rq = r.build_rq().unwrap();
        let mut params = acceptor(); // CT: [EXPLICIT, IMPLICIT]
        let (_, n) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        assert_eq!(n.contexts[0].transfer_syntax.as_deref(), Some(EXPLICIT));
        assert_eq!(n.contexts[1].transfer_syntax.as_deref(), Some(IMPLICIT));
        params.contexts[1].transfer_syntaxes = vec![JPEG.into(), IMPLICIT.into()];
        let (_, n) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        assert_eq!(n.contexts[0].transfer_syntax.as_deref(), Some(JPEG));
        assert_eq!(n.contexts[1].transfer_syntax.as_deref(), Some(JPEG));
    }

    #[test]
    fn entries_for_one_abstract_syntax_merge() {
        let mut params = AcceptorParams::new(aet("STORESCP"));
        params.add_context(CT, &[JPEG]);
        params.add_context(CT, &[IMPLICIT]).scp_role = true;
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.roles = vec![RoleProposal {
            sop_class_uid: CT.into(),
            scu_role: true,
            scp_role: true,
        }];
        let (ac, n) = accept(&r.build_rq().unwrap(), &params, &mut DefaultHooks).unwrap();
        assert_eq!(n.contexts[0].transfer_syntax.as_deref(), Some(IMPLICIT));
        assert_eq!(
            role_items(&ac.user_information),
            [(CT.to_owned(), true, true)]
        );
    }

    #[test]
    fn role_selection_matrix() {
        let bools = [false, true];
        for proposed_scu in bools {
            for proposed_scp in bools {
                for supported_scu in bools {
                    for supported_scp in bools {
                        let case = (proposed_scu, proposed_scp, supported_scu, supported_scp);
                        let mut r = requestor();
                        r.add_context(CT, &[IMPLICIT]).unwrap();
                        // build_rq refuses a proposal of neither role: build it by hand.
                        let mut rq = r.build_rq().unwrap();
                        rq.user_information.items.push(UserItem::RoleSelection {
                            sop_class_uid: CT.into(),
                            scu_role: proposed_scu,
                            scp_role: proposed_scp,
                        });
                        let mut params = AcceptorParams::new(aet("STORESCP"));
                        let sc = params.add_context(CT, &[IMPLICIT]);
                        sc.scu_role = supported_scu;
                        sc.scp_role = supported_scp;
                        let (ac, n) = accept(&rq, &params, &mut DefaultHooks).unwrap();
                        let scu = proposed_scu && supported_scu;
                        let scp = proposed_scp && supported_scp;
                        let ctx = &n.contexts[0];
                        if scu || scp {
                            assert!(ctx.is_accepted(), "{case:?}");
                            assert_eq!(
                                role_items(&ac.user_information),
                                [(CT.to_owned(), scu, scp)],
                                "{case:?}"
                            );
                        } else {
                            assert_eq!(
                                ctx.result,
                                PresentationContextResult::UserRejection,
                                "{case:?}"
                            );
                            assert_eq!(ac.presentation_contexts[0].result.value(), 1);
                            assert!(role_items(&ac.user_information).is_empty(), "{case:?}");
                        }
                        assert_eq!(
                            (ctx.requestor_is_scu, ctx.requestor_is_scp),
                            (scu, scp),
                            "{case:?}"
                        );
                        // The requestor reads the same roles from the AC.
                        let seen = process_ac(&rq, &ac).unwrap();
                        assert_eq!(seen.contexts, n.contexts, "{case:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn without_role_item_the_requestor_is_scu_only() {
        let rq = {
            let mut r = requestor();
            r.add_context(CT, &[IMPLICIT]).unwrap();
            r.build_rq().unwrap()
        };
        let mut params = AcceptorParams::new(aet("STORESCP"));
        params.add_context(CT, &[IMPLICIT]).scp_role = true;
        let (ac, n) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        assert!(role_items(&ac.user_information).is_empty());
        assert!(n.contexts[0].requestor_is_scu && !n.contexts[0].requestor_is_scp);
        // Supporting the requestor only as SCP leaves it no role: user rejection.
        params.contexts[0].scu_role = false;
        let (ac, n) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        assert_eq!(
            n.contexts[0].result,
            PresentationContextResult::UserRejection
        );
        assert_eq!(ac.presentation_contexts[0].result.value(), 1);
    }

    #[test]
    fn role_replies_only_for_sop_classes_with_an_accepted_context() {
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.add_context(MR, &[IMPLICIT]).unwrap();
        r.add_context(UNKNOWN, &[IMPLICIT]).unwrap();
        for uid in [CT, MR, UNKNOWN] {
            r.roles.push(RoleProposal {
                sop_class_uid: uid.into(),
                scu_role: true,
                scp_role: true,
            });
        }
        let mut params = acceptor();
        params.add_context(MR, &[JPEG]); // MR: no common transfer syntax
        let (ac, _) = accept(&r.build_rq().unwrap(), &params, &mut DefaultHooks).unwrap();
        assert_eq!(
            role_items(&ac.user_information),
            [(CT.to_owned(), true, false)]
        );
    }

    #[test]
    fn requestor_ignores_role_replies_it_did_not_ask_for() {
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.add_context(MR, &[IMPLICIT]).unwrap();
        r.roles = vec![RoleProposal {
            sop_class_uid: CT.into(),
            scu_role: true,
            scp_role: false,
        }];
        let rq = r.build_rq().unwrap();
        let mut params = acceptor();
        params.add_context(MR, &[IMPLICIT]);
        let (mut ac, _) = accept(&rq, &params, &mut DefaultHooks).unwrap();
        // A non-conforming acceptor grants SCP for CT (not proposed) and answers a role
        // item for MR (none proposed): both are ignored (PS3.7 D.3.3.4).
        ac.user_information.items.retain(|i| item_code(i) != 0x54);
        for uid in [CT, MR] {
            ac.user_information.items.push(UserItem::RoleSelection {
                sop_class_uid: uid.into(),
                scu_role: true,
                scp_role: true,
            });
        }
        let n = process_ac(&rq, &ac).unwrap();
        for c in &n.contexts {
            assert!(c.requestor_is_scu && !c.requestor_is_scp, "{c:?}");
        }
        // No reply to our role item: the default roles.
        r.roles[0].scp_role = true;
        let rq = r.build_rq().unwrap();
        ac.user_information.items.retain(|i| item_code(i) != 0x54);
        let n = process_ac(&rq, &ac).unwrap();
        assert!(n.contexts[0].requestor_is_scu && !n.contexts[0].requestor_is_scp);
    }

    // ---- acceptor: user information ----

    #[test]
    fn async_ops_absent_is_synchronous_and_not_answered() {
        let rq = simple_rq();
        let mut hooks = TestHooks {
            window: Some((5, 5)),
            ..Default::default()
        };
        let (ac, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
        assert!(hooks.calls.is_empty(), "{:?}", hooks.calls);
        assert_eq!(ac.user_information.asynchronous_operations_window(), None);
        assert_eq!(n.async_ops, (1, 1));
        assert_eq!(process_ac(&rq, &ac).unwrap().async_ops, (1, 1));
    }

    #[test]
    fn async_ops_present_is_answered_by_the_hook_within_the_proposal() {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.async_ops = Some((5, 0));
        let rq = r.build_rq().unwrap();
        for (hook, expected) in [
            ((3, 7), (3, 7)),
            ((10, 2), (5, 2)),
            ((0, 0), (5, 0)),
            ((1, 1), (1, 1)),
        ] {
            let mut hooks = TestHooks {
                window: Some(hook),
                ..Default::default()
            };
            let (ac, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
            assert_eq!(hooks.seen_window, Some((5, 0)));
            assert_eq!(n.async_ops, expected, "{hook:?}");
            assert_eq!(
                ac.user_information.asynchronous_operations_window(),
                Some(expected)
            );
            assert_eq!(process_ac(&rq, &ac).unwrap().async_ops, expected);
        }
        // The default hook answers (1, 1).
        let (ac, _) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        assert_eq!(
            ac.user_information.asynchronous_operations_window(),
            Some((1, 1))
        );
    }

    #[test]
    fn requestor_reads_async_ops_defensively() {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        let rq_without = r.build_rq().unwrap();
        r.async_ops = Some((2, 3));
        let rq_with = r.build_rq().unwrap();
        let (mut ac, _) = accept(&rq_with, &acceptor(), &mut DefaultHooks).unwrap();
        ac.user_information
            .items
            .retain(|i| item_code(i) != item_type::ASYNCHRONOUS_OPERATIONS_WINDOW);
        // Proposed but not answered: (1, 1).
        assert_eq!(process_ac(&rq_with, &ac).unwrap().async_ops, (1, 1));
        // Answered with more than proposed: lowered; answered without proposal: ignored.
        ac.user_information
            .items
            .push(UserItem::AsynchronousOperationsWindow {
                invoked: 9,
                performed: 0,
            });
        assert_eq!(process_ac(&rq_with, &ac).unwrap().async_ops, (2, 3));
        assert_eq!(process_ac(&rq_without, &ac).unwrap().async_ops, (1, 1));
    }

    fn rq_with_identity(positive: bool) -> AAssociateRq {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.user_identity = Some(jwt(positive));
        r.build_rq().unwrap()
    }

    fn identity_response(ac: &AAssociateAc) -> Option<Bytes> {
        ac.user_information.items.iter().find_map(|i| match i {
            UserItem::UserIdentityAc { server_response } => Some(server_response.clone()),
            _ => None,
        })
    }

    #[test]
    fn user_identity_accepted_with_response() {
        let rq = rq_with_identity(true);
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Accept {
                response: Some(Bytes::from_static(b"ticket")),
            }),
            ..Default::default()
        };
        let (ac, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
        assert_eq!(identity_response(&ac), Some(Bytes::from_static(b"ticket")));
        assert_eq!(codes(&ac.user_information).last(), Some(&0x59));
        assert_eq!(n.user_identity, Some(jwt(true)));
        assert_eq!(
            n.user_identity_response,
            Some(Bytes::from_static(b"ticket"))
        );
        let seen = process_ac(&rq, &ac).unwrap();
        assert_eq!(seen.user_identity_response, n.user_identity_response);
        assert_eq!(seen.user_identity, n.user_identity);
    }

    #[test]
    fn user_identity_accepted_without_response() {
        let rq = rq_with_identity(true);
        let (ac, n) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        assert_eq!(identity_response(&ac), None);
        assert_eq!(n.user_identity, Some(jwt(true)));
        assert_eq!(n.user_identity_response, None);
        assert_eq!(process_ac(&rq, &ac).unwrap().user_identity_response, None);
    }

    #[test]
    fn username_identity_gets_a_zero_length_positive_response() {
        // PS3.7 D.3.3.7.2: types 1 and 2 answer with a zero-length server response,
        // whatever the hook returned.
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.user_identity = Some(identity(true));
        let rq = r.build_rq().unwrap();
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Accept {
                response: Some(Bytes::from_static(b"ignored")),
            }),
            ..Default::default()
        };
        let (ac, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
        assert_eq!(identity_response(&ac), Some(Bytes::new()));
        assert_eq!(n.user_identity_response, Some(Bytes::new()));
    }

    #[test]
    fn user_identity_response_only_when_requested() {
        let rq = rq_with_identity(false);
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Accept {
                response: Some(Bytes::from_static(b"unasked")),
            }),
            ..Default::default()
        };
        let (ac, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
        assert_eq!(hooks.calls, ["user_identity"]);
        assert_eq!(identity_response(&ac), None);
        assert_eq!(n.user_identity_response, None);
        // No identity proposed: the hook is not asked.
        let mut hooks = TestHooks::default();
        let (_, n) = accept(&simple_rq(), &acceptor(), &mut hooks).unwrap();
        assert!(hooks.calls.is_empty());
        assert_eq!(n.user_identity, None);
    }

    #[test]
    fn extended_negotiation_answers_come_from_the_hook() {
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.add_context(MR, &[IMPLICIT]).unwrap();
        r.extended = vec![
            ExtendedNegotiation {
                sop_class_uid: CT.into(),
                info: Bytes::from_static(&[1, 1, 1]),
            },
            ExtendedNegotiation {
                sop_class_uid: MR.into(),
                info: Bytes::from_static(&[1]),
            },
        ];
        let rq = r.build_rq().unwrap();
        let answer = ExtendedNegotiation {
            sop_class_uid: CT.into(),
            info: Bytes::from_static(&[1, 0, 1]),
        };
        let mut hooks = TestHooks {
            extended_answers: vec![
                answer.clone(),
                // Not proposed: dropped. A second answer for CT: dropped.
                ExtendedNegotiation {
                    sop_class_uid: UNKNOWN.into(),
                    info: Bytes::from_static(&[9]),
                },
                ExtendedNegotiation {
                    sop_class_uid: CT.into(),
                    info: Bytes::from_static(&[0]),
                },
            ],
            ..Default::default()
        };
        let (ac, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
        assert_eq!(hooks.calls, ["sop_extended"]);
        let answers = vec![answer];
        assert_eq!(n.extended, answers);
        assert_eq!(extended_of(&ac.user_information), answers);
        assert_eq!(process_ac(&rq, &ac).unwrap().extended, answers);
        // The default hook answers nothing.
        let (ac, n) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        assert!(n.extended.is_empty());
        assert!(extended_of(&ac.user_information).is_empty());
    }

    #[test]
    fn common_extended_negotiation_is_informational() {
        let common = |sop: &str| CommonExtendedNegotiation {
            sop_class_uid: sop.into(),
            service_class_uid: "1.2.840.10008.4.2".into(),
            related_general_sop_classes: vec!["1.2.840.10008.5.1.4.1.1.7".into()],
        };
        let mut r = requestor();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.common_extended = vec![common(CT), common(MR)];
        let rq = r.build_rq().unwrap();
        let (ac, n) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        assert_eq!(n.common_extended, [common(CT), common(MR)]);
        assert!(!codes(&ac.user_information).contains(&0x57));
        assert_eq!(
            process_ac(&rq, &ac).unwrap().common_extended,
            n.common_extended
        );
        let mut hooks = TestHooks {
            common_accept: Some(vec![common(MR), common(UNKNOWN)]),
            ..Default::default()
        };
        let (_, n) = accept(&rq, &acceptor(), &mut hooks).unwrap();
        assert_eq!(n.common_extended, [common(MR)]);
    }

    #[test]
    fn ac_user_information_order_and_fixed_fields() {
        let mut r = RequestorParams::new(aet("  SCU"), aet("STORESCP  "));
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.async_ops = Some((0, 0));
        r.roles = vec![RoleProposal {
            sop_class_uid: CT.into(),
            scu_role: true,
            scp_role: true,
        }];
        r.extended = vec![ExtendedNegotiation {
            sop_class_uid: CT.into(),
            info: Bytes::from_static(&[1]),
        }];
        r.user_identity = Some(identity(true));
        let rq = r.build_rq().unwrap();
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Accept {
                response: Some(Bytes::new()),
            }),
            extended_answers: r.extended.clone(),
            window: Some((4, 4)),
            ..Default::default()
        };
        let mut params = acceptor();
        params.max_pdu_length = 32768;
        let (ac, n) = accept(&rq, &params, &mut hooks).unwrap();
        assert_eq!(
            codes(&ac.user_information),
            [0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x59]
        );
        assert_eq!(ac.user_information.maximum_length(), Some(32768));
        assert_eq!(ac.protocol_version, 1);
        assert_eq!(ac.application_context_name, APPLICATION_CONTEXT_NAME);
        // The AE title fields echo the request byte for byte.
        assert_eq!(ac.called_ae_title, rq.called_ae_title);
        assert_eq!(ac.calling_ae_title, rq.calling_ae_title);
        assert_eq!(n.our_max_pdu_length, 32768);
        assert_eq!(n.peer_max_pdu_length, DEFAULT_MAX_PDU_LENGTH);
        assert_eq!(
            n.peer_implementation_class_uid.as_deref(),
            Some(uid::IMPLEMENTATION_CLASS_UID)
        );
        // An empty server response (a username identity) is still sent.
        assert_eq!(n.user_identity_response, Some(Bytes::new()));
    }

    #[test]
    fn missing_maximum_length_means_unlimited() {
        let mut rq = simple_rq();
        rq.user_information
            .items
            .retain(|i| item_code(i) != item_type::MAXIMUM_LENGTH);
        let (mut ac, n) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        assert_eq!(n.peer_max_pdu_length, 0);
        ac.user_information
            .items
            .retain(|i| item_code(i) != item_type::MAXIMUM_LENGTH);
        let seen = process_ac(&rq, &ac).unwrap();
        assert_eq!(seen.peer_max_pdu_length, 0);
        assert_eq!(seen.our_max_pdu_length, 0);
    }

    // ---- requestor: reading the A-ASSOCIATE-AC ----

    fn two_context_rq() -> AAssociateRq {
        let mut r = requestor();
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.add_context(CT, &[EXPLICIT, IMPLICIT]).unwrap();
        r.build_rq().unwrap()
    }

    #[test]
    fn process_ac_rejects_contradicting_answers() {
        let rq = two_context_rq();
        let (good, _) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        assert!(process_ac(&rq, &good).is_ok());

        let mut ac = good.clone();
        ac.presentation_contexts[1].id = 5;
        let err = process_ac(&rq, &ac).unwrap_err();
        assert_eq!(err, NegotiationError::UnproposedContextId { id: 5 });
        assert!(err.is_peer_error());
        assert!(err.to_string().contains("never proposed"), "{err}");

        let mut ac = good.clone();
        ac.presentation_contexts
            .push(good.presentation_contexts[0].clone());
        assert_eq!(
            process_ac(&rq, &ac).unwrap_err(),
            NegotiationError::DuplicateAnswer { id: 1 }
        );

        for missing in [None, Some(String::new())] {
            let mut ac = good.clone();
            ac.presentation_contexts[1].transfer_syntax = missing;
            let err = process_ac(&rq, &ac).unwrap_err();
            assert!(
                matches!(
                    err,
                    NegotiationError::AcceptedWithoutTransferSyntax { id: 3, .. }
                ),
                "{err:?}"
            );
        }

        let mut ac = good.clone();
        ac.presentation_contexts[1].transfer_syntax = Some(JPEG.into());
        let err = process_ac(&rq, &ac).unwrap_err();
        assert!(
            matches!(
                &err,
                NegotiationError::UnproposedTransferSyntax { id: 3, transfer_syntax, .. }
                    if transfer_syntax == JPEG
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(JPEG), "{err}");
        // Valid for another context is still not proposed for this one.
        ac.presentation_contexts[0].transfer_syntax = Some(EXPLICIT.into());
        ac.presentation_contexts[1].transfer_syntax = Some(IMPLICIT.into());
        assert!(matches!(
            process_ac(&rq, &ac).unwrap_err(),
            NegotiationError::UnproposedTransferSyntax { id: 1, .. }
        ));
        assert!(!NegotiationError::NoContexts.is_peer_error());
    }

    #[test]
    fn process_ac_tolerates_what_it_can() {
        let rq = two_context_rq();
        let (good, _) = accept(&rq, &acceptor(), &mut DefaultHooks).unwrap();
        // A rejected context's transfer syntax is not significant: anything goes.
        let mut ac = good.clone();
        ac.presentation_contexts[1].result =
            PresentationContextResult::TransferSyntaxesNotSupported;
        ac.presentation_contexts[1].transfer_syntax = Some("9.9".into());
        let n = process_ac(&rq, &ac).unwrap();
        assert_eq!(n.contexts[1].transfer_syntax, None);
        assert_eq!(
            n.contexts[1].result,
            PresentationContextResult::TransferSyntaxesNotSupported
        );
        // Answers may come in any order (PS3.8 7.1.1.14).
        let mut reversed = good.clone();
        reversed.presentation_contexts.reverse();
        assert_eq!(
            process_ac(&rq, &reversed).unwrap(),
            process_ac(&rq, &good).unwrap()
        );
        // An unanswered context counts as rejected by the provider.
        ac.presentation_contexts.truncate(1);
        let n = process_ac(&rq, &ac).unwrap();
        assert_eq!(n.contexts.len(), 2);
        assert_eq!(n.contexts[1].result, PresentationContextResult::NoReason);
        assert_eq!(n.accepted().count(), 1);
    }

    #[test]
    fn negotiated_lookups() {
        let mut r = requestor();
        r.add_context(CT, &[JPEG]).unwrap();
        r.add_context(CT, &[IMPLICIT]).unwrap();
        r.add_context(CT, &[EXPLICIT]).unwrap();
        r.add_context(UNKNOWN, &[IMPLICIT]).unwrap();
        let (_, n) = accept(&r.build_rq().unwrap(), &acceptor(), &mut DefaultHooks).unwrap();
        let ids: Vec<u8> = n.accepted().map(|c| c.id).collect();
        assert_eq!(ids, [3, 5]);
        assert_eq!(n.context(1).map(|c| c.result.value()), Some(4));
        assert_eq!(n.context(7).map(|c| c.result.value()), Some(3));
        assert!(n.context(9).is_none());
        assert_eq!(n.find_context(CT, None).map(|c| c.id), Some(3));
        assert_eq!(n.find_context(CT, Some(EXPLICIT)).map(|c| c.id), Some(5));
        assert!(n.find_context(CT, Some(JPEG)).is_none());
        assert!(n.find_context(UNKNOWN, None).is_none());
    }

    #[test]
    fn round_trip_through_the_pdu_codec() {
        let mut r = RequestorParams::new(aet("GETSCU"), aet("QRSCP"));
        r.max_pdu_length = 16384;
        r.add_context(uid::VERIFICATION, &[IMPLICIT]).unwrap();
        r.add_context(CT, &[IMPLICIT, EXPLICIT]).unwrap(); // accepted, SCU + SCP
        r.add_context(CT, &[JPEG]).unwrap(); // 4
        r.add_context(MR, &[EXPLICIT]).unwrap(); // accepted, SCP only
        r.add_context(UNKNOWN, &[IMPLICIT]).unwrap(); // 3
        r.add_context("1.2.840.10008.5.1.4.1.1.7", &[IMPLICIT])
            .unwrap(); // 1
        r.async_ops = Some((8, 4));
        r.roles = vec![
            RoleProposal {
                sop_class_uid: CT.into(),
                scu_role: true,
                scp_role: true,
            },
            RoleProposal {
                sop_class_uid: MR.into(),
                scu_role: false,
                scp_role: true,
            },
            RoleProposal {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
                scu_role: false,
                scp_role: true,
            },
        ];
        r.extended = vec![ExtendedNegotiation {
            sop_class_uid: CT.into(),
            info: Bytes::from_static(&[1, 1]),
        }];
        r.common_extended = vec![CommonExtendedNegotiation {
            sop_class_uid: CT.into(),
            service_class_uid: "1.2.840.10008.4.2".into(),
            related_general_sop_classes: vec![],
        }];
        r.user_identity = Some(jwt(true));
        let rq = r.build_rq().unwrap();

        let rq_bytes = Pdu::AAssociateRq(rq.clone()).encode().unwrap();
        let Pdu::AAssociateRq(rq_received) = read::decode(Bytes::from(rq_bytes)).unwrap() else {
            panic!("not an A-ASSOCIATE-RQ");
        };
        assert_eq!(rq_received, rq);

        let mut params = AcceptorParams::new(aet("QRSCP"));
        params.require_called_aet = true;
        params.allowed_calling_aets = vec!["GETSCU".into()];
        params.max_pdu_length = 0;
        params.implementation_version_name = Some("OTHER_1".into());
        params.add_context(uid::VERIFICATION, &[IMPLICIT]);
        params.add_context(CT, &[EXPLICIT, IMPLICIT]).scp_role = true;
        let mr = params.add_context(MR, &[EXPLICIT]);
        mr.scp_role = true;
        params.add_context("1.2.840.10008.5.1.4.1.1.7", &[IMPLICIT]); // SCU only
        let mut hooks = TestHooks {
            verdict: Some(UserIdentityVerdict::Accept {
                response: Some(Bytes::from_static(b"ok")),
            }),
            extended_answers: vec![ExtendedNegotiation {
                sop_class_uid: CT.into(),
                info: Bytes::from_static(&[1, 0]),
            }],
            window: Some((2, 2)),
            ..Default::default()
        };
        let (ac, acceptor_view) = accept(&rq_received, &params, &mut hooks).unwrap();

        let ac_bytes = Pdu::AAssociateAc(ac.clone()).encode().unwrap();
        let Pdu::AAssociateAc(ac_received) = read::decode(Bytes::from(ac_bytes)).unwrap() else {
            panic!("not an A-ASSOCIATE-AC");
        };
        assert_eq!(ac_received, ac);
        let requestor_view = process_ac(&rq, &ac_received).unwrap();

        let summary: Vec<(u8, u8, Option<&str>, bool, bool)> = requestor_view
            .contexts
            .iter()
            .map(|c| {
                (
                    c.id,
                    c.result.value(),
                    c.transfer_syntax.as_deref(),
                    c.requestor_is_scu,
                    c.requestor_is_scp,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, 0, Some(IMPLICIT), true, false),
                (3, 0, Some(EXPLICIT), true, true),
                (5, 4, None, false, false),
                (7, 0, Some(EXPLICIT), false, true),
                (9, 3, None, false, false),
                (11, 1, None, false, false),
            ]
        );
        assert_eq!(requestor_view.contexts, acceptor_view.contexts);
        assert_eq!(requestor_view.async_ops, (2, 2));
        assert_eq!(acceptor_view.async_ops, (2, 2));
        assert_eq!(requestor_view.user_identity, acceptor_view.user_identity);
        assert_eq!(
            requestor_view.user_identity_response,
            Some(Bytes::from_static(b"ok"))
        );
        assert_eq!(
            requestor_view.user_identity_response,
            acceptor_view.user_identity_response
        );
        assert_eq!(requestor_view.extended, acceptor_view.extended);
        assert_eq!(requestor_view.extended.len(), 1);
        assert_eq!(
            requestor_view.common_extended,
            acceptor_view.common_extended
        );
        assert_eq!(
            requestor_view.calling_ae_title,
            acceptor_view.calling_ae_title
        );
        assert_eq!(
            requestor_view.called_ae_title,
            acceptor_view.called_ae_title
        );
        // Each side's own limit is the other's peer limit.
        assert_eq!(requestor_view.our_max_pdu_length, 16384);
        assert_eq!(acceptor_view.peer_max_pdu_length, 16384);
        assert_eq!(requestor_view.peer_max_pdu_length, 0);
        assert_eq!(acceptor_view.our_max_pdu_length, 0);
        assert_eq!(
            requestor_view.peer_implementation_version_name.as_deref(),
            Some("OTHER_1")
        );
        assert_eq!(
            acceptor_view.peer_implementation_version_name.as_deref(),
            Some(uid::IMPLEMENTATION_VERSION_NAME)
        );
        assert_eq!(
            hooks.calls,
            [
                "user_identity",
                "async_ops",
                "sop_extended",
                "sop_common_extended"
            ]
        );
    }
}
