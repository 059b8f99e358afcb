//! The Command Set codec (PS3.7 6.3): group 0000 elements, Implicit VR Little Endian,
//! each an explicit tag, a 32-bit even value length and a value, in increasing tag order,
//! led by Command Group Length.
//!
//! [`CommandSet`] is the lossless layer: it keeps every element's value bytes exactly as
//! received, so a well-formed command set re-encodes to the same bytes. The typed messages
//! in [`super::command`] are built on top of it.
//!
//! Strict and lenient choices on decode (what a real peer sends is accepted, what would
//! make the command ambiguous is refused):
//! - refused: truncation, a value length past the end, an odd value length, an undefined
//!   length, a tag outside group 0000, a duplicate or out-of-order tag, a missing Command
//!   Group Length, and a value whose length does not fit its VR (e.g. a 4-byte US);
//! - refused too: a Command Group Length whose value disagrees with the bytes that follow,
//!   since it is the only way to tell a command set cut at an element boundary from a
//!   complete one;
//! - tolerated: elements unknown to PS3.7 (kept as raw bytes), retired elements, empty values, and
//!   string values padded or not, with NUL or space ([`CommandSet::get_str`] trims both).

use super::element::{self, tags, Tag, Vr};
use super::CommandError;

/// Bytes of an element header: tag (4) + value length (4), PS3.5 7.1.3.
const HEADER: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    element: u16,
    start: u32,
    len: u32,
}

/// A command set: the group 0000 elements of one DIMSE message, without the group length
/// (computed on encode). Values live in one buffer; this keeps decode to two allocations.
#[derive(Clone, Default)]
pub struct CommandSet {
    buf: Vec<u8>,
    entries: Vec<Entry>,
}

impl PartialEq for CommandSet {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for CommandSet {}

impl std::fmt::Debug for CommandSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (el, value) in self.iter() {
            let name = element::lookup(el).map_or("?", |e| e.keyword);
            m.entry(
                &format_args!("(0000,{el:04X}) {name}"),
                &format_args!("{value:02X?}"),
            );
        }
        m.finish()
    }
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl CommandSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes a complete command set (the reassembled command PDVs of one message).
    pub fn decode(bytes: &[u8]) -> Result<Self, CommandError> {
        let mut cs = CommandSet {
            buf: Vec::with_capacity(bytes.len()),
            entries: Vec::with_capacity(12),
        };
        let mut at = 0usize;
        let mut previous: Option<u16> = None;
        let mut group_length = 0u32;
        while at < bytes.len() {
            let (Some(group), Some(el), Some(len)) = (
                read_u16(bytes, at),
                read_u16(bytes, at + 2),
                read_u32(bytes, at + 4),
            ) else {
                return Err(CommandError::Truncated { offset: at });
            };
            if group != 0x0000 {
                return Err(CommandError::WrongGroup {
                    tag: Tag(group, el),
                });
            }
            if len == u32::MAX {
                return Err(CommandError::UndefinedLength { element: el });
            }
            let value_at = at + HEADER;
            let remaining = bytes.len() - value_at;
            if len as usize > remaining {
                return Err(CommandError::LengthPastEnd {
                    element: el,
                    length: len,
                    remaining,
                });
            }
            if len % 2 != 0 {
                return Err(CommandError::OddLength {
                    element: el,
                    length: len,
                });
            }
            match previous {
                None if el != tags::COMMAND_GROUP_LENGTH => {
                    return Err(CommandError::MissingGroupLength)
                }
                Some(p) if p == el => return Err(CommandError::DuplicateElement { element: el }),
                Some(p) if p > el => {
                    return Err(CommandError::OutOfOrder {
                        element: el,
                        previous: p,
                    })
                }
                _ => {}
            }
            previous = Some(el);
            let value = &bytes[value_at..value_at + len as usize];
            if let Some(info) = element::lookup(el) {
                if !info.vr.accepts_len(value.len()) {
                    return Err(CommandError::InvalidValueLength {
                        keyword: info.keyword,
                        vr: info.vr,
                        length: len,
                    });
                }
            }
            if el == tags::COMMAND_GROUP_LENGTH {
                group_length = read_u32(value, 0).unwrap_or(0);
            } else {
                cs.push_unchecked(el, value);
            }
            at = value_at + len as usize;
        }
        if previous.is_none() {
            return Err(CommandError::MissingGroupLength);
        }
        let actual = bytes.len() - (HEADER + 4);
        if group_length as usize != actual {
            return Err(CommandError::GroupLengthMismatch {
                declared: group_length,
                actual,
            });
        }
        Ok(cs)
    }

    /// Appends without ordering checks; callers guarantee increasing order.
    fn push_unchecked(&mut self, element: u16, value: &[u8]) {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(value);
        self.entries.push(Entry {
            element,
            start,
            len: value.len() as u32,
        });
    }

    /// The encoded length of the elements after Command Group Length.
    fn body_len(&self) -> usize {
        self.entries.iter().map(|e| HEADER + e.len as usize).sum()
    }

    /// The encoded length of the whole command set, group length included.
    pub fn encoded_len(&self) -> usize {
        HEADER + 4 + self.body_len()
    }

    /// Encodes the command set, Command Group Length first (PS3.7 6.3.1).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded command set to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        let body = self.body_len() as u32;
        put_header(out, tags::COMMAND_GROUP_LENGTH, 4);
        out.extend_from_slice(&body.to_le_bytes());
        for (el, value) in self.iter() {
            put_header(out, el, value.len() as u32);
            out.extend_from_slice(value);
        }
    }

    /// The elements (without Command Group Length) in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> + '_ {
        self.entries.iter().map(|e| (e.element, self.value(e)))
    }

    fn value(&self, e: &Entry) -> &[u8] {
        let start = e.start as usize;
        self.buf.get(start..start + e.len as usize).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, element: u16) -> bool {
        self.find(element).is_ok()
    }

    fn find(&self, element: u16) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&element, |e| e.element)
    }

    /// The raw value bytes of an element.
    pub fn get(&self, element: u16) -> Option<&[u8]> {
        self.find(element)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| self.value(e))
    }

    /// Sets an element's raw value. The value must have an even length (PS3.5 7.1.1) and
    /// fit the element's VR when the element is known; Command Group Length is computed
    /// on encode and cannot be set.
    pub fn set_raw(&mut self, element: u16, value: &[u8]) -> Result<(), CommandError> {
        if element == tags::COMMAND_GROUP_LENGTH {
            return Err(CommandError::InvalidValue {
                keyword: "CommandGroupLength",
                reason: "computed on encode; it cannot be set".into(),
            });
        }
        if value.len() % 2 != 0 {
            return Err(CommandError::OddLength {
                element,
                length: value.len() as u32,
            });
        }
        if let Some(info) = element::lookup(element) {
            if !info.vr.accepts_len(value.len()) {
                return Err(CommandError::InvalidValueLength {
                    keyword: info.keyword,
                    vr: info.vr,
                    length: value.len() as u32,
                });
            }
        }
        if value.len() > u32::MAX as usize - HEADER {
            return Err(CommandError::InvalidValue {
                keyword: keyword(element),
                reason: "value too long".into(),
            });
        }
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(value);
        self.put_entry(Entry {
            element,
            start,
            len: value.len() as u32,
        });
        Ok(())
    }

    /// Removes an element; returns whether it was present.
    pub fn remove(&mut self, element: u16) -> bool {
        match self.find(element) {
            Ok(i) => {
                self.entries.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// An element's US value.
    pub fn get_us(&self, element: u16) -> Option<u16> {
        read_u16(self.get(element)?, 0)
    }

    /// An element's UL value.
    pub fn get_ul(&self, element: u16) -> Option<u32> {
        read_u32(self.get(element)?, 0)
    }

    /// An element's string value with its padding removed: trailing NULs and spaces, and
    /// leading spaces (insignificant for AE, LO, SH, CS; PS3.5 6.2). `None` when the element
    /// is absent or the bytes are not text.
    pub fn get_str(&self, element: u16) -> Option<&str> {
        let raw = self.get(element)?;
        let s = std::str::from_utf8(raw).ok()?;
        Some(s.trim_end_matches(['\0', ' ']).trim_start_matches(' '))
    }

    /// An element's AT values.
    pub fn get_tags(&self, element: u16) -> Option<Vec<Tag>> {
        let raw = self.get(element)?;
        Some(
            raw.chunks_exact(4)
                .map(|c| {
                    Tag(
                        u16::from_le_bytes([c[0], c[1]]),
                        u16::from_le_bytes([c[2], c[3]]),
                    )
                })
                .collect(),
        )
    }

    pub fn set_us(&mut self, element: u16, value: u16) -> Result<(), CommandError> {
        self.set_raw(element, &value.to_le_bytes())
    }

    pub fn set_ul(&mut self, element: u16, value: u32) -> Result<(), CommandError> {
        self.set_raw(element, &value.to_le_bytes())
    }

    /// Sets a string element, validated for its VR and padded to an even length with the
    /// VR's padding byte (NUL for UI, space otherwise).
    pub fn set_str(&mut self, element: u16, value: &str) -> Result<(), CommandError> {
        let info = element::lookup(element);
        let vr = info.map_or(Vr::LO, |e| e.vr);
        // Found by the command_set fuzz target: a string written into a binary element
        // (Command Group Length among them) made a command set that does not decode.
        if matches!(vr, Vr::US | Vr::UL | Vr::AT) {
            return Err(CommandError::InvalidValue {
                keyword: keyword(element),
                reason: format!("a {vr:?} element takes no string"),
            });
        }
        validate_str(info.map_or("(unknown element)", |e| e.keyword), vr, value)?;
        // Validated strings are short (at most 64 characters for UI/LO, 16 for AE): the
        // length checks of set_raw cannot fail, so append the value and its pad directly.
        let pad = value.len() % 2 != 0;
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(value.as_bytes());
        if pad {
            self.buf.push(vr.padding());
        }
        self.put_entry(Entry {
            element,
            start,
            len: (value.len() + usize::from(pad)) as u32,
        });
        Ok(())
    }

    fn put_entry(&mut self, entry: Entry) {
        // Typed messages set their fields in increasing tag order: appending is the
        // common case, checked first.
        match self.entries.last() {
            Some(last) if last.element < entry.element => self.entries.push(entry),
            None => self.entries.push(entry),
            _ => match self.find(entry.element) {
                Ok(i) => self.entries[i] = entry,
                Err(i) => self.entries.insert(i, entry),
            },
        }
    }

    /// An empty command set with room for `elements` elements and `bytes` of values.
    pub fn with_capacity(elements: usize, bytes: usize) -> Self {
        CommandSet {
            buf: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(elements),
        }
    }

    pub fn set_tags(&mut self, element: u16, values: &[Tag]) -> Result<(), CommandError> {
        let mut raw = Vec::with_capacity(values.len() * 4);
        for t in values {
            raw.extend_from_slice(&t.0.to_le_bytes());
            raw.extend_from_slice(&t.1.to_le_bytes());
        }
        self.set_raw(element, &raw)
    }

    /// The Command Field (0000,0100).
    pub fn command_field(&self) -> Option<u16> {
        self.get_us(tags::COMMAND_FIELD)
    }

    /// Whether a data set follows: Command Data Set Type other than 0x0101 (PS3.7 E.1).
    /// A command set without the element has no data set.
    pub fn has_dataset(&self) -> bool {
        self.get_us(tags::COMMAND_DATA_SET_TYPE)
            .is_some_and(|v| v != DATA_SET_ABSENT)
    }
}

/// Command Data Set Type value meaning "no data set" (PS3.7 E.1).
pub const DATA_SET_ABSENT: u16 = 0x0101;
/// The value we write when a data set follows (any other value would do; this is the one
/// pynetdicom writes, which keeps our bytes equal to its reference vectors).
pub const DATA_SET_PRESENT: u16 = 0x0001;

fn put_header(out: &mut Vec<u8>, element: u16, len: u32) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

fn keyword(element: u16) -> &'static str {
    element::lookup(element).map_or("(unknown element)", |e| e.keyword)
}

/// Checks a string against its VR's character repertoire and length (PS3.5 6.2).
pub(crate) fn validate_str(keyword: &'static str, vr: Vr, value: &str) -> Result<(), CommandError> {
    let invalid = |reason: String| Err(CommandError::InvalidValue { keyword, reason });
    if let Some(max) = vr.max_chars() {
        // Bytes bound characters from above: count only when the bytes exceed the limit.
        if value.len() > max && value.chars().count() > max {
            return invalid(format!(
                "{value:?} is longer than {max} characters ({vr:?})"
            ));
        }
    }
    match vr {
        Vr::UI => {
            if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return invalid(format!(
                    "{value:?} is not a UID: only digits and '.' are allowed"
                ));
            }
        }
        Vr::AE => {
            if value
                .bytes()
                .any(|b| b == b'\\' || b.is_ascii_control() || !b.is_ascii())
            {
                return invalid(format!(
                    "{value:?} is not an AE title: ASCII without backslash or control characters"
                ));
            }
        }
        _ => {
            if value.contains(['\\', '\0']) {
                return invalid(format!("{value:?} contains a backslash or NUL"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(el: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_header(&mut v, el, value.len() as u32);
        v.extend_from_slice(value);
        v
    }

    /// A C-ECHO-RQ written by hand from PS3.7 Table 9.3-12 and E.1.
    fn echo_rq() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(element(0x0002, b"1.2.840.10008.1.1\0"));
        body.extend(element(0x0100, &[0x30, 0x00]));
        body.extend(element(0x0110, &[0x07, 0x00]));
        body.extend(element(0x0800, &[0x01, 0x01]));
        let mut all = element(0x0000, &(body.len() as u32).to_le_bytes());
        all.extend(body);
        all
    }

    #[test]
    fn decodes_and_reencodes_byte_exact() {
        let bytes = echo_rq();
        let cs = CommandSet::decode(&bytes).unwrap();
        assert_eq!(cs.len(), 4);
        assert_eq!(
            cs.get_str(tags::AFFECTED_SOP_CLASS_UID),
            Some("1.2.840.10008.1.1")
        );
        assert_eq!(cs.command_field(), Some(0x0030));
        assert_eq!(cs.get_us(tags::MESSAGE_ID), Some(7));
        assert!(!cs.has_dataset());
        assert_eq!(cs.encode(), bytes);
        assert_eq!(cs.encoded_len(), bytes.len());
    }

    #[test]
    fn builds_in_tag_order_with_padding() {
        let mut cs = CommandSet::new();
        cs.set_us(tags::COMMAND_DATA_SET_TYPE, 0x0101).unwrap();
        cs.set_us(tags::MESSAGE_ID, 7).unwrap();
        cs.set_us(tags::COMMAND_FIELD, 0x0030).unwrap();
        cs.set_str(tags::AFFECTED_SOP_CLASS_UID, "1.2.840.10008.1.1")
            .unwrap();
        assert_eq!(cs.encode(), echo_rq());
        // AE and LO pad with a space, UI with NUL.
        cs.set_str(tags::MOVE_DESTINATION, "ABC").unwrap();
        assert_eq!(cs.get(tags::MOVE_DESTINATION), Some(&b"ABC "[..]));
        cs.set_str(tags::ERROR_COMMENT, "odd").unwrap();
        assert_eq!(cs.get(tags::ERROR_COMMENT), Some(&b"odd "[..]));
        cs.set_str(tags::AFFECTED_SOP_INSTANCE_UID, "1.2.3")
            .unwrap();
        assert_eq!(
            cs.get(tags::AFFECTED_SOP_INSTANCE_UID),
            Some(&b"1.2.3\0"[..])
        );
        // Replacing keeps one element.
        cs.set_us(tags::MESSAGE_ID, 8).unwrap();
        assert_eq!(cs.get_us(tags::MESSAGE_ID), Some(8));
        assert_eq!(cs.iter().filter(|(e, _)| *e == tags::MESSAGE_ID).count(), 1);
        let tags_in_order: Vec<u16> = cs.iter().map(|(e, _)| e).collect();
        assert!(tags_in_order.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            CommandSet::decode(&cs.encode()).unwrap().get_ul(0x0000),
            None,
            "group length is not kept as an element"
        );
    }

    #[test]
    fn at_values() {
        let mut cs = CommandSet::new();
        let list = [Tag(0x7FE0, 0x0010), Tag(0xFFFF, 0xFFFF)];
        cs.set_tags(tags::ATTRIBUTE_IDENTIFIER_LIST, &list).unwrap();
        assert_eq!(
            cs.get(tags::ATTRIBUTE_IDENTIFIER_LIST).unwrap(),
            &[0xE0, 0x7F, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        let back = CommandSet::decode(&cs.encode()).unwrap();
        assert_eq!(
            back.get_tags(tags::ATTRIBUTE_IDENTIFIER_LIST).unwrap(),
            list
        );
    }

    #[test]
    fn rejects_invalid_values_from_callers() {
        let mut cs = CommandSet::new();
        assert!(cs.set_str(tags::AFFECTED_SOP_CLASS_UID, "1.2.a").is_err());
        assert!(cs
            .set_str(tags::AFFECTED_SOP_CLASS_UID, &"1".repeat(65))
            .is_err());
        assert!(cs.set_str(tags::MOVE_DESTINATION, &"A".repeat(17)).is_err());
        assert!(cs.set_str(tags::MOVE_DESTINATION, "A\\B").is_err());
        assert!(cs.set_raw(tags::MESSAGE_ID, &[1, 2, 3, 4]).is_err());
        assert!(cs.set_raw(0x9999, &[1]).is_err());
        assert!(cs.set_ul(tags::COMMAND_GROUP_LENGTH, 4).is_err());
        // Regression (fuzz, command_set): set_str went around the check above.
        assert!(cs.set_str(tags::COMMAND_GROUP_LENGTH, "1.2").is_err());
        assert!(cs.set_str(tags::MESSAGE_ID, "12").is_err());
        assert!(!cs.contains(tags::COMMAND_GROUP_LENGTH));
        assert_eq!(CommandSet::decode(&cs.encode()).as_ref(), Ok(&cs));
        assert!(cs.is_empty());
    }

    #[test]
    fn typed_decode_errors() {
        let good = echo_rq();
        // Every truncation point is an error, never a panic.
        for cut in 0..good.len() {
            let r = CommandSet::decode(&good[..cut]);
            if cut == 0 {
                assert_eq!(r, Err(CommandError::MissingGroupLength));
            } else {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
        // Odd length.
        // Group lengths below are left at 4: every case fails before the length check.
        let mut odd = element(0x0000, &[4, 0, 0, 0]);
        odd.extend(element(0x0002, b"1.2"));
        assert!(matches!(
            CommandSet::decode(&odd),
            Err(CommandError::OddLength { .. })
        ));
        // Length past the end.
        let mut past = element(0x0000, &[4, 0, 0, 0]);
        past.extend(&[0, 0, 2, 0, 0x10, 0, 0, 0, b'1', 0]);
        assert!(matches!(
            CommandSet::decode(&past),
            Err(CommandError::LengthPastEnd {
                length: 16,
                remaining: 2,
                ..
            })
        ));
        // Huge length does not overflow.
        let mut huge = element(0x0000, &[4, 0, 0, 0]);
        huge.extend(&[0, 0, 2, 0, 0xFE, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            CommandSet::decode(&huge),
            Err(CommandError::LengthPastEnd { .. })
        ));
        let mut undefined = element(0x0000, &[4, 0, 0, 0]);
        undefined.extend(&[0, 0, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            CommandSet::decode(&undefined),
            Err(CommandError::UndefinedLength { .. })
        ));
        // Duplicate and out of order.
        let mut dup = element(0x0000, &[4, 0, 0, 0]);
        dup.extend(element(0x0110, &[1, 0]));
        dup.extend(element(0x0110, &[2, 0]));
        assert_eq!(
            CommandSet::decode(&dup),
            Err(CommandError::DuplicateElement { element: 0x0110 })
        );
        let mut order = element(0x0000, &[4, 0, 0, 0]);
        order.extend(element(0x0110, &[1, 0]));
        order.extend(element(0x0100, &[2, 0]));
        assert!(matches!(
            CommandSet::decode(&order),
            Err(CommandError::OutOfOrder { .. })
        ));
        // Wrong group.
        let mut group = element(0x0000, &[4, 0, 0, 0]);
        group.extend(&[0x08, 0, 0x16, 0, 2, 0, 0, 0, 1, 0]);
        assert_eq!(
            CommandSet::decode(&group),
            Err(CommandError::WrongGroup {
                tag: Tag(0x0008, 0x0016)
            })
        );
        // Missing group length.
        assert_eq!(
            CommandSet::decode(&element(0x0110, &[1, 0])),
            Err(CommandError::MissingGroupLength)
        );
        // A US of 4 bytes.
        let mut us4 = element(0x0000, &[4, 0, 0, 0]);
        us4.extend(element(0x0110, &[1, 0, 0, 0]));
        assert!(matches!(
            CommandSet::decode(&us4),
            Err(CommandError::InvalidValueLength {
                keyword: "MessageID",
                ..
            })
        ));
    }

    #[test]
    fn group_length_must_match() {
        let mut bytes = echo_rq();
        bytes[8] = 0x99;
        assert!(matches!(
            CommandSet::decode(&bytes),
            Err(CommandError::GroupLengthMismatch { declared: 0x99, .. })
        ));
    }

    #[test]
    fn lenient_choices() {
        // Unknown elements are kept, padded or unpadded AE titles read the same.
        let mut body = element(0x0600, b"  MOVE_SCP      ");
        body.extend(element(0x7777, b"xy"));
        let mut raw = element(0x0000, &(body.len() as u32).to_le_bytes());
        raw.extend(body);
        let cs = CommandSet::decode(&raw).unwrap();
        assert_eq!(cs.get_str(tags::MOVE_DESTINATION), Some("MOVE_SCP"));
        assert_eq!(cs.get(0x7777), Some(&b"xy"[..]));
        assert_eq!(cs.encode()[12..], raw[12..]);
    }
}
