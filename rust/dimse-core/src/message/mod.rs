//! DIMSE messages (PS3.7): the command set codec, typed requests and responses, status
//! codes, and the fragmentation of messages into PDVs and their reassembly (PS3.8 Annex E).

pub mod command;
pub mod command_set;
pub mod element;
pub mod fragment;
pub mod status;

pub use command::{Command, DataSetRule, DecodedCommand, Priority};
pub use command_set::CommandSet;
pub use element::{Tag, Vr};
pub use fragment::{
    Assembled, Fragmenter, MessageAssembler, Payload, ReassemblyError, ReceivedMessage,
};
pub use status::{Service, Status, StatusCategory};

/// Why a command set could not be decoded or encoded. Every variant names what was wrong
/// so that the error comment or abort reason sent to the peer can say so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command set truncated: an element header at offset {offset} is incomplete")]
    Truncated { offset: usize },
    #[error("element (0000,{element:04X}) declares {length} bytes but only {remaining} remain")]
    LengthPastEnd {
        element: u16,
        length: u32,
        remaining: usize,
    },
    #[error("element (0000,{element:04X}) has an odd value length {length}; PS3.5 7.1.1 requires even lengths")]
    OddLength { element: u16, length: u32 },
    #[error(
        "element (0000,{element:04X}) has an undefined length, which a command set may not use"
    )]
    UndefinedLength { element: u16 },
    #[error("element (0000,{element:04X}) occurs twice")]
    DuplicateElement { element: u16 },
    #[error("element (0000,{element:04X}) follows (0000,{previous:04X}); elements must be in increasing tag order")]
    OutOfOrder { element: u16, previous: u16 },
    #[error("tag {tag} is not in group 0000; a command set holds only command elements")]
    WrongGroup { tag: Tag },
    #[error("the command set does not start with Command Group Length (0000,0000)")]
    MissingGroupLength,
    #[error("Command Group Length says {declared} bytes follow, but {actual} do (truncated?)")]
    GroupLengthMismatch { declared: u32, actual: usize },
    #[error("{keyword} has a {length}-byte value, which is not a valid {vr:?}")]
    InvalidValueLength {
        keyword: &'static str,
        vr: Vr,
        length: u32,
    },
    #[error("{keyword}: {reason}")]
    InvalidValue {
        keyword: &'static str,
        reason: String,
    },
    #[error("the command set has no Command Field (0000,0100)")]
    MissingCommandField,
    #[error("unknown Command Field 0x{0:04X}")]
    UnknownCommandField(u16),
    #[error("{message} requires {keyword}, which is missing or empty")]
    MissingElement {
        message: &'static str,
        keyword: &'static str,
    },
    #[error("{message} must be followed by a data set, but Command Data Set Type says none")]
    MissingDataSet { message: &'static str },
    #[error("{message} has no data set, but Command Data Set Type says one follows")]
    UnexpectedDataSet { message: &'static str },
    #[error("{message}: {reason}")]
    ConditionNotMet {
        message: &'static str,
        reason: &'static str,
    },
}
