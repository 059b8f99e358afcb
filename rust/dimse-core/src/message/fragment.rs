//! Fragmentation of DIMSE messages into P-DATA-TF PDUs and their reassembly (PS3.8 Annex E,
//! PS3.7 8.1).
//!
//! Sending: [`Fragmenter`] cuts a command set and an optional data set into PDVs no larger
//! than the peer's maximum length allows, each in its own P-DATA-TF. A fragment is a
//! 12-byte header plus a [`Bytes`] slice of the caller's buffer, so the data set is never
//! copied: the driver writes header and slice with one vectored write (or copies them
//! once into its send buffer with [`PDataFragment::encode_into`]).
//!
//! Receiving: [`MessageAssembler`] is fed PDVs in arrival order and returns a message
//! once its last fragment is in. The data set is handed on as the [`Payload`] of its
//! fragments, never joined here: a consumer copies it once to where it goes (a file with
//! one vectored write, a Python bytes object), or joins it if it must.

use bytes::{Bytes, BytesMut};

use super::command_set::CommandSet;
use super::CommandError;
use crate::pdu::{self, control, PresentationDataValue, PDU_HEADER_LEN, PDV_HEADER_LEN};

/// One P-DATA-TF PDU holding one PDV: the PDU header, the PDV header, and the fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PDataFragment {
    /// PDU type, reserved, PDU length (4), PDV item length (4), context ID, control header.
    pub header: [u8; PDU_HEADER_LEN + PDV_HEADER_LEN],
    pub data: Bytes,
}

impl PDataFragment {
    fn new(context_id: u8, control: u8, data: Bytes) -> Self {
        // Lengths fit in u32: the fragmenter caps fragments at a u32 PDU length.
        let pdv_len = (data.len() + 2) as u32;
        let pdu_len = pdv_len + 4;
        let mut header = [0u8; 12];
        header[0] = pdu::pdu_type::P_DATA_TF;
        header[2..6].copy_from_slice(&pdu_len.to_be_bytes());
        header[6..10].copy_from_slice(&pdv_len.to_be_bytes());
        header[10] = context_id;
        header[11] = control;
        PDataFragment { header, data }
    }

    /// The PDU's total size on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the whole PDU to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.data);
    }

    /// The message control header of the PDV.
    pub fn control(&self) -> u8 {
        self.header[11]
    }
}

/// Cuts messages into P-DATA-TF PDUs for a peer with a given maximum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragmenter {
    max_fragment: usize,
}

impl Fragmenter {
    /// `peer_maximum_length` is the peer's Maximum Length sub-item (0 = unlimited): the
    /// largest P-DATA-TF length field it accepts. Each PDU holds one PDV, whose 6-byte
    /// header leaves `max - 6` bytes for the fragment (PS3.8 D.1, E).
    pub fn new(peer_maximum_length: u32) -> Self {
        let limit = pdu::send_limit(peer_maximum_length) as usize;
        // A peer announcing less than a PDV header and one byte cannot receive anything;
        // send one-byte fragments rather than loop forever or panic.
        Fragmenter {
            max_fragment: limit.saturating_sub(PDV_HEADER_LEN).max(1),
        }
    }

    /// The largest fragment carried in one PDU.
    pub fn max_fragment(&self) -> usize {
        self.max_fragment
    }

    /// The PDUs of one message: the command fragments, then the data set fragments. The
    /// last fragment of each has the "last" bit (PS3.8 E.2); an empty data set is sent as
    /// one empty last fragment.
    pub fn fragments(
        &self,
        context_id: u8,
        command: Bytes,
        dataset: Option<Bytes>,
    ) -> impl Iterator<Item = PDataFragment> + '_ {
        self.split(context_id, control::COMMAND, command).chain(
            dataset
                .into_iter()
                .flat_map(move |d| self.split(context_id, 0, d)),
        )
    }

    /// The fragments of one command or data set stream.
    pub fn split(
        &self,
        context_id: u8,
        kind: u8,
        mut data: Bytes,
    ) -> impl Iterator<Item = PDataFragment> + '_ {
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let take = data.len().min(self.max_fragment);
            let chunk = data.split_to(take);
            let last = data.is_empty();
            done = last;
            let bits = kind | if last { control::LAST } else { 0 };
            Some(PDataFragment::new(context_id, bits, chunk))
        })
    }

    /// The fragments of one part of a data set sent in parts (a file read as it is
    /// sent): the "last" bit goes on the final fragment only when `last`; an empty last
    /// part is one empty last fragment, an empty other part is nothing.
    pub fn part(
        &self,
        context_id: u8,
        mut data: Bytes,
        last: bool,
    ) -> impl Iterator<Item = PDataFragment> + '_ {
        let mut done = data.is_empty() && !last;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let take = data.len().min(self.max_fragment);
            let chunk = data.split_to(take);
            done = data.is_empty();
            let bits = if done && last { control::LAST } else { 0 };
            Some(PDataFragment::new(context_id, bits, chunk))
        })
    }

    /// Encodes a whole message into one contiguous buffer (one copy of the data set).
    pub fn encode_message(
        &self,
        context_id: u8,
        command: Bytes,
        dataset: Option<Bytes>,
    ) -> Vec<u8> {
        let total: usize = command.len() + dataset.as_ref().map_or(0, Bytes::len);
        let mut out = Vec::with_capacity(total + 64);
        for f in self.fragments(context_id, command, dataset) {
            f.encode_into(&mut out);
        }
        out
    }
}

/// A reassembled message: its presentation context, its command set, and its data set
/// (encoded in the context's transfer syntax), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub context_id: u8,
    pub command: CommandSet,
    pub dataset: Option<Payload>,
}

impl ReceivedMessage {
    /// The data set as one contiguous buffer (a copy unless it came in one fragment).
    pub fn dataset_bytes(&self) -> Option<Bytes> {
        self.dataset.as_ref().map(Payload::to_bytes)
    }
}

/// A received data set: the payloads of its fragments in order, as they arrived (slices
/// of the received PDUs). Two payloads are equal when their bytes are, however split.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    parts: Vec<Bytes>,
    len: usize,
}

impl Payload {
    /// The payload of these parts (empty parts are dropped).
    pub fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> Payload {
        let parts: Vec<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let len = parts.iter().map(Bytes::len).sum();
        Payload { parts, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// One contiguous buffer: no copy for a single part, one copy otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            parts => {
                let mut joined = BytesMut::with_capacity(self.len);
                for p in parts {
                    joined.extend_from_slice(p);
                }
                joined.freeze()
            }
        }
    }

    /// Copies the bytes into `out`, which must be exactly [`Payload::len`] long.
    ///
    /// # Panics
    /// When `out` has another length: a caller's bug, never a peer's doing.
    pub fn copy_to_slice(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.len, "Payload::copy_to_slice: wrong length");
        let mut at = 0;
        for p in &self.parts {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    }

    /// The first `n` bytes (or all, when shorter), joined: enough to look at the start of
    /// a data set without copying all of it.
    pub fn prefix(&self, n: usize) -> Bytes {
        match self.parts.first() {
            Some(first) if first.len() >= n || self.parts.len() == 1 => {
                first.slice(..n.min(first.len()))
            }
            _ => {
                let mut out = BytesMut::with_capacity(n.min(self.len));
                for p in &self.parts {
                    let take = (n - out.len()).min(p.len());
                    out.extend_from_slice(&p[..take]);
                    if out.len() == n {
                        break;
                    }
                }
                out.freeze()
            }
        }
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Payload {
        Payload::from_parts([b])
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Payload {
        Payload::from(Bytes::from(v))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        if self.len != other.len {
            return false;
        }
        let mut a = self.parts.iter().flat_map(|p| p.iter());
        let mut b = other.parts.iter().flat_map(|p| p.iter());
        a.by_ref().zip(b.by_ref()).all(|(x, y)| x == y)
    }
}

impl Eq for Payload {}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        *self == Payload::from(Bytes::copy_from_slice(other))
    }
}

/// Why a sequence of PDVs is not a valid message (PS3.8 Annex E; PS3.7 8.1). A peer that
/// sends one gets an A-ABORT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    #[error("a data set fragment arrived before any command (PS3.7 8.1: the command comes first)")]
    DataBeforeCommand,
    #[error("a command fragment arrived while the data set of the previous command was expected")]
    CommandInsteadOfData,
    #[error(
        "a fragment on presentation context {got} interleaves the message on context {expected}"
    )]
    ContextMismatch { expected: u8, got: u8 },
    #[error("the message exceeds the {limit}-byte limit on {what}")]
    TooLarge { what: &'static str, limit: usize },
    #[error("invalid command set: {0}")]
    Command(#[from] CommandError),
}

#[derive(Debug)]
enum Stage {
    Idle,
    Command {
        context_id: u8,
    },
    Data {
        context_id: u8,
        command: CommandSet,
    },
    /// The data set outgrew the stream threshold: its parts are passed on as they come.
    Streaming {
        context_id: u8,
    },
}

/// What a PDV completes, when the assembler streams large data sets
/// ([`MessageAssembler::with_stream_threshold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A whole message (its data set, if any, no larger than the threshold).
    Message(ReceivedMessage),
    /// A message whose data set outgrew the threshold: its command and the data set's
    /// first bytes (`head`, at least the threshold); the rest follows as [`Assembled::Part`]s.
    Started {
        context_id: u8,
        command: CommandSet,
        head: Payload,
    },
    /// The next bytes of the data set being streamed; `last` ends it.
    Part { data: Bytes, last: bool },
}

/// Reassembles messages from PDVs (PS3.8 Annex E).
#[derive(Debug)]
pub struct MessageAssembler {
    stage: Stage,
    command: Vec<u8>,
    chunks: Vec<Bytes>,
    data_len: usize,
    max_command: usize,
    max_dataset: usize,
    stream_threshold: usize,
}

/// Command sets are small (a few hundred bytes); this bounds what a peer can make us hold.
pub const DEFAULT_MAX_COMMAND_LENGTH: usize = 64 * 1024;

impl Default for MessageAssembler {
    fn default() -> Self {
        MessageAssembler::new(usize::MAX)
    }
}

impl MessageAssembler {
    /// `max_dataset` bounds the data set of one message held in memory.
    pub fn new(max_dataset: usize) -> Self {
        MessageAssembler {
            stage: Stage::Idle,
            command: Vec::new(),
            chunks: Vec::new(),
            data_len: 0,
            max_command: DEFAULT_MAX_COMMAND_LENGTH,
            max_dataset,
            stream_threshold: usize::MAX,
        }
    }

    /// Data sets longer than `threshold` are passed on in parts as they arrive
    /// ([`MessageAssembler::push_assembled`]) instead of being held whole; `max_dataset`
    /// bounds only what is held.
    pub fn with_stream_threshold(mut self, threshold: usize) -> Self {
        self.stream_threshold = threshold;
        self
    }

    /// Whether a message is partly received.
    pub fn in_progress(&self) -> bool {
        !matches!(self.stage, Stage::Idle)
    }

    /// Feeds one PDV; returns the message it completes, if any. (Without a stream
    /// threshold; with one, use [`MessageAssembler::push_assembled`].)
    pub fn push(
        &mut self,
        pdv: PresentationDataValue,
    ) -> Result<Option<ReceivedMessage>, ReassemblyError> {
        match self.push_assembled(pdv)? {
            None => Ok(None),
            Some(Assembled::Message(m)) => Ok(Some(m)),
            // Only with a stream threshold, which this caller did not set.
            Some(Assembled::Started { .. } | Assembled::Part { .. }) => {
                Err(ReassemblyError::TooLarge {
                    what: "data sets held whole",
                    limit: self.stream_threshold,
                })
            }
        }
    }

    /// Feeds one PDV; returns what it completes: a message, the start of a streamed data
    /// set, or a part of one.
    pub fn push_assembled(
        &mut self,
        pdv: PresentationDataValue,
    ) -> Result<Option<Assembled>, ReassemblyError> {
        let result = self.push_inner(pdv);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.stage = Stage::Idle;
        self.command.clear();
        self.chunks.clear();
        self.data_len = 0;
    }

    fn push_inner(
        &mut self,
        pdv: PresentationDataValue,
    ) -> Result<Option<Assembled>, ReassemblyError> {
        let ctx = pdv.context_id;
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Idle | Stage::Command { .. } if !pdv.is_command() => {
                Err(ReassemblyError::DataBeforeCommand)
            }
            Stage::Data { .. } | Stage::Streaming { .. } if pdv.is_command() => {
                Err(ReassemblyError::CommandInsteadOfData)
            }
            Stage::Command { context_id }
            | Stage::Data { context_id, .. }
            | Stage::Streaming { context_id }
                if context_id != ctx =>
            {
                Err(ReassemblyError::ContextMismatch {
                    expected: context_id,
                    got: ctx,
                })
            }
            Stage::Streaming { context_id } => {
                // Not held: `max_dataset` bounds memory, and these bytes go on as they come
                // (their consumer bounds them).
                self.data_len = self.data_len.saturating_add(pdv.data.len());
                let last = pdv.is_last();
                if last {
                    self.data_len = 0;
                } else {
                    self.stage = Stage::Streaming { context_id };
                }
                Ok(Some(Assembled::Part {
                    data: pdv.data,
                    last,
                }))
            }
            Stage::Idle | Stage::Command { .. } => {
                if self.command.len() + pdv.data.len() > self.max_command {
                    return Err(ReassemblyError::TooLarge {
                        what: "command sets",
                        limit: self.max_command,
                    });
                }
                if !pdv.is_last() {
                    self.command.extend_from_slice(&pdv.data);
                    self.stage = Stage::Command { context_id: ctx };
                    return Ok(None);
                }
                let command = if self.command.is_empty() {
                    CommandSet::decode(&pdv.data)?
                } else {
                    self.command.extend_from_slice(&pdv.data);
                    let cs = CommandSet::decode(&self.command);
                    self.command.clear();
                    cs?
                };
                if command.has_dataset() {
                    self.stage = Stage::Data {
                        context_id: ctx,
                        command,
                    };
                    Ok(None)
                } else {
                    Ok(Some(Assembled::Message(ReceivedMessage {
                        context_id: ctx,
                        command,
                        dataset: None,
                    })))
                }
            }
            Stage::Data {
                context_id,
                command,
            } => {
                self.data_len += pdv.data.len();
                let last = pdv.is_last();
                let streams = !last && self.data_len > self.stream_threshold;
                // What is streamed is not held: the limit is on memory.
                if !streams && self.data_len > self.max_dataset {
                    return Err(ReassemblyError::TooLarge {
                        what: "data sets",
                        limit: self.max_dataset,
                    });
                }
                if !pdv.data.is_empty() {
                    self.chunks.push(pdv.data);
                }
                if streams {
                    self.stage = Stage::Streaming { context_id };
                    let head = Payload {
                        parts: std::mem::take(&mut self.chunks),
                        len: self.data_len,
                    };
                    return Ok(Some(Assembled::Started {
                        context_id,
                        command,
                        head,
                    }));
                }
                if !last {
                    self.stage = Stage::Data {
                        context_id,
                        command,
                    };
                    return Ok(None);
                }
                let dataset = Payload {
                    parts: std::mem::take(&mut self.chunks),
                    len: self.data_len,
                };
                self.data_len = 0;
                Ok(Some(Assembled::Message(ReceivedMessage {
                    context_id,
                    command,
                    dataset: Some(dataset),
                })))
            }
        }
    }
}
