//! Typed DIMSE messages: one struct per request and response of PS3.7 chapters 9 and 10,
//! each with the fields of its table (M fields plain, U and C fields optional).
//!
//! Decoding checks that every M field is present and non-empty and that the data set
//! presence matches the message (a C-ECHO-RQ with a data set, or a C-STORE-RQ without one,
//! is an error). Conditional rules (C) are checked when encoding, where we control the
//! bytes; on decode they are tolerated, because peers differ in how they read them.

use super::command_set::{CommandSet, DATA_SET_ABSENT, DATA_SET_PRESENT};
use super::element::{tags, Tag};
use super::status::Status;
use super::CommandError;

/// Whether a message carries a data set after its command set (PS3.7 tables, "Data Set"
/// rows: M = always, U/C = optional, absent = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSetRule {
    Never,
    Always,
    Optional,
}

/// Priority (0000,0700), PS3.7 E.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
}

impl Priority {
    pub fn value(self) -> u16 {
        match self {
            Priority::Medium => 0x0000,
            Priority::High => 0x0001,
            Priority::Low => 0x0002,
        }
    }

    pub fn from_value(value: u16) -> Option<Self> {
        match value {
            0x0000 => Some(Priority::Medium),
            0x0001 => Some(Priority::High),
            0x0002 => Some(Priority::Low),
            _ => None,
        }
    }
}

/// A command field value type: how it is read from and written to a [`CommandSet`].
trait FieldValue: Sized {
    /// `Ok(None)` when absent; an empty string value counts as absent for required checks.
    fn get(cs: &CommandSet, element: u16) -> Result<Option<Self>, CommandError>;
    fn put(&self, cs: &mut CommandSet, element: u16) -> Result<(), CommandError>;
    fn is_empty(&self) -> bool {
        false
    }
}

impl FieldValue for u16 {
    fn get(cs: &CommandSet, element: u16) -> Result<Option<Self>, CommandError> {
        Ok(cs.get_us(element))
    }
    fn put(&self, cs: &mut CommandSet, element: u16) -> Result<(), CommandError> {
        cs.set_us(element, *self)
    }
}

impl FieldValue for Status {
    fn get(cs: &CommandSet, element: u16) -> Result<Option<Self>, CommandError> {
        Ok(cs.get_us(element).map(Status))
    }
    fn put(&self, cs: &mut CommandSet, element: u16) -> Result<(), CommandError> {
        cs.set_us(element, self.0)
    }
}

impl FieldValue for Priority {
    fn get(cs: &CommandSet, element: u16) -> Result<Option<Self>, CommandError> {
        match cs.get_us(element) {
            None => Ok(None),
            Some(v) => {
                Priority::from_value(v)
                    .map(Some)
                    .ok_or_else(|| CommandError::InvalidValue {
                        keyword: "Priority",
                        reason: format!("0x{v:04X} is not LOW (2), MEDIUM (0) or HIGH (1)"),
                    })
            }
        }
    }
    fn put(&self, cs: &mut CommandSet, element: u16) -> Result<(), CommandError> {
        cs.set_us(element, self.value())
    }
}

impl FieldValue for String {
    fn get(cs: &CommandSet, element: u16) -> Result<Option<Self>, CommandError> {
        match cs.get(element) {
            None => Ok(None),
            Some(_) => match cs.get_str(element) {
                Some(s) => Ok(Some(s.to_owned())),
                None => Err(CommandError::InvalidValue {
                    keyword: super::element::lookup(element).map_or("?", |e| e.keyword),
                    reason: "the value is not ASCII text".into(),
                }),
            },
        }
    }
    fn put(&self, cs: &mut CommandSet, element: u16) -> Result<(), CommandError> {
        cs.set_str(element, self)
    }
    fn is_empty(&self) -> bool {
        String::is_empty(self)
    }
}

impl FieldValue for Vec<Tag> {
    fn get(cs: &CommandSet, element: u16) -> Result<Option<Self>, CommandError> {
        Ok(cs.get_tags(element))
    }
    fn put(&self, cs: &mut CommandSet, element: u16) -> Result<(), CommandError> {
        cs.set_tags(element, self)
    }
}

fn required<T: FieldValue>(
    cs: &CommandSet,
    element: u16,
    message: &'static str,
) -> Result<T, CommandError> {
    match T::get(cs, element)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(CommandError::MissingElement {
            message,
            keyword: super::element::lookup(element).map_or("?", |e| e.keyword),
        }),
    }
}

/// Serde: optional fields that are absent are left out of the serialized form.
#[cfg(feature = "serde")]
trait Absent {
    fn absent(&self) -> bool;
}
#[cfg(feature = "serde")]
impl<T> Absent for Option<T> {
    fn absent(&self) -> bool {
        self.is_none()
    }
}
#[cfg(feature = "serde")]
impl Absent for u16 {
    fn absent(&self) -> bool {
        false
    }
}
#[cfg(feature = "serde")]
impl Absent for String {
    fn absent(&self) -> bool {
        false
    }
}
#[cfg(feature = "serde")]
impl Absent for Status {
    fn absent(&self) -> bool {
        false
    }
}
#[cfg(feature = "serde")]
impl Absent for Priority {
    fn absent(&self) -> bool {
        false
    }
}
#[cfg(feature = "serde")]
fn is_absent<T: Absent>(v: &T) -> bool {
    v.absent()
}

macro_rules! field_ty {
    (M, $t:ty) => { $t };
    (U, $t:ty) => { Option<$t> };
}

macro_rules! field_get {
    (M, $cs:expr, $t:ty, $el:expr, $msg:expr) => {
        required::<$t>($cs, $el, $msg)?
    };
    (U, $cs:expr, $t:ty, $el:expr, $msg:expr) => {
        <$t as FieldValue>::get($cs, $el)?
    };
}

macro_rules! field_put {
    (M, $cs:expr, $el:expr, $v:expr, $msg:expr) => {{
        if FieldValue::is_empty($v) {
            return Err(CommandError::MissingElement {
                message: $msg,
                keyword: super::element::lookup($el).map_or("?", |e| e.keyword),
            });
        }
        FieldValue::put($v, $cs, $el)?
    }};
    (U, $cs:expr, $el:expr, $v:expr, $msg:expr) => {
        if let Some(v) = $v {
            FieldValue::put(v, $cs, $el)?
        }
    };
}

macro_rules! messages {
    ($(
        $(#[$meta:meta])*
        $name:ident = $field:literal, $label:literal, $rule:ident {
            $( $(#[$fmeta:meta])* $fname:ident : $fty:ty = $el:ident $req:ident ),* $(,)?
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq, Default)]
            #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
            #[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
            pub struct $name {
                $(
                    $(#[$fmeta])*
                    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "is_absent"))]
                    pub $fname: field_ty!($req, $fty),
                )*
            }

            impl $name {
                /// Command Field (0000,0100) value.
                pub const COMMAND_FIELD: u16 = $field;
                /// The message's name in PS3.7.
                pub const NAME: &'static str = $label;
                /// Whether a data set follows the command set.
                pub const DATA_SET: DataSetRule = DataSetRule::$rule;

                fn from_command_set(cs: &CommandSet) -> Result<Self, CommandError> {
                    Ok(Self { $( $fname: field_get!($req, cs, $fty, tags::$el, $label), )* })
                }

                fn write_fields(&self, cs: &mut CommandSet) -> Result<(), CommandError> {
                    $( field_put!($req, cs, tags::$el, &self.$fname, $label); )*
                    Ok(())
                }
            }

            impl From<$name> for Command {
                fn from(m: $name) -> Command {
                    Command::$name(m)
                }
            }
        )*

        /// Any DIMSE message's command part.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(tag = "type"))]
        pub enum Command {
            $( #[cfg_attr(feature = "serde", serde(rename = $label))] $name($name), )*
        }

        #[cfg(feature = "serde")]
        impl Command {
            /// Deserializes the message named `name` (as PS3.7 names it, e.g. "C-ECHO-RQ")
            /// from its fields alone. Faster than deserializing the tagged enum, which must
            /// buffer its whole input to find the tag first.
            pub fn deserialize_named<'de, D: serde::Deserializer<'de>>(
                name: &str,
                fields: D,
            ) -> Result<Command, D::Error> {
                match name {
                    $( $label => <$name as serde::Deserialize>::deserialize(fields).map(Command::$name), )*
                    other => Err(<D::Error as serde::de::Error>::custom(format!(
                        "unknown message type {other:?}; expected a PS3.7 name such as \"C-ECHO-RQ\""
                    ))),
                }
            }
        }

        impl Command {
            /// The Command Field (0000,0100) value.
            pub fn command_field(&self) -> u16 {
                match self { $( Command::$name(_) => $field, )* }
            }

            /// The message's name in PS3.7, e.g. "C-STORE-RQ".
            pub fn name(&self) -> &'static str {
                match self { $( Command::$name(_) => $label, )* }
            }

            /// Whether this kind of message carries a data set.
            pub fn data_set_rule(&self) -> DataSetRule {
                match self { $( Command::$name(_) => DataSetRule::$rule, )* }
            }

            fn from_fields(field: u16, cs: &CommandSet) -> Result<Command, CommandError> {
                match field {
                    $( $field => Ok(Command::$name($name::from_command_set(cs)?)), )*
                    other => Err(CommandError::UnknownCommandField(other)),
                }
            }

            fn write_fields(&self, cs: &mut CommandSet) -> Result<(), CommandError> {
                match self { $( Command::$name(m) => m.write_fields(cs), )* }
            }
        }
    };
}

// The field lists follow PS3.7 Tables 9.3-1..9.3-13 (DIMSE-C) and 10.3-1..10.3-12
// (DIMSE-N). Responses also carry the status-related elements of PS3.7 Annex C
// (ErrorComment, ErrorID, OffendingElement) as optional fields.
messages! {
    /// C-STORE-RQ, PS3.7 Table 9.3-1.
    CStoreRq = 0x0001, "C-STORE-RQ", Always {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        priority: Priority = PRIORITY M,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID M,
        move_originator_ae_title: String = MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE U,
        move_originator_message_id: u16 = MOVE_ORIGINATOR_MESSAGE_ID U,
    }
    /// C-STORE-RSP, PS3.7 Table 9.3-2.
    CStoreRsp = 0x8001, "C-STORE-RSP", Never {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
    }
    /// C-FIND-RQ, PS3.7 Table 9.3-3.
    CFindRq = 0x0020, "C-FIND-RQ", Always {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        priority: Priority = PRIORITY M,
    }
    /// C-FIND-RSP, PS3.7 Table 9.3-4. The identifier follows only with a pending status.
    CFindRsp = 0x8020, "C-FIND-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
    }
    /// C-GET-RQ, PS3.7 Table 9.3-5.
    CGetRq = 0x0010, "C-GET-RQ", Always {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        priority: Priority = PRIORITY M,
    }
    /// C-GET-RSP, PS3.7 Table 9.3-6.
    CGetRsp = 0x8010, "C-GET-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        remaining: u16 = NUMBER_OF_REMAINING_SUBOPERATIONS U,
        completed: u16 = NUMBER_OF_COMPLETED_SUBOPERATIONS U,
        failed: u16 = NUMBER_OF_FAILED_SUBOPERATIONS U,
        warning: u16 = NUMBER_OF_WARNING_SUBOPERATIONS U,
    }
    /// C-MOVE-RQ, PS3.7 Table 9.3-7.
    CMoveRq = 0x0021, "C-MOVE-RQ", Always {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        move_destination: String = MOVE_DESTINATION M,
        priority: Priority = PRIORITY M,
    }
    /// C-MOVE-RSP, PS3.7 Table 9.3-8.
    CMoveRsp = 0x8021, "C-MOVE-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        remaining: u16 = NUMBER_OF_REMAINING_SUBOPERATIONS U,
        completed: u16 = NUMBER_OF_COMPLETED_SUBOPERATIONS U,
        failed: u16 = NUMBER_OF_FAILED_SUBOPERATIONS U,
        warning: u16 = NUMBER_OF_WARNING_SUBOPERATIONS U,
    }
    /// C-ECHO-RQ, PS3.7 Table 9.3-12.
    CEchoRq = 0x0030, "C-ECHO-RQ", Never {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
    }
    /// C-ECHO-RSP, PS3.7 Table 9.3-13.
    CEchoRsp = 0x8030, "C-ECHO-RSP", Never {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
    }
    /// C-CANCEL-RQ, PS3.7 Table 9.3-10 (C-FIND), 9.3-9 (C-GET), 9.3-11 (C-MOVE).
    CCancelRq = 0x0FFF, "C-CANCEL-RQ", Never {
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
    }
    /// N-EVENT-REPORT-RQ, PS3.7 Table 10.3-1.
    NEventReportRq = 0x0100, "N-EVENT-REPORT-RQ", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID M,
        event_type_id: u16 = EVENT_TYPE_ID M,
    }
    /// N-EVENT-REPORT-RSP, PS3.7 Table 10.3-2.
    NEventReportRsp = 0x8100, "N-EVENT-REPORT-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
        event_type_id: u16 = EVENT_TYPE_ID U,
    }
    /// N-GET-RQ, PS3.7 Table 10.3-3.
    NGetRq = 0x0110, "N-GET-RQ", Never {
        requested_sop_class_uid: String = REQUESTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        requested_sop_instance_uid: String = REQUESTED_SOP_INSTANCE_UID M,
        attribute_identifier_list: Vec<Tag> = ATTRIBUTE_IDENTIFIER_LIST U,
    }
    /// N-GET-RSP, PS3.7 Table 10.3-4.
    NGetRsp = 0x8110, "N-GET-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
        attribute_identifier_list: Vec<Tag> = ATTRIBUTE_IDENTIFIER_LIST U,
    }
    /// N-SET-RQ, PS3.7 Table 10.3-5.
    NSetRq = 0x0120, "N-SET-RQ", Always {
        requested_sop_class_uid: String = REQUESTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        requested_sop_instance_uid: String = REQUESTED_SOP_INSTANCE_UID M,
    }
    /// N-SET-RSP, PS3.7 Table 10.3-6.
    NSetRsp = 0x8120, "N-SET-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
        attribute_identifier_list: Vec<Tag> = ATTRIBUTE_IDENTIFIER_LIST U,
    }
    /// N-ACTION-RQ, PS3.7 Table 10.3-7.
    NActionRq = 0x0130, "N-ACTION-RQ", Optional {
        requested_sop_class_uid: String = REQUESTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        requested_sop_instance_uid: String = REQUESTED_SOP_INSTANCE_UID M,
        action_type_id: u16 = ACTION_TYPE_ID M,
    }
    /// N-ACTION-RSP, PS3.7 Table 10.3-8.
    NActionRsp = 0x8130, "N-ACTION-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
        action_type_id: u16 = ACTION_TYPE_ID U,
    }
    /// N-CREATE-RQ, PS3.7 Table 10.3-9.
    NCreateRq = 0x0140, "N-CREATE-RQ", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
    }
    /// N-CREATE-RSP, PS3.7 Table 10.3-10.
    NCreateRsp = 0x8140, "N-CREATE-RSP", Optional {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
    }
    /// N-DELETE-RQ, PS3.7 Table 10.3-11.
    NDeleteRq = 0x0150, "N-DELETE-RQ", Never {
        requested_sop_class_uid: String = REQUESTED_SOP_CLASS_UID M,
        message_id: u16 = MESSAGE_ID M,
        requested_sop_instance_uid: String = REQUESTED_SOP_INSTANCE_UID M,
    }
    /// N-DELETE-RSP, PS3.7 Table 10.3-12.
    NDeleteRsp = 0x8150, "N-DELETE-RSP", Never {
        affected_sop_class_uid: String = AFFECTED_SOP_CLASS_UID U,
        message_id_being_responded_to: u16 = MESSAGE_ID_BEING_RESPONDED_TO M,
        status: Status = STATUS M,
        offending_element: Vec<Tag> = OFFENDING_ELEMENT U,
        error_comment: String = ERROR_COMMENT U,
        error_id: u16 = ERROR_ID U,
        affected_sop_instance_uid: String = AFFECTED_SOP_INSTANCE_UID U,
    }
}

/// A decoded command: the typed message and whether a data set follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCommand {
    pub command: Command,
    pub has_dataset: bool,
}

impl Command {
    /// Whether this is a response (Command Field bit 15, PS3.7 E.1).
    pub fn is_response(&self) -> bool {
        self.command_field() & 0x8000 != 0
    }

    /// The Message ID of a request, or `None` for responses and C-CANCEL-RQ.
    pub fn message_id(&self) -> Option<u16> {
        match self {
            Command::CStoreRq(m) => Some(m.message_id),
            Command::CFindRq(m) => Some(m.message_id),
            Command::CGetRq(m) => Some(m.message_id),
            Command::CMoveRq(m) => Some(m.message_id),
            Command::CEchoRq(m) => Some(m.message_id),
            Command::NEventReportRq(m) => Some(m.message_id),
            Command::NGetRq(m) => Some(m.message_id),
            Command::NSetRq(m) => Some(m.message_id),
            Command::NActionRq(m) => Some(m.message_id),
            Command::NCreateRq(m) => Some(m.message_id),
            Command::NDeleteRq(m) => Some(m.message_id),
            _ => None,
        }
    }

    /// The Message ID Being Responded To of a response or a C-CANCEL-RQ.
    pub fn message_id_being_responded_to(&self) -> Option<u16> {
        match self {
            Command::CStoreRsp(m) => Some(m.message_id_being_responded_to),
            Command::CFindRsp(m) => Some(m.message_id_being_responded_to),
            Command::CGetRsp(m) => Some(m.message_id_being_responded_to),
            Command::CMoveRsp(m) => Some(m.message_id_being_responded_to),
            Command::CEchoRsp(m) => Some(m.message_id_being_responded_to),
            Command::CCancelRq(m) => Some(m.message_id_being_responded_to),
            Command::NEventReportRsp(m) => Some(m.message_id_being_responded_to),
            Command::NGetRsp(m) => Some(m.message_id_being_responded_to),
            Command::NSetRsp(m) => Some(m.message_id_being_responded_to),
            Command::NActionRsp(m) => Some(m.message_id_being_responded_to),
            Command::NCreateRsp(m) => Some(m.message_id_being_responded_to),
            Command::NDeleteRsp(m) => Some(m.message_id_being_responded_to),
            _ => None,
        }
    }

    /// The Status of a response.
    pub fn status(&self) -> Option<Status> {
        match self {
            Command::CStoreRsp(m) => Some(m.status),
            Command::CFindRsp(m) => Some(m.status),
            Command::CGetRsp(m) => Some(m.status),
            Command::CMoveRsp(m) => Some(m.status),
            Command::CEchoRsp(m) => Some(m.status),
            Command::NEventReportRsp(m) => Some(m.status),
            Command::NGetRsp(m) => Some(m.status),
            Command::NSetRsp(m) => Some(m.status),
            Command::NActionRsp(m) => Some(m.status),
            Command::NCreateRsp(m) => Some(m.status),
            Command::NDeleteRsp(m) => Some(m.status),
            _ => None,
        }
    }

    /// Builds the typed message from a decoded command set.
    pub fn from_command_set(cs: &CommandSet) -> Result<DecodedCommand, CommandError> {
        let field = cs
            .command_field()
            .ok_or(CommandError::MissingCommandField)?;
        let command = Command::from_fields(field, cs)?;
        let has_dataset = cs.has_dataset();
        command.check_data_set(has_dataset)?;
        Ok(DecodedCommand {
            command,
            has_dataset,
        })
    }

    /// Decodes command set bytes into a typed message.
    pub fn decode(bytes: &[u8]) -> Result<DecodedCommand, CommandError> {
        Command::from_command_set(&CommandSet::decode(bytes)?)
    }

    fn check_data_set(&self, has_dataset: bool) -> Result<(), CommandError> {
        match (self.data_set_rule(), has_dataset) {
            (DataSetRule::Never, true) => Err(CommandError::UnexpectedDataSet {
                message: self.name(),
            }),
            (DataSetRule::Always, false) => Err(CommandError::MissingDataSet {
                message: self.name(),
            }),
            _ => Ok(()),
        }
    }

    /// The conditional rules of the PS3.7 tables, checked before we send.
    fn check_conditions(&self, has_dataset: bool) -> Result<(), CommandError> {
        let message = self.name();
        match self {
            // PS3.7 9.1.2.1.5: the Identifier is present only with a Pending status.
            Command::CFindRsp(m) => {
                let pending = m.status.is_pending();
                if pending && !has_dataset {
                    return Err(CommandError::ConditionNotMet {
                        message,
                        reason: "a pending response must carry an identifier",
                    });
                }
                if !pending && has_dataset {
                    return Err(CommandError::ConditionNotMet {
                        message,
                        reason: "only a pending response carries an identifier",
                    });
                }
            }
            // PS3.7 9.1.3.1.6, 9.1.4.1.6: Number of Remaining Sub-operations with Pending.
            Command::CGetRsp(CGetRsp {
                status, remaining, ..
            })
            | Command::CMoveRsp(CMoveRsp {
                status, remaining, ..
            }) if status.is_pending() && remaining.is_none() => {
                return Err(CommandError::ConditionNotMet {
                    message,
                    reason: "a pending response must carry Number of Remaining Sub-operations",
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Builds the command set of this message, validating its fields.
    pub fn to_command_set(&self, has_dataset: bool) -> Result<CommandSet, CommandError> {
        self.check_data_set(has_dataset)?;
        self.check_conditions(has_dataset)?;
        let mut cs = CommandSet::with_capacity(12, 256);
        cs.set_us(tags::COMMAND_FIELD, self.command_field())?;
        cs.set_us(
            tags::COMMAND_DATA_SET_TYPE,
            if has_dataset {
                DATA_SET_PRESENT
            } else {
                DATA_SET_ABSENT
            },
        )?;
        self.write_fields(&mut cs)?;
        Ok(cs)
    }

    /// Encodes this message's command set (Implicit VR Little Endian, PS3.7 6.3.1).
    pub fn encode(&self, has_dataset: bool) -> Result<Vec<u8>, CommandError> {
        Ok(self.to_command_set(has_dataset)?.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Command {
        CEchoRq {
            affected_sop_class_uid: "1.2.840.10008.1.1".into(),
            message_id: 7,
        }
        .into()
    }

    #[test]
    fn echo_round_trip() {
        let bytes = echo().encode(false).unwrap();
        let decoded = Command::decode(&bytes).unwrap();
        assert_eq!(decoded.command, echo());
        assert!(!decoded.has_dataset);
        assert_eq!(decoded.command.message_id(), Some(7));
        assert_eq!(decoded.command.name(), "C-ECHO-RQ");
        assert!(!decoded.command.is_response());
    }

    #[test]
    fn data_set_presence_is_checked() {
        assert_eq!(
            echo().encode(true),
            Err(CommandError::UnexpectedDataSet {
                message: "C-ECHO-RQ"
            })
        );
        let store: Command = CStoreRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            message_id: 1,
            priority: Priority::Medium,
            affected_sop_instance_uid: "1.2.3".into(),
            ..Default::default()
        }
        .into();
        assert_eq!(
            store.encode(false),
            Err(CommandError::MissingDataSet {
                message: "C-STORE-RQ"
            })
        );
        let bytes = store.encode(true).unwrap();
        let mut cs = CommandSet::decode(&bytes).unwrap();
        cs.set_us(tags::COMMAND_DATA_SET_TYPE, DATA_SET_ABSENT)
            .unwrap();
        assert!(matches!(
            Command::from_command_set(&cs),
            Err(CommandError::MissingDataSet { .. })
        ));
    }

    #[test]
    fn required_fields_are_checked() {
        let store: Command = CStoreRq {
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            message_id: 1,
            ..Default::default()
        }
        .into();
        assert_eq!(
            store.encode(true),
            Err(CommandError::MissingElement {
                message: "C-STORE-RQ",
                keyword: "AffectedSOPInstanceUID"
            })
        );
        let mut cs = CommandSet::new();
        cs.set_us(tags::COMMAND_FIELD, 0x0001).unwrap();
        cs.set_us(tags::MESSAGE_ID, 1).unwrap();
        cs.set_us(tags::PRIORITY, 0).unwrap();
        cs.set_us(tags::COMMAND_DATA_SET_TYPE, 0).unwrap();
        cs.set_str(tags::AFFECTED_SOP_CLASS_UID, "1.2").unwrap();
        assert_eq!(
            Command::from_command_set(&cs),
            Err(CommandError::MissingElement {
                message: "C-STORE-RQ",
                keyword: "AffectedSOPInstanceUID"
            })
        );
        let mut cs = CommandSet::new();
        cs.set_us(tags::COMMAND_FIELD, 0x8030).unwrap();
        cs.set_us(tags::MESSAGE_ID_BEING_RESPONDED_TO, 1).unwrap();
        assert_eq!(
            Command::from_command_set(&cs),
            Err(CommandError::MissingElement {
                message: "C-ECHO-RSP",
                keyword: "Status"
            })
        );
    }

    #[test]
    fn conditions_on_encode() {
        let pending: Command = CFindRsp {
            message_id_being_responded_to: 1,
            status: Status::PENDING,
            ..Default::default()
        }
        .into();
        assert!(matches!(
            pending.encode(false),
            Err(CommandError::ConditionNotMet { .. })
        ));
        assert!(pending.encode(true).is_ok());
        let done: Command = CFindRsp {
            message_id_being_responded_to: 1,
            status: Status::SUCCESS,
            ..Default::default()
        }
        .into();
        assert!(matches!(
            done.encode(true),
            Err(CommandError::ConditionNotMet { .. })
        ));
        let get: Command = CGetRsp {
            message_id_being_responded_to: 1,
            status: Status::PENDING,
            ..Default::default()
        }
        .into();
        assert!(matches!(
            get.encode(false),
            Err(CommandError::ConditionNotMet { .. })
        ));
    }

    #[test]
    fn unknown_command_field_and_priority() {
        let mut cs = CommandSet::new();
        cs.set_us(tags::COMMAND_FIELD, 0x4444).unwrap();
        assert_eq!(
            Command::from_command_set(&cs),
            Err(CommandError::UnknownCommandField(0x4444))
        );
        assert_eq!(
            Command::from_command_set(&CommandSet::new()),
            Err(CommandError::MissingCommandField)
        );
        let mut cs = CommandSet::new();
        cs.set_us(tags::COMMAND_FIELD, 0x0020).unwrap();
        cs.set_us(tags::MESSAGE_ID, 1).unwrap();
        cs.set_us(tags::PRIORITY, 9).unwrap();
        cs.set_us(tags::COMMAND_DATA_SET_TYPE, 1).unwrap();
        cs.set_str(tags::AFFECTED_SOP_CLASS_UID, "1.2").unwrap();
        assert!(matches!(
            Command::from_command_set(&cs),
            Err(CommandError::InvalidValue {
                keyword: "Priority",
                ..
            })
        ));
    }
}
