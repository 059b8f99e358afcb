//! The command elements of group 0000 (PS3.7 Annex E) and their value representations.
//!
//! Command sets are always Implicit VR Little Endian (PS3.7 6.3.1), so a decoder needs this
//! dictionary to know how to read a value: the VR is not on the wire.

/// Value representations used by command elements (PS3.5 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Vr {
    /// Application Entity: up to 16 characters, padded with a space.
    AE,
    /// Attribute Tag: a list of (group, element) pairs, 4 bytes each.
    AT,
    /// Code String (retired print elements).
    CS,
    /// Integer String (retired print elements).
    IS,
    /// Long String: up to 64 characters, padded with a space.
    LO,
    /// Long Text (retired elements).
    LT,
    /// Short String (retired elements).
    SH,
    /// Unique Identifier: up to 64 characters of digits and dots, padded with NUL.
    UI,
    /// Unsigned Long, 4 bytes.
    UL,
    /// Unsigned Short, 2 bytes.
    US,
}

impl Vr {
    /// The byte used to pad a value to an even length (PS3.5 6.2: NUL for UI, space for text).
    pub fn padding(self) -> u8 {
        match self {
            Vr::UI => 0,
            _ => b' ',
        }
    }

    /// The maximum number of characters of a string value, or `None` when the VR is binary
    /// or unbounded.
    pub fn max_chars(self) -> Option<usize> {
        match self {
            Vr::AE => Some(16),
            Vr::CS | Vr::IS | Vr::SH => Some(16),
            Vr::LO | Vr::UI => Some(64),
            Vr::LT => Some(10240),
            Vr::AT | Vr::UL | Vr::US => None,
        }
    }

    /// Whether a value of `len` bytes is a possible value of this VR (fixed-size VRs).
    pub fn accepts_len(self, len: usize) -> bool {
        match self {
            Vr::US => len == 2,
            Vr::UL => len == 4,
            Vr::AT => len % 4 == 0,
            _ => true,
        }
    }
}

/// What the dictionary knows about one command element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementInfo {
    /// The element number; the group is always 0x0000.
    pub element: u16,
    /// The keyword of PS3.7 Annex E (as pydicom spells it).
    pub keyword: &'static str,
    pub vr: Vr,
    /// Retired in PS3.7 E.2: still decoded, never required.
    pub retired: bool,
}

macro_rules! elements {
    ($( $const:ident = $elem:literal, $kw:literal, $vr:ident, $retired:literal; )*) => {
        /// Element numbers of the command elements (group 0x0000).
        pub mod tags {
            $( #[doc = $kw] pub const $const: u16 = $elem; )*
        }
        /// The whole dictionary, in increasing element order.
        pub const ELEMENTS: &[ElementInfo] = &[
            $( ElementInfo { element: $elem, keyword: $kw, vr: Vr::$vr, retired: $retired }, )*
        ];
    };
}

// PS3.7 E.1 (current) and E.2 (retired), in increasing tag order.
elements! {
    COMMAND_GROUP_LENGTH = 0x0000, "CommandGroupLength", UL, false;
    COMMAND_LENGTH_TO_END = 0x0001, "CommandLengthToEnd", UL, true;
    AFFECTED_SOP_CLASS_UID = 0x0002, "AffectedSOPClassUID", UI, false;
    REQUESTED_SOP_CLASS_UID = 0x0003, "RequestedSOPClassUID", UI, false;
    COMMAND_RECOGNITION_CODE = 0x0010, "CommandRecognitionCode", SH, true;
    COMMAND_FIELD = 0x0100, "CommandField", US, false;
    MESSAGE_ID = 0x0110, "MessageID", US, false;
    MESSAGE_ID_BEING_RESPONDED_TO = 0x0120, "MessageIDBeingRespondedTo", US, false;
    INITIATOR = 0x0200, "Initiator", AE, true;
    RECEIVER = 0x0300, "Receiver", AE, true;
    FIND_LOCATION = 0x0400, "FindLocation", AE, true;
    MOVE_DESTINATION = 0x0600, "MoveDestination", AE, false;
    PRIORITY = 0x0700, "Priority", US, false;
    COMMAND_DATA_SET_TYPE = 0x0800, "CommandDataSetType", US, false;
    NUMBER_OF_MATCHES = 0x0850, "NumberOfMatches", US, true;
    RESPONSE_SEQUENCE_NUMBER = 0x0860, "ResponseSequenceNumber", US, true;
    STATUS = 0x0900, "Status", US, false;
    OFFENDING_ELEMENT = 0x0901, "OffendingElement", AT, false;
    ERROR_COMMENT = 0x0902, "ErrorComment", LO, false;
    ERROR_ID = 0x0903, "ErrorID", US, false;
    AFFECTED_SOP_INSTANCE_UID = 0x1000, "AffectedSOPInstanceUID", UI, false;
    REQUESTED_SOP_INSTANCE_UID = 0x1001, "RequestedSOPInstanceUID", UI, false;
    EVENT_TYPE_ID = 0x1002, "EventTypeID", US, false;
    ATTRIBUTE_IDENTIFIER_LIST = 0x1005, "AttributeIdentifierList", AT, false;
    ACTION_TYPE_ID = 0x1008, "ActionTypeID", US, false;
    NUMBER_OF_REMAINING_SUBOPERATIONS = 0x1020, "NumberOfRemainingSuboperations", US, false;
    NUMBER_OF_COMPLETED_SUBOPERATIONS = 0x1021, "NumberOfCompletedSuboperations", US, false;
    NUMBER_OF_FAILED_SUBOPERATIONS = 0x1022, "NumberOfFailedSuboperations", US, false;
    NUMBER_OF_WARNING_SUBOPERATIONS = 0x1023, "NumberOfWarningSuboperations", US, false;
    MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE = 0x1030, "MoveOriginatorApplicationEntityTitle", AE, false;
    MOVE_ORIGINATOR_MESSAGE_ID = 0x1031, "MoveOriginatorMessageID", US, false;
    DIALOG_RECEIVER = 0x4000, "DialogReceiver", LT, true;
    TERMINAL_TYPE = 0x4010, "TerminalType", LT, true;
    MESSAGE_SET_ID = 0x5010, "MessageSetID", SH, true;
    END_MESSAGE_ID = 0x5020, "EndMessageID", SH, true;
    DISPLAY_FORMAT = 0x5110, "DisplayFormat", LT, true;
    PAGE_POSITION_ID = 0x5120, "PagePositionID", LT, true;
    TEXT_FORMAT_ID = 0x5130, "TextFormatID", CS, true;
    NORMAL_REVERSE = 0x5140, "NormalReverse", CS, true;
    ADD_GRAY_SCALE = 0x5150, "AddGrayScale", CS, true;
    BORDERS = 0x5160, "Borders", CS, true;
    COPIES = 0x5170, "Copies", IS, true;
    COMMAND_MAGNIFICATION_TYPE = 0x5180, "CommandMagnificationType", CS, true;
    ERASE = 0x5190, "Erase", CS, true;
    PRINT = 0x51A0, "Print", CS, true;
    OVERLAYS = 0x51B0, "Overlays", US, true;
}

/// Looks up a command element by element number (group 0x0000).
pub fn lookup(element: u16) -> Option<&'static ElementInfo> {
    ELEMENTS
        .binary_search_by_key(&element, |e| e.element)
        .ok()
        .and_then(|i| ELEMENTS.get(i))
}

/// Looks up a command element by keyword.
pub fn lookup_keyword(keyword: &str) -> Option<&'static ElementInfo> {
    ELEMENTS.iter().find(|e| e.keyword == keyword)
}

/// A data element tag (group, element), as carried by AT values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tag(pub u16, pub u16);

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:04X},{:04X})", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_sorted_and_unique() {
        for pair in ELEMENTS.windows(2) {
            assert!(pair[0].element < pair[1].element, "{:?}", pair);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(lookup(0x0900).map(|e| e.keyword), Some("Status"));
        assert_eq!(lookup(0x1030).map(|e| e.vr), Some(Vr::AE));
        assert_eq!(lookup(0x0901).map(|e| e.vr), Some(Vr::AT));
        assert!(lookup(0x0901 + 0x100).is_none());
        assert_eq!(lookup_keyword("MessageID").map(|e| e.element), Some(0x0110));
        assert_eq!(lookup(0x0850).map(|e| e.retired), Some(true));
    }

    #[test]
    fn vr_rules() {
        assert_eq!(Vr::UI.padding(), 0);
        assert_eq!(Vr::AE.padding(), b' ');
        assert!(Vr::US.accepts_len(2) && !Vr::US.accepts_len(4));
        assert!(Vr::AT.accepts_len(8) && !Vr::AT.accepts_len(6));
        assert_eq!(Tag(0x0010, 0x0020).to_string(), "(0010,0020)");
    }
}
